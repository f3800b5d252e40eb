"""Removing a replaced local store without making the run wait for it.

``--overwrite`` used to delete the old store before the new one was created:
about 0.5 s for a 1.2 GB store of 2,400 files here, on the serial path of
every run, while the other MPI ranks sat idle.  Now the coordinator renames
the old store to a hidden sibling in the same directory (one atomic rename;
the name ``STORE`` is free at once) and a thread deletes it while the run
computes::

    run.zarr  ->  .run.zarr.removing-<pid>-<random>@<host>

:func:`wait` joins those threads (the run calls it before it returns; the
interpreter joins them at exit too, as they are not daemons).  For a short
while the disk holds both stores.

A process killed while deleting leaves its hidden sibling behind: the next
removal beside the same store deletes every such sibling of this host whose
process no longer runs.  Nothing else is ever touched: only names of that
exact form, made from the store's own name.

A store reached through a symbolic link keeps the link: its target directory
is moved aside in the target's own directory and made again, empty, with the
same permissions.  Stores at URLs and stores the rename cannot move (a mount
point, another file system, no permission) are removed at once, as before.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid

from .lock import pid_alive

__all__ = ["remove_later", "wait", "trash_name", "stale_siblings"]

_MARK = ".removing-"
#: path moved aside -> the thread deleting it (joined by :func:`wait`)
_pending: dict[str, threading.Thread] = {}
_guard = threading.Lock()


def trash_name(path, pid=None, host=None, tag=None) -> str:
    """The hidden sibling ``path`` is renamed to before it is deleted:
    ``.NAME.removing-PID-TAG@HOST`` (TAG: random, so that no two removals
    ever pick the same name)."""
    path = os.path.normpath(os.path.abspath(os.fspath(path)))
    parent, base = os.path.split(path)
    pid = os.getpid() if pid is None else pid
    host = socket.gethostname() if host is None else host
    tag = uuid.uuid4().hex[:8] if tag is None else tag
    return os.path.join(parent, f".{base}{_MARK}{pid}-{tag}@{host}")


def stale_siblings(path) -> list[str]:
    """Hidden siblings of ``path`` left by removals on this host that no
    process is deleting any more (the process ended: killed half-way)."""
    path = os.path.normpath(os.path.abspath(os.fspath(path)))
    parent, base = os.path.split(path)
    prefix = f".{base}{_MARK}"
    here = socket.gethostname()
    out = []
    try:
        names = os.listdir(parent or ".")
    except OSError:
        return out
    with _guard:
        ours = set(_pending)
    for name in names:
        if not name.startswith(prefix):
            continue
        pid_tag, sep, host = name[len(prefix):].partition("@")
        pid = pid_tag.partition("-")[0]
        if not sep or host != here or not pid.isdigit():
            continue
        full = os.path.join(parent, name)
        if full in ours:
            continue
        if int(pid) == os.getpid() or not pid_alive(int(pid)):   # ours: an earlier process's pid
            out.append(full)
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
    made again, empty.  The caller has checked that the directory is a store
    and holds nothing else."""
    path = os.path.normpath(os.path.abspath(os.fspath(path)))
    link = os.path.islink(path)
    if link:                        # the link stays; its target is replaced
        path = os.path.realpath(path)
    if not os.path.isdir(path):
        return False
    stale = stale_siblings(path)
    aside = trash_name(path)
    mode = os.stat(path).st_mode & 0o7777
    try:
        os.rename(path, aside)
    except OSError:                 # a mount point, another file system, permissions
        return False
    if link:                        # an empty directory where the link points
        try:
            os.mkdir(path)
            os.chmod(path, mode)
        except OSError:
            os.rename(aside, path)
            return False
    t = threading.Thread(target=_delete, args=([aside] + stale,),
                         name="distatomenv-remove-old-store", daemon=False)
    with _guard:
        _pending[aside] = t
    t.start()
    return True


def wait() -> None:
    """Wait until every store this process moved aside is deleted."""
    with _guard:
        pending = list(_pending.values())
    for t in pending:
        t.join()
    with _guard:
        for k in [k for k, t in _pending.items() if not t.is_alive()]:
            del _pending[k]
