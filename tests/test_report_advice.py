"""The report side of the design advice: report.json's ``importance``,
``elimination``, ``saturation`` and ``comparison``, suggested_input.nn, the
"Design advice" subsection of report.html, its plots and the terminal lines.

One small real case: the package's own water (6 structures of 64 molecules,
H and O), two stores of the same data with different ``--neighbors``,
analysed once together (advice and comparison) and once with the advice off.
The numbers themselves are tested in test_advice.py; here the report.
"""
from __future__ import annotations

import copy
import json
import os

import pytest

import distatomenv
from distatomenv.analysis import plots, report as report_mod, write_report
from distatomenv.analysis.analyze import _jsonable
from distatomenv.io.settings import read_settings
from distatomenv.tools.synth import write_water_dataset

ADVICE_PLOTS = ["importance_H.png", "importance_O.png", "elimination.png", "saturation_H.png",
                "saturation_O.png"]


def _strict_json(path):
    """report.json, refusing NaN / Infinity (not JSON)."""
    def refuse(c):
        raise ValueError(f"{c} in report.json")
    with open(path) as fh:
        return json.load(fh, parse_constant=refuse)


def _fragment_lines(path):
    with open(path) as fh:
        return [ln.rstrip("\n") for ln in fh if ln.strip() and not ln.startswith("#")]


@pytest.fixture(scope="module")
def water(tmp_path_factory):
    d = tmp_path_factory.mktemp("advice_report")
    data = write_water_dataset(d / "data", n_structures=6, n_molecules=64, seed=0)
    a = distatomenv.compute(data["atomistic_data"], settings=data["atomistic_nn"], neighbors="2 1 2 1",
                            out=d / "a.zarr").path
    b = distatomenv.compute(data["atomistic_data"], settings=data["atomistic_nn"], neighbors="1 1 1 1",
                            out=d / "b.zarr").path
    return {"dir": d, "a": a, "b": b, "input_nn": data["atomistic_nn"]}


@pytest.fixture(scope="module")
def full(water):
    """Advice on (the default) and a comparison of both stores."""
    return distatomenv.analyze([water["a"], water["b"]], water["dir"] / "full", clusters_view=False,
                               progress=False)


@pytest.fixture(scope="module")
def plain(water):
    """The advice switched off, one store: no advice, no comparison."""
    return distatomenv.analyze(water["a"], water["dir"] / "plain", clusters_view=False, advice=False,
                               progress=False)


@pytest.fixture(scope="module")
def no_comparison(full, water):
    """The full run's advice without its comparison, and as for a store that
    records no SF settings (no fragment)."""
    an = copy.copy(full.analyzer)
    an.comparison_ = None
    an.advice_ = copy.deepcopy(full.analyzer.advice_)
    an.advice_["elimination"]["fragment"] = None
    return write_report(an, os.fspath(water["dir"] / "nocmp"))


def test_report_json_has_the_advice_and_the_comparison(full):
    an, rep = full.analyzer, full.report
    on_disk = _strict_json(full.files["report.json"])
    assert on_disk == json.loads(json.dumps(rep))
    for k in ("importance", "saturation"):
        assert on_disk[k] == _jsonable(an.advice_[k])
    elim = dict(on_disk["elimination"])
    assert elim.pop("fragment_file") == "suggested_input.nn"
    assert elim == _jsonable(an.advice_["elimination"])
    assert on_disk["comparison"] == _jsonable(an.comparison_)
    assert set(on_disk["importance"]) == {"H", "O"}
    deltas = [d["delta_r2"] for d in on_disk["importance"]["O"]["sfs"]]
    assert deltas == sorted(deltas, reverse=True)
    assert [len(r) for r in on_disk["comparison"]["elements"].values()] == [2, 2]


def test_advice_plots_are_written_and_listed(full):
    for name in ADVICE_PLOTS + ["comparison.png"]:
        assert name in full.report["plots"]
        assert name in full.files
        with open(os.path.join(full.out_dir, name), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_suggested_input_nn_holds_the_fragment_and_pastes_into_input_nn(full, water, tmp_path):
    elim = full.report["elimination"]
    path = full.files["suggested_input.nn"]
    assert path == os.path.join(full.out_dir, "suggested_input.nn")
    assert _fragment_lines(path) == elim["fragment"]
    with open(path) as fh:
        head = [ln for ln in fh if ln.startswith("#")]
    text = "".join(head)
    assert "suggested reduced symmetry-function set" in text
    assert "in place of the symfunction_short lines" in text
    assert f"within {elim['tolerance']:g}" in text
    for e, r2 in elim["r2_full"].items():
        assert f"{e} {r2:.4f} -> {elim['r2_suggested'][e]:.4f}" in text
    # pasted in place of the symfunction_short lines, input.nn reads back as the suggested set
    with open(water["input_nn"]) as fh:
        kept = [ln for ln in fh if not ln.split("#")[0].strip().startswith("symfunction_short")]
    pasted = tmp_path / "input.nn"
    with open(pasted, "w") as fh, open(path) as frag:
        fh.write("".join(kept) + "\n" + frag.read())
    sfset = read_settings(pasted).sfset
    assert {e: len(v) for e, v in sfset.by_element.items()} == \
        {e: len(v) for e, v in elim["suggested"].items()}
    labels = {(d["sf_element"], d["sf_index"]): d["label"]
              for ent in full.report["importance"].values() for d in ent["sfs"]}
    assert sorted(sf.describe() for v in sfset.by_element.values() for sf in v) == \
        sorted(labels[(x, k)] for x, ks in elim["suggested"].items() for k in ks)


def test_html_has_the_design_advice_inside_the_readout_section(full):
    with open(full.files["report.html"]) as fh:
        page = fh.read()
    readout = page.index("<h2>Force readout")
    advice = page.index("Design advice")
    notebook = page.index("<h2>The n2p2 notebook's view")
    assert readout < advice < notebook
    section = page[advice:notebook]
    for name in ADVICE_PLOTS + ["comparison.png"]:
        assert f"src='{name}'" in section
    assert "<pre class='fragment'>" in section
    for line in full.report["elimination"]["fragment"]:
        assert line in section
    assert "href='suggested_input.nn'" in section
    sat = full.report["saturation"]
    for key in ("suggested_neighbors", "survey_neighbors", "stored_neighbors"):
        assert f"<code>{sat[key]}</code>" in section
    assert "<h4>Side by side" in section
    assert "1: a.zarr" in section and "2: b.zarr" in section
    assert "reference" in section
    # the guide says what ΔR² is
    assert "held-out R&sup2; lost when that SF is removed from input.nn" in " ".join(section.split())


def test_summary_has_the_advice_lines(full):
    text = full.summary()
    assert "Design advice" in text
    assert text.index("Force readout") < text.index("Design advice")
    block = text.split("Design advice")[1].split("Stores side by side")[0].splitlines()
    for e, ent in full.report["importance"].items():
        start = next(i for i, ln in enumerate(block) if ln.startswith(f"  {e}: R² "))
        assert [ln.split(None, 1)[1] for ln in block[start + 1:start + 4]] == \
            [d["label"] for d in ent["sfs"][:3]]            # the three largest ΔR², in order
        assert not block[start + 4].startswith("     ")
    elim = full.report["elimination"]
    n = sum(len(v) for v in elim["suggested"].values())
    assert f"suggested set (within {elim['tolerance']:g} of the full R²): {n} of {elim['n_sf']} SFs" in text
    assert "suggested_input.nn" in text
    sat = full.report["saturation"]
    assert f'--neighbors: suggested "{sat["suggested_neighbors"]}"' in text
    assert f'survey "{sat["survey_neighbors"]}"' in text
    assert "Stores side by side" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("  1: a.zarr") or ln.startswith("  2: b.zarr")]
    assert len(rows) == 4                                  # 2 stores x 2 elements


def test_advice_off_leaves_nulls_and_no_files(plain):
    rep = _strict_json(plain.files["report.json"])
    assert plain.analyzer.advice_ is None and plain.analyzer.comparison_ is None
    for k in ("importance", "elimination", "saturation", "comparison"):
        assert k in rep and rep[k] is None
    assert rep["readout"]                               # the readout is still there
    for name in ADVICE_PLOTS + ["comparison.png", "suggested_input.nn"]:
        assert not os.path.exists(os.path.join(plain.out_dir, name))
        assert name not in plain.files
    with open(plain.files["report.html"]) as fh:
        page = fh.read()
    assert "switched off (<code>advice=False</code>" in page
    assert "<pre class='fragment'>" not in page and "<h4>Side by side" not in page
    text = plain.summary()
    assert "Design advice" not in text and "side by side" not in text
    assert text.startswith("Force readout")


def test_advice_without_comparison_or_fragment(no_comparison):
    rep = _strict_json(no_comparison.files["report.json"])
    assert rep["comparison"] is None and rep["importance"] and rep["saturation"]
    assert rep["elimination"]["fragment"] is None and rep["elimination"]["fragment_file"] is None
    assert "suggested_input.nn" not in no_comparison.files
    assert not os.path.exists(os.path.join(no_comparison.out_dir, "suggested_input.nn"))
    assert not os.path.exists(os.path.join(no_comparison.out_dir, "comparison.png"))
    for name in ADVICE_PLOTS:
        assert name in rep["plots"]
    with open(no_comparison.files["report.html"]) as fh:
        page = fh.read()
    assert "Design advice" in page and "<h4>Side by side" not in page
    assert "No input.nn fragment" in page
    text = no_comparison.summary()
    assert "Design advice" in text and "Stores side by side" not in text
    assert "suggested_input.nn" not in text


def test_unpaired_rows_are_marked(full):
    rep = copy.deepcopy(full.report)
    cmp_ = rep["comparison"]
    cmp_["stores"].append("/elsewhere/c.zarr")
    cmp_["same_data"].append(False)
    for e, rows in cmp_["elements"].items():
        rows.append({**rows[0], "store": "/elsewhere/c.zarr", "delta_r2": None, "delta_low": None,
                     "delta_high": None, "note": "different input data: not paired"})
    text = report_mod.summary_table(rep)
    assert text.count("different input data: not paired") == 2
    page = "\n".join(report_mod._advice_html(rep))
    assert "<b>different input data</b>: not paired" in page
    assert page.count("different input data: not paired") == 2


def test_advice_plots_on_edge_cases(tmp_path):
    many = {"r2_full": 0.9, "sfs": [{"sf_element": "H" if i % 2 else "O", "sf_index": i,
                                     "label": f"SF {i}", "r2_without": 0.9 - 1e-3 * (40 - i),
                                     "delta_r2": 1e-3 * (40 - i) - 0.005} for i in range(40)]}
    many["sfs"][5]["delta_r2"] = None
    assert plots.plot_importance("H", many, tmp_path / "imp.png") == tmp_path / "imp.png"
    assert plots.plot_importance("H", {"r2_full": None, "sfs": []}, tmp_path / "imp0.png")
    assert plots.plot_saturation("H", {}, tmp_path / "sat0.png", tolerance=0.01)
    elim = {"tolerance": 0.01, "n_sf": 2, "r2_full": {"H": 0.5},
            "path": [{"n_sf": 2, "r2": {"H": 0.5}, "worst_loss": 0.0, "removed": None},
                     {"n_sf": 1, "r2": {"H": None}, "worst_loss": None, "removed": None}],
            "suggested": {"H": [0, 1]}}
    assert plots.plot_elimination(elim, tmp_path / "elim.png")
    cmp_ = {"stores": ["x/a.zarr", "y/a.zarr"], "same_data": [True, False],
            "elements": {"H": [{"store": "x/a.zarr", "r2": 0.5, "r2_low": 0.4, "r2_high": 0.6,
                                "delta_r2": 0.0, "delta_low": 0.0, "delta_high": 0.0},
                               {"store": "y/a.zarr", "r2": 0.7, "r2_low": None, "r2_high": None,
                                "delta_r2": None, "delta_low": None, "delta_high": None,
                                "note": "different input data: not paired"}]}}
    assert plots.plot_comparison(cmp_, tmp_path / "cmp.png")
    assert plots.store_labels(cmp_["stores"]) == ["1: x/a.zarr", "2: y/a.zarr"]
    for f in ("imp.png", "imp0.png", "sat0.png", "elim.png", "cmp.png"):
        assert (tmp_path / f).stat().st_size > 0


def test_report_html_escapes_what_it_shows():
    """report.html comes from jinja2 templates with autoescaping: text from the
    report (labels, paths, notes) is escaped, the page's own markup is not."""
    rep = {"store": {"elements": ["H"]}, "parameters": {},
           "importance": {"H": {"r2_full": 0.5, "sfs": [
               {"label": "<b>x</b> & 'y'", "delta_r2": 0.1, "sf_element": "H", "sf_index": 0,
                "r2_without": 0.4}]}}}
    page = "\n".join(report_mod._advice_html(rep))
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;" in page and "<b>x</b>" not in page
    assert "<h4>Symmetry-function importance</h4>" in page and "<b>H</b>: R&sup2; with all 1 SFs" in page
