"""The Dask backend, with real worker processes (2 workers, 1 thread each).

Every store made on a Dask cluster must be bit-identical to the serial store:
on a LocalCluster started by ``compute(..., workers=2)``, on an external
cluster (``dask scheduler`` + ``dask worker``) joined by the CLI with
``--scheduler``, and when a worker process dies in the middle of the run.  A
unit that fails for good must stop the run with a clear error and leave the
store incomplete.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

import distatomenv                                    # noqa: E402
from distatomenv import open_store                    # noqa: E402
from distatomenv.errors import DistatomenvError, StoreIncompleteError  # noqa: E402
from distatomenv.tools.synth import write_lj_dataset        # noqa: E402
from stores import assert_same_store, store_arrays  # noqa: E402

DASK = Path(sys.executable).parent / "dask"
NEIGHBORS = "2 2 2 2"
CHUNK = 16
TIMEOUT = 120
#: Small index blocks and scaling parts, so that several run on every worker.
GRAIN = {"DISTATOMENV_INDEX_BLOCK_BYTES": "4096", "DISTATOMENV_SCALING_PART_ATOMS": "100"}


def _clean_env(**extra):
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = "1"
    env.update(GRAIN)
    env.update(extra)
    return env


@pytest.fixture(scope="module", autouse=True)
def worker_env():
    """Worker processes (started by LocalCluster, they inherit this process's
    environment) use one numba thread."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMBA_NUM_THREADS", "1")
        for k, v in GRAIN.items():
            mp.setenv(k, v)
        yield mp


@pytest.fixture(scope="module")
def lj7(tmp_path_factory):
    """7 structures of 64 atoms and their serial store.

    The serial run also fills numba's on-disk cache, so the workers load the
    kernels instead of each compiling them.
    """
    d = tmp_path_factory.mktemp("lj7")
    paths = write_lj_dataset(d, n_structures=7, n_atoms=64, seed=1)
    distatomenv.compute(paths["input.data"], neighbors=NEIGHBORS, out=d / "serial.zarr",
                        chunk_rows=CHUNK, threads=1)
    return paths["input.data"], store_arrays(d / "serial.zarr")


def _pids(path):
    rd = open_store(path)
    return {u: rd.unit_info(u)["pid"] for u in range(rd.n_units)
            if rd.unit_info(u).get("atoms")}


# ----------------------------------------------------------------------------- API
def test_needs_workers_or_scheduler(lj7, tmp_path):
    with pytest.raises(DistatomenvError, match="workers=N.*scheduler=ADDRESS"):
        distatomenv.compute(lj7[0], neighbors=NEIGHBORS, out=tmp_path / "s.zarr",
                            backend="dask")
    with pytest.raises(DistatomenvError, match="not both"):
        distatomenv.compute(lj7[0], neighbors=NEIGHBORS, out=tmp_path / "s.zarr",
                            backend="dask", workers=2, scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "s.zarr").exists()


def test_local_cluster_bit_identical_to_serial(lj7, tmp_path):
    data, reference = lj7
    out = tmp_path / "dask.zarr"
    seen = []
    store = distatomenv.compute(data, neighbors=NEIGHBORS, out=out, chunk_rows=CHUNK,
                                n_units=4, backend="dask", workers=2,
                                progress=lambda s, a: seen.append((s, a)))
    assert_same_store(out, reference)
    assert len(seen) == 4 and sum(a for _, a in seen) == 7 * 64
    t = store.timings
    assert t["workers"] == 2 and t["load balance"] >= 1.0
    for k in ("setup", "compute", "write", "start cluster", "total"):
        assert t[k] >= 0.0
    pids = set(_pids(out).values())
    assert os.getpid() not in pids
    assert len(pids) == 2, f"units ran in {len(pids)} worker process(es), expected 2"


def test_worker_killed_mid_run_completes(lj7, tmp_path, monkeypatch):
    """The worker that runs unit 1 dies (a test-only worker plugin,
    tests/dask_faults.py) after writing its rows; its nanny restarts it, the
    scheduler reschedules the unit, the store is right."""
    from dask_faults import kill_worker_after_unit
    data, reference = lj7
    marker = tmp_path / "killed"
    kill_worker_after_unit(monkeypatch, 1, marker)
    out = tmp_path / "killed.zarr"
    distatomenv.compute(data, neighbors=NEIGHBORS, out=out, chunk_rows=CHUNK,
                        n_units=4, backend="dask", workers=2)
    assert marker.exists(), "the worker plugin did not fire"
    killed_pid = int(marker.read_text())
    assert_same_store(out, reference)
    assert _pids(out)[1] != killed_pid        # unit 1 was redone by another process


def test_index_error_on_a_worker_names_file_and_line(lj7, tmp_path):
    from distatomenv.errors import DataFileError
    lines = Path(lj7[0]).read_text().splitlines(keepends=True)
    k = max(i for i, line in enumerate(lines) if line.startswith("energy"))
    lines[k] = "energy x\n"
    bad = tmp_path / "input.data"
    bad.write_text("".join(lines))
    (tmp_path / "input.nn").write_text((Path(lj7[0]).parent / "input.nn").read_text())
    with pytest.raises(DataFileError, match=rf"{bad}:{k + 1}: found 'x'"):
        distatomenv.compute(bad, neighbors=NEIGHBORS, out=tmp_path / "bad.zarr",
                            chunk_rows=CHUNK, backend="dask", workers=2)
    assert not (tmp_path / "bad.zarr").exists()


def test_failing_unit_stops_run_and_leaves_store_incomplete(lj7, tmp_path):
    from distatomenv.executors.dask import UnitFailedError as BackendUnitFailedError
    from distatomenv.errors import UnitFailedError
    assert BackendUnitFailedError is UnitFailedError        # the old import still works
    out = tmp_path / "bad.zarr"
    with pytest.raises(UnitFailedError) as info:
        distatomenv.compute(lj7[0], neighbors="40 0 0 0", out=out, chunk_rows=CHUNK,
                            backend="dask", workers=2)
    msg = str(info.value)
    assert f"unit {info.value.unit} failed on dask worker" in msg
    assert "NotEnoughNeighborsError" in msg and "requested" in msg
    assert info.value.error_type == "NotEnoughNeighborsError"
    with pytest.raises(StoreIncompleteError):
        open_store(out)
    rd = open_store(out, allow_incomplete=True)
    assert "NotEnoughNeighborsError" in rd.error


def test_resume_computes_only_missing_units(lj7, tmp_path):
    """An incomplete store (4 units, unit 2 missing) is finished by a Dask run
    with the default unit count of 2 workers: resume plans as many units as the
    store has and runs only the missing one on a worker."""
    import shutil
    from distatomenv.store.writer import mark_failed
    data, reference = lj7
    out = tmp_path / "resume.zarr"
    distatomenv.compute(data, neighbors=NEIGHBORS, out=out, chunk_rows=CHUNK, n_units=4,
                        threads=1)
    mark_failed(out, "simulated crash")
    shutil.rmtree(out / "units" / f"{2:08d}")
    with pytest.raises(StoreIncompleteError):
        open_store(out)
    distatomenv.compute(data, neighbors=NEIGHBORS, out=out, chunk_rows=CHUNK, resume=True,
                        backend="dask", workers=2)
    assert_same_store(out, reference)
    pids = _pids(out)
    assert sorted(pids) == [0, 1, 2, 3]
    assert [u for u, p in pids.items() if p != os.getpid()] == [2]


# ----------------------------------------------------------------------------- CLI
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port, proc, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def _logs(paths):
    return "\n".join(f"--- {p.name}:\n{p.read_text()[-3000:]}" for p in paths if p.exists())


@pytest.mark.skipif(not DASK.exists(), reason=f"no dask executable at {DASK}")
def test_cli_external_scheduler_bit_identical_to_serial(lj7, tmp_path):
    from distributed import Client
    data, reference = lj7
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = _clean_env()
    procs, logs = [], []

    def start(name, args):
        log = tmp_path / f"{name}.log"
        logs.append(log)
        with open(log, "w") as f:
            procs.append(subprocess.Popen([str(DASK), *args], env=env, cwd=tmp_path,
                                          stdin=subprocess.DEVNULL, stdout=f,
                                          stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        sched = start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                    "--no-dashboard"])
        if not _wait_listening(port, sched):
            pytest.fail(f"dask scheduler did not start\n{_logs(logs)}")
        for k in range(2):
            start(f"worker{k}", ["worker", address, "--nthreads", "1", "--nworkers", "1",
                                 "--no-dashboard"])
        with Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "cli.zarr"
        cmd = [sys.executable, "-m", "distatomenv.cli", "compute", str(data),
               "--neighbors", NEIGHBORS, "-o", str(out), "--chunk-rows", str(CHUNK),
               "--scheduler", address, "--threads", "1"]
        proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=TIMEOUT)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                        f"stderr:\n{proc.stderr}\n{_logs(logs)}")
        assert_same_store(out, reference)
        assert len(set(_pids(out).values())) == 2
    finally:
        for p in reversed(procs):            # workers first, then the scheduler
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)


def test_scaling_command_on_workers_equals_serial(lj7, tmp_path):
    """``distatomenv scaling --workers 2``: the parts run as tasks; the file is
    byte-identical to the serial one."""
    outs = []
    for extra in ([], ["--workers", "2"]):
        out = tmp_path / f"scaling{len(outs)}.data"
        p = subprocess.run([sys.executable, "-m", "distatomenv.cli", "scaling", str(lj7[0]),
                            "-o", str(out), "--threads", "1", *extra], env=_clean_env(),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        outs.append(out.read_text())
    assert outs[0] == outs[1] and outs[0].count("\n") > 5
