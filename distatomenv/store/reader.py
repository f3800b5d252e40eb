"""Reading a distatomenv store (layout: see :mod:`.schema`).

``open_store(path)`` refuses a store whose status is not ``complete`` (its run
died or is still running) unless ``allow_incomplete=True``; unwritten rows of
an incomplete store read as NaN (float arrays) or -1 (integer arrays).

Arrays are read lazily: :meth:`StoreReader.array` gives the zarr array,
:meth:`StoreReader.dask` a dask array with one dask chunk per zarr chunk, and
:meth:`StoreReader.read` a numpy array of some rows.
"""
from __future__ import annotations

import os

import numpy as np
import zarr

from distatomenv.errors import (DistatomenvError, MissingDependencyError, StoreError,
                                StoreIncompleteError)

from .fs import location
from .schema import (
    COUNTS,
    ELEMENTS_GROUP,
    FIRST_ROW,
    STATUS_COMPLETE,
    STATUS_CREATING,
    STRUCTURE_ARRAYS,
    STRUCTURES_GROUP,
    StoreLayout,
    dimension_names,
    format_id_ranges,
    list_done_units,
    load_root_attrs,
    read_unit_info,
)

__all__ = ["open_store", "StoreReader", "format_meta", "to_xarray"]


def open_store(path, *, allow_incomplete: bool = False) -> "StoreReader":
    """Open the store at ``path`` for reading.

    Raises
    ------
    StoreError
        ``path`` does not exist or is not a distatomenv store.
    StoreIncompleteError
        The store is not complete (message: which units are missing, how to
        resume), unless ``allow_incomplete`` is True.
    """
    return StoreReader(path, allow_incomplete=allow_incomplete)


def to_xarray(store, element: str | None = None, *, allow_incomplete: bool = False):
    """One group of a store as a lazy :class:`xarray.Dataset`.

    store : a path, an fsspec URL or a :class:`StoreReader`.
    element : the arrays of ``elements/<element>`` (G, dGdx, ..., forces,
        structure, atom, nb_*); None: those of ``structures/``.

    Variables are dask arrays with one chunk per zarr chunk (nothing is read
    until used); dimensions are the store's dimension names
    (:func:`.schema.dimension_names`: ``row``, ``G_column``, ``dG_column``, ...)
    whatever the store's zarr metadata says, so stores made before it declared
    them open too; the ``element`` and ``xyz`` dimensions get their labels as
    coordinates.  For a store made by this version,
    ``xarray.open_zarr(path, group="elements/H", consolidated=False)`` opens the
    same arrays with the same dimensions.  Needs the optional package xarray
    (``pip install "distatomenv[xarray]"``).
    """
    try:
        import xarray as xr
    except ImportError as exc:
        raise MissingDependencyError(f"to_xarray needs the optional package xarray, which is "
                                     f"not installed ({exc}); install it with: pip install "
                                     '"distatomenv[xarray]"') from None
    import dask.array as da

    rd = store if isinstance(store, StoreReader) else open_store(
        store, allow_incomplete=allow_incomplete)
    if element is None:
        variables = {name: (dimension_names(STRUCTURES_GROUP, name),
                            da.from_zarr(rd._group[f"{STRUCTURES_GROUP}/{name}"]))
                     for name in STRUCTURE_ARRAYS}
        group = STRUCTURES_GROUP
    else:
        rd._check_element(element)
        variables = {name: (dimension_names(ELEMENTS_GROUP, name), rd.dask(element, name))
                     for name in rd.layout.array_names()}
        group = f"{ELEMENTS_GROUP}/{element}"
    dims = {d for dd, _ in variables.values() for d in dd}
    coords = {k: v for k, v in (("element", list(rd.elements)), ("xyz", ["x", "y", "z"]))
              if k in dims}
    return xr.Dataset(variables, coords=coords, attrs={"store": rd.path, "group": group})


def _reopen(path, allow_incomplete):
    return StoreReader(path, allow_incomplete=allow_incomplete)


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return ""  # pragma: no cover


def _scalar_text(v, max_chars=100) -> str:
    s = repr(v) if isinstance(v, str) else "null" if v is None else str(v)
    if len(s) > max_chars:
        s = s[: max_chars - 1] + f"... ({len(s)} chars)"
    return s


def format_meta(value, indent: int = 2, level: int = 0, max_items: int = 8) -> list[str]:
    """Readable lines for a JSON-like value: nested dict keys indented, long
    lists summarised (first items, ..., last item, count)."""
    pad = " " * (indent * level)
    lines: list[str] = []
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v and not _inline(v):
                lines.append(f"{pad}{k}:")
                lines.extend(format_meta(v, indent, level + 1, max_items))
            else:
                lines.append(f"{pad}{k}: {_inline_text(v, max_items)}")
        return lines
    if isinstance(value, list):
        if _inline(value):
            return [pad + _inline_text(value, max_items)]
        shown = value if len(value) <= 3 else value[:2]
        for i, v in enumerate(shown):
            if isinstance(v, (dict, list)) and v and not _inline(v):
                lines.append(f"{pad}[{i}]:")
                lines.extend(format_meta(v, indent, level + 1, max_items))
            else:
                lines.append(f"{pad}[{i}]: {_inline_text(v, max_items)}")
        if len(value) > len(shown):
            lines.append(f"{pad}... ({len(value)} items in all)")
        return lines
    return [pad + _scalar_text(value)]


def _inline(v) -> bool:
    """Lists of scalars and small flat dicts fit on one line."""
    if isinstance(v, list):
        return all(not isinstance(x, (dict, list)) for x in v)
    if isinstance(v, dict):
        return len(v) <= 4 and all(not isinstance(x, (dict, list)) for x in v.values())
    return True


def _inline_text(v, max_items) -> str:
    if isinstance(v, list):
        items = [_scalar_text(x, 40) for x in v]
        if len(items) > max_items:
            items = items[: max_items - 2] + ["...", items[-1]]
            return "[" + ", ".join(items) + f"] ({len(v)} items)"
        return "[" + ", ".join(items) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_scalar_text(x, 40)}" for k, x in v.items()) + "}"
    return _scalar_text(v)


class StoreReader:
    """Read access to a store.  Use :func:`open_store`.

    Attributes
    ----------
    path : str
    layout : StoreLayout
    meta : dict
        The run metadata given to ``create_store``.
    status : str
        "creating", "incomplete" or "complete".
    elements : list of str
    n_units : int or None
        Number of planned work units, if recorded.
    error : str or None
        Message of the last unresolved failure.
    history : list of dict
        Events (created, resumed, failed, completed) with UTC times.
    statistics : dict or None
        Written when the run completes: per (central, neighbour) element the
        min/mean/max neighbour count within the cutoff, and the histogram bins.
    """

    def __init__(self, path, *, allow_incomplete: bool = False):
        self.path = os.fspath(path)
        attrs = load_root_attrs(self.path)
        self.status = attrs.get("status")
        self.n_units = attrs.get("n_units")
        self.error = attrs.get("error")
        self.history = attrs.get("history", [])
        self.meta = attrs.get("meta", {})
        self.statistics = attrs.get("statistics")
        if self.status != STATUS_COMPLETE and not allow_incomplete:
            raise StoreIncompleteError(self._incomplete_message())
        self.layout = StoreLayout.from_dict(attrs["layout"])
        self.elements = list(self.layout.elements)
        self._group = zarr.open_group(self.path, mode="r")
        self._arrays: dict = {}
        self._structures: dict = {}

    def __reduce__(self):  # picklable: reopened from the path (e.g. on Dask workers)
        return (_reopen, (self.path, True))

    # -- status ---------------------------------------------------------------
    def done_units(self) -> set[int]:
        """Ids of the finished work units (those with a marker)."""
        return list_done_units(self.path)

    def missing_units(self) -> list[int] | None:
        """Ids of planned units without a marker (None if the plan size is unknown)."""
        if self.n_units is None:
            return None
        return sorted(set(range(self.n_units)) - self.done_units())

    def unit_info(self, unit_id: int) -> dict | None:
        """Info recorded by unit ``unit_id`` (rows, seconds, host, ...), None if not done."""
        return read_unit_info(self.path, unit_id)

    def _units_text(self) -> str:
        done = self.done_units()
        if self.n_units is None:
            return f"{len(done)} work units finished (number planned not recorded)"
        missing = sorted(set(range(self.n_units)) - done)
        if not missing:
            return f"all {self.n_units} work units finished"
        return (
            f"{len(missing)} of {self.n_units} work units missing: units {format_id_ranges(missing)}"
        )

    def _incomplete_message(self) -> str:
        if self.status == STATUS_CREATING:
            advice = "the run died while creating the store; re-run with --overwrite"
        else:
            advice = (
                "re-run the same command with --resume to compute the missing units "
                "(or --overwrite to start again)"
            )
        failed = f"; the run failed with: {self.error}" if self.error else ""
        return (
            f"{self.path}: the store is incomplete (status {self.status!r}): "
            f"{self._units_text()}{failed}; {advice}; "
            f"open_store(..., allow_incomplete=True) reads it as it is"
        )

    # -- arrays ---------------------------------------------------------------
    def n_rows(self, element: str) -> int:
        self._check_element(element)
        return self.layout.n_rows[element]

    def _check_element(self, element):
        if element not in self.layout.n_rows:
            raise StoreError(
                f"{self.path}: element {element!r} is not in the store (elements: {self.elements})"
            )

    def array(self, element: str, name: str):
        """The zarr array ``elements/<element>/<name>`` (read-only).

        Raises
        ------
        StoreError
            Unknown element or array name.
        """
        self._check_element(element)
        if name not in self.layout.array_names():
            hint = "" if self.layout.derivatives else " (this store has no derivatives)"
            raise StoreError(
                f"{self.path}: no array {name!r} for element {element}{hint}; arrays are "
                f"{list(self.layout.array_names())}"
            )
        key = (element, name)
        if key not in self._arrays:
            self._arrays[key] = self._group[f"{ELEMENTS_GROUP}/{element}/{name}"]
        return self._arrays[key]

    def dask(self, element: str, name: str):
        """Lazy dask array of ``elements/<element>/<name>``, chunks = zarr chunks."""
        import dask.array as da

        return da.from_zarr(self.array(element, name))

    def read(self, element: str, name: str, rows=None) -> np.ndarray:
        """Numpy array of some rows (``rows``: None = all, a slice, or an integer array).

        Raises
        ------
        StoreDamagedError
            A chunk of these rows fails its checksum or cannot be decoded
            (naming the chunk)."""
        arr = self.array(element, name)
        if rows is None:
            rows = slice(None)
        try:
            if isinstance(rows, slice):
                return arr[rows]
            rows = np.asarray(rows)
            if arr.ndim == 1:
                return arr.oindex[rows]
            return arr.oindex[rows, :]
        except (DistatomenvError, OSError, KeyboardInterrupt):
            raise
        except Exception as exc:
            from .integrity import damaged_error, locate
            span = rows if isinstance(rows, slice) else \
                slice(int(rows.min()), int(rows.max()) + 1) if rows.size else slice(0, 0)
            damage = locate(arr, f"{ELEMENTS_GROUP}/{element}/{name}", span)
            if not damage:
                raise
            raise damaged_error(self.path, damage, f"reading {element}/{name}") from exc

    def check_chunks(self) -> None:
        """Refuse a damaged store before using it: every chunk of ``elements/``
        must exist (one listing per array; checksums are checked as chunks are
        read, and all at once by :func:`~.integrity.verify`).

        Raises
        ------
        StoreDamagedError
            Naming the missing chunks (and the unit that wrote them).
        """
        if self.status != STATUS_COMPLETE:
            return
        from .integrity import damaged_error, missing_chunks
        missing = missing_chunks(self.path)
        if missing:
            raise damaged_error(self.path, missing)

    def verify(self, progress=None):
        """Check every chunk: :func:`~.integrity.verify`; returns its report."""
        from .integrity import verify
        return verify(self.path, progress=progress)

    def to_xarray(self, element: str | None = None):
        """This store's ``elements/<element>`` (or ``structures/``) as an
        :class:`xarray.Dataset`: :func:`to_xarray`."""
        return to_xarray(self, element)

    def stats(self, element: str, name: str):
        """Numpy array ``stats/<element>/<name>`` (``sf_hist``, ``sf_edges``,
        ``nb_hist``, ``sf_hist_units``), or None when the store has none."""
        self._check_element(element)
        try:
            return self._group[f"stats/{element}/{name}"][...]
        except KeyError:
            return None

    def structures(self, name: str) -> np.ndarray:
        """Numpy array ``structures/<name>`` (natoms, periodic, lattice, energy,
        charge, first_row, counts); cached."""
        if name not in STRUCTURE_ARRAYS:
            raise StoreError(
                f"{self.path}: no structure array {name!r}; arrays are {list(STRUCTURE_ARRAYS)}"
            )
        if name not in self._structures:
            self._structures[name] = np.asarray(self._group[f"{STRUCTURES_GROUP}/{name}"][...])
        return self._structures[name]

    def rows_of_structure(self, s: int) -> dict[str, slice]:
        """Rows of structure ``s`` (0-based) in each element's arrays."""
        n = self.layout.n_structures
        if not -n <= s < n:
            raise StoreError(f"{self.path}: structure {s} out of range: the store has {n} structures")
        first = self.structures(FIRST_ROW)[s]
        counts = self.structures(COUNTS)[s]
        return {
            e: slice(int(first[i]), int(first[i] + counts[i])) for i, e in enumerate(self.elements)
        }

    def nbytes_stored(self) -> int:
        """Bytes the store occupies on disk (or in the object store)."""
        return location(self.path).size()

    # -- text -----------------------------------------------------------------
    def summary(self, meta: bool = True) -> str:
        """Human-readable description; ``meta=False`` leaves out the raw meta dump
        (``distatomenv info`` prints its own reading of it).  The facts, as data:
        :func:`distatomenv.store.info.store_info`."""
        from .info import layout_info
        lines = layout_info(self).summary_lines()
        if meta:
            lines.append("")
            lines.append("meta:")
            lines.extend(format_meta(self.meta, level=1) if self.meta else ["  (none)"])
        return "\n".join(lines)

    def __repr__(self):
        return f"<StoreReader {self.path!r} status={self.status} elements={self.elements}>"
