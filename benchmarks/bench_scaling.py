"""Strong scaling of ``distatomenv compute`` over processes.

Workload: n2p2's CG water input.data (19 structures, 6,840 Cm beads)
concatenated ``--copies`` times (20: 380 structures, 136,800 atoms),
``--neighbors 4``, with derivatives, scaling.data given (as n2p2's
``nnp-atomenv`` is run).  For each backend and process count P, one fresh
``distatomenv compute`` process tree (numba cache warm, one numba thread per
process, so P processes use P cores):

* ``serial``: one process (P = 1);
* ``mpi``: ``mpiexec -n P`` with the venv's own launcher;
* ``dask``: ``--workers P`` (a LocalCluster of P worker processes).

Reported per run: wall time of the whole command (process start to exit),
the in-run phases (index, plan, compute, write, ...), the load balance (most
loaded process's atoms over the mean) and the parallel efficiency
E(P) = T(1) / (P * T(P)), with T(1) the same backend at one process and the
serial run as a second baseline.  Also: the index of a larger file (``--index-copies``,
default 100: 143 MB) with 1 and P MPI ranks, since the index is the part
that stays serial in n2p2.

Usage:  python benchmarks/bench_scaling.py [--procs 1 2] [--copies 20] [--repeat 3]
Needs ../shared/reference (or --reference DIR); inputs go to a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
VENV_BIN = Path(sys.executable).parent
MPIEXEC = VENV_BIN / "mpiexec"

INDEX_SCRIPT = r"""
import json, sys, time
from mpi4py import MPI
from distatomenv.executors.mpi import _RankPool
from distatomenv.io.index import index_data
comm = MPI.COMM_WORLD
pool = _RankPool(comm)
if comm.Get_rank() == 0:
    t0 = time.perf_counter()
    idx = index_data(sys.argv[1], ["Cm"], pool.map if comm.Get_size() > 1 else None)
    t = time.perf_counter() - t0
    comm.bcast(("done",), root=0)
    print(json.dumps({"seconds": t, "structures": idx.n_structures, "atoms": idx.n_atoms,
                      "ranks": comm.Get_size()}))
else:
    pool.serve()
"""


def env():
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_", "DISTATOMENV_"))}
    e["NUMBA_NUM_THREADS"] = "1"
    return e


def build(ref: Path, directory: Path, copies: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("input.nn", "scaling.data"):
        shutil.copy(ref / name, directory / name)
    (directory / "input.data").write_text((ref / "input.data").read_text() * copies)
    return directory / "input.data"


def run_compute(data: Path, out: Path, backend: str, procs: int) -> dict:
    cmd = [str(VENV_BIN / "distatomenv"), "compute", str(data), "--neighbors", "4",
           "-o", str(out), "--overwrite", "--threads", "1"]
    if backend == "mpi":
        cmd = [str(MPIEXEC), "-n", str(procs), *cmd]
    elif backend == "dask":
        cmd += ["--workers", str(procs)]
    else:
        cmd += ["--backend", "serial"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    # "distatomenv: N atoms in S structures -> STORE (T s, R atoms/s; phase X s, ...)"
    line = p.stdout.strip().splitlines()[-1]
    phases = dict((k.strip(), float(v)) for k, v in
                  re.findall(r"([a-z][a-z ]*?) ([0-9.]+)(?: s)?(?:,|\))", line.split(";", 1)[1]))
    atoms = int(re.search(r"(\d+) atoms in", line).group(1))
    return {"backend": backend, "procs": procs, "wall": wall, "cpu": cpu, "atoms": atoms,
            "phases": phases}


def run_index(data: Path, procs: int) -> dict:
    cmd = [str(MPIEXEC), "-n", str(procs), sys.executable, "-c", INDEX_SCRIPT, str(data)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise SystemExit(f"index run failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, default=HERE.parents[2] / "shared" / "reference")
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--index-copies", type=int, default=100)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--backends", nargs="+", default=["serial", "mpi", "dask"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    ref = args.reference / "CG_water_inputs_only"
    if not ref.is_dir():
        raise SystemExit(f"{ref} not found (pass --reference DIR)")
    with tempfile.TemporaryDirectory(prefix="distatomenv-bench-") as tmp:
        tmp = Path(tmp)
        data = build(ref, tmp / "data", args.copies)
        print(f"workload: CG water x{args.copies}, {data.stat().st_size / 1e6:.1f} MB, "
              f"--neighbors 4, derivatives; {os.cpu_count()} cores")
        run_compute(data, tmp / "warm.zarr", "serial", 1)          # numba cache warm
        results = []
        for backend in args.backends:
            for procs in (args.procs if backend != "serial" else [1]):
                runs = [run_compute(data, tmp / "s.zarr", backend, procs)
                        for _ in range(args.repeat)]
                best = min(runs, key=lambda r: r["wall"])
                best["wall_all"] = [round(r["wall"], 2) for r in runs]
                results.append(best)
        base = {r["backend"]: r["wall"] for r in results if r["procs"] == 1}
        print(f"\n{'backend':8s} {'P':>3s} {'wall s':>8s} {'atoms/s':>9s} {'E vs P=1':>9s} "
              f"{'E vs serial':>11s} {'balance':>8s} {'cpu s':>6s}  phases (s)")
        for r in results:
            p = r["procs"]
            eff = base[r["backend"]] / (p * r["wall"])
            eff_serial = base.get("serial", float("nan")) / (p * r["wall"])
            r["efficiency"], r["efficiency_vs_serial"] = eff, eff_serial
            ph = r["phases"]
            shown = ", ".join(f"{k} {v:.2f}" for k, v in ph.items()
                              if k in ("index", "plan", "create store", "start cluster", "setup",
                                       "compute", "write", "finalize"))
            print(f"{r['backend']:8s} {p:3d} {r['wall']:8.2f} {r['atoms'] / r['wall']:9.0f} "
                  f"{eff:9.1%} {eff_serial:11.1%} {ph.get('load balance', 1.0):8.3f} "
                  f"{r['cpu']:6.1f}  {shown}"
                  f"  (walls {r['wall_all']})")
        one = next((r for r in results if r["procs"] == 1), None)
        if one is not None:
            busy = one["cpu"] / one["wall"]
            cores = os.cpu_count() or 1
            print(f"\none {one['backend']} process keeps {busy:.2f} cores busy (numba thread, "
                  f"writer thread, zarr I/O); on {cores} cores P processes can gain at most "
                  + ", ".join(f"{min(p, cores / busy):.2f}x at P={p} (E <= "
                              f"{min(p, cores / busy) / p:.0%})" for p in args.procs if p > 1))
        big = build(ref, tmp / "big", args.index_copies)
        print(f"\nindex of CG water x{args.index_copies} ({big.stat().st_size / 1e6:.0f} MB, "
              f"16 MiB blocks):")
        index = []
        for procs in args.procs:
            best = min((run_index(big, procs) for _ in range(args.repeat)),
                       key=lambda r: r["seconds"])
            index.append(best)
            print(f"  {procs} rank(s): {best['seconds']:.3f} s, "
                  f"{big.stat().st_size / 1e6 / best['seconds']:.0f} MB/s, "
                  f"{best['atoms'] / best['seconds'] / 1e6:.2f} M atoms/s")
        if args.json:
            args.json.write_text(json.dumps({"compute": results, "index": index}, indent=1))


if __name__ == "__main__":
    main()
