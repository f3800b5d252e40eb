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
                       fill_value=INT_FILL, overwrite=True, dimension_names=("row",))


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
                       dtype="float64", overwrite=True)
    if c.size:
        a[...] = c


def read_labels(path, run: str, element: str, descriptor: str, name: str, rows=None) -> np.ndarray:
    """Labels of ``element`` (all rows, or a slice / index array ``rows``)."""
    key = label_path(run, element, descriptor, name)
    try:
        arr = zarr.open_array(os.fspath(path), path=key, mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.NodeTypeValidationError) as exc:
        raise StoreError(f"{os.fspath(path)}: no label array {key!r} ({exc})") from None
    except Exception as exc:  # zarr raises several types for a missing node
        raise StoreError(f"{os.fspath(path)}: no label array {key!r} ({exc})") from None
    if rows is None:
        return arr[...]
    if isinstance(rows, slice):
        return arr[rows]
    return arr.oindex[np.asarray(rows)]


def label_runs(path) -> list[str]:
    """Names of the analysis runs that wrote labels into the store."""
    return sorted(location(path).marked_groups(ANALYSIS_GROUP))
