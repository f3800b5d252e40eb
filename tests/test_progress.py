"""Progress bars: on a terminal for every backend, never in a pipe or with --quiet."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from distatomenv.cli.progress import ProgressBar
from distatomenv.tools.synth import write_lj_dataset

MPIEXEC = Path(sys.executable).parent / "mpiexec"


def test_progress_bar_phases_totals_and_structures():
    f = io.StringIO()
    bar = ProgressBar(file=f)
    bar.start("scaling", 4, 400)
    for _ in range(4):
        bar(1, 100)
    bar.start("compute", 3, 300)
    bar(2, 200)
    bar.close()
    text = f.getvalue()
    assert "scaling: 100%" in text and "400/400" in text and "4/4 structures" in text
    assert "compute:  67%" in text and "2/3 structures" in text


@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    d = tmp_path_factory.mktemp("lj")
    return write_lj_dataset(d, n_structures=5, n_atoms=64, seed=2)["input.data"]


def _env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_", "DISTATOMENV_TEST_"))}
    env["NUMBA_NUM_THREADS"] = "1"
    return env


def _run(cmd, tty: bool):
    """Run ``cmd`` with stderr on a pseudo-terminal (or a pipe); returns (rc, stdout, stderr)."""
    if not tty:
        p = subprocess.run(cmd, capture_output=True, text=True, env=_env(),
                           stdin=subprocess.DEVNULL, timeout=300)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                         env=_env())
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:                  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = p.stdout.read().decode()
    p.wait(timeout=300)
    os.close(master)
    return p.returncode, out, b"".join(chunks).decode(errors="replace")


def _compute(lj, out, *extra):
    return [sys.executable, "-m", "distatomenv.cli", "compute", str(lj), "--neighbors",
            "2 2 2 2", "--chunk-rows", "32", "--threads", "1", "-o", str(out), *extra]


@pytest.mark.parametrize("backend", ["serial", "mpi", "dask"])
def test_bar_on_a_terminal_for_every_backend(lj, tmp_path, backend):
    cmd = _compute(lj, tmp_path / "s.zarr")
    if backend == "mpi":
        cmd = [str(MPIEXEC), "-n", "2", *cmd]
    elif backend == "dask":
        cmd += ["--workers", "2"]
    rc, out, err = _run(cmd, tty=True)
    assert rc == 0, err
    # the scaling pass and compute each show a bar with totals, structures and rate
    assert "scaling: 100%" in err and "compute: 100%" in err, err
    assert "320/320" in err and "5/5 structures" in err and "atom/s" in err, err
    assert err.count("compute:   0%") == 1, err          # one bar (MPI: rank 0 only)
    # and one summary with the phases
    assert "320 atoms in 5 structures" in out
    for phase in ("index", "scaling", "plan", "compute", "write"):
        assert f"{phase} " in out, out


def test_no_bar_in_a_pipe_or_with_quiet(lj, tmp_path):
    rc, out, err = _run(_compute(lj, tmp_path / "a.zarr"), tty=False)
    assert rc == 0 and "compute:" not in err and "%|" not in err, err
    rc, out, err = _run(_compute(lj, tmp_path / "b.zarr", "--quiet"), tty=True)
    assert rc == 0 and err.strip() == "" and out.strip() == "", (out, err)
    rc, out, err = _run(_compute(lj, tmp_path / "c.zarr", "--progress"), tty=False)
    assert rc == 0 and "compute: 100%" in err, err
