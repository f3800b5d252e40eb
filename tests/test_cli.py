"""The command-line contract, run as a user would: real subprocesses."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from distatomenv.store.reader import open_store

EXE = [sys.executable, "-m", "distatomenv.cli"]


def run(*args, cwd=None, ok=True):
    p = subprocess.run(EXE + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.mark.parametrize("sub", ["compute", "export", "info", "demo", "scaling", "neighbors"])
def test_help(sub):
    p = run(sub, "--help")
    assert f"usage: distatomenv {sub}" in p.stdout


def test_compute_export_info_on_reference(reference_dir, tmp_path):
    case = reference_dir / "H2O_RPBE-D3"
    # settings and scaling are found beside the data by default
    p = run("compute", case / "input.data", "--neighbors", "H-H=6,H-O=2,O-H=4,O-O=4", "-o",
            tmp_path / "s.zarr")
    assert "336 atoms in 4 structures" in p.stdout
    run("export", tmp_path / "s.zarr", "--format", "n2p2", "-o", tmp_path / "out")
    import gzip
    got = (tmp_path / "out" / "neighbor-list.data").read_text()
    assert got == gzip.open(case / "expected" / "neighbor-list.data.gz", "rt").read()
    assert len((tmp_path / "out" / "atomic-env.dGdz").read_text().splitlines()) == 336
    info = run("info", tmp_path / "s.zarr").stdout
    for word in ("element H: 224 rows", "element O: 112 rows", "(224, 249)", "TANHU",
                 "scalecenter", "H-H=6", "sha256", "status: complete"):
        assert word in info, word
    # a second compute refuses to overwrite, exit status 2 and one clear line
    p = run("compute", case / "input.data", "--neighbors", "6 2 4 4", "-o", tmp_path / "s.zarr",
            ok=False)
    assert p.returncode == 2
    assert "overwrite" in p.stderr and "Traceback" not in p.stderr


def test_bad_input_names_file_and_line(tmp_path, reference_dir):
    case = reference_dir / "H2O_RPBE-D3"
    bad = tmp_path / "input.data"
    lines = (case / "input.data").read_text().splitlines()
    lines[7] = lines[7].replace("O", "X", 1) if " O " in lines[7] else lines[7] + " junk"
    bad.write_text("\n".join(lines) + "\n")
    p = run("compute", bad, "--settings", case / "input.nn", "--scaling", case / "scaling.data",
            "--neighbors", "6 2 4 4", "-o", tmp_path / "s.zarr", ok=False)
    assert p.returncode == 3                      # bad input (README "Failures")
    assert f"{bad}:8:" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "s.zarr").exists(), "bad input is found before any store is made"


def test_bad_neighbor_spec(reference_dir, tmp_path):
    case = reference_dir / "H2O_RPBE-D3"
    p = run("compute", case / "input.data", "--neighbors", "6 2 4", "-o", tmp_path / "s.zarr",
            ok=False)
    assert p.returncode == 2 and "expected 4" in p.stderr and "H-H, H-O, O-H, O-O" in p.stderr


def test_scaling_command(reference_dir, tmp_path):
    case = reference_dir / "LJ"
    run("scaling", case / "input.data", "-o", tmp_path / "scaling.data")
    ours = [line.split() for line in (tmp_path / "scaling.data").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    ref = [line.split() for line in (case / "expected" / "scaling.data").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
    assert [r[:2] for r in ours] == [r[:2] for r in ref]
    for a, b in zip(ours, ref):
        for x, y in zip(a[2:], b[2:]):
            assert abs(float(x) - float(y)) <= 1e-9 * abs(float(y))


def test_demo_small(tmp_path):
    """The README's main command, reduced: MD liquid, coarse-graining, compute and
    analyse both, reports and the two-line verdict."""
    p = run("demo", "--directory", tmp_path / "demo", "--structures", "3", "--molecules", "64",
            "--permutations", "5")
    out = p.stdout
    assert "demo: done" in out
    # the verdict comes from the force readout, with the physics right:
    # atomistic forces are functions of the positions, CG forces carry noise
    import re
    at = re.search(r"demo: atomistic descriptors: H ([\d.]+) \[[\d.]+-[\d.]+\].*, O ([\d.]+) \[", out)
    cg = re.search(r"demo: coarse-grained descriptors: Cm ([\d.]+) \[[\d.]+-[\d.]+\]", out)
    assert at and cg, out
    assert float(cg.group(1)) < min(float(at.group(1)), float(at.group(2)))
    assert "demo: shuffled forces: R^2" in out
    pot = re.search(r"demo: atomistic: the best potential in these SFs recovers R\^2 linear ([\d.]+), "
                    r"quadratic ([\d.]+)", out)
    assert pot and float(pot.group(2)) > float(pot.group(1)), out
    assert "the CG force-matching residual is" in out
    assert "which no CG descriptor resolves" in out and "at least as well" not in out
    for kind in ("atomistic", "cg"):
        rep = json.loads((tmp_path / "demo" / "report" / kind / "report.json").read_text())
        assert rep["results"] and all(0.0 <= r["significant_share"] <= 1.0
                                      for r in rep["results"])
        assert {r["tier"] for r in rep["readout"]} == {"linear", "g_weighted", "reference_knn",
                                                      "potential_linear", "potential_quadratic"}
        assert (tmp_path / "demo" / "report" / kind / "report.html").is_file()
        assert open_store(tmp_path / "demo" / f"{kind}.zarr").status == "complete"
    els = {r["element"] for r in json.loads(
        (tmp_path / "demo" / "report" / "atomistic" / "report.json").read_text())["results"]}
    assert els == {"H", "O"}


def test_demo_too_small_box_is_a_clear_error(tmp_path):
    p = run("demo", "--directory", tmp_path / "demo", "--molecules", "8", ok=False)
    assert p.returncode == 2
    assert "distatomenv: error: demo: box edge" in p.stderr and "Traceback" not in p.stderr


def test_ase_input_with_an_object_store_output_converts_beside_the_input(tmp_path, monkeypatch):
    import argparse

    import distatomenv.io.ase as ase_io
    from distatomenv.cli.compute import compute_input
    calls = []
    monkeypatch.setattr(ase_io, "convert", lambda src, out, index, fmt: calls.append(out))
    traj = tmp_path / "run" / "traj.xyz"
    traj.parent.mkdir()
    traj.write_text("")
    args = argparse.Namespace(format="ase", data=str(traj), output="s3://bucket/x/run.zarr",
                              converted=None, index=":", ase_format=None, quiet=True,
                              settings=None, scaling=None)
    data, settings, scaling = compute_input(args)
    assert calls == [str(tmp_path / "run" / "run.zarr.input.data")] and data == calls[0]


def test_precision_n2p2_is_lossy_recorded_and_float64_only(reference_dir, tmp_path):
    case = reference_dir / "H2O_RPBE-D3"
    assert "LOSSY" in run("compute", "--help").stdout
    # with float32 it is refused before anything is read or created
    p = run("compute", case / "input.data", "--neighbors", "6 2 4 4", "-o", tmp_path / "f.zarr",
            "--precision", "n2p2", "--dtype", "float32", ok=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "--precision n2p2" in p.stderr and "--dtype float32" in p.stderr
    assert not (tmp_path / "f.zarr").exists()
    run("compute", case / "input.data", "--neighbors", "6 2 4 4", "-o", tmp_path / "s.zarr",
        "--precision", "n2p2")
    assert open_store(tmp_path / "s.zarr").layout.precision == "n2p2"
    assert "precision n2p2 (LOSSY" in run("info", tmp_path / "s.zarr").stdout
    v = run("verify", tmp_path / "s.zarr").stdout
    assert ": OK:" in v and "precision n2p2 (LOSSY" in v
    # the default stays lossless
    run("compute", case / "input.data", "--neighbors", "6 2 4 4", "-o", tmp_path / "d.zarr")
    assert open_store(tmp_path / "d.zarr").layout.precision == "full"
    assert "LOSSY" not in run("info", tmp_path / "d.zarr").stdout


def test_the_console_command_is_entry_which_leaves_the_heap_to_the_os(monkeypatch, capsys):
    """The installed ``distatomenv`` and ``python -m distatomenv.cli`` run
    ``entry``: main's exit status, then every object frozen out of the
    collector's reach, so the interpreter's shutdown does not walk the heap."""
    import gc
    from importlib.metadata import entry_points

    from distatomenv import cli
    script = entry_points(group="console_scripts")["distatomenv"]
    assert script.value == "distatomenv.cli:entry"
    monkeypatch.setattr(sys, "argv", ["distatomenv", "info", "/nonexistent/store.zarr"])
    gc.unfreeze()
    try:
        status = cli.entry()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert status == cli.main(["info", "/nonexistent/store.zarr"]) != 0
    assert "no such store" in capsys.readouterr().err
