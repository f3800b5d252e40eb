"""Is a store intact?  Checksums, missing chunks and ``distatomenv verify``.

Every chunk of a store made by this version ends in a ``crc32c`` checksum
(:meth:`.schema.StoreLayout.compressors`), so a flipped bit or a truncated
chunk fails when it is read.  A *deleted* chunk would silently read as the
fill value (NaN, -1); but the writers store every chunk of ``elements/``,
and each unit's marker records the rows it wrote (``rows``), so every chunk
a finished unit wrote must exist, and the marker names who wrote it.

* :func:`missing_chunks` -- cheap (listings and the markers): the element
  chunks that the finished units wrote and that do not exist.  Export and analyze call it before they start
  (:meth:`.reader.StoreReader.check_chunks`).
* :func:`verify` -- reads and checks every chunk of every array, lists the
  damaged ones (``distatomenv verify STORE``).
* :func:`locate` -- which chunks of some rows of one array are damaged
  (after a read failed).

Keys are named as in the store: ``elements/H/G/c/3/0`` is chunk 3 (rows
3 x chunk_rows ...) of H's G.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

import zarr

from distatomenv.errors import DistatomenvError, StoreDamagedError

from .fs import location
from .schema import (ELEMENTS_GROUP, STATUS_COMPLETE, StoreLayout, format_id_ranges,
                     list_done_units, load_root_attrs, read_unit_info)

__all__ = ["Damage", "VerifyReport", "missing_chunks", "verify", "locate", "damaged_error"]

#: Chunks read at once by :func:`verify` (along the first axis).
BATCH = 16


@dataclass
class Damage:
    """One damaged chunk (or metadata document): its key and what is wrong."""

    key: str
    reason: str

    def __str__(self):
        return f"{self.key}: {self.reason}"


@dataclass
class VerifyReport:
    """What :func:`verify` found.

    Attributes
    ----------
    path, status : the store and its status.
    arrays, chunks : arrays and stored chunks checked.
    damaged : list of :class:`Damage` (empty: intact).
    unchecked : arrays without a checksum (made by an older version): their
        chunks were decoded, but a changed bit may go unseen.
    missing_units : planned work units without a marker (incomplete store).
    seconds : time taken.
    precision : the layout's precision, "full" or "n2p2" (lossy by design,
        see :class:`.schema.StoreLayout`); ``precision_text`` describes it.
    """

    path: str
    status: str
    arrays: int = 0
    chunks: int = 0
    damaged: list = field(default_factory=list)
    unchecked: list = field(default_factory=list)
    missing_units: list = field(default_factory=list)
    seconds: float = 0.0
    precision: str = "full"
    precision_text: str = ""

    @property
    def ok(self) -> bool:
        return not self.damaged

    def text(self, limit: int = 50) -> str:
        lines = []
        if self.damaged:
            lines.append(f"{self.path}: DAMAGED: {len(self.damaged)} damaged chunk(s) of "
                         f"{self.chunks} checked in {self.arrays} arrays:")
            lines += [f"  {d}" for d in self.damaged[:limit]]
            if len(self.damaged) > limit:
                lines.append(f"  ... ({len(self.damaged) - limit} more)")
            lines.append("  the store cannot be trusted: compute it again (--overwrite)")
        else:
            lines.append(f"{self.path}: OK: {self.chunks} chunks in {self.arrays} arrays "
                         f"checked ({self.seconds:.1f} s)")
        if self.status != STATUS_COMPLETE:
            lines.append(f"  status {self.status!r}: {len(self.missing_units)} work unit(s) not "
                         f"finished (units {format_id_ranges(self.missing_units)}); only the "
                         "chunks written so far were checked")
        if self.unchecked:
            lines.append(f"  {len(self.unchecked)} array(s) have no checksum (written by an older "
                         "distatomenv): decoded, but a changed bit may go unseen: "
                         + ", ".join(self.unchecked[:5]) + (" ..." if len(self.unchecked) > 5
                                                            else ""))
        if self.precision != "full":
            lines.append(f"  precision {self.precision_text}: the checksums vouch for the "
                         "rounded values as stored")
        return "\n".join(lines)


def _grid(arr) -> tuple[int, ...]:
    return tuple(max(1, math.ceil(s / c)) if s else 0 for s, c in zip(arr.shape, arr.chunks))


def _chunk_name(idx) -> str:
    return "c/" + "/".join(str(int(i)) for i in idx)


def _has_checksum(arr) -> bool:
    return any(type(c).__name__ == "Crc32cCodec" for c in arr.metadata.codecs) \
        if hasattr(arr.metadata, "codecs") else False


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "checksum" in text.lower():
        return "checksum mismatch (crc32c): the chunk was changed or truncated"
    return f"cannot be decoded ({type(exc).__name__}: {text[:120]})"


def _written_chunks(path, layout) -> dict:
    """(element, chunk index) -> (unit id, host) for every chunk that a finished
    unit's marker says it wrote (its ``rows``; markers without them -- hand-made
    stores, older versions -- promise nothing)."""
    out = {}
    ch = layout.chunk_rows
    for u in sorted(list_done_units(path)):
        info = read_unit_info(path, u) or {}
        for e, r in (info.get("rows") or {}).items():
            if e not in layout.n_rows or not isinstance(r, list) or len(r) != 2:
                continue
            for i in range(int(r[0]) // ch, math.ceil(int(r[1]) / ch)):
                out[(e, i)] = (u, info.get("host"))
    return out


def missing_chunks(path) -> list[Damage]:
    """The chunks of ``elements/`` that the finished units' markers say they
    wrote and that do not exist (one listing per array and one read per
    marker; no chunk is read).  Every unit writes every array of its rows, and
    the writers store even chunks equal to the fill value, so such a chunk
    can only be missing through damage."""
    attrs = load_root_attrs(path)
    layout = StoreLayout.from_dict(attrs["layout"])
    loc = location(path)
    written = _written_chunks(path, layout)
    out = []
    for e in layout.elements:
        mine = sorted(i for (el, i) in written if el == e)
        if not mine:
            continue
        for name in layout.array_names():
            ncols = layout.columns(e, name)
            if ncols == 0:
                continue
            have = loc.files(ELEMENTS_GROUP, e, name)
            for i in mine:
                key = _chunk_name((i,) if ncols is None else (i, 0))
                if key in have:
                    continue
                r0 = i * layout.chunk_rows
                r1 = min(layout.n_rows[e], r0 + layout.chunk_rows)
                unit, host = written[(e, i)]
                on = f" on {host}" if host else ""
                out.append(Damage(f"{ELEMENTS_GROUP}/{e}/{name}/{key}",
                                  f"missing (rows {r0}-{r1 - 1} of {e}/{name}; written by unit "
                                  f"{unit}{on})"))
    return out


def _arrays(group, prefix=""):
    """(key, array) of every array under ``group``, depth first, in name order."""
    for name, member in sorted(group.members(), key=lambda m: m[0]):
        key = f"{prefix}{name}"
        if isinstance(member, zarr.Array):
            yield key, member
        else:
            yield from _arrays(member, key + "/")


def _check_blocks(key, arr, indices, damaged) -> None:
    for idx in indices:
        try:
            arr.get_block_selection(tuple(int(i) for i in idx))
        except Exception as exc:          # zarr/numcodecs raise ValueError, RuntimeError, ...
            damaged.append(Damage(f"{key}/{_chunk_name(idx)}", _reason(exc)))


def _check_array(key, arr, stored, damaged) -> int:
    """Decode the stored chunks of one array; returns how many were checked."""
    grid = _grid(arr)
    if not grid or 0 in grid:
        return 0
    indices = sorted(stored)
    if all(g == 1 for g in grid[1:]) and len(grid) >= 1:
        # whole rows of chunks: read BATCH chunks at once, locate only on failure
        rows = arr.chunks[0]
        for k in range(0, len(indices), BATCH):
            batch = indices[k:k + BATCH]
            lo, hi = batch[0][0] * rows, min(arr.shape[0], (batch[-1][0] + 1) * rows)
            try:
                arr[lo:hi]
            except Exception:
                _check_blocks(key, arr, batch, damaged)
    else:
        _check_blocks(key, arr, indices, damaged)
    return len(indices)


def verify(path, *, progress=None) -> VerifyReport:
    """Read every chunk of every array of the store at ``path``; list the
    damaged ones (checksum mismatch, undecodable, truncated) and, in a
    complete store, the missing ones.

    progress : optional callable(arrays_done, arrays_total).
    Raises StoreError when ``path`` is not a store at all.
    """
    t0 = time.perf_counter()
    attrs = load_root_attrs(path)
    loc = location(path)
    status = attrs.get("status")
    report = VerifyReport(path=loc.path, status=status)
    try:
        layout = StoreLayout.from_dict(attrs["layout"])
        report.precision, report.precision_text = layout.precision, layout.describe_precision()
    except Exception:                     # a damaged layout is reported by the reads below
        pass
    n_units = attrs.get("n_units")
    if n_units:
        report.missing_units = sorted(set(range(n_units)) - list_done_units(path))
    try:
        root = zarr.open_group(loc.path, mode="r")
        arrays = list(_arrays(root))
    except Exception as exc:
        report.damaged.append(Damage("zarr.json (or an array's)", f"metadata unreadable "
                                                                  f"({type(exc).__name__}: {exc})"))
        report.seconds = time.perf_counter() - t0
        return report
    for k, (key, arr) in enumerate(arrays):
        report.arrays += 1
        if not _has_checksum(arr):
            report.unchecked.append(key)
        names = loc.files(*key.split("/"))
        stored = []
        for n in names:
            bits = n.split("/")
            if bits[0] == "c" and len(bits) == len(arr.shape) + 1 and all(b.isdigit()
                                                                          for b in bits[1:]):
                stored.append(tuple(int(b) for b in bits[1:]))
        report.chunks += _check_array(key, arr, stored, report.damaged)
        if progress is not None:
            progress(k + 1, len(arrays))
    report.damaged += missing_chunks(path)
    report.seconds = time.perf_counter() - t0
    return report


def locate(reader_array, key, rows: slice) -> list[Damage]:
    """The damaged chunks among those holding ``rows`` of one array (read one
    by one, after a read of the rows failed)."""
    arr = reader_array
    ch = arr.chunks[0]
    start, stop, _ = rows.indices(arr.shape[0])
    first, last = start // ch, max(start, stop - 1) // ch
    damaged: list[Damage] = []
    rest = (0,) * (len(arr.shape) - 1)
    _check_blocks(key, arr, [(i, *rest) for i in range(first, last + 1)], damaged)
    return damaged


def damaged_error(path, damage: list, doing: str = "") -> StoreDamagedError:
    """The StoreDamagedError naming the first damaged chunks of ``path``."""
    shown = "; ".join(str(d) for d in damage[:3])
    more = f" (and {len(damage) - 3} more)" if len(damage) > 3 else ""
    doing = f"{doing}: " if doing else ""
    return StoreDamagedError(
        f"{path}: {doing}the store is damaged: {shown}{more}; run 'distatomenv verify "
        f"{path}' for the full list, and compute the store again", [d.key for d in damage])


@contextlib.contextmanager
def damage_named(stores, doing):
    """Turn a failure while reading stores into StoreDamagedError naming the
    damaged chunks, when a check of every chunk finds any (a checksum that
    fails deep inside the analysis or export); else let it through."""
    try:
        yield
    except (DistatomenvError, KeyboardInterrupt, OSError, MemoryError):
        raise
    except Exception as exc:
        for s in stores:
            path = getattr(s, "path", s)
            if not isinstance(path, (str, os.PathLike)):
                continue
            try:
                report = verify(path)
            except Exception:
                continue
            if report.damaged:
                raise damaged_error(os.fspath(path), report.damaged, doing) from exc
        raise
