"""The MPI backend, with real ranks: ``mpiexec -n N python -m distatomenv.cli compute``.

Every store made under MPI must be bit-identical to the serial store; a rank
that fails must end the run on every rank (no hang) and leave an incomplete
store that ``--resume`` completes.  The launcher is the venv's own ``mpiexec``
(the ``mpi`` extra's MPICH): another MPI's launcher would start independent
size-1 processes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distatomenv import open_store
from distatomenv.errors import InputFileError, StoreIncompleteError
from distatomenv.tools.synth import write_lj_dataset
from stores import assert_same_store, store_arrays

MPIEXEC = Path(sys.executable).parent / "mpiexec"
NEIGHBORS = "2 2 2 2"
TIMEOUT = 120

pytestmark = pytest.mark.skipif(
    not MPIEXEC.exists(),
    reason=f"no mpiexec beside the Python interpreter ({MPIEXEC}); "
           "install the mpi extra: pip install -e '.[mpi]'")


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_"))}
    env["NUMBA_NUM_THREADS"] = "1"
    # small index blocks and scaling parts, so that several run on every rank
    env.update(DISTATOMENV_INDEX_BLOCK_BYTES="4096", DISTATOMENV_SCALING_PART_ATOMS="100")
    env.update(extra)
    return env


#: The test-only entry point that makes one work unit fail (tests/mpi_faults.py).
FAULTS = Path(__file__).with_name("mpi_faults.py")


def _compute(data, out, *, ranks=None, args=(), env=None, check=True, fail_unit=None):
    """Run ``distatomenv compute`` (under ``mpiexec -n ranks`` when given);
    with ``fail_unit``, the rank about to run that work unit raises instead."""
    entry = ["-m", "distatomenv.cli"] if fail_unit is None else [str(FAULTS), str(fail_unit)]
    cmd = [sys.executable, *entry, "compute", str(data),
           "--neighbors", NEIGHBORS, "--chunk-rows", "16", "--threads", "1",
           "-o", str(out), *args]
    if ranks is not None:
        cmd = [str(MPIEXEC), "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, env=env or _env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def lj7(tmp_path_factory):
    """7 structures of 64 atoms (uneven over 2 and 3 ranks) and their serial store.

    The serial run also fills numba's on-disk cache, so the ranks load the
    kernels instead of each compiling them.
    """
    d = tmp_path_factory.mktemp("lj7")
    paths = write_lj_dataset(d, n_structures=7, n_atoms=64, seed=1)
    _compute(paths["input.data"], d / "serial.zarr", args=["--backend", "serial"])
    return paths["input.data"], store_arrays(d / "serial.zarr")


@pytest.fixture(scope="module")
def lj2(tmp_path_factory):
    """2 structures: fewer structures than ranks."""
    d = tmp_path_factory.mktemp("lj2")
    paths = write_lj_dataset(d, n_structures=2, n_atoms=64, seed=1)
    _compute(paths["input.data"], d / "serial.zarr", args=["--backend", "serial"])
    return paths["input.data"], store_arrays(d / "serial.zarr")


@pytest.fixture(scope="module")
def mpi2_store(lj7, tmp_path_factory):
    """A store made by ``mpiexec -n 2`` without --backend (the CLI detects MPI)."""
    out = tmp_path_factory.mktemp("mpi2") / "mpi2.zarr"
    _compute(lj7[0], out, ranks=2)
    return out


def test_two_ranks_bit_identical_to_serial(lj7, mpi2_store):
    assert_same_store(mpi2_store, lj7[1])


def test_detects_mpi_and_uses_every_rank(mpi2_store):
    rd = open_store(mpi2_store)
    pids = {rd.unit_info(u)["pid"] for u in range(rd.n_units)
            if rd.unit_info(u).get("atoms")}
    assert rd.n_units >= 2
    assert len(pids) == 2, f"units ran in {len(pids)} process(es), expected 2 ranks"


@pytest.mark.parametrize("ranks", [3, 5])
def test_three_and_five_ranks_bit_identical_to_serial(lj7, tmp_path, ranks):
    proc = _compute(lj7[0], tmp_path / "mpi.zarr", ranks=ranks, args=["--backend", "mpi"])
    assert_same_store(tmp_path / "mpi.zarr", lj7[1])
    assert f"ranks {ranks}" in proc.stdout           # rank 0's summary line


def test_more_ranks_than_structures(lj2, tmp_path):
    _compute(lj2[0], tmp_path / "mpi3.zarr", ranks=3)
    assert_same_store(tmp_path / "mpi3.zarr", lj2[1])


def _units_of_rank(data, rank, size=2, chunk=16):
    """Ids of the non-empty units that rank ``rank`` runs (unit k of the to-do
    list runs on rank k % size), from the same default plan as compute."""
    from distatomenv.io.index import index_data
    from distatomenv.engine.plan import default_units, make_plan
    idx = index_data(data, ["Ar", "Kr"])
    units = make_plan(idx.counts, chunk, default_units(idx.n_atoms, size, chunk))
    todo = [u for u in units if not u.empty]
    return [u.id for k, u in enumerate(todo) if k % size == rank]


def test_failing_rank_stops_every_rank_then_resume(lj7, tmp_path):
    out = tmp_path / "fail.zarr"
    mine = _units_of_rank(lj7[0], 1)
    proc = _compute(lj7[0], out, ranks=2, check=False,       # rank 1's first unit fails
                    fail_unit=mine[0])
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert f"unit {mine[0]}" in proc.stderr and "rank 1" in proc.stderr, proc.stderr
    # both ranks report the failure (rank 0 names the failing rank)
    assert proc.stderr.count("distatomenv: error:") == 2, proc.stderr
    with pytest.raises(StoreIncompleteError, match="rank 1"):
        open_store(out)
    rd = open_store(out, allow_incomplete=True)
    assert rd.missing_units() == mine            # rank 1 skipped the rest of its units
    _compute(lj7[0], out, ranks=2, args=["--resume"])
    assert_same_store(out, lj7[1])


def test_bad_input_fails_on_every_rank(lj7, tmp_path):
    """An error of rank 0's preparation (here: a complete store exists) is raised
    on every rank, so no rank waits for a broadcast that never comes."""
    out = tmp_path / "exists.zarr"
    _compute(lj7[0], out, ranks=2)
    proc = _compute(lj7[0], out, ranks=2, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("already exists") == 2, proc.stderr


def _corrupt_last_energy(src, dst):
    """A copy of ``src`` whose last 'energy' line holds 'x'; returns its line number."""
    lines = Path(src).read_text().splitlines(keepends=True)
    k = max(i for i, line in enumerate(lines) if line.startswith("energy"))
    lines[k] = "energy x\n"
    Path(dst).write_text("".join(lines))
    return k + 1


def test_index_error_in_another_ranks_block_names_file_and_line(lj7, tmp_path):
    """The data's index blocks run on every rank; the first error, found in a
    block near the end of the file, reaches every rank with its absolute line."""
    bad = tmp_path / "input.data"
    line = _corrupt_last_energy(lj7[0], bad)
    (tmp_path / "input.nn").write_text((Path(lj7[0]).parent / "input.nn").read_text())
    assert bad.stat().st_size > 4 * 4096             # several blocks
    proc = _compute(bad, tmp_path / "bad.zarr", ranks=2, check=False)
    assert proc.returncode == 3, proc.stderr      # bad input (README "Failures")
    assert proc.stderr.count(f"{bad}:{line}: found 'x'") == 2, proc.stderr
    assert not (tmp_path / "bad.zarr").exists()


def test_errors_cross_ranks_with_type_and_message():
    from distatomenv.executors.mpi import _pack_error, _unpack_error
    err = InputFileError("input.data", 7, "expected a number, found 'abc'")
    again = _unpack_error(_pack_error(err))
    assert type(again) is InputFileError and str(again) == str(err)
    again = _unpack_error(_pack_error(ValueError("plain")))
    assert type(again) is ValueError and str(again) == "plain"


def test_mpi4py_imported_lazily():
    code = ("import sys, distatomenv, distatomenv.cli, distatomenv.executors.mpi; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), timeout=TIMEOUT)


PROGRESS_SCRIPT = """
import json, sys
import distatomenv
calls = []
rd = distatomenv.compute(sys.argv[1], neighbors="2 2 2 2", out=sys.argv[2], chunk_rows=16,
                         n_units=5, backend="mpi", threads=1,
                         progress=lambda s, a: calls.append(a))
from mpi4py import MPI
rank = MPI.COMM_WORLD.Get_rank()
json.dump({"atoms": sum(calls), "calls": len(calls), "ranks": rd.timings["ranks"],
           "complete": rd.status}, open(f"{sys.argv[2]}.rank{rank}.json", "w"))
"""


def test_python_api_progress_reaches_rank_0(lj7, tmp_path):
    import json
    script = tmp_path / "run.py"
    script.write_text(PROGRESS_SCRIPT)
    out = tmp_path / "api.zarr"
    subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(script), str(lj7[0]), str(out)],
                   check=True, env=_env(), stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    r0 = json.loads(Path(f"{out}.rank0.json").read_text())
    r1 = json.loads(Path(f"{out}.rank1.json").read_text())
    assert r0 == {"atoms": 7 * 64, "calls": 5, "ranks": 2, "complete": "complete"}
    assert r1 == {"atoms": 0, "calls": 0, "ranks": 2, "complete": "complete"}
    assert_same_store(out, lj7[1])


def test_scaling_command_on_ranks_equals_serial_and_n2p2(reference_dir, tmp_path):
    """``mpiexec -n 2 distatomenv scaling``: the parts are spread over the ranks,
    rank 0 writes the file, which is byte-identical to the serial one and
    matches n2p2's nnp-scaling to 1e-12."""
    case = reference_dir / "H2O_wide_poly2_sigma"
    outs = {}
    for ranks in (None, 2):
        out = tmp_path / f"scaling.{ranks}.data"
        cmd = [sys.executable, "-m", "distatomenv.cli", "scaling", str(case / "input.data"),
               "-o", str(out), "--threads", "1"]
        if ranks:
            cmd = [str(MPIEXEC), "-n", str(ranks), *cmd]
        p = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        assert p.stdout.count(str(out)) == 1            # rank 0 reports
        outs[ranks] = out.read_text()
    assert outs[None] == outs[2]
    ours = [line.split() for line in outs[2].splitlines() if line.strip() and line[0] != "#"]
    ref = [line.split() for line in (case / "expected" / "scaling.data").read_text().splitlines()
           if line.strip() and line[0] != "#"]
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a[:2] == b[:2]
        for x, y in zip(a[2:], b[2:]):
            assert abs(float(x) - float(y)) <= 1e-12 * abs(float(y)), (a, b)


_IDLE_SCRIPT = r"""
import sys, time
from mpi4py import MPI
from distatomenv.executors import mpi

def times(shared, x):
    return x * shared

def busy(mapper, threads):
    end = time.process_time() + 1.5          # rank 0 works 1.5 CPU-s alone
    while time.process_time() < end:
        pass
    return mapper(times, [1, 2, 3], 10)

t = time.process_time()
out = mpi.coordinate(busy, threads=1)
print(MPI.COMM_WORLD.Get_rank(), round(time.process_time() - t, 3), out, flush=True)
"""


def test_a_waiting_rank_sleeps_instead_of_spinning(tmp_path):
    """While rank 0 works alone, the other rank waits for it without taking a
    core: a blocking MPI call polls at 100 % and would use about as much CPU
    as rank 0 (1.5 s); the rank's maps still run and answer."""
    script = tmp_path / "idle.py"
    script.write_text(_IDLE_SCRIPT)
    p = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(script)], env=_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    rows = {int(r): (float(cpu), rest) for r, cpu, rest in
            (line.split(" ", 2) for line in p.stdout.splitlines())}
    assert rows[0][1] == "[10, 20, 30]" and rows[1][1] == "None"
    assert rows[0][0] >= 1.5
    assert rows[1][0] < 0.4, rows
