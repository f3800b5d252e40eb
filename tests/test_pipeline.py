"""compute / export / info through the public API: units, resume, faults, provenance."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import distatomenv
from distatomenv import pipeline
from distatomenv.errors import (NotEnoughNeighborsError, ScalingFileError, StoreError,
                                StoreExistsError,
                                StoreIncompleteError)
from distatomenv.io.scaling import read_scaling
from distatomenv.io.settings import read_settings
from distatomenv.store.reader import open_store
from distatomenv.synth import write_lj_dataset
from stores import assert_same_store, store_arrays



@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    d = tmp_path_factory.mktemp("lj")
    return write_lj_dataset(d, n_structures=6, n_atoms=64, seed=3)


def test_many_units_bit_identical_to_one(lj, tmp_path):
    one = distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=tmp_path / "one.zarr",
                              chunk_rows=16, n_units=1)
    many = distatomenv.compute(lj["input.data"], neighbors="Ar-Ar=3,Ar-Kr=3,Kr-Ar=3,Kr-Kr=3",
                               out=tmp_path / "many.zarr", chunk_rows=16, n_units=7)
    assert many.n_units == 7 and one.n_units == 1
    assert_same_store(many.path, store_arrays(one.path))
    rows = sum(one.n_rows(e) for e in one.elements)
    assert rows == 6 * 64


def test_rows_hold_what_the_input_says(lj, tmp_path):
    from distatomenv.io.data import read_structures
    rd = distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr")
    structs = read_structures(lj["input.data"])
    for e in rd.elements:
        s = rd.read(e, "structure")
        a = rd.read(e, "atom")
        f = rd.read(e, "forces")
        p = rd.read(e, "positions")
        for k in range(0, len(s), 37):
            st = structs[s[k]]
            assert st.elements[a[k]] == e
            np.testing.assert_array_equal(f[k], st.forces[a[k]])
            np.testing.assert_array_equal(p[k], st.positions[a[k]])
        # rows are in input order: structure, then atom
        key = s * 10_000 + a
        assert (np.diff(key) > 0).all()


def test_float32_store(lj, tmp_path):
    a = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=tmp_path / "a.zarr")
    b = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=tmp_path / "b.zarr",
                            dtype="float32")
    for e in a.elements:
        g64, g32 = a.read(e, "G"), b.read(e, "G")
        assert g32.dtype == np.float32 and g64.dtype == np.float64
        np.testing.assert_allclose(g32, g64, rtol=1e-6, atol=1e-7)
    assert b.nbytes_stored() < 0.7 * a.nbytes_stored()


def test_not_enough_neighbors_leaves_incomplete_store(lj, tmp_path):
    out = tmp_path / "bad.zarr"
    with pytest.raises(NotEnoughNeighborsError,
                       match=r"input\.data: structure 1 .* has only \d+ .* requested"):
        distatomenv.compute(lj["input.data"], neighbors="40 0 0 0", out=out)
    with pytest.raises(StoreIncompleteError, match="incomplete"):
        open_store(out)
    rd = open_store(out, allow_incomplete=True)
    assert rd.status != "complete"
    assert "NotEnoughNeighborsError" in (rd.error or "")
    assert "incomplete" in distatomenv.info(out)


def test_resume_computes_only_missing_units(lj, tmp_path, monkeypatch):
    clean = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2",
                                out=tmp_path / "clean.zarr", chunk_rows=16, n_units=5)
    out = tmp_path / "resume.zarr"
    real_run = pipeline.UnitRunner.run

    def failing(self, unit):
        if unit.id == 3:
            raise RuntimeError("simulated crash in unit 3")
        return real_run(self, unit)
    monkeypatch.setattr(pipeline.UnitRunner, "run", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, chunk_rows=16,
                            n_units=5)
    with pytest.raises(StoreIncompleteError, match="3"):
        open_store(out)
    ran = []

    def counting(self, unit):
        ran.append(unit.id)
        return real_run(self, unit)
    monkeypatch.setattr(pipeline.UnitRunner, "run", counting)
    with pytest.raises(StoreError, match="--resume"):
        distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, chunk_rows=16,
                            n_units=5)
    distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, chunk_rows=16,
                        n_units=5, resume=True)
    assert ran == [3, 4]
    assert_same_store(out, store_arrays(clean.path))


def test_complete_store_not_overwritten(lj, tmp_path):
    out = tmp_path / "s.zarr"
    distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=out)
    with pytest.raises(StoreExistsError, match="overwrite"):
        distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=out)
    distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, overwrite=True)
    assert open_store(out).layout.nblocks["Ar"] == 4


def test_provenance(lj, tmp_path):
    rd = distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr",
                             command="distatomenv compute test")
    meta = rd.meta
    sha = hashlib.sha256(open(lj["input.data"], "rb").read()).hexdigest()
    assert meta["inputs"]["data"]["sha256"] == sha
    assert meta["inputs"]["settings"]["sha256"] == \
        hashlib.sha256(open(lj["input.nn"], "rb").read()).hexdigest()
    assert meta["inputs"]["scaling"]["computed"] is True
    assert meta["version"] == distatomenv.__version__
    assert meta["command"] == "distatomenv compute test"
    assert meta["neighbors"]["ncut"] == [[1, 1], [1, 1]]
    assert len(meta["settings"]["sfset"]["functions"]) == 52
    assert "conv_length" in meta["units"]["dG"]
    text = distatomenv.info(rd.path)
    for word in ("Ar", "Kr", "G", "dGdx", "chunks", sha[:12], "complete"):
        assert word in text


def test_missing_explicit_scaling_file(lj, tmp_path):
    with pytest.raises(ScalingFileError, match="nope.data: file not found"):
        distatomenv.compute(lj["input.data"], scaling=tmp_path / "nope.data",
                            neighbors="1 1 1 1", out=tmp_path / "s.zarr")


def test_computed_scaling_exported(lj, tmp_path):
    distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr")
    paths = distatomenv.export(tmp_path / "s.zarr", tmp_path / "out")
    names = sorted(p.split("/")[-1] for p in paths)
    assert names == ["atomic-env.G", "atomic-env.dGdx", "atomic-env.dGdy", "atomic-env.dGdz",
                     "neighbor-list.data", "scaling.data"]
    st = read_settings(lj["input.nn"])
    table = read_scaling(tmp_path / "out" / "scaling.data", st.sfset)
    again = pipeline.scaling_pass(lj["input.data"])
    for e in st.elements:
        np.testing.assert_allclose(table.mean[e], again.mean[e], rtol=1e-15)


@pytest.mark.parametrize("case", ["LJ", "H2O_polynomial", "H2O_weighted_cos_center",
                                  "H2O_wide_poly2_sigma"])
def test_scaling_pass_matches_nnp_scaling(case, reference_dir):
    """min/max to 1e-11 relative (extremes of G; one min of H2O_polynomial is a
    tiny value that differs by 1.9e-12), mean 1e-12, sigma 1e-9 (README)."""
    d = reference_dir / case
    ours = pipeline.scaling_pass(d / "input.data")
    ref = read_scaling(d / "expected" / "scaling.data", read_settings(d / "input.nn").sfset)
    for e in ref.elements:
        np.testing.assert_allclose(ours.min[e], ref.min[e], rtol=1e-11, atol=0)
        np.testing.assert_allclose(ours.max[e], ref.max[e], rtol=1e-11, atol=0)
        np.testing.assert_allclose(ours.mean[e], ref.mean[e], rtol=1e-12, atol=0)
        np.testing.assert_allclose(ours.sigma[e], ref.sigma[e], rtol=1e-9, atol=0)


def test_moment_accumulator_merges_like_one_pass():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=(1000, 3)) * [1, 1e-6, 1e6]
    acc = pipeline.MomentAccumulator(3)
    for part in np.array_split(x, 13):
        acc.add(part)
    np.testing.assert_allclose(acc.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(acc.sigma, x.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_array_equal(acc.min, x.min(axis=0))
    np.testing.assert_array_equal(acc.max, x.max(axis=0))
