"""The readout's potential tiers (force matching with the best linear and
quadratic potential in the user's SFs): the features in the store on every
backend, the fits' controls on Lennard-Jones and the generated water, the
energies, the fitted potential through the API, and the refusals."""
from __future__ import annotations

import numpy as np
import pytest

import distatomenv
from distatomenv.analysis import Analyzer
from distatomenv.errors import AnalysisError
from distatomenv.store.reader import open_store

from stores import assert_same_store, crash_in_unit, store_arrays
from test_mpi import MPIEXEC, _compute, _env

POT = ["linear", "potential_linear", "potential_quadratic"]


def _get(a, element, tier):
    (r,) = [r for r in a.readout_ if r["element"] == element and r["tier"] == tier
            and len(r["components"]) == 3]
    return r


@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    from distatomenv.tools.synth import write_lj_dataset

    d = tmp_path_factory.mktemp("potlj")
    paths = write_lj_dataset(d, n_structures=10, n_atoms=64, seed=5)
    nb = distatomenv.survey_neighbors(paths["input.data"], settings=paths["input.nn"]).suggested
    store = distatomenv.compute(paths["input.data"], neighbors=nb, out=d / "lj.zarr",
                                force_matching="quadratic")
    return store.path, paths


def test_store_holds_the_features_with_their_columns(lj):
    rd = open_store(lj[0])
    lay = rd.layout
    nsf = [lay.n_sf[e] for e in rd.elements]
    assert lay.force_matching == "quadratic"
    assert lay.n_fm == sum(nsf) and lay.n_fmq == sum(n * (n + 1) // 2 for n in nsf)
    for e in rd.elements:
        assert rd.read(e, "fm_dx").shape == (lay.n_rows[e], lay.n_fm)
        assert rd.read(e, "fmq_dz").shape == (lay.n_rows[e], lay.n_fmq)
        assert np.isfinite(rd.read(e, "fm_dy")).all()
    # D of the atom's own element = its own derivative (the first dG columns)
    # plus the same-element neighbours' terms
    e = rd.elements[0]
    own = rd.read(e, "dGdx")[:, :nsf[0]]
    D = rd.read(e, "fm_dx")[:, :nsf[0]]
    assert not np.allclose(D, own) and np.corrcoef(D.ravel(), own.ravel())[0, 1] > 0.1


def test_lennard_jones_linear_potential_and_energies(lj):
    a = Analyzer(clusters_view=False, advice=False, tiers=POT).fit(lj[0])
    for el in open_store(lj[0]).elements:
        assert _get(a, el, "potential_linear")["r2"] >= 0.999
        assert _get(a, el, "potential_linear")["r2_null"] <= 0.02
    overall = _get(a, "all", "potential_linear")
    assert overall["r2"] >= 0.999 and overall["energy_r2"] >= 0.99
    assert _get(a, "all", "potential_quadratic")["r2"] >= 0.999


def test_fitted_potential_through_the_api(lj, tmp_path):
    res = distatomenv.analyze(lj[0], tmp_path / "rep", clusters_view=False, advice=False, tiers=POT)
    rd = open_store(lj[0])
    e = rd.elements[0]
    pot = res.potential(element=e)
    assert pot["element"] == e and pot["Q"] is None
    assert len(pot["w"]) == len(pot["sfs"]) == rd.layout.n_sf[e]
    # the potential predicts the energies up to a constant per element: the
    # energy of structure s is sum_e w_e . sum_j G_j (scaled, own columns)
    full = res.potential()
    E = rd.structures("energy")
    phi = np.zeros((rd.layout.n_structures, sum(rd.layout.n_sf.values())))
    cols = 0
    pred = np.zeros(rd.layout.n_structures)
    for x in rd.elements:
        n = rd.layout.n_sf[x]
        G = rd.read(x, "G")[:, :n]
        s = rd.read(x, "structure")
        np.add.at(pred, s, G @ full["elements"][x]["w"])
        cols += n
    N = rd.structures("counts").astype(float)
    c, *_ = np.linalg.lstsq(N, E - pred, rcond=None)
    resid = E - pred - N @ c
    assert 1 - (resid ** 2).sum() / ((E - E.mean()) ** 2).sum() > 0.99
    q = res.potential(element=e, tier="potential_quadratic")
    np.testing.assert_array_equal(q["Q"], q["Q"].T)
    with pytest.raises(KeyError, match="no potential_cubic tier"):
        res.potential(tier="potential_cubic")
    assert "potential lin." in res.summary()


def test_generated_water_quadratic_potential(tmp_path):
    from distatomenv.tools.synth import write_water_dataset

    data = write_water_dataset(tmp_path / "data", n_structures=10, n_molecules=64, seed=0)
    store = distatomenv.compute(data["atomistic_data"], settings=data["atomistic_nn"],
                                neighbors="2 2 2 2", out=tmp_path / "w.zarr", force_matching="quadratic")
    a = Analyzer(clusters_view=False, advice=False, tiers=POT).fit(store.path)
    assert _get(a, "all", "potential_quadratic")["r2"] >= 0.98
    for el in ("H", "O"):
        assert _get(a, el, "potential_quadratic")["r2"] >= 0.98
        lin = _get(a, el, "potential_linear")
        assert 0.3 < lin["r2"] < _get(a, el, "potential_quadratic")["r2"]
        assert lin["r2_null"] <= 0.02


def test_potential_tiers_need_the_features(tmp_path):
    from distatomenv.tools.synth import write_lj_dataset

    paths = write_lj_dataset(tmp_path, n_structures=5, n_atoms=64, seed=2)
    default = distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=tmp_path / "d.zarr")
    assert default.layout.force_matching == "linear"          # the default
    a = Analyzer(clusters_view=False, advice=False).fit(default.path)
    assert {r["tier"] for r in a.readout_} >= {"linear", "potential_linear"}
    plain = distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=tmp_path / "p.zarr",
                                force_matching="none")
    assert plain.layout.force_matching == "none"
    with pytest.raises(AnalysisError, match="need the force-matching features.*--force-matching linear"):
        Analyzer(clusters_view=False, tiers=["linear", "potential_linear"]).fit(plain.path)
    # by default the potential tiers are simply absent
    a = Analyzer(clusters_view=False, advice=False).fit(plain.path)
    assert not [r for r in a.readout_ if r["tier"].startswith("potential")]
    with pytest.raises(AnalysisError, match="potential_quadratic needs the quadratic"):
        Analyzer(clusters_view=False, tiers=["potential_quadratic"]).fit(default.path)

    with pytest.raises(distatomenv.errors.DistatomenvError, match="--force-matching must be one of"):
        distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=tmp_path / "x.zarr",
                            force_matching="cubic")


def test_resume_keeps_the_stores_force_matching(tmp_path, monkeypatch):
    """--resume without --force-matching continues with the features the store
    was started with (not the default); asking for others is refused."""
    from distatomenv.engine import worker
    from distatomenv.tools.synth import write_lj_dataset

    paths = write_lj_dataset(tmp_path, n_structures=5, n_atoms=64, seed=2)
    out = tmp_path / "s.zarr"
    real_run = crash_in_unit(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=out, n_units=3,
                            force_matching="none")
    monkeypatch.setattr(worker.UnitRunner, "run", real_run)
    with pytest.raises(distatomenv.errors.StoreError):
        distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=out, n_units=3,
                            resume=True, force_matching="linear")
    again = distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=out, n_units=3,
                                resume=True)
    assert again.layout.force_matching == "none"


@pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec beside the interpreter ({MPIEXEC})")
def test_features_are_the_same_bits_serial_mpi_and_dask(tmp_path):
    from distatomenv.tools.synth import write_lj_dataset

    paths = write_lj_dataset(tmp_path, n_structures=7, n_atoms=64, seed=1)
    args = ["--force-matching", "quadratic"]
    _compute(paths["input.data"], tmp_path / "serial.zarr", args=["--backend", "serial", *args])
    ref = store_arrays(tmp_path / "serial.zarr")
    assert any(k.endswith("fmq_dx") for k in ref)
    _compute(paths["input.data"], tmp_path / "mpi.zarr", ranks=2, args=args)
    assert_same_store(tmp_path / "mpi.zarr", ref)
    _compute(paths["input.data"], tmp_path / "dask.zarr", args=["--workers", "2", *args],
             env=_env())
    assert_same_store(tmp_path / "dask.zarr", ref)
    # threads: the same bits with 2 numba threads
    _compute(paths["input.data"], tmp_path / "threads.zarr",
             args=["--backend", "serial", *args, "--threads", "2"], env=_env(NUMBA_NUM_THREADS="2"))
    assert_same_store(tmp_path / "threads.zarr", ref)


def test_report_shows_the_joint_fit_and_its_energies(lj, tmp_path):
    res = distatomenv.analyze(lj[0], tmp_path / "rep", clusters_view=False, advice=False,
                              tiers=["linear", "potential_linear"])
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "All elements together (the potential tiers' joint fit, 10 structures)" in page
    energy = _get(res.analyzer, "all", "potential_linear")["energy_r2"]
    assert f"<b>{energy:.3f}</b>" in page
