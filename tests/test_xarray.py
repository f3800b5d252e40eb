"""The store opened with xarray: every array declares zarr 3 dimension names,
so ``xarray.open_zarr(store, group=...)`` gives one Dataset per group with
named, consistent dimensions, and :func:`distatomenv.store.to_xarray` gives the
same arrays (also for stores made before the names existed)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import zarr

import distatomenv
from distatomenv.errors import MissingDependencyError
from distatomenv.store import open_store, to_xarray
from distatomenv.store.schema import dimension_names
from distatomenv.tools.synth import write_lj_dataset

xr = pytest.importorskip("xarray", reason="the optional package xarray is not installed")

ELEMENT_DIMS = {
    "G": ("row", "G_column"), "dGdx": ("row", "dG_column"), "dGdy": ("row", "dG_column"),
    "dGdz": ("row", "dG_column"), "fm_dx": ("row", "fm_column"), "fm_dy": ("row", "fm_column"),
    "fm_dz": ("row", "fm_column"), "fmq_dx": ("row", "fmq_column"),
    "fmq_dy": ("row", "fmq_column"), "fmq_dz": ("row", "fmq_column"),
    "forces": ("row", "xyz"), "positions": ("row", "xyz"), "structure": ("row",),
    "atom": ("row",), "nb_atom": ("row", "nb_block"), "nb_order": ("row", "nb_block"),
    "nb_count": ("row", "element"),
}
STRUCTURE_DIMS = {
    "natoms": ("structure",), "periodic": ("structure",), "energy": ("structure",),
    "charge": ("structure",), "lattice": ("structure", "lattice_vector", "xyz"),
    "first_row": ("structure", "element"), "counts": ("structure", "element"),
}
STATS_DIMS = {"sf_hist_units": ("unit", "sf", "sf_bin"), "sf_hist": ("sf", "sf_bin"),
              "sf_edges": ("sf", "sf_edge"), "nb_hist": ("element", "neighbor_count")}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small two-element store with derivatives and quadratic force-matching
    features: every kind of array, with different column counts."""
    d = tmp_path_factory.mktemp("xr")
    paths = write_lj_dataset(d, n_structures=3, n_atoms=64, seed=3)
    rd = distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=d / "s.zarr",
                             chunk_rows=16, threads=1, force_matching="quadratic")
    return rd


def _open(path, group):
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no fallback, no unknown metadata
        return xr.open_zarr(path, group=group, consolidated=False)


def test_element_groups_open_with_xarray(store):
    root = zarr.open_group(store.path, mode="r")
    for e in store.elements:
        ds = _open(store.path, f"elements/{e}")
        assert set(ds.data_vars) == set(store.layout.array_names()) == set(ELEMENT_DIMS)
        lay = store.layout
        assert dict(ds.sizes) == {"row": lay.n_rows[e], "G_column": lay.nG[e],
                                  "dG_column": lay.ndG[e], "fm_column": lay.n_fm,
                                  "fmq_column": lay.n_fmq, "xyz": 3,
                                  "nb_block": lay.nblocks[e], "element": 2}
        # G, dG, fm and fmq really differ in width: one name each is needed
        assert len({lay.nG[e], lay.ndG[e], lay.n_fm, lay.n_fmq}) == 4
        for name, dims in ELEMENT_DIMS.items():
            var = ds[name]
            assert var.dims == dims, name
            assert root[f"elements/{e}/{name}"].metadata.dimension_names == dims
            want = store.read(e, name)
            assert var.dtype == want.dtype, name
            np.testing.assert_array_equal(var.values, want, err_msg=name)


def test_structures_and_stats_open_with_xarray(store):
    ds = _open(store.path, "structures")
    assert {k: v.dims for k, v in ds.data_vars.items()} == STRUCTURE_DIMS
    assert dict(ds.sizes) == {"structure": 3, "element": 2, "lattice_vector": 3, "xyz": 3}
    for name in STRUCTURE_DIMS:
        np.testing.assert_array_equal(ds[name].values, store.structures(name), err_msg=name)
    for e in store.elements:
        st = _open(store.path, f"stats/{e}")
        assert {k: v.dims for k, v in st.data_vars.items()} == STATS_DIMS
        for name in ("sf_hist", "sf_edges", "nb_hist"):
            np.testing.assert_array_equal(st[name].values, store.stats(e, name))


def test_to_xarray_equals_the_store(store):
    for e in store.elements:
        ds = to_xarray(store.path, e)
        assert ds.attrs["group"] == f"elements/{e}"
        assert list(ds["element"].values) == store.elements
        assert list(ds["xyz"].values) == ["x", "y", "z"]
        assert ds["G"].chunks[0][0] == store.layout.chunk_rows      # lazy, zarr's chunks
        for name, dims in ELEMENT_DIMS.items():
            assert ds[name].dims == dims == dimension_names("elements", name)
            np.testing.assert_array_equal(ds[name].values, store.read(e, name))
        plain = ds.drop_vars(["element", "xyz"])
        plain.attrs = {}
        xr.testing.assert_identical(plain, _open(store.path, f"elements/{e}").compute())
    ds = store.to_xarray()
    for name in STRUCTURE_DIMS:
        assert ds[name].dims == STRUCTURE_DIMS[name]
        np.testing.assert_array_equal(ds[name].values, store.structures(name))


def _forget_dimension_names(path, how):
    """Rewrite every array's zarr.json as stores made before the names existed:
    ``how`` "none" drops them, "row-column" gives the arrays of ``elements/``
    the old ('row', 'column') (and the others none)."""
    for meta in path.rglob("zarr.json"):
        doc = json.loads(meta.read_text())
        if doc.get("node_type") != "array" or "dimension_names" not in doc:
            continue
        if how == "row-column" and meta.relative_to(path).parts[0] == "elements":
            doc["dimension_names"] = ["row"] if len(doc["shape"]) == 1 else ["row", "column"]
        else:
            del doc["dimension_names"]
        meta.write_text(json.dumps(doc))


@pytest.mark.parametrize("how", ["none", "row-column"])
def test_stores_without_dimension_names_still_open(store, tmp_path, how):
    import shutil
    from pathlib import Path
    old = tmp_path / "old.zarr"
    shutil.copytree(store.path, old)
    _forget_dimension_names(old, how)
    rd = open_store(old)
    assert rd.verify().ok
    for e in store.elements:
        for name in store.layout.array_names():
            np.testing.assert_array_equal(rd.read(e, name), store.read(e, name))
        ds = to_xarray(old, e)
        for name, dims in ELEMENT_DIMS.items():
            assert ds[name].dims == dims
            np.testing.assert_array_equal(ds[name].values, store.read(e, name))
    assert "dGdx" in str(distatomenv.info(old))
    assert Path(store.path).exists()


def test_missing_xarray_is_a_clear_error(store, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(MissingDependencyError, match=r"needs the optional package xarray.*"
                                                     r"distatomenv\[xarray\]"):
        to_xarray(store.path, store.elements[0])
