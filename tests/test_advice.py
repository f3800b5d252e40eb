"""Design advice from the readout (analysis/advice.py): SF importance equal to
a brute-force refit, elimination, a suggested input.nn that keeps its promise,
neighbour saturation, and side-by-side stores."""
from __future__ import annotations

import numpy as np
import pytest

import distatomenv
from distatomenv.analysis import Analyzer
from distatomenv.analysis.advice import ColumnMap
from distatomenv.analysis.readout import structure_groups
from distatomenv.errors import AnalysisError
from distatomenv.io.settings import read_settings
from distatomenv.store.reader import open_store

from analysis_stores import write_store


def _oof_r2(dX, F, fold, lambdas, cols):
    """scikit-learn: pooled ridge on the columns ``cols``, folds and λ given."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    X = np.concatenate([d[:, cols] for d in dX])
    y = F.T.reshape(-1)
    f = np.tile(fold, 3)
    pred = np.empty_like(y)
    for k, lam in enumerate(lambdas):
        tr, te = f != k, f == k
        d = (X[tr] ** 2).mean(axis=0)
        s = np.sqrt(np.where(d > 0, d, 1.0))
        pred[te] = Ridge(alpha=lam * tr.sum(), fit_intercept=False, solver="cholesky").fit(
            X[tr] / s, y[tr]).predict(X[te] / s)
    return r2_score(y, pred)


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    from distatomenv.tools.synth import write_water_dataset

    d = tmp_path_factory.mktemp("adv")
    data = write_water_dataset(d / "data", n_structures=8, n_molecules=64, seed=1)
    out = {"data": data, "dir": d}
    for kind, nb in (("atomistic", "2 2 2 2"), ("cg", "4"), ("cg2", "2")):
        src = "cg" if kind.startswith("cg") else kind
        out[kind] = distatomenv.compute(data[f"{src}_data"], settings=data[f"{src}_nn"], neighbors=nb,
                                        out=d / f"{kind}.zarr").path
    return out


def test_importance_equals_a_brute_force_refit_without_the_sf(water):
    """Each SF of CG water sits in the own block and in every neighbour block."""
    a = Analyzer(clusters_view=False, tiers=["linear"]).fit(water["cg"])
    rd = open_store(water["cg"])
    dX = [rd.read("Cm", f"dGd{c}") for c in "xyz"]
    F = rd.read("Cm", "forces")
    group, _, _ = structure_groups(rd.layout.n_structures, 5, 0)
    fold = group[rd.read("Cm", "structure")] % 5
    lam = next(r for r in a.readout_ if r["tier"] == "linear" and len(r["components"]) == 3)["lambda_folds"]
    cmap = ColumnMap(rd, "Cm")
    imp = a.advice_["importance"]["Cm"]
    full = _oof_r2(dX, F, fold, lam, np.arange(dX[0].shape[1]))
    assert imp["r2_full"] == pytest.approx(full, rel=1e-8)
    assert len(imp["sfs"]) == 12
    for entry in imp["sfs"][:4] + imp["sfs"][-2:]:
        cols = cmap.without([(0, entry["sf_index"])])
        assert len(cols) == dX[0].shape[1] - 5            # own block + 4 neighbour blocks
        brute = _oof_r2(dX, F, fold, lam, cols)
        assert entry["delta_r2"] == pytest.approx(full - brute, rel=1e-8, abs=1e-12)
    assert [e["delta_r2"] for e in imp["sfs"]] == sorted((e["delta_r2"] for e in imp["sfs"]), reverse=True)


def test_sfs_the_forces_depend_on_rank_first(tmp_path):
    rng = np.random.default_rng(4)
    n, p = 4000, 8
    dX = [rng.standard_normal((n, p)) for _ in range(3)]
    F = np.column_stack([1.5 * d[:, 2] - d[:, 5] for d in dX]) + 0.1 * rng.standard_normal((n, 3))
    write_store(tmp_path / "s.zarr", rng.standard_normal((n, p)), F, derivatives=True, dX=dX,
                atoms_per_structure=40, chunk_rows=512)
    a = Analyzer(clusters_view=False, tiers=["linear"]).fit(tmp_path / "s.zarr")
    imp = a.advice_["importance"]["H"]["sfs"]
    assert {imp[0]["sf_index"], imp[1]["sf_index"]} == {2, 5}
    assert imp[1]["delta_r2"] > 0.2
    assert all(abs(e["delta_r2"]) < 1e-3 for e in imp[2:])
    el = a.advice_["elimination"]
    assert el["suggested"] == {"H": [2, 5]}
    assert el["r2_suggested"]["H"] >= el["r2_full"]["H"] - 0.01
    removed = [st["removed"]["sf_index"] for st in el["path"][1:]]
    assert len(removed) == p - 1 and removed[-1] in (2, 5)
    assert el["fragment"] is None                      # no input.nn behind a synthetic store


def test_suggested_input_nn_parses_and_keeps_its_promise(water, tmp_path):
    a = Analyzer(clusters_view=False, tiers=["linear"]).fit(water["atomistic"])
    el = a.advice_["elimination"]
    assert 2 <= sum(len(v) for v in el["suggested"].values()) < el["n_sf"]
    for e, r2 in el["r2_suggested"].items():
        assert r2 >= el["r2_full"][e] - 0.01
    # the user's input.nn with the SF lines replaced by the fragment
    nn = water["data"]["atomistic_nn"]
    lines = [ln for ln in open(nn).read().splitlines()
             if not ln.strip().startswith("symfunction_short")] + el["fragment"]
    (tmp_path / "input.nn").write_text("\n".join(lines) + "\n")
    st = read_settings(tmp_path / "input.nn")
    assert {e: len(st.sfset.by_element[e]) for e in st.sfset.elements} == {
        e: len(v) for e, v in el["suggested"].items()}
    store = distatomenv.compute(water["data"]["atomistic_data"], settings=tmp_path / "input.nn",
                                neighbors="2 2 2 2", out=tmp_path / "reduced.zarr")
    b = Analyzer(clusters_view=False, tiers=["linear"], advice=False).fit(store.path)
    for r in b.readout_:
        if len(r["components"]) == 3:
            assert r["r2"] >= el["r2_suggested"][r["element"]] - 0.005, r


def test_neighbour_saturation_and_suggested_neighbors(water):
    a = Analyzer(clusters_view=False, tiers=["linear"]).fit(water["atomistic"])
    sat = a.advice_["saturation"]
    full = a.advice_["importance"]
    for e, per in sat["elements"].items():
        for en, d in per.items():
            assert d["stored"] == 2 and [c["blocks"] for c in d["curve"]] == [0, 1, 2]
            assert d["curve"][-1]["r2"] == pytest.approx(full[e]["r2_full"], rel=1e-12)
            assert d["curve"][d["knee"]]["r2"] >= full[e]["r2_full"] - sat["tolerance"]
            assert all(c["r2"] < full[e]["r2_full"] - sat["tolerance"] for c in d["curve"][:d["knee"]])
    assert sat["stored_neighbors"] == "2 2 2 2"
    assert len(sat["suggested_neighbors"].split()) == 4
    assert sat["survey_neighbors"] is not None
    # O needs its H neighbours: dropping them costs more than the tolerance
    assert sat["elements"]["O"]["H"]["knee"] >= 1


def test_side_by_side_stores_of_the_same_data_are_paired(water, tmp_path):
    res = distatomenv.analyze([water["cg"], water["cg2"]], tmp_path / "cmp", clusters_view=False,
                              tiers=["linear"])
    comp = res.analyzer.comparison_
    assert comp["same_data"] == [True, True]
    rows = comp["elements"]["Cm"]
    assert [r["n_features"] for r in rows] == [60, 36]
    r4 = next(r for r in res.readout if r["tier"] == "linear" and len(r["components"]) == 3)
    assert rows[0]["r2"] == r4["r2"] and rows[0]["delta_r2"] == 0.0
    assert rows[1]["delta_r2"] == pytest.approx(rows[1]["r2"] - rows[0]["r2"])
    assert rows[1]["delta_low"] <= rows[1]["delta_r2"] <= rows[1]["delta_high"]
    # the paired interval is narrower than the unpaired intervals
    assert rows[1]["delta_high"] - rows[1]["delta_low"] < rows[1]["r2_high"] - rows[1]["r2_low"]


def test_stores_of_different_data_are_refused_or_marked(water, tmp_path):
    with pytest.raises(AnalysisError, match="not made from the same input data.*--compare-different-data"):
        Analyzer(clusters_view=False, tiers=["linear"], compare=[water["atomistic"]]).fit(water["cg"])
    a = Analyzer(clusters_view=False, tiers=["linear"], compare=[water["atomistic"]],
                 compare_different_data=True).fit(water["cg"])
    assert a.comparison_["same_data"] == [True, False]
    assert a.comparison_["elements"]["Cm"][0]["store"].endswith("cg.zarr")
    with pytest.raises(AnalysisError, match="needs the readout"):
        Analyzer(readout=False, compare=[water["cg2"]]).fit(water["cg"])


def test_cli_compares_several_stores_and_takes_the_tolerance(water, tmp_path):
    import json

    from distatomenv.cli import main

    assert main(["analyze", str(water["cg"]), str(water["cg2"]), "-o", str(tmp_path / "r"),
                 "--no-clusters", "--tiers", "linear", "--advice-tolerance", "0.05", "-q"]) == 0
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["elimination"]["tolerance"] == 0.05
    assert len(rep["comparison"]["elements"]["Cm"]) == 2
    assert main(["analyze", str(water["cg"]), "-o", str(tmp_path / "n"), "--no-clusters",
                 "--no-advice", "-q"]) == 0
    assert json.loads((tmp_path / "n" / "report.json").read_text())["importance"] is None
    with pytest.raises(AnalysisError, match=r"advice tolerance must be a number in \[0, 1\)"):
        Analyzer(clusters_view=False, advice_tolerance=2.0).fit(water["cg"])
