"""Creating and filling a distatomenv store (layout: see :mod:`.schema`).

Roles
-----
* The **coordinator** (rank 0, the Dask client, or the serial driver) calls
  :func:`create_store` once, before any worker writes, then
  :func:`finalize_store` after every worker has finished, or
  :func:`mark_failed` when the run fails.  Only the coordinator writes the
  root group (status, error, history) and ``structures/``.
* Every **writer** (rank or worker) opens a :class:`StoreWriter` and, for each
  work unit it owns, calls :meth:`StoreWriter.write_rows` for the unit's row
  ranges and then :meth:`StoreWriter.mark_unit_done`.

Ownership rule: a write must cover whole chunks, i.e. ``row_start`` is a
multiple of ``layout.chunk_rows`` and ``row_start + n`` is one too or equals
``n_rows``.  ``write_rows`` refuses anything else, so two writers that own
disjoint row ranges can never touch the same chunk (Zarr v3 silently loses
data otherwise, zarr-python #3682).  Markers are separate files, so writers
never share any object in the store.

The store is a local (or shared POSIX) path or an fsspec URL such as
``s3://bucket/run.zarr`` (:mod:`.fs`); credentials come from the environment
of every process, never from the store.
"""
from __future__ import annotations

import json
import numbers
import operator
import os
import socket
from datetime import datetime, timezone

import numpy as np
import zarr

from distatomenv.errors import StoreError, StoreExistsError, StoreIncompleteError, is_input_error

from . import trash
from .fs import is_url, location
from .schema import (
    COUNTS,
    FAILED_ON,
    FAILED_ON_INPUT,
    FIRST_ROW,
    FORMAT_NAME,
    FORMAT_VERSION,
    PERIODIC,
    STATUS_COMPLETE,
    STATUS_CREATING,
    STATUS_INCOMPLETE,
    STRUCTURE_ARRAYS,
    STRUCTURE_CHUNK,
    STRUCTURES_GROUP,
    ELEMENTS_GROUP,
    NB_HIST,
    SF_EDGES,
    SF_HIST,
    SF_HIST_UNITS,
    STATS_GROUP,
    TOP_LEVEL_ENTRIES,
    UNITS_GROUP,
    StoreLayout,
    dimension_names,
    format_id_ranges,
    list_done_units,
    load_root_attrs,
    read_root_attrs,
    read_unit_info,
    unit_key,
)

__all__ = [
    "create_store",
    "StoreWriter",
    "finalize_store",
    "mark_failed",
    "to_json",
]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def to_json(value, where: str = "meta"):
    """Convert ``value`` to plain JSON types (numpy scalars/arrays, tuples and
    paths included), so it can be stored as Zarr attributes.

    Raises
    ------
    StoreError
        If some part cannot be represented (naming where it is).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray):
        return to_json(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise StoreError(
                    f"{where}: key {k!r} is a {type(k).__name__}; store attributes need string keys"
                )
            out[k] = to_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise StoreError(
        f"{where} = {value!r} (a {type(value).__name__}) cannot be stored as a JSON attribute"
    )


def _check_n_units(n_units, what="n_units"):
    try:
        n = operator.index(n_units)
    except TypeError:
        n = None
    if n is None or isinstance(n_units, (bool, np.bool_)) or n < 0:
        raise StoreError(f"{what} must be a non-negative integer, got {n_units!r}")
    return n


# ----------------------------------------------------------------------------
# Coordinator
# ----------------------------------------------------------------------------
def _check_structures(layout: StoreLayout, structures) -> dict[str, np.ndarray]:
    """Validate the per-structure arrays against the layout; fill in first_row."""
    if not isinstance(structures, dict):
        raise StoreError(f"structures must be a dict of arrays, got {type(structures).__name__}")
    unknown = sorted(set(structures) - set(STRUCTURE_ARRAYS))
    missing = [n for n in STRUCTURE_ARRAYS if n not in structures and n != FIRST_ROW]
    if unknown or missing:
        raise StoreError(
            f"structures: expected arrays {list(STRUCTURE_ARRAYS)} (first_row optional); "
            f"missing {missing}, unknown {unknown}"
        )
    out = {}
    for name in STRUCTURE_ARRAYS:
        if name not in structures:
            continue
        shape, dtype = layout.structure_spec(name)
        a = np.asarray(structures[name])
        if a.shape != shape:
            raise StoreError(
                f"structures[{name!r}] has shape {a.shape}, expected {shape} "
                f"(n_structures={layout.n_structures}, {len(layout.elements)} elements)"
            )
        ok = np.can_cast(a.dtype, dtype, casting="same_kind") or (
            name == PERIODIC and a.dtype.kind in "iu" and np.isin(a, (0, 1)).all()
        )
        if not ok:
            raise StoreError(f"structures[{name!r}] has dtype {a.dtype}, cannot be stored as {dtype}")
        out[name] = a.astype(dtype)
    counts = out[COUNTS]
    if (counts < 0).any():
        raise StoreError("structures['counts'] has negative entries")
    totals = counts.sum(axis=0)
    for i, e in enumerate(layout.elements):
        if totals[i] != layout.n_rows[e]:
            raise StoreError(
                f"structures['counts'] sums to {int(totals[i])} atoms of element {e}, "
                f"but layout.n_rows[{e!r}] = {layout.n_rows[e]}"
            )
    first_row = np.cumsum(counts, axis=0) - counts
    if FIRST_ROW in out and not np.array_equal(out[FIRST_ROW], first_row):
        s, i = np.argwhere(out[FIRST_ROW] != first_row)[0]
        raise StoreError(
            f"structures['first_row'][{s}, {i}] = {out[FIRST_ROW][s, i]}, but the prefix sum of "
            f"counts gives {first_row[s, i]} (element {layout.elements[i]})"
        )
    out[FIRST_ROW] = first_row
    return out


def _safe_remove_store(path) -> None:
    """Delete the store at ``path``, but only if it holds nothing but store
    entries.  A local directory is moved aside and deleted in the background
    (:mod:`.trash`); the run waits for that before it returns."""
    loc = location(path)
    foreign = sorted(
        name
        for name in loc.names() or []
        if name not in TOP_LEVEL_ENTRIES and not name.endswith(".partial")
    )
    if foreign:
        raise StoreError(
            f"{loc.path}: refusing to overwrite: the directory holds entries that are not part of "
            f"a distatomenv store: {foreign[:10]}; move them away or choose another output path"
        )
    if not (loc.local and trash.remove_later(loc.path)):
        loc.remove()


def _resume_problems(path, attrs, layout, structures, meta, n_units) -> list[str]:
    problems = []
    old = attrs.get("layout") or {}
    try:        # fields added since the store was made compare as their defaults
        old = StoreLayout.from_dict(old).to_dict()
    except (StoreError, TypeError):
        pass
    new = layout.to_dict()
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            problems.append(f"layout {key}: store has {old.get(key)!r}, this run has {new.get(key)!r}")
    old_inputs = (attrs.get("meta") or {}).get("inputs")
    new_inputs = meta.get("inputs")
    if old_inputs != new_inputs:
        problems.append(
            f"meta['inputs'] (input files/checksums): store has {old_inputs!r}, this run has {new_inputs!r}"
        )
    old_plan = (attrs.get("meta") or {}).get("plan")
    new_plan = meta.get("plan")
    if old_plan is not None and new_plan is not None and old_plan != new_plan:
        problems.append(f"meta['plan'] (work units): store has {old_plan!r}, this run has {new_plan!r}")
    if n_units is not None and attrs.get("n_units") not in (None, n_units):
        problems.append(
            f"number of work units: store has {attrs.get('n_units')}, this run plans {n_units}"
        )
    if not problems:
        group = zarr.open_group(path, mode="r")
        for name in STRUCTURE_ARRAYS:
            stored = np.asarray(group[f"{STRUCTURES_GROUP}/{name}"][...])
            if not np.array_equal(stored, structures[name], equal_nan=stored.dtype.kind == "f"):
                problems.append(f"structures/{name} differs from this run's index")
    return problems


def create_store(
    path,
    layout: StoreLayout,
    structures: dict,
    meta: dict,
    *,
    overwrite: bool = False,
    resume: bool = False,
    n_units: int | None = None,
) -> None:
    """Create the store's metadata (coordinator only; no row data is written).

    Parameters
    ----------
    path : str or os.PathLike
        Directory of the store (``*.zarr``); absent or an empty directory.
    layout : StoreLayout
    structures : dict str -> ndarray
        ``natoms`` (S,) int, ``periodic`` (S,) bool, ``lattice`` (S, 3, 3) float
        (NaN when not periodic; input length unit), ``energy`` (S,), ``charge``
        (S,), ``counts`` (S, n_elements) int, and optionally ``first_row``
        (S, n_elements), which must equal the exclusive prefix sum of counts
        (computed when omitted).
    meta : dict
        JSON-able run metadata, stored as the root attribute ``meta``.
        ``meta["inputs"]`` (input files and checksums) must match on resume,
        and so must ``meta["plan"]`` when both runs give one (a different plan
        gives unit ids a different meaning, so old markers would lie).
    overwrite : bool
        Delete an existing store first (never a directory that is not a store).
    resume : bool
        Keep an existing incomplete store with the same layout, inputs and
        structures; its finished units' markers stay valid.  (A store whose
        run failed on its input, ``failed_on`` = "input", is replaced whatever
        the flags: the fixed input cannot resume it.)
    n_units : int, optional
        Number of planned work units, recorded so that readers can name the
        missing ones and writers can reject ids out of range.

    Raises
    ------
    StoreExistsError
        A complete store exists and ``overwrite`` is False.
    StoreError
        Invalid arguments; the path is not a store; an incomplete store exists
        and neither ``resume`` nor ``overwrite`` is set; resume finds a
        different layout/inputs/structures/plan.
    """
    path = os.fspath(path)
    if not isinstance(layout, StoreLayout):
        raise StoreError(f"layout must be a StoreLayout, got {type(layout).__name__}")
    if overwrite and resume:
        raise StoreError("overwrite and resume exclude each other: choose one")
    layout.validate()
    structures = _check_structures(layout, structures)
    if not isinstance(meta, dict):
        raise StoreError(f"meta must be a dict, got {type(meta).__name__}")
    meta = to_json(meta, "meta")
    if n_units is not None:
        n_units = _check_n_units(n_units)

    loc = location(path)
    if loc.exists():
        attrs = read_root_attrs(loc)
        if attrs is not None and attrs.get("status") != STATUS_COMPLETE and \
                attrs.get(FAILED_ON) == FAILED_ON_INPUT:
            # its run failed on its input: nothing in it can be resumed (the
            # input must change), so the next run replaces it without flags
            _safe_remove_store(path)
            attrs = None
        if not loc.exists():
            pass
        elif attrs is None:
            if not (loc.isdir() and not loc.names()):
                raise StoreError(
                    f"{path} exists and is not a distatomenv store; refusing to "
                    f"{'delete' if overwrite else 'write into'} it; choose another output path"
                )
        elif overwrite:
            _safe_remove_store(path)
        else:
            status = attrs.get("status")
            if status == STATUS_COMPLETE:
                raise StoreExistsError(
                    f"{path}: a complete store already exists; use overwrite (--overwrite) to "
                    f"replace it or choose another output path"
                )
            if not resume:
                raise StoreError(
                    f"{path}: an incomplete store (status {status!r}) already exists from an "
                    f"earlier run; use resume (--resume) to finish it or overwrite (--overwrite) "
                    f"to start again"
                )
            if status != STATUS_INCOMPLETE:
                raise StoreError(
                    f"{path}: cannot resume: the earlier run died while creating the store "
                    f"(status {status!r}); use overwrite (--overwrite)"
                )
            problems = _resume_problems(path, attrs, layout, structures, meta, n_units)
            if problems:
                raise StoreError(
                    f"{path}: cannot resume: the existing store was made for a different run:\n  "
                    + "\n  ".join(problems)
                    + "\nuse overwrite (--overwrite) to start again"
                )
            root = zarr.open_group(path, mode="r+")
            new_attrs = dict(root.attrs)
            new_attrs.pop("error", None)
            new_attrs.pop(FAILED_ON, None)
            if n_units is not None:
                new_attrs["n_units"] = n_units
            new_attrs["history"] = list(new_attrs.get("history", [])) + [
                {
                    "event": "resumed",
                    "time": _now(),
                    "units_done": len(list_done_units(path)),
                    "command": meta.get("command"),
                }
            ]
            root.attrs.put(new_attrs)
            return

    _create(path, layout, structures, meta, n_units)


def _create(path, layout, structures, meta, n_units):
    root = zarr.open_group(
        path,
        mode="w-",
        zarr_format=3,
        attributes={
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "status": STATUS_CREATING,
            "layout": layout.to_dict(),
            "n_units": n_units,
            "meta": meta,
            "history": [{"event": "created", "time": _now(), "command": meta.get("command")}],
        },
    )
    for e in layout.elements:
        root.create_group(f"{ELEMENTS_GROUP}/{e}")
        for name in layout.array_names():
            dtype = layout.array_dtype(name)
            shape = layout.array_shape(e, name)
            root.create_array(
                f"{ELEMENTS_GROUP}/{e}/{name}",
                shape=shape,
                chunks=layout.array_chunks(e, name),
                dtype=dtype,
                filters=layout.filters(name),
                compressors=layout.compressors(name),
                fill_value=layout.fill_value(dtype),
                dimension_names=dimension_names(ELEMENTS_GROUP, name),
            )
    root.create_group(STRUCTURES_GROUP)
    for name in STRUCTURE_ARRAYS:
        shape, dtype = layout.structure_spec(name)
        arr = root.create_array(
            f"{STRUCTURES_GROUP}/{name}",
            shape=shape,
            chunks=(max(1, min(shape[0], STRUCTURE_CHUNK)),) + shape[1:],
            dtype=dtype,
            compressors=layout.compressors(name),
            fill_value=False if dtype == "bool" else layout.fill_value(dtype),
            dimension_names=dimension_names(STRUCTURES_GROUP, name),
        )
        if structures[name].size:
            arr[...] = structures[name]
    if layout.hist_bins and n_units:
        for e in layout.elements:
            width = (layout.n_sf[e], layout.hist_bins + 2)
            root.create_array(f"{STATS_GROUP}/{e}/{SF_HIST_UNITS}", shape=(n_units,) + width,
                              chunks=(1,) + width, dtype="int64", fill_value=0,
                              compressors=layout.compressors(SF_HIST_UNITS),
                              dimension_names=dimension_names(STATS_GROUP, SF_HIST_UNITS))
    root.create_group(UNITS_GROUP)
    root.update_attributes({"status": STATUS_INCOMPLETE})


def write_statistics(path, n_units: int, edges: dict) -> dict:
    """Reduce the units' statistics into ``stats/`` (coordinator, before
    :func:`finalize_store`); returns the summary also put in the root
    attribute ``statistics``.

    edges : dict element -> float64 (n_sf, bins+1), the histogram bin edges.

    The scaled-SF histograms are the sums of ``sf_hist_units``; the
    neighbour-count histograms come from the ``nb_hist`` entry of each unit's
    marker (element -> neighbour element -> counts from 0).  The summary holds,
    per pair (central, neighbour), the smallest, mean and largest count.
    """
    path = os.fspath(path)
    attrs = load_root_attrs(path)
    layout = StoreLayout.from_dict(attrs["layout"])
    root = zarr.open_group(path, mode="r+")
    els = layout.elements
    nb = {e: {b: np.zeros(0, dtype=np.int64) for b in els} for e in els}
    for u in range(n_units):
        info = read_unit_info(path, u) or {}
        for e, per in (info.get("nb_hist") or {}).items():
            for b, h in per.items():
                h = np.asarray(h, dtype=np.int64)
                cur = nb[e][b]
                if h.size > cur.size:
                    cur = np.concatenate([cur, np.zeros(h.size - cur.size, dtype=np.int64)])
                cur[:h.size] += h
                nb[e][b] = cur
    summary = {"neighbors": {}}
    for e in els:
        width = max([1] + [h.size for h in nb[e].values()])
        table = np.zeros((len(els), width), dtype=np.int64)
        for k, b in enumerate(els):
            table[k, :nb[e][b].size] = nb[e][b]
        _put(root, f"{STATS_GROUP}/{e}/{NB_HIST}", table, layout)
        pairs = {}
        for k, b in enumerate(els):
            h = table[k]
            total = int(h.sum())
            if total == 0:
                continue
            present = np.flatnonzero(h)
            pairs[b] = {"min": int(present[0]), "max": int(present[-1]),
                        "mean": float((h * np.arange(h.size)).sum() / total), "atoms": total}
        summary["neighbors"][e] = pairs
        if layout.hist_bins and e in edges:
            units = root[f"{STATS_GROUP}/{e}/{SF_HIST_UNITS}"][...]
            _put(root, f"{STATS_GROUP}/{e}/{SF_HIST}", units.sum(axis=0), layout)
            _put(root, f"{STATS_GROUP}/{e}/{SF_EDGES}", np.asarray(edges[e], dtype=np.float64),
                 layout)
    summary["hist_bins"] = layout.hist_bins
    root.update_attributes({"statistics": to_json(summary, "statistics")})
    return summary


def _put(root, key, value, layout):
    """Create (or replace) a small array written by the coordinator alone."""
    value = np.asarray(value)
    root.create_array(key, shape=value.shape, chunks=value.shape or (1,), dtype=value.dtype,
                      fill_value=0, compressors=layout.compressors(key), overwrite=True,
                      dimension_names=dimension_names(STATS_GROUP, key.rsplit("/", 1)[-1]))
    root[key][...] = value


def finalize_store(path, n_units: int) -> None:
    """Mark the store complete after checking that units 0..n_units-1 are done.

    Raises
    ------
    StoreIncompleteError
        Some units have no marker (they are listed); the status stays incomplete.
    StoreError
        Not a store; creation never finished; ``n_units`` differs from the
        number recorded at creation; markers exist for ids >= n_units.
    """
    path = os.fspath(path)
    n_units = _check_n_units(n_units)
    attrs = load_root_attrs(path)
    if attrs.get("status") == STATUS_CREATING:
        raise StoreError(f"{path}: cannot finalize: store creation never finished (status 'creating')")
    recorded = attrs.get("n_units")
    if recorded is not None and recorded != n_units:
        raise StoreError(
            f"{path}: cannot finalize with n_units={n_units}: the store was created for {recorded} units"
        )
    done = list_done_units(path)
    missing = sorted(set(range(n_units)) - done)
    if missing:
        raise StoreIncompleteError(
            f"{path}: {len(missing)} of {n_units} work units have not finished: units "
            f"{format_id_ranges(missing)}; the store stays incomplete (re-run with --resume)"
        )
    extra = sorted(i for i in done if i >= n_units)
    if extra:
        raise StoreError(
            f"{path}: markers exist for units {format_id_ranges(extra)}, beyond n_units={n_units}: "
            f"the store was written by a different plan; use --overwrite"
        )
    root = zarr.open_group(path, mode="r+")
    new_attrs = dict(root.attrs)
    new_attrs.pop("error", None)
    new_attrs.pop(FAILED_ON, None)
    new_attrs["n_units"] = n_units
    new_attrs["status"] = STATUS_COMPLETE
    new_attrs["history"] = list(new_attrs.get("history", [])) + [
        {"event": "completed", "time": _now(), "units": n_units}
    ]
    root.attrs.put(new_attrs)


def mark_failed(path, message: str, *, input_error: bool = False) -> None:
    """Record a failure: attribute ``error`` = message, status stays/becomes
    incomplete (a store still being created stays ``creating``).

    ``input_error``: the run failed on its input (a malformed atom line, too few
    neighbours, coincident atoms): the attribute ``failed_on`` = "input" lets
    the next run replace the store without --overwrite (see :func:`create_store`).

    Raises
    ------
    StoreError
        If ``path`` is not a distatomenv store.
    """
    path = os.fspath(path)
    load_root_attrs(path)
    root = zarr.open_group(path, mode="r+")
    new_attrs = dict(root.attrs)
    new_attrs["error"] = str(message)
    if input_error:
        new_attrs[FAILED_ON] = FAILED_ON_INPUT
    if new_attrs.get("status") == STATUS_COMPLETE:
        new_attrs["status"] = STATUS_INCOMPLETE
    new_attrs["history"] = list(new_attrs.get("history", [])) + [
        {"event": "failed", "time": _now(), "message": str(message)}
    ]
    root.attrs.put(new_attrs)


def record_failure(path, exc) -> None:
    """Mark the store failed with ``exc``'s message (input errors let the next
    run replace the store); a failure to record it (a full disk) is noted on
    ``exc`` and never hides it."""
    try:
        mark_failed(path, f"{type(exc).__name__}: {exc}", input_error=is_input_error(exc))
    except Exception as err:
        if hasattr(exc, "add_note"):
            exc.add_note(f"(recording the failure in the store failed too: {err})")


# ----------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------
class StoreWriter:
    """Write access for one writer process (rank / worker).

    Parameters
    ----------
    path : str or os.PathLike
        An existing store with status ``incomplete`` (made by :func:`create_store`).

    Picklable (only the path travels), so it can be shipped to Dask workers.

    Raises
    ------
    StoreError
        Not a store, or its status is not ``incomplete``.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        attrs = load_root_attrs(self.path)
        status = attrs.get("status")
        if status != STATUS_INCOMPLETE:
            raise StoreError(
                f"{self.path}: cannot write: store status is {status!r}, writers need "
                f"{STATUS_INCOMPLETE!r} (create_store must run first, and a complete store "
                f"is never written again)"
            )
        self.layout = StoreLayout.from_dict(attrs["layout"])
        self.n_units = attrs.get("n_units")
        self._arrays: dict[tuple[str, str], zarr.Array] = {}
        self._files: dict[tuple[str, str], object] = {}
        self._direct = None

    def __reduce__(self):
        return (StoreWriter, (self.path,))

    def __repr__(self):
        return f"StoreWriter({self.path!r})"

    def _array(self, element: str, name: str):
        key = (element, name)
        if key not in self._arrays:
            # every chunk is stored, even one equal to the fill value: in a
            # complete store a missing chunk is then always damage
            self._arrays[key] = zarr.open_array(
                self._store(), path=f"{ELEMENTS_GROUP}/{element}/{name}", mode="r+"
            ).with_config({"write_empty_chunks": True})
        return self._arrays[key]

    def _chunk_files(self, element: str, name: str):
        """The :class:`~.chunks.ChunkFiles` that writes this array of a local
        store in the calling thread, or None: zarr writes it."""
        key = (element, name)
        if key not in self._files:
            from .chunks import ChunkFiles
            direct = self._store() is not self.path     # chunks past the page cache
            self._files[key] = None if is_url(self.path) else ChunkFiles.for_array(
                self._array(element, name), self.path, direct=direct)
        return self._files[key]

    def _store(self):
        """What the row arrays are opened on: the path (zarr's own store), or a
        :class:`~.direct.DirectLocalStore` where chunks are best written past
        the page cache (:func:`~.direct.direct_io_wanted`)."""
        if self._direct is None:
            from .direct import DirectLocalStore, direct_io_wanted
            self._direct = DirectLocalStore(self.path) \
                if not is_url(self.path) and direct_io_wanted(self.path) else False
        return self._direct or self.path

    def write_rows(self, element: str, row_start: int, arrays: dict) -> None:
        """Write rows [row_start, row_start + n) of each array in ``arrays``.

        Parameters
        ----------
        element : str
        row_start : int
            First row; a multiple of ``layout.chunk_rows``.
        arrays : dict name -> ndarray
            Any subset of the element's arrays, all with the same number n of
            rows and with the columns of the layout: ``G`` (n, nG),
            ``dGd{x,y,z}`` (n, ndG), ``forces``/``positions`` (n, 3),
            ``structure``/``atom`` (n,), ``nb_atom``/``nb_order`` (n, nblocks).
            Values are cast to the stored dtype (same kind only: floats to the
            store's float dtype, integers to the integer dtype if they fit).

        Raises
        ------
        StoreError
            Unknown element or array, wrong shape or dtype, integer overflow,
            or a row range that is not made of whole chunks (``row_start + n``
            must be a multiple of ``chunk_rows`` or equal ``n_rows``).
        """
        lay = self.layout
        if element not in lay.n_rows:
            raise StoreError(
                f"{self.path}: element {element!r} is not in the store (elements: {lay.elements})"
            )
        try:
            row_start = operator.index(row_start)
        except TypeError:
            raise StoreError(f"row_start must be an integer, got {row_start!r}") from None
        names = lay.array_names()
        unknown = [n for n in arrays if n not in names]
        if unknown:
            hint = "" if lay.derivatives else " (this store has no derivatives)"
            raise StoreError(
                f"{self.path}: unknown array(s) {unknown} for element {element}{hint}; "
                f"arrays are {list(names)}"
            )
        prepared = {}
        n = None
        for name, data in arrays.items():
            a = np.asarray(data)
            if n is None:
                n = a.shape[0] if a.ndim else -1
            ncols = lay.columns(element, name)
            expected = (n,) if ncols is None else (n, ncols)
            if a.shape != expected:
                raise StoreError(
                    f"{element}/{name}: array of shape {a.shape}, expected {expected} "
                    f"(rows as in the first array given, columns from the layout)"
                )
            dtype = np.dtype(lay.array_dtype(name))
            if not np.can_cast(a.dtype, dtype, casting="same_kind"):
                raise StoreError(f"{element}/{name}: dtype {a.dtype} cannot be stored as {dtype}")
            if dtype.kind in "iu" and a.size and a.dtype != dtype:
                info = np.iinfo(dtype)
                lo, hi = a.min(), a.max()
                if lo < info.min or hi > info.max:
                    raise StoreError(
                        f"{element}/{name}: values {lo}..{hi} do not fit the stored dtype {dtype}"
                    )
            prepared[name] = (a, dtype)
        if n is None:
            return
        lay.check_rows(element, row_start, row_start + n)
        for name, (a, dtype) in prepared.items():
            if a.size == 0:  # 0 rows or 0 columns: nothing to store
                continue
            a = np.ascontiguousarray(a, dtype=dtype)
            files = self._chunk_files(element, name)
            if files is not None:
                files.write(row_start, a)
            else:
                self._array(element, name)[row_start : row_start + n] = a

    def mark_unit_done(self, unit_id: int, info: dict | None = None) -> None:
        """Write the marker of ``unit_id`` (call after all its rows are written).

        The marker is the group ``units/<id:08d>`` whose attributes are ``info``
        plus ``unit``, ``finished`` (UTC time), ``host`` and ``pid`` unless given.
        It is its own file, written atomically (temporary file + rename; on an
        object store one PUT).

        Raises
        ------
        StoreError
            ``unit_id`` negative or >= the planned number of units, or ``info``
            not JSON-able.
        """
        unit_id = _check_n_units(unit_id, "unit_id")
        if self.n_units is not None and unit_id >= self.n_units:
            raise StoreError(
                f"{self.path}: unit_id {unit_id} is out of range: the store plans {self.n_units} units"
            )
        info = to_json(dict(info or {}), f"info of unit {unit_id}")
        info.setdefault("unit", unit_id)
        info.setdefault("finished", _now())
        info.setdefault("host", socket.gethostname())
        info.setdefault("pid", os.getpid())
        doc = {"zarr_format": 3, "node_type": "group", "attributes": info}
        location(self.path).write_atomic(json.dumps(doc, allow_nan=True).encode(),
                                          unit_key(unit_id), "zarr.json")

    def write_unit_histogram(self, unit_id: int, element: str, counts) -> None:
        """Write unit ``unit_id``'s scaled-SF histogram of ``element``:
        int64 (n_sf, bins+2), into the chunk of ``stats/<E>/sf_hist_units`` that
        the unit owns.  Call before :meth:`mark_unit_done`."""
        lay = self.layout
        unit_id = _check_n_units(unit_id, "unit_id")
        expected = (lay.n_sf[element], lay.hist_bins + 2) if lay.hist_bins else None
        counts = np.asarray(counts)
        if expected is None or counts.shape != expected:
            raise StoreError(f"{self.path}: histogram of {element} has shape {counts.shape}, "
                             f"expected {expected} (layout hist_bins={lay.hist_bins})")
        key = (element, SF_HIST_UNITS)
        if key not in self._arrays:
            self._arrays[key] = zarr.open_array(
                self.path, path=f"{STATS_GROUP}/{element}/{SF_HIST_UNITS}", mode="r+")
        self._arrays[key][unit_id] = counts.astype(np.int64)

    def done_units(self) -> set[int]:
        """Ids of the units whose marker exists (from any writer)."""
        return list_done_units(self.path)

    def unit_info(self, unit_id: int) -> dict | None:
        """Info recorded by the marker of ``unit_id`` (None if not done)."""
        return read_unit_info(self.path, unit_id)
