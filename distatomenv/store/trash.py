"""Removing a replaced local store without making the run wait for it.

``--overwrite`` used to delete the old store before the new one was created:
about 0.5 s for a 1.2 GB store of 2,400 files here, on the serial path of
every run, while the other MPI ranks sat idle.  Now the coordinator renames
the old store to a hidden sibling in the same directory (one atomic rename;
the name ``STORE`` is free at once) and a thread deletes it while the run
computes::

    run.zarr  ->  .run.zarr.removing-<pid>@<host>

:func:`wait` joins those threads (the run calls it before it returns; the
interpreter joins them at exit too, as they are not daemons).  For a short
while the disk holds both stores.

A process killed while deleting leaves its hidden sibling behind: the next
removal beside the same store deletes every such sibling of this host whose
process no longer runs.  Nothing else is ever touched: only names of that
exact form, made from the store's own name.

A store reached through a symbolic link keeps the link: its target directory
is moved aside in the target's own directory and made again, empty.  Stores
at URLs and stores the rename cannot move (a mount point, another file
system, no permission) are removed at once, as before.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading

__all__ = ["remove_later", "wait", "trash_name", "stale_siblings"]

_MARK = ".removing-"
_pending: list[threading.Thread] = []
_guard = threading.Lock()


def trash_name(path, pid=None, host=None) -> str:
    """The hidden sibling ``path`` is renamed to before it is deleted."""
    path = os.path.normpath(os.path.abspath(os.fspath(path)))
    parent, base = os.path.split(path)
    pid = os.getpid() if pid is None else pid
    host = socket.gethostname() if host is None else host
    return os.path.join(parent, f".{base}{_MARK}{pid}@{host}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                 # e.g. PermissionError: it runs, as someone else
        return True
    return True


def stale_siblings(path) -> list[str]:
    """Hidden siblings of ``path`` left by removals on this host whose process
    has ended (a removal killed half-way)."""
    path = os.path.normpath(os.path.abspath(os.fspath(path)))
    parent, base = os.path.split(path)
    prefix = f".{base}{_MARK}"
    here = socket.gethostname()
    out = []
    try:
        names = os.listdir(parent or ".")
    except OSError:
        return out
    for name in names:
        if not name.startswith(prefix):
            continue
        pid, sep, host = name[len(prefix):].partition("@")
        if not sep or host != here or not pid.isdigit():
            continue
        if int(pid) == os.getpid() or not _alive(int(pid)):
            out.append(os.path.join(parent, name))
    return sorted(out)


def _delete(paths) -> None:
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def remove_later(path) -> bool:
    """Move the local store directory ``path`` aside and delete it in a
    background thread (with any stale siblings of earlier removals).

    Returns False, having done nothing, where the rename is not possible
    (not a directory, the rename fails): the caller then removes the store
    itself.  Through a symbolic link, the link's target is moved aside and
    made again, empty.  The caller has checked that the
    directory is a store and holds nothing else."""
    path = os.path.normpath(os.path.abspath(os.fspath(path)))
    link = os.path.islink(path)
    if link:                        # the link stays; its target is replaced
        path = os.path.realpath(path)
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    stale = stale_siblings(path)
    aside = trash_name(path)
    if os.path.lexists(aside):      # our own, from an earlier removal in this process
        wait()
        if os.path.lexists(aside):
            return False
    try:
        os.rename(path, aside)
    except OSError:                 # a mount point, another file system, permissions
        return False
    if link:                        # an empty directory where the link points
        try:
            os.mkdir(path, 0o777 & ~_umask())
        except OSError:
            os.rename(aside, path)
            return False
    t = threading.Thread(target=_delete, args=([aside] + stale,),
                         name="distatomenv-remove-old-store", daemon=False)
    with _guard:
        _pending.append(t)
    t.start()
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def wait() -> None:
    """Wait until every store this process moved aside is deleted."""
    with _guard:
        pending = list(_pending)
        _pending.clear()
    for t in pending:
        t.join()
