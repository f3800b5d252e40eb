"""Cluster labels written back into a store by ``distatomenv analyze``.

Layout (see also :mod:`.schema`)::

    analysis/<run>/                 group; attributes: the analysis parameters
      <element>/<descriptor>/       group; attributes: method, ks, seed, scaler
        labels_k<k>    (n_rows,) int32  cluster of each row of elements/<element>
        labels_hdbscan (n_rows,) int32  (-1 = noise)
        centers_k<k>   (k, p) float64   k-means centres (in the clustered,
                                        possibly standardised, feature space)

Label arrays are chunked like the element's arrays (``layout.chunk_rows``
rows) and obey the same ownership rule: each write covers whole chunks, so
parallel labelling tasks never share a chunk.  Row r of ``labels_k<k>`` is
row r of ``elements/<element>/*``; ``structure`` and ``atom`` map it back to
the input.  Writing never touches the root group, so a complete store stays
complete.
"""
from __future__ import annotations

import os
import re

import numpy as np
import zarr

from distatomenv.errors import StoreError

from .fs import location
from .schema import ANALYSIS_GROUP, INT_FILL, StoreLayout, load_root_attrs

__all__ = ["create_label_group", "write_label_rows", "write_centers", "read_labels",
           "label_runs", "label_path"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def label_path(run: str, element: str, descriptor: str, name: str | None = None) -> str:
    """Store key of the label group (or of array ``name`` in it)."""
    for what, v in (("run name", run), ("element", element), ("descriptor", descriptor)):
        if not isinstance(v, str) or not _NAME.match(v):
            raise StoreError(f"invalid {what} {v!r} for an analysis group: use letters, digits, _ . -")
    key = f"{ANALYSIS_GROUP}/{run}/{element}/{descriptor}"
    return key if name is None else f"{key}/{name}"


def _checksum():
    """The codecs of the small label arrays: a crc32c checksum (``verify`` checks it)."""
    from zarr.codecs import Crc32cCodec
    return [Crc32cCodec()]


def _layout(path) -> StoreLayout:
    return StoreLayout.from_dict(load_root_attrs(path)["layout"])


def create_label_group(path, run: str, element: str, descriptor: str, names, *,
                       run_attrs: dict | None = None, attrs: dict | None = None) -> None:
    """Create (replacing any earlier ones) the label arrays ``names`` of
    ``element``/``descriptor`` in analysis run ``run``; rows read -1 until written."""
    path = os.fspath(path)
    lay = _layout(path)
    if element not in lay.n_rows:
        raise StoreError(f"{path}: element {element!r} is not in the store (elements: {lay.elements})")
    root = zarr.open_group(path, mode="a")
    run_key = f"{ANALYSIS_GROUP}/{run}"
    label_path(run, element, descriptor)                       # validates the names
    rg = root.require_group(run_key)
    if run_attrs:
        rg.update_attributes(run_attrs)
    g = root.require_group(label_path(run, element, descriptor))
    if attrs:
        g.update_attributes(attrs)
    n = lay.n_rows[element]
    for name in names:
        g.create_array(name, shape=(n,), chunks=(lay.chunk_rows,), dtype="int32",
                       fill_value=INT_FILL, overwrite=True, dimension_names=("row",),
                       compressors=lay.compressors(name))      # with a crc32c checksum


def write_label_rows(path, run: str, element: str, descriptor: str, name: str,
                     row_start: int, labels) -> None:
    """Write ``labels`` (m,) int into rows [row_start, row_start + m) of an
    array made by :func:`create_label_group`.  The range must be whole chunks
    (:meth:`StoreLayout.check_rows`)."""
    path = os.fspath(path)
    labels = np.asarray(labels)
    lay = _layout(path)
    lay.check_rows(element, int(row_start), int(row_start) + len(labels))
    arr = zarr.open_array(path, path=label_path(run, element, descriptor, name), mode="r+")
    arr[int(row_start) : int(row_start) + len(labels)] = labels.astype(np.int32)


def write_centers(path, run: str, element: str, descriptor: str, k: int, centers) -> None:
    """Store the (k, p) centres of the k-means with k clusters."""
    root = zarr.open_group(os.fspath(path), mode="a")
    g = root.require_group(label_path(run, element, descriptor))
    c = np.asarray(centers, dtype=np.float64)
    a = g.create_array(f"centers_k{int(k)}", shape=c.shape, chunks=c.shape if c.size else (1, 1),
                       dtype="float64", overwrite=True, compressors=_checksum(),
                       dimension_names=(f"cluster_k{int(k)}", "feature"))
    if c.size:
        a[...] = c


def read_labels(store, run: str | None = None, element: str | None = None,
                descriptor: str | None = None, name: str | None = None, rows=None, *,
                k=None) -> np.ndarray:
    """Cluster labels written by ``distatomenv analyze --write-labels``: one
    int32 per row of ``elements/<element>`` (-1: HDBSCAN noise).

    ``read_labels(store, k=10)`` is enough when the choice is unambiguous;
    everything not given is inferred from what the store holds, and a call
    that fits several label arrays is an error naming the argument to add.

    Parameters
    ----------
    store : str, os.PathLike, URL or StoreReader
    run : str or None
        Analysis run (``--write-labels RUN``).  None: "latest" (what
        ``--write-labels`` writes without a name) when the store has it, else
        the store's only run.
    element, descriptor : str or None
        None: the only one with labels that fit the other arguments.
    name : str or None
        Label array, e.g. "labels_k10" or "labels_hdbscan"; or give ``k``.
    rows : slice or index array, optional
        Rows to read (default all).
    k : int or "hdbscan", optional
        The k-means labelling with k clusters (``labels_k<k>``), or HDBSCAN's.

    Raises
    ------
    StoreError
        No such run or label array; several arrays fit (the message says
        which argument tells them apart); ``k`` and ``name`` both given.
    """
    path = os.fspath(getattr(store, "path", store))
    if k is not None:
        if name is not None:
            raise StoreError(f"read_labels: give k or name, not both (k={k!r}, name={name!r})")
        name = _label_name(k)
    if None not in (run, element, descriptor, name):          # nothing to infer: no listing
        return _read_label_array(path, run, element, descriptor, name, rows)
    run = _resolve_run(path, run)
    found = _label_arrays(path, run)
    given = {"element": element, "descriptor": descriptor, "name": name}
    match = sorted(t for t in found
                   if all(v is None or t[i] == v for i, v in enumerate(given.values())))
    if not match:
        want = ", ".join(f"{a}={v!r}" for a, v in given.items() if v is not None) or "any"
        have = ", ".join("/".join(t) for t in sorted(found)) or "none"
        raise StoreError(f"{path}: no label array in analysis run {run!r} fits {want} "
                         f"(labels in that run: {have})")
    if len(match) > 1:
        hints = []
        for i, arg in enumerate(given):
            vals = sorted({t[i] for t in match})
            if len(vals) > 1:
                ks = [_k_of(v) for v in vals] if arg == "name" else []
                if ks and all(x is not None for x in ks):
                    hints.append(f"k= one of {sorted(ks, key=str)}")
                else:
                    hints.append(f"{arg}= one of {vals}")
        raise StoreError(f"{path}: analysis run {run!r} has {len(match)} label arrays that fit "
                         f"({', '.join('/'.join(t) for t in match)}); pass " + " and ".join(hints))
    e, d, n = match[0]
    return _read_label_array(path, run, e, d, n, rows)


def _label_name(k) -> str:
    if isinstance(k, str) and k == "hdbscan":
        return "labels_hdbscan"
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1:
        return f"labels_k{int(k)}"
    raise StoreError(f"read_labels: k must be a number of clusters (an integer >= 1) or "
                     f"'hdbscan', got {k!r}")


def _k_of(name: str):
    """k of "labels_k<k>" (int), "hdbscan" for "labels_hdbscan", else None."""
    if name == "labels_hdbscan":
        return "hdbscan"
    m = re.fullmatch(r"labels_k(\d+)", name)
    return int(m.group(1)) if m else None


def _resolve_run(path, run):
    runs = label_runs(path)
    if run is not None:
        if run not in runs:
            label_path(run, "x", "x")                          # validates the name
            raise StoreError(f"{path}: no analysis run {run!r} in the store (runs: {runs or 'none'})")
        return run
    if "latest" in runs:
        return "latest"
    if len(runs) == 1:
        return runs[0]
    if not runs:
        raise StoreError(f"{path}: the store holds no cluster labels (write them with "
                         f"distatomenv analyze --write-labels)")
    raise StoreError(f"{path}: the store has several analysis runs ({runs}) and none is named "
                     f"'latest'; pass run= one of them")


def _label_arrays(path, run) -> set:
    """(element, descriptor, name) of every label array of analysis run ``run``."""
    loc = location(path)
    out = set()
    for e in loc.marked_groups(ANALYSIS_GROUP, run):
        for d in loc.marked_groups(ANALYSIS_GROUP, run, e):
            for n in loc.marked_groups(ANALYSIS_GROUP, run, e, d):
                if n.startswith("labels_"):
                    out.add((e, d, n))
    return out


def _read_label_array(path, run, element, descriptor, name, rows):
    key = label_path(run, element, descriptor, name)
    try:
        arr = zarr.open_array(path, path=key, mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.NodeTypeValidationError) as exc:
        raise StoreError(f"{path}: no label array {key!r} ({exc})") from None
    except Exception as exc:  # zarr raises several types for a missing node
        raise StoreError(f"{path}: no label array {key!r} ({exc})") from None
    if rows is None:
        return arr[...]
    if isinstance(rows, slice):
        return arr[rows]
    return arr.oindex[np.asarray(rows)]


def label_runs(path) -> list[str]:
    """Names of the analysis runs that wrote labels into the store."""
    return sorted(location(path).marked_groups(ANALYSIS_GROUP))
