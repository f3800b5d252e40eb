"""The parallel index of input.data: fixed byte blocks indexed anywhere (a
mapper spreads them over processes) and merged in order, and the data file's
checksum made of the blocks' digests (:func:`file_digest`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from ..errors import DataFileError
from ..parallel import local_map
from .files import check_readable
from .inputdata import _RangeDigest, index_file
from .structure import DataIndex

__all__ = ["INDEX_BLOCK_BYTES", "BlockIndex", "digest_name", "file_blocks", "index_block",
           "merge_blocks", "file_digest", "index_data"]


# ----------------------------------------------------------------------------
#: Bytes per block of the parallel index, and of the data file's checksum.
#: Fixed (not derived from the number of workers) so that the checksum is the
#: same whatever indexed the file.
INDEX_BLOCK_BYTES = 16 << 20


def digest_name(block_bytes: int = INDEX_BLOCK_BYTES) -> str:
    """Name of the checksum of :func:`file_digest` (recorded with the digest)."""
    size = f"{block_bytes >> 20} MiB" if block_bytes % (1 << 20) == 0 else f"{block_bytes} byte"
    return f"sha256 of the sha256 digests of {size} blocks"


@dataclass(eq=False)
class BlockIndex:
    """The index of the records that begin in one block [start, stop) of a file.

    ``index`` has line numbers counted from the block's first byte (line 1 is
    the line holding ``start``); :func:`merge_blocks` makes them absolute.
    ``error`` is (line relative to the block or None, message) of a
    DataFileError met in the block, with ``index`` None.
    """

    start: int
    stop: int
    newlines: int
    sha256: bytes
    index: "DataIndex | None" = None
    error: tuple | None = None


def file_blocks(path, block_bytes: int = INDEX_BLOCK_BYTES) -> list[tuple[int, int]]:
    """The byte ranges [start, stop) of the blocks of a file (at least one)."""
    size = os.path.getsize(path)
    return [(a, min(a + block_bytes, size)) for a in range(0, max(size, 1), block_bytes)]


def index_block(path, elements, block) -> BlockIndex:
    """Index the records that begin in ``block`` = (start, stop); never raises
    DataFileError (it is returned in ``error``), so a parallel driver can report
    the first error of the file with its absolute line number."""
    start, stop = block
    track: list = []
    try:
        idx = index_file(path, elements, start=start, stop=stop, line_offset=0, _track=track)
        idx.sha256 = None
        err = None
    except DataFileError as exc:
        idx, err = None, (exc.line, exc.message)
    if not track:                              # the scan failed before completing its digest
        d = _RangeDigest(start, stop)
        d.complete(path, os.path.getsize(path))
        track.append(d)
    return BlockIndex(start=start, stop=stop, newlines=track[0].newlines,
                      sha256=track[0].sha.digest(), index=idx, error=err)


def merge_blocks(path, parts) -> "DataIndex":
    """The whole file's DataIndex from the :class:`BlockIndex` of every block, in
    order.  Line numbers become absolute, the first error of the file (by line)
    is raised as DataFileError, and ``digest`` is set (see :func:`file_digest`)."""
    parts = list(parts)
    path = os.fspath(path)
    before = np.concatenate([[0], np.cumsum([p.newlines for p in parts])]).astype(np.int64)
    errors = [(before[k] + line if line is not None else None, msg)
              for k, p in enumerate(parts) if p.error is not None for line, msg in [p.error]]
    if errors:
        line, msg = min(errors, key=lambda e: (e[0] is None, e[0] or 0))
        raise DataFileError(path, None if line is None else int(line), msg)
    for k, p in enumerate(parts):
        p.index.line = p.index.line + before[k]
    merged = DataIndex.merge([p.index for p in parts])
    merged.digest = _combine_digests([p.sha256 for p in parts])
    return merged


def _combine_digests(digests) -> str:
    h = hashlib.sha256()
    for d in digests:
        h.update(d)
    return h.hexdigest()


def file_digest(path, block_bytes: int = INDEX_BLOCK_BYTES) -> str:
    """The checksum distatomenv records for a data file: the sha256 of the
    concatenated sha256 digests of its 16 MiB blocks (:func:`digest_name`).
    Unlike a plain sha256 it can be computed by many processes at once.  In a
    shell: ``split -b 16M -d -a 4 FILE blk. && for b in blk.*; do sha256sum $b | cut -c1-64
    | xxd -r -p; done | sha256sum``."""
    parts = []
    for a, b in file_blocks(path, block_bytes):
        d = _RangeDigest(a, b)
        d.complete(path, os.path.getsize(path))
        parts.append(d.sha.digest())
    return _combine_digests(parts)


def index_data(path, elements, mapper=None, block_bytes: int = INDEX_BLOCK_BYTES) -> "DataIndex":
    """Index a whole input.data file block by block, in parallel when ``mapper``
    runs the blocks on many processes.

    mapper : callable ``(fn, items, shared) -> [fn(shared, item) for item in
        items]`` (default :func:`distatomenv.parallel.local_map`: in this process,
        one block after the other).  The executors provide ones that spread the
        items over MPI ranks or Dask workers.

    block_bytes : block size; the recorded checksum uses the default, other
        sizes are for tests.

    Returns the DataIndex with absolute line numbers and ``digest`` set;
    raises the file's first DataFileError.
    """
    path = os.fspath(path)
    check_readable(path, "input.data")
    blocks = file_blocks(path, block_bytes)
    run = mapper or local_map
    parts = run(_index_block_task, blocks, (path, list(elements)))
    return merge_blocks(path, parts)


def _index_block_task(shared, block):
    path, elements = shared
    return index_block(path, elements, block)

