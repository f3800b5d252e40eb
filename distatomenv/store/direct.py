"""Chunk files written past the page cache (``O_DIRECT``) on local disks.

A store is written once, by a run that keeps its cores busy computing, and
read later.  Written through the page cache, each chunk is first copied into
freshly allocated cache pages; in a virtual machine whose host reclaims the
guest's free memory (a balloon with free-page reporting) every such page
faults to the host first, and this copy cost the writer more CPU than
compressing the chunk (measured, H2O x 100, 125 MB: 1.1-1.7 s of system time
in the writer; the same bytes with ``O_DIRECT``: 0.1 s).  A chunk the run
will not read again gains nothing from the cache either.

:class:`DirectLocalStore` is zarr's ``LocalStore`` whose ``set`` writes
values of at least :data:`DIRECT_MIN_BYTES` with ``O_DIRECT``: copied into an
aligned buffer (one per thread, kept), written padded to a multiple of 4096
bytes, truncated to their length, under a temporary name renamed into place,
exactly as ``LocalStore`` does, so a reader sees a chunk whole or not at all.
Smaller values (metadata, markers) and ``set_if_not_exists`` go through
``LocalStore`` unchanged.  Where the file system refuses ``O_DIRECT`` (EINVAL
at open or at the write) the store falls back to buffered writes for good.

Where it is used (:func:`direct_io_wanted`): local file systems on block
devices (ext4, xfs, btrfs, f2fs), found in ``/proc/self/mountinfo``.  Not on
network and parallel file systems (NFS, Lustre, GPFS, ...), where an
unbuffered write is a synchronous round trip, nor on tmpfs (no ``O_DIRECT``).
``DISTATOMENV_DIRECT_IO=1`` asks for it anywhere (falling back where it is
refused), ``=0`` turns it off.  The bytes of the store are the same either
way.
"""
from __future__ import annotations

import asyncio
import errno
import mmap
import os
import threading
import uuid
from pathlib import Path

from zarr.storage import LocalStore

from ..errors import DistatomenvError

__all__ = ["DIRECT_FILESYSTEMS", "DIRECT_IO_ENV", "DIRECT_MIN_BYTES", "DirectLocalStore",
           "direct_io_wanted", "filesystem_type", "put_buffered", "put_direct"]

#: Environment variable: "1" writes chunks with O_DIRECT wherever the file
#: system accepts it, "0" never; unset: on DIRECT_FILESYSTEMS only.
DIRECT_IO_ENV = "DISTATOMENV_DIRECT_IO"
#: Local block-device file systems whose O_DIRECT writes are cheap.
DIRECT_FILESYSTEMS = frozenset({"ext4", "xfs", "btrfs", "f2fs"})
#: Values shorter than this (metadata, markers) are written through the cache.
DIRECT_MIN_BYTES = 64 << 10
#: Alignment of the buffer, the offsets and the lengths of O_DIRECT writes
#: (covers devices of 512- and 4096-byte logical blocks).
ALIGN = 4096

_O_DIRECT = getattr(os, "O_DIRECT", 0)
_local = threading.local()


def _unescape(field: str) -> str:
    """A path field of mountinfo, whose spaces etc. are written \\ooo."""
    out, k = [], 0
    while k < len(field):
        code = field[k + 1:k + 4]
        if field[k] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(field[k + 1:k + 4], 8)))
            k += 4
        else:
            out.append(field[k])
            k += 1
    return "".join(out)


def filesystem_type(path, mountinfo="/proc/self/mountinfo") -> str | None:
    """The type of the file system that holds ``path`` (or would hold it: its
    nearest existing ancestor), from the longest mount point above it in
    ``mountinfo``; None where that cannot be read (not Linux)."""
    p = Path(os.path.abspath(os.fspath(path)))
    while not p.exists() and p != p.parent:
        p = p.parent
    real = os.path.realpath(p)
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/") or point == "/"
        if inside and len(point) >= len(best):
            best, best_type = point, right.split()[0]
    return best_type


def direct_io_wanted(path) -> bool:
    """Whether chunks of the local store at ``path`` are written with O_DIRECT
    (see the module's note for the rule and :data:`DIRECT_IO_ENV`)."""
    if not _O_DIRECT:
        return False
    text = os.environ.get(DIRECT_IO_ENV, "").strip()
    if text in ("0", "1"):
        return text == "1"
    if text:
        raise DistatomenvError(f"{DIRECT_IO_ENV}={text!r}: expected 1 (write chunks past the "
                               "page cache where the file system allows it), 0 (never) or unset "
                               "(on local disks: " + ", ".join(sorted(DIRECT_FILESYSTEMS)) + ")")
    return filesystem_type(path) in DIRECT_FILESYSTEMS


def _aligned_buffer(size: int) -> mmap.mmap:
    """This thread's page-aligned buffer of at least ``size`` bytes (kept, so
    its pages are touched once)."""
    buf = getattr(_local, "buf", None)
    if buf is None or len(buf) < size:
        if buf is not None:
            buf.close()
        buf = _local.buf = mmap.mmap(-1, max(size, 1 << 20))
    return buf


def put_direct(path: Path, view: memoryview) -> bool:
    """Write the bytes ``view`` to ``path`` whole or not at all (temporary
    file renamed into place), past the page cache; False (and no file) where
    the file system refuses O_DIRECT (EINVAL at the open or the write)."""
    n = len(view)
    size = -(-n // ALIGN) * ALIGN
    buf = _aligned_buffer(size)
    buf[:n] = view
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.partial")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | _O_DIRECT, 0o666)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    try:
        try:
            with memoryview(buf) as whole:
                done = 0
                while done < size:
                    done += os.write(fd, whole[done:size])
            os.ftruncate(fd, n)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno != errno.EINVAL:
            raise
        return False
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def put_buffered(path: Path, view: memoryview) -> None:
    """Write the bytes ``view`` to ``path`` whole or not at all (temporary
    file renamed into place) through the page cache, as zarr's LocalStore does."""
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "xb") as fh:
            fh.write(view)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class DirectLocalStore(LocalStore):
    """zarr's ``LocalStore`` writing large values with O_DIRECT (see the module)."""

    def __init__(self, root, *, read_only: bool = False):
        super().__init__(root, read_only=read_only)
        self.direct = bool(_O_DIRECT)

    async def set(self, key: str, value) -> None:
        if not self.direct or len(value) < DIRECT_MIN_BYTES:
            return await super().set(key, value)
        if not self._is_open:
            await self._open()
        self._check_writable()
        path = self.root / key
        if not await asyncio.to_thread(self._put_direct, path, value):
            await super().set(key, value)

    def _put_direct(self, path: Path, value) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.direct = put_direct(path, memoryview(value.as_buffer_like()).cast("B"))
        return self.direct
