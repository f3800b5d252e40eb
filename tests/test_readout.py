"""The cross-validated force readout (analysis/readout.py): equal to
scikit-learn on the same rows, the same bits on every runner, positive and
negative controls, and every refusal."""
from __future__ import annotations

import numpy as np
import pytest

import distatomenv
from distatomenv.analysis import Analyzer
from distatomenv.analysis.blocks import ThreadRunner
from distatomenv.analysis.readout import (COMPONENTS, LEARNING_FRACTIONS, Readout, ReadoutStats,
                                          solve_readout, structure_groups)
from distatomenv.errors import AnalysisError
from distatomenv.store.reader import open_store

from analysis_stores import write_store


def _linear_store(path, n=6000, p=8, noise=0.3, seed=0, atoms_per_structure=40, F=None):
    """dG rows with forces F_α = w·dG_α + noise (the same w for x, y, z)."""
    rng = np.random.default_rng(seed)
    dX = [rng.standard_normal((n, p)) for _ in range(3)]
    w = rng.standard_normal(p)
    if F is None:
        F = np.column_stack([d @ w for d in dX]) + noise * rng.standard_normal((n, 3))
    G = rng.standard_normal((n, p))
    write_store(path, G, F, derivatives=True, dX=dX, atoms_per_structure=atoms_per_structure,
                chunk_rows=512)
    return path, dX, F


@pytest.fixture(scope="module")
def linear_store(tmp_path_factory):
    return _linear_store(tmp_path_factory.mktemp("lin") / "lin.zarr")


def _fit(path, runner=None, **kw):
    with (runner or ThreadRunner(2)) as r:
        return Readout(**kw).fit(open_store(path), r)


def _entry(ro, tier="linear", comps=("x", "y", "z"), element="H"):
    (e,) = [r for r in ro.results_ if r["element"] == element and r["tier"] == tier
            and r["components"] == list(comps)]
    return e


# ----------------------------------------------------------------------------
# Equal to scikit-learn
# ----------------------------------------------------------------------------
def test_readout_equals_sklearn_ridge_with_group_kfold(linear_store):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold

    path, dX, F = linear_store
    ro = _fit(path, tiers=["linear"])
    rd = open_store(path)
    group, _, _ = structure_groups(rd.layout.n_structures, 5, 0)
    fold = group[rd.read("H", "structure")] % 5

    def oof(X, y, folds_of_rows, lambdas):
        pred = np.empty_like(y)
        # GroupKFold with the fold index as the group: exactly our folds
        for k, (tr, te) in enumerate(sorted(GroupKFold(n_splits=5).split(X, y, folds_of_rows),
                                            key=lambda s: folds_of_rows[s[1][0]])):
            s = np.sqrt((X[tr] ** 2).mean(axis=0))
            model = Ridge(alpha=lambdas[k] * len(tr), fit_intercept=False).fit(X[tr] / s, y[tr])
            pred[te] = model.predict(X[te] / s)
        return r2_score(y, pred)

    pooled = _entry(ro)
    want = oof(np.concatenate(dX), F.T.reshape(-1), np.tile(fold, 3), pooled["lambda_folds"])
    assert pooled["r2"] == pytest.approx(want, rel=1e-8)
    for k, c in enumerate(COMPONENTS):
        e = _entry(ro, comps=[c])
        assert e["r2"] == pytest.approx(oof(dX[k], F[:, k], fold, e["lambda_folds"]), rel=1e-8)
    assert pooled["n_rows"] == 3 * 6000 and pooled["folds"] == 5
    assert pooled["r2_low"] <= pooled["r2"] <= pooled["r2_high"]
    assert [c["fraction"] for c in pooled["learning_curve"]] == list(LEARNING_FRACTIONS)


def test_lambda_is_chosen_by_inner_cv_on_a_log_grid(tmp_path):
    """Few rows, many noisy features: the nested choice regularises."""
    rng = np.random.default_rng(5)
    n, p = 600, 40
    dX = [rng.standard_normal((n, p)) for _ in range(3)]
    F = np.column_stack([d[:, 0] for d in dX]) + 2.0 * rng.standard_normal((n, 3))
    write_store(tmp_path / "s.zarr", rng.standard_normal((n, p)), F, derivatives=True, dX=dX,
                atoms_per_structure=20, chunk_rows=128)
    ro = _fit(tmp_path / "s.zarr", tiers=["linear"])
    e = _entry(ro)
    assert e["lambda"] > 1e-3
    assert all(lam > 1e-4 for lam in e["lambda_folds"])


def test_g_weighted_tier_equals_its_own_features_in_sklearn(tmp_path):
    """G-dependent weights: F_x = (w·dG_x)·(1 + G_0): only the G-weighted tier sees it."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(3)
    n, p = 3000, 4
    dX = [rng.standard_normal((n, p)) for _ in range(3)]
    G = rng.uniform(-1, 1, (n, p))
    w = rng.standard_normal(p)
    F = np.column_stack([(d @ w) * (1 + 2 * G[:, 0]) for d in dX]) + 0.05 * rng.standard_normal((n, 3))
    write_store(tmp_path / "g.zarr", G, F, derivatives=True, dX=dX, atoms_per_structure=30,
                chunk_rows=256)
    ro = _fit(tmp_path / "g.zarr", tiers=["linear", "g_weighted"])
    gw, lin = _entry(ro, "g_weighted"), _entry(ro)
    assert gw["r2"] > 0.99 and lin["r2"] < 0.6
    assert gw["n_features"] == p * (1 + p)
    rd = open_store(tmp_path / "g.zarr")
    group, _, _ = structure_groups(rd.layout.n_structures, 5, 0)
    fold = np.tile(group[rd.read("H", "structure")] % 5, 3)
    Z = np.concatenate([np.concatenate([d, (d[:, None, :] * G[:, :, None]).reshape(n, -1)], axis=1)
                        for d in dX])
    y = F.T.reshape(-1)
    pred = np.empty_like(y)
    for k in range(5):
        tr, te = fold != k, fold == k
        s = np.sqrt((Z[tr] ** 2).mean(axis=0))
        pred[te] = Ridge(alpha=gw["lambda_folds"][k] * tr.sum(), fit_intercept=False).fit(
            Z[tr] / s, y[tr]).predict(Z[te] / s)
    assert gw["r2"] == pytest.approx(r2_score(y, pred), rel=1e-8)


def test_g_weighted_tier_over_budget_is_skipped_with_the_numbers(linear_store):
    ro = _fit(linear_store[0], tiers=["g_weighted"], g_weighted_max_features=10)
    e = _entry(ro, "g_weighted")
    assert e["r2"] is None
    assert "72 features" in e["skipped"] and "budget of 10" in e["skipped"]


# ----------------------------------------------------------------------------
# The same bits on every runner
# ----------------------------------------------------------------------------
def _numbers(ro):
    keys = ("r2", "r2_low", "r2_high", "r2_null", "rmse", "lambda")
    return [[r[k] for k in keys] + [c["r2"] for c in r["learning_curve"]] for r in ro.results_]


def test_bit_identical_with_one_and_two_threads(linear_store):
    a = _fit(linear_store[0], ThreadRunner(1))
    b = _fit(linear_store[0], ThreadRunner(2))
    assert _numbers(a) == _numbers(b)
    np.testing.assert_array_equal(a.samples_["H"]["predicted"], b.samples_["H"]["predicted"])


def test_bit_identical_on_one_and_two_dask_workers(linear_store):
    from distatomenv.executors.dask import TaskRunner

    ref = _numbers(_fit(linear_store[0], ThreadRunner(2)))
    for workers in (1, 2):
        assert _numbers(_fit(linear_store[0], TaskRunner(workers=workers))) == ref


# ----------------------------------------------------------------------------
# Controls on real descriptors
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def water(tmp_path_factory):
    from distatomenv.tools.synth import write_water_dataset

    d = tmp_path_factory.mktemp("water")
    data = write_water_dataset(d / "data", n_structures=10, n_molecules=64, seed=0)
    stores = {}
    for kind, nb in (("atomistic", "2 2 2 2"), ("cg", "4")):
        stores[kind] = distatomenv.compute(data[f"{kind}_data"], settings=data[f"{kind}_nn"],
                                           neighbors=nb, out=d / f"{kind}.zarr").path
    return stores


def test_positive_control_synthetic_water_atomistic(water):
    ro = _fit(water["atomistic"], tiers=["linear"])
    for el in ("H", "O"):
        e = _entry(ro, element=el)
        assert e["r2"] >= 0.97, e
        assert e["r2_null"] <= 0.02
        assert e["n_structures"] == 10


def test_cg_water_below_atomistic_and_null_at_zero(water):
    """CG forces carry thermal noise no CG descriptor resolves."""
    cg = _entry(_fit(water["cg"], tiers=["linear"]), element="Cm")
    at = _entry(_fit(water["atomistic"], tiers=["linear"]), element="O")
    assert 0.3 < cg["r2"] < at["r2"]
    assert cg["r2_null"] <= 0.02


def test_positive_control_lennard_jones(tmp_path):
    from distatomenv.tools.synth import write_lj_dataset

    paths = write_lj_dataset(tmp_path, n_structures=10, n_atoms=64, seed=5)
    nb = distatomenv.survey_neighbors(paths["input.data"], settings=paths["input.nn"]).suggested
    store = distatomenv.compute(paths["input.data"], neighbors=nb, out=tmp_path / "lj.zarr")
    ro = _fit(store.path, tiers=["linear"])
    for el in store.elements:
        assert _entry(ro, element=el)["r2"] >= 0.99


def test_negative_control_forces_independent_of_the_rows(tmp_path):
    rng = np.random.default_rng(9)
    path, _, _ = _linear_store(tmp_path / "neg.zarr", F=rng.standard_normal((6000, 3)))
    ro = _fit(path, tiers=["linear", "reference_knn"])
    for e in ro.results_:
        assert e["r2"] <= 0.02 and e["r2_null"] <= 0.02, e


def test_g_against_a_cartesian_component_reads_nothing(water):
    """By symmetry E[f_x | G] = 0: G rows regress f_x to R² ≈ 0."""
    rd = open_store(water["cg"])
    G = rd.read("Cm", "G")
    F = rd.read("Cm", "forces")
    group, level, ng = structure_groups(rd.layout.n_structures, 5, 0)
    cell = group[rd.read("Cm", "structure")] * len(LEARNING_FRACTIONS) + level[rd.read("Cm", "structure")]
    st = ReadoutStats(1, ng * len(LEARNING_FRACTIONS), G.shape[1])
    st.add(0, G, F[:, 0], F[::-1, 0].copy(), cell)
    r = solve_readout(st, ng, len(LEARNING_FRACTIONS), 5)
    assert abs(r["r2"]) < 0.05


# ----------------------------------------------------------------------------
# Through the Analyzer and the API
# ----------------------------------------------------------------------------
def test_analyzer_exposes_the_readout_and_can_skip_the_clusters(linear_store, tmp_path):
    a = Analyzer(clusters_view=False, tiers=["linear"]).fit(linear_store[0])
    assert a.results_ == [] and a.readout_
    assert _entry(type("R", (), {"results_": a.readout_})())["r2"] > 0.9
    assert set(a.readout_samples_["H"]) >= {"row", "structure", "atom", "forces", "predicted", "residual"}
    s = a.readout_samples_["H"]
    np.testing.assert_allclose(s["residual"], s["forces"] - s["predicted"])
    off = Analyzer(readout=False, descriptor="G", clusters=[3], seeds=1, permutations=0).fit(linear_store[0])
    assert off.readout_ == [] and "switched off" in off.readout_note_


# ----------------------------------------------------------------------------
# Refusals
# ----------------------------------------------------------------------------
def test_store_without_derivatives_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    write_store(tmp_path / "nod.zarr", rng.standard_normal((600, 3)), rng.standard_normal((600, 3)))
    with pytest.raises(AnalysisError, match="no derivatives.*--no-readout"):
        Analyzer(readout=True, clusters_view=False).fit(tmp_path / "nod.zarr")
    # the default (readout=None) runs without it and says why
    a = Analyzer(descriptor="G", clusters=[3], seeds=1, permutations=0).fit(tmp_path / "nod.zarr")
    assert a.readout_ == [] and "needs derivatives" in a.readout_note_


def test_fewer_structures_than_folds_is_refused(tmp_path):
    path, _, _ = _linear_store(tmp_path / "few.zarr", n=300, atoms_per_structure=100)
    with pytest.raises(AnalysisError, match=r"3 structure\(s\) cannot be split into 5 folds.*--folds 3"):
        _fit(path, folds=5)
    # by default one structure per fold when there are fewer than 5
    assert _entry(_fit(path, tiers=["linear"]))["folds"] == 3
    one, _, _ = _linear_store(tmp_path / "one.zarr", n=300, atoms_per_structure=300)
    with pytest.raises(AnalysisError, match=r"1 structure: the readout holds out whole structures"):
        _fit(one)


def test_more_features_than_training_rows_is_refused_with_the_numbers(tmp_path):
    rng = np.random.default_rng(1)
    n, p = 20, 60          # 5 structures; 48 of the 60 pooled rows train each fold
    dX = [rng.standard_normal((n, p)) for _ in range(3)]
    write_store(tmp_path / "wide.zarr", rng.standard_normal((n, p)), rng.standard_normal((n, 3)),
                derivatives=True, dX=dX, atoms_per_structure=4, chunk_rows=64)
    with pytest.raises(AnalysisError, match=r"fold \d trains on \d+ rows .* has 60 features"):
        _fit(tmp_path / "wide.zarr", tiers=["linear"])


def test_store_without_forces_is_refused(tmp_path):
    path, _, _ = _linear_store(tmp_path / "zero.zarr", n=600, F=np.zeros((600, 3)))
    with pytest.raises(AnalysisError, match="every force is zero"):
        _fit(path, tiers=["linear"])


@pytest.mark.parametrize("kw, match", [
    (dict(folds=1), "folds must be an integer >= 2"),
    (dict(tiers=["cubic"]), "unknown readout tier 'cubic'"),
    (dict(tiers=[]), "no readout tier given"),
    (dict(elements=["Xx"]), "element 'Xx' is not in the store"),
    (dict(sample=-1), "readout sample must be an integer >= 0"),
])
def test_bad_readout_parameters(linear_store, kw, match):
    with pytest.raises(AnalysisError, match=match):
        _fit(linear_store[0], **kw)


def test_non_finite_forces_are_refused_with_the_rows(tmp_path):
    F = np.random.default_rng(2).standard_normal((600, 3))
    F[515, 1] = np.nan
    path, _, _ = _linear_store(tmp_path / "nan.zarr", n=600, F=F)
    with pytest.raises(AnalysisError, match=r"element H: 1 force value\(s\) and 0 dG value\(s\) are NaN.*row 515 \(structure 12"):
        _fit(path, tiers=["linear"])


def test_cli_readout_options(linear_store, tmp_path, capsys):
    import json

    from distatomenv.cli import main

    assert main(["analyze", str(linear_store[0]), "-o", str(tmp_path / "r"), "--no-clusters",
                 "--folds", "4", "--tiers", "linear,reference_knn", "--readout-sample", "300", "-q"]) == 0
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["results"] == []
    assert {r["tier"] for r in rep["readout"]} == {"linear", "reference_knn"}
    assert {r["folds"] for r in rep["readout"]} == {4}
    assert [r["sample_atoms"] for r in rep["readout"] if r["tier"] == "reference_knn"][0] < 600
    assert main(["analyze", str(linear_store[0]), "-o", str(tmp_path / "n"), "--no-readout",
                 "--descriptor", "G", "--clusters", "3", "--seeds", "1", "--permutations", "0"]) == 0
    out = capsys.readouterr().out
    rep = json.loads((tmp_path / "n" / "report.json").read_text())
    assert rep["readout"] == [] and "switched off" in rep["readout_note"]
    assert "switched off" in out
    with pytest.raises(SystemExit):
        main(["analyze", str(linear_store[0]), "-o", str(tmp_path / "x"), "--tiers", ","])
