"""Whole chunks of a local store's row arrays, encoded and written by the caller's thread.

Why: assigning rows to a zarr array sends every chunk through zarr's asyncio
event loop and then through a pool of codec threads.  For the rows of a
compute, which always cover whole chunks (the ownership rule of
:mod:`.writer`), that machinery costs more CPU than the compressing it
schedules: on CG water x 100 with ``--threads 1`` (684,000 rows, 4,800
chunks) zarr's event-loop thread used 2.5 s and its codec threads another
0.5 s of Python, beside 2.4 s of Blosc, all of it on the core that a second
process would use.

What: :meth:`ChunkFiles.for_array` reads an array's metadata and accepts the
codec chains this package writes (:meth:`.schema.StoreLayout.filters` and
:meth:`.schema.StoreLayout.compressors`)::

    [numcodecs.bitround]  bytes (little endian)  [blosc]  crc32c

:meth:`ChunkFiles.write` then encodes each chunk with the same libraries
zarr calls (numcodecs' BitRound and Blosc, google-crc32c), pads a last,
short chunk with the fill value as zarr does, and writes the file whole or
not at all (temporary name renamed into place), past the page cache where
:func:`.direct.direct_io_wanted` says so.  The files are byte for byte the
ones zarr writes (``tests/test_chunks.py`` compares every chunk of whole
computes); zarr reads them as its own.  Any other array (other codecs, a
big-endian machine, an fsspec store) gets ``None`` and goes through zarr.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .direct import DIRECT_MIN_BYTES, put_buffered, put_direct

__all__ = ["ChunkFiles"]

_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _steps(codecs, dtype: np.dtype):
    """(array step or None, byte steps) for the codec chain ``codecs`` (dicts
    as in zarr.json), or None where the chain is not one this module writes."""
    import google_crc32c
    from numcodecs import BitRound, Blosc

    codecs = list(codecs)
    array_step = None
    if codecs and codecs[0].get("name") == "numcodecs.bitround":
        keep = (codecs.pop(0).get("configuration") or {}).get("keepbits")
        if not isinstance(keep, int) or dtype.kind != "f":
            return None
        array_step = BitRound(keepbits=keep).encode
    if not codecs or codecs[0].get("name") != "bytes":
        return None
    endian = (codecs.pop(0).get("configuration") or {}).get("endian")
    if dtype.itemsize > 1 and (endian != "little" or sys.byteorder != "little"):
        return None
    byte_steps = []
    if codecs and codecs[0].get("name") == "blosc":
        conf = codecs.pop(0).get("configuration") or {}
        if conf.get("shuffle") not in _SHUFFLE:
            return None
        blosc = Blosc(cname=conf["cname"], clevel=conf["clevel"], shuffle=_SHUFFLE[conf["shuffle"]],
                      blocksize=conf.get("blocksize", 0), typesize=conf.get("typesize"))
        byte_steps.append(blosc.encode)
    if [c.get("name") for c in codecs] != ["crc32c"]:
        return None

    def checksum(data):
        data = bytes(data)
        return data + google_crc32c.value(data).to_bytes(4, "little")
    byte_steps.append(checksum)
    return array_step, byte_steps


class ChunkFiles:
    """Writes whole chunks of one array of a local store (see the module)."""

    def __init__(self, array, root: Path, steps, direct: bool):
        self.root = Path(root) / array.path
        self.chunk_rows = int(array.chunks[0])
        self.chunk_shape = tuple(int(c) for c in array.chunks)
        self.dtype = np.dtype(array.dtype)
        self.fill = array.metadata.fill_value
        self._key = array.metadata.encode_chunk_key
        self._array_step, self._byte_steps = steps
        self.direct = direct
        self._dirs: set[Path] = set()

    @classmethod
    def for_array(cls, array, root, *, direct: bool) -> "ChunkFiles | None":
        """The writer of ``array`` (opened on the local store at ``root``), or
        None where zarr must write it (a codec chain this module does not
        know, chunks that split the columns)."""
        meta = array.metadata
        if getattr(meta, "zarr_format", None) != 3 or array.shape[1:] != array.chunks[1:]:
            return None
        steps = _steps(meta.to_dict().get("codecs") or (), np.dtype(array.dtype))
        return None if steps is None else cls(array, root, steps, direct)

    def encode(self, block: np.ndarray) -> bytes:
        """The stored bytes of one chunk (``block``: its rows, at most chunk_rows)."""
        if block.shape[0] < self.chunk_rows:
            full = np.full(self.chunk_shape, self.fill, dtype=self.dtype)
            full[:block.shape[0]] = block
            block = full
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if self._array_step is not None:
            block = np.asarray(self._array_step(block))
        data = memoryview(block).cast("B")
        for step in self._byte_steps:
            data = step(data)
        return data

    def write(self, row_start: int, rows: np.ndarray) -> None:
        """Write ``rows`` from row ``row_start`` on: whole chunks (row_start a
        multiple of chunk_rows; the end one too, or the array's end; the
        caller checks)."""
        cr = self.chunk_rows
        tail = (0,) * (len(self.chunk_shape) - 1)
        for r in range(0, rows.shape[0], cr):
            data = self.encode(rows[r:r + cr])
            path = self.root / self._key(((row_start + r) // cr,) + tail)
            if path.parent not in self._dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._dirs.add(path.parent)
            view = memoryview(data)
            if self.direct and len(view) >= DIRECT_MIN_BYTES:
                if put_direct(path, view):
                    continue
                self.direct = False              # the file system refused O_DIRECT
            put_buffered(path, view)
