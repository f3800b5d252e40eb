"""The report side of the force readout: report.json's ``readout``, the HTML and
the terminal summary leading with it, the parity and learning-curve plots, and
the chemiscope map of the sampled atoms.

Most tests set the readout's fitted attributes (``readout_``,
``readout_samples_``) by hand on an Analyzer fitted with ``readout=False``, so
they test the report and not the readout's numbers; one test runs the real
readout and checks the interface.
"""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import zarr

import distatomenv
from distatomenv.analysis import Analyzer, report as report_mod, write_report
from distatomenv.analysis import chemiscope_map, plots
from distatomenv.store.reader import open_store

from analysis_stores import blobs, write_store

FAST = dict(clusters=[5, 10], seeds=1, permutations=0, sample=1000)
READOUT_KEYS = {"element", "tier", "components", "r2", "r2_low", "r2_high", "r2_null", "rmse",
                "force_std", "n_rows", "n_structures", "folds", "lambda", "learning_curve",
                "n_features", "skipped"}
MAP_PROPERTIES = {"element", "structure", "atom",
                  "Fx", "Fy", "Fz", "|F|", "predicted Fx", "predicted Fy", "predicted Fz",
                  "|predicted F|", "residual Fx", "residual Fy", "residual Fz", "|residual F|"}
N_ROWS, PER_STRUCTURE, EVERY = 2000, 50, 7        # 40 structures, every 7th atom sampled


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Forces linear in the dG rows, 40 structures of 50 atoms, with positions."""
    X, _ = blobs(N_ROWS, n_centers=6, dim=6, seed=11)
    rng = np.random.default_rng(12)
    F = np.column_stack([2.0 * X[:, 0], X[:, 2] - X[:, 3], X[:, 4]]) + 0.1 * rng.standard_normal((N_ROWS, 3))
    path = tmp_path_factory.mktemp("ro") / "ro.zarr"
    write_store(path, X, F, chunk_rows=500, derivatives=True, atoms_per_structure=PER_STRUCTURE)
    # distinct positions, so that the map's structures can be checked atom by atom
    zarr.open_array(f"{path}/elements/H/positions", mode="r+")[...] = rng.uniform(0, 10, (N_ROWS, 3))
    return path


def _samples(path, every=EVERY):
    rd = open_store(path)
    rows = np.arange(0, rd.n_rows("H"), every)
    F = np.asarray(rd.read("H", "forces", rows))
    P = 0.9 * F + 0.05
    return {"H": {"row": rows, "structure": np.asarray(rd.read("H", "structure", rows)),
                  "atom": np.asarray(rd.read("H", "atom", rows)), "forces": F, "predicted": P,
                  "residual": F - P}}


def _entry(tier, components, r2, **kw):
    e = {"element": "H", "tier": tier, "components": components, "r2": r2,
         "r2_low": None if r2 is None else r2 - 0.01, "r2_high": None if r2 is None else r2 + 0.01,
         "r2_null": None if r2 is None else -0.002, "rmse": None if r2 is None else 0.1,
         "force_std": None if r2 is None else 2.0, "n_rows": 3 * N_ROWS if len(components) == 3 else N_ROWS,
         "n_structures": N_ROWS // PER_STRUCTURE, "folds": 5, "lambda": 1e-3,
         "learning_curve": [{"fraction": 0.1, "r2": r2 and r2 - 0.1}, {"fraction": 0.3, "r2": r2},
                            {"fraction": 1.0, "r2": r2}] if r2 is not None else [],
         "n_features": 6, "skipped": None}
    e.update(kw)
    return e


def _readout():
    return [
        _entry("linear", ["x", "y", "z"], 0.95),
        _entry("linear", ["x"], 0.97),
        _entry("g_weighted", ["x", "y", "z"], None, skipped="4200 features > budget 4096",
               **{"lambda": None}),
        # a reference tier with a NaN and an infinity: they must reach JSON as null
        _entry("reference_knn", ["x", "y", "z"], 0.9, learning_curve=[], rmse=float("nan"),
               r2_null=float("-inf"), **{"lambda": None}),
    ]


def _fitted(store, **params):
    """An Analyzer fitted without the readout, its readout attributes set by hand."""
    a = Analyzer(readout=False, **{**FAST, **params}).fit(store)
    a.readout_ = _readout()
    a.readout_samples_ = _samples(store)
    a.readout_note_ = None
    return a


@pytest.fixture(scope="module")
def report_dir(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    res = write_report(_fitted(store, write_labels="ro"), out)
    return out, res


# ----------------------------------------------------------------------------
# report.json
# ----------------------------------------------------------------------------
def test_report_json_has_the_readout_json_safe(report_dir):
    out, res = report_dir

    def no_constants(name):
        raise AssertionError(f"{name} in report.json")

    rep = json.loads((out / "report.json").read_text(), parse_constant=no_constants)
    assert [(r["tier"], r["components"]) for r in rep["readout"]] == [
        ("linear", ["x", "y", "z"]), ("linear", ["x"]), ("g_weighted", ["x", "y", "z"]),
        ("reference_knn", ["x", "y", "z"])]
    for r in rep["readout"]:
        assert READOUT_KEYS <= set(r), READOUT_KEYS - set(r)
    knn = rep["readout"][3]
    assert knn["rmse"] is None and knn["r2_null"] is None and knn["r2"] == 0.9
    assert rep["readout"][2]["skipped"].startswith("4200 features")
    assert rep["readout"][0]["learning_curve"][-1] == {"fraction": 1.0, "r2": 0.95}
    assert res.report["readout"] == rep["readout"]
    # the readout's plots come first in the plot list
    assert rep["plots"][:2] == ["parity_H.png", "learning_H.png"]
    assert rep["interactive_map"]["file"] == "chemiscope.json.gz"


def test_parity_and_learning_curve_plots_exist(report_dir):
    out, res = report_dir
    for name in ("parity_H.png", "learning_H.png"):
        assert (out / name).stat().st_size > 5000
        assert res.files[name] == str(out / name)
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------
# report.html and the terminal summary
# ----------------------------------------------------------------------------
def test_html_leads_with_the_readout_then_the_notebook_view(report_dir):
    out, _ = report_dir
    page = (out / "report.html").read_text()
    readout = page.index("Force readout")
    table = page.index("<table class='readout'>")
    cluster = page.index("The n2p2 notebook's view")
    assert readout < table < page.index("parity_H.png") < page.index("learning_H.png") < cluster
    assert cluster < page.index("share_H.png")
    # the readout table: tiers, R², interval, null, lambda, rows/structures, learning curve
    section = page[table:cluster]
    for text in ("linear", "G-weighted", "k-NN reference", "<b>0.950</b>", "0.940&ndash;0.960",
                 "-0.002", "0.001", "6000 / 40", "10 %: 0.850, 30 %: 0.950, 100 %: 0.950",
                 "skipped: 4200 features &gt; budget 4096"):
        assert text in section, text
    assert f"Element H ({N_ROWS} atoms in 40 structures)" in page
    # the guides: how to read the readout; what the notebook's share is
    guide = " ".join(page[readout:table].split())
    assert "on structures the model has not seen" in guide and "shuffled forces" in guide
    assert "nonlinear reference" in guide
    guide = " ".join(page[cluster:].split())
    assert "grows with the number of atoms" in guide and "blind for G" in guide
    # the map, linked with how to open it
    assert "<a href='chemiscope.json.gz'>" in section and "chemiscope.org" in section


def test_summary_leads_with_the_readout(report_dir):
    _, res = report_dir
    text = res.summary()
    assert text.startswith("Force readout")
    lines = text.splitlines()
    linear = next(line for line in lines if line.startswith("H ") and " linear " in line)
    assert "0.950" in linear and "0.940-0.960" in linear and "100%:0.950" in linear
    assert any("skipped: 4200 features" in line for line in lines)
    assert text.index("k-NN reference") < text.index("The n2p2 notebook's view")
    assert "dGdx" in text[text.index("The n2p2 notebook's view"):]


def test_the_real_readout_reaches_the_report(store, tmp_path):
    res = distatomenv.analyze(store, tmp_path / "r", **FAST)
    assert res.report["readout"], res.summary()
    for r in res.report["readout"]:
        assert READOUT_KEYS <= set(r), READOUT_KEYS - set(r)
    assert {r["tier"] for r in res.report["readout"]} >= {"linear"}
    assert res.summary().startswith("Force readout")
    assert (tmp_path / "r" / "parity_H.png").exists()
    assert (tmp_path / "r" / "learning_H.png").exists()
    assert res.report["interactive_map"]["file"] == "chemiscope.json.gz"


def test_report_without_readout_and_without_clusters(store, tmp_path):
    # no readout: the page and the summary say so; the cluster view is complete
    res = write_report(Analyzer(readout=False, **FAST).fit(store), tmp_path / "noro")
    assert res.report["readout"] == []
    assert res.report["interactive_map"]["file"] is None
    page = (tmp_path / "noro" / "report.html").read_text()
    assert "The readout was not computed: the force readout was switched off" in page
    assert "chemiscope.json.gz" not in page and "share_H.png" in page
    assert "switched off" in res.summary().splitlines()[1]
    assert not list((tmp_path / "noro").glob("parity_*.png"))
    # no cluster view: no cluster plots or rows, the readout alone
    a = _fitted(store, clusters_view=False)
    assert a.results_ == []
    res = write_report(a, tmp_path / "noclu")
    page = (tmp_path / "noclu" / "report.html").read_text()
    assert "The cluster view was switched off" in page
    assert res.report["plots"] == ["parity_H.png", "learning_H.png"]
    assert not list((tmp_path / "noclu").glob("share_*.png"))
    assert res.summary().rstrip().endswith("The n2p2 notebook's view: switched off")
    # an empty readout without any note
    a.readout_, a.readout_samples_, a.readout_note_ = [], {}, None
    res = write_report(a, tmp_path / "empty")
    assert "no readout in this report" in res.summary()


def test_without_chemiscope_the_map_is_skipped_with_a_note(store, tmp_path, monkeypatch):
    monkeypatch.setattr(chemiscope_map, "available",
                        lambda: (False, "chemiscope not installed (pip install 'distatomenv[report]')"))
    res = write_report(_fitted(store), tmp_path / "r")
    assert res.report["interactive_map"] == {
        "file": None, "note": "not written: chemiscope not installed (pip install 'distatomenv[report]')"}
    assert not (tmp_path / "r" / "chemiscope.json.gz").exists()
    page = (tmp_path / "r" / "report.html").read_text()
    assert "No chemiscope map: not written: chemiscope not installed" in page


# ----------------------------------------------------------------------------
# the chemiscope map
# ----------------------------------------------------------------------------
def _load_map(path):
    with gzip.open(path, "rt") as fh:
        return json.load(fh)


def test_chemiscope_map_of_the_sampled_atoms(report_dir, store):
    out, _ = report_dir
    data = _load_map(out / "chemiscope.json.gz")
    samples = _samples(store)["H"]
    m = len(samples["row"])
    n_s = N_ROWS // PER_STRUCTURE
    # every structure holds sampled atoms (40 <= the cap of 50): all of them, all atoms
    assert len(data["structures"]) == n_s
    assert all(s["size"] == PER_STRUCTURE and set(s["names"]) == {"H"} for s in data["structures"])
    assert len(data["environments"]) == m
    props = data["properties"]
    cluster = [p for p in props if p.startswith("cluster")]
    assert set(props) == MAP_PROPERTIES | set(cluster) and cluster == ["cluster (dGdx, k=10)"]
    for p in props.values():
        assert p["target"] == "atom" and len(p["values"]) == m
    # environment i is sampled atom i (sorted by structure, atom, as the sample is here)
    rd = open_store(store)
    pos = np.asarray(rd.read("H", "positions", samples["row"]))
    for i in (0, m // 2, m - 1):
        env = data["environments"][i]
        s = data["structures"][env["structure"]]
        c = env["center"]
        assert props["structure"]["values"][i] == samples["structure"][i]
        assert c == samples["atom"][i] == props["atom"]["values"][i]
        assert [s["x"][c], s["y"][c], s["z"][c]] == pytest.approx(pos[i].tolist())
        assert props["Fy"]["values"][i] == pytest.approx(samples["forces"][i, 1])
        assert props["predicted Fz"]["values"][i] == pytest.approx(samples["predicted"][i, 2])
        assert props["|residual F|"]["values"][i] == pytest.approx(np.linalg.norm(samples["residual"][i]))
    # the cluster of each sampled atom is the label written to the store
    from distatomenv.store.labels import label_path
    labels = zarr.open_group(str(store), mode="r")[label_path("ro", "H", "dGdx", "labels_k10")]
    assert props[cluster[0]]["values"] == np.asarray(labels.oindex[samples["row"]]).tolist()
    # the map shows reference against predicted force; arrows for every atom
    assert data["settings"]["map"]["x"] == {"property": "Fx"}
    assert data["settings"]["map"]["y"] == {"property": "predicted Fx"}
    assert len(data["shapes"]["force"]["parameters"]["atom"]) == n_s * PER_STRUCTURE


def test_chemiscope_map_is_capped(store, tmp_path):
    samples = _samples(store, every=3)
    info = chemiscope_map.write_chemiscope(store, samples, tmp_path / "m.json.gz",
                                           max_structures=5, max_atoms=40)
    data = _load_map(tmp_path / "m.json.gz")
    assert info["capped"] and info["n_structures"] == len(data["structures"]) <= 5
    assert info["n_environments"] == len(data["environments"]) == 40
    assert len(data["properties"]["Fx"]["values"]) == 40
    chosen = {int(v) for v in data["properties"]["structure"]["values"]}
    assert len(chosen) == len(data["structures"])
    # at most max_frame_atoms atoms in all structures (at least one structure kept)
    info = chemiscope_map.write_chemiscope(store, samples, tmp_path / "n.json.gz",
                                           max_frame_atoms=120)
    assert info["n_structures"] == 2
    info = chemiscope_map.write_chemiscope(store, samples, tmp_path / "o.json.gz", max_frame_atoms=1)
    assert info["n_structures"] == 1


def test_chemiscope_map_bad_input(store, tmp_path):
    with pytest.raises(ValueError, match="no sampled atoms to map"):
        chemiscope_map.write_chemiscope(store, {"H": {"structure": np.array([], int)}},
                                        tmp_path / "m.json.gz")


# ----------------------------------------------------------------------------
# the plots alone
# ----------------------------------------------------------------------------
def test_plot_parity_and_learning_curve(tmp_path):
    rng = np.random.default_rng(0)
    F = rng.standard_normal((500, 3))
    f = plots.plot_parity("O", {"forces": F, "predicted": F + 0.1 * rng.standard_normal(F.shape)},
                          str(tmp_path / "p.png"), r2=0.99)
    assert (tmp_path / "p.png").stat().st_size > 5000 and f == str(tmp_path / "p.png")
    from sklearn.metrics import r2_score

    P = F + [0.5, -0.5, 1.0] + rng.standard_normal(F.shape)      # pooled, as the readout pools
    assert plots.sample_r2(F, P) == pytest.approx(r2_score(F.ravel(), P.ravel()), rel=1e-12)
    assert plots.sample_r2(F, F) == 1.0 and plots.sample_r2(F[:1], F[:1]) is None
    plots.plot_learning_curve("O", _readout(), str(tmp_path / "l.png"))
    plots.plot_learning_curve("O", [_entry("linear", ["x"], None)], str(tmp_path / "e.png"))
    assert (tmp_path / "l.png").stat().st_size > 5000 and (tmp_path / "e.png").exists()


def test_readout_table_orders_elements_as_the_store():
    rep = {"store": {"elements": ["H", "O"]},
           "readout": [dict(_entry("linear", ["x", "y", "z"], 0.5), element="O"),
                       _entry("linear", ["x", "y", "z"], 0.9)]}
    assert report_mod.readout_elements(rep) == ["H", "O"]
    lines = report_mod.readout_table(rep).splitlines()
    assert lines[3].startswith("H ") and lines[4].startswith("O ")
