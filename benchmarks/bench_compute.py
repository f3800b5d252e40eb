"""Throughput, memory and store size of ``distatomenv compute``.

Workload: n2p2's H2O_RPBE-D3 example input.data concatenated N times
(N = 100: 400 structures, 33,600 atoms), ``--neighbors "6 2 4 4"``, with
derivatives.  Measured side by side in one run:

* end to end: wall time of ``distatomenv compute`` as a fresh process, from
  process start to store closed, numba cache warm (a warm-up run first);
* kernels only: in one process, neighbour lists + SFs + derivatives +
  environment rows of every structure (``EnvironmentCalculator.compute``),
  inputs already parsed, no store;
* peak memory (max RSS of the compute process) at N = 100 and N = 400;
* store bytes per atom, float64 and float32, against n2p2's text output
  (12,388 bytes per atom for this case: atomic-env.G + dGdx + dGdy + dGdz).
  The plain concatenation repeats every structure 100 times, which a
  compressor exploits; the store size is therefore also measured on a
  variant whose copies are jittered (positions + N(0, 0.05 Bohr)), which is
  the honest figure for real data.

Usage:  python benchmarks/bench_compute.py [--reference DIR] [--copies 100 400]
Needs the n2p2 reference data (shared/reference); inputs are built in a
temporary directory, never in the project.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
N2P2_BYTES_PER_ATOM = (1440432 + 3 * 907312) / 336      # reference README sizes
N2P2_ATOMS_PER_S = 1700.0                               # n2p2 nnp-atomenv: 19.6 s for 33,600 atoms


def build_input(ref, directory, copies, jitter=0.0, seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("input.nn", "scaling.data"):
        shutil.copy(ref / name, directory / name)
    if jitter == 0.0:
        text = (ref / "input.data").read_text()
        (directory / "input.data").write_text(text * copies)
    else:
        sys.path.insert(0, str(HERE.parents[1]))
        from distatomenv.io.inputdata import read_structures, write_structures
        rng = np.random.default_rng(seed)
        base = read_structures(ref / "input.data")
        out = []
        for _ in range(copies):
            for s in base:
                t = type(s)(**{k: getattr(s, k) for k in s.__dataclass_fields__})
                t.positions = s.positions + rng.normal(0.0, jitter, s.positions.shape)
                out.append(t)
        write_structures(directory / "input.data", out)
    return directory / "input.data"


def timed_process(cmd, *, cwd=None, env=None):
    """Run ``cmd`` as a child of a small wrapper process: its exit status, wall
    seconds, peak RSS (KiB) and CPU seconds (``cpu`` = ``user`` + ``sys``).  The peak RSS is
    that of the largest process of the tree (getrusage of the children: every
    descendant that was waited for, e.g. the ranks under mpiexec); the CPU
    seconds are the whole tree's.  ``cwd``, ``env``: of the wrapper and ``cmd``."""
    wrapper = ("import resource, subprocess, sys, time, json\n"
               "t = time.perf_counter()\n"
               "p = subprocess.run(sys.argv[1:])\n"
               "dt = time.perf_counter() - t\n"
               "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "print(json.dumps({'rc': p.returncode, 'seconds': dt, 'maxrss_kib': r.ru_maxrss,\n"
               "                  'cpu': r.ru_utime + r.ru_stime, 'user': r.ru_utime,\n"
               "                  'sys': r.ru_stime}))\n")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True,
                         cwd=cwd, env=env)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(out.stderr)
    return res


def run_compute(data, store, *extra):
    """Wall time and peak RSS (KiB) of one `distatomenv compute` process."""
    res = timed_process([sys.executable, "-m", "distatomenv.cli", "compute", str(data), "--neighbors",
                         "6 2 4 4", "-o", str(store), "--overwrite", "-q", *extra])
    return res["seconds"], res["maxrss_kib"]


def kernels_only(data, threads):
    import numba
    sys.path.insert(0, str(HERE.parents[1]))
    from distatomenv.descriptors.environment import EnvironmentCalculator
    from distatomenv.descriptors.spec import parse_neighbor_spec
    from distatomenv.io.inputdata import index_file, read_structure
    from distatomenv.io.scaling import read_scaling
    from distatomenv.io.settings import read_settings
    numba.set_num_threads(threads)
    d = Path(data).parent
    st = read_settings(d / "input.nn")
    sc = read_scaling(d / "scaling.data", st.sfset)
    coeffs = {e: sc.coefficients(e, st.scaling, st.scale_min, st.scale_max) for e in st.elements}
    calc = EnvironmentCalculator(st.sfset, parse_neighbor_spec("6 2 4 4", st.elements), coeffs,
                                 st.conv_length)
    idx = index_file(data, st.elements)
    work = []
    for s in range(idx.n_structures):
        x = read_structure(data, idx, s)
        work.append((np.array([st.elements.index(e) for e in x.elements]),
                     x.remapped_positions(), x.lattice))
    calc.compute(*work[0])                      # compile / load cache
    t = time.perf_counter()
    for w in work:
        calc.compute(*w)
    dt = time.perf_counter() - t
    return idx.n_atoms / dt, dt


def store_bytes(store):
    sys.path.insert(0, str(HERE.parents[1]))
    from distatomenv.store.reader import open_store
    rd = open_store(store)
    return rd.nbytes_stored() / sum(rd.n_rows(e) for e in rd.elements)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=os.environ.get(
        "DISTATOMENV_REFERENCE", str(HERE.parents[2] / "shared" / "reference")))
    ap.add_argument("--copies", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    ref = Path(args.reference) / "H2O_RPBE-D3"
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory(prefix="distatomenv-bench-") as tmp:
        tmp = Path(tmp)
        data = {n: build_input(ref, tmp / f"x{n}", n) for n in args.copies}
        n0 = args.copies[0]
        atoms0 = 336 * n0
        run_compute(data[n0], tmp / "warm.zarr")          # warm numba's cache
        times = [run_compute(data[n0], tmp / "s.zarr")[0] for _ in range(args.repeat)]
        e2e = statistics.median(times)
        results["end_to_end"] = {"copies": n0, "atoms": atoms0, "seconds": times,
                                 "atoms_per_s": atoms0 / e2e,
                                 "vs_n2p2": atoms0 / e2e / N2P2_ATOMS_PER_S}
        k2, _ = kernels_only(data[n0], 2)
        k1, _ = kernels_only(data[n0], 1)
        results["kernels"] = {"atoms_per_s_2_threads": k2, "atoms_per_s_1_thread": k1,
                              "vs_n2p2_sf_phase_4000": k2 / 4000.0}
        mem = {}
        for n in args.copies:
            _, rss = run_compute(data[n], tmp / f"m{n}.zarr")
            mem[n] = rss
        results["peak_rss_mib"] = {str(n): mem[n] / 1024 for n in args.copies}
        sizes = {"float64 (copies, repeated data)": store_bytes(tmp / "s.zarr")}
        jit = build_input(ref, tmp / "jit", n0, jitter=0.05)
        run_compute(jit, tmp / "j64.zarr")
        run_compute(jit, tmp / "j32.zarr", "--dtype", "float32")
        sizes["float64 (jittered copies)"] = store_bytes(tmp / "j64.zarr")
        sizes["float32 (jittered copies)"] = store_bytes(tmp / "j32.zarr")
        results["store_bytes_per_atom"] = sizes
        results["n2p2_bytes_per_atom"] = N2P2_BYTES_PER_ATOM
    e = results["end_to_end"]
    print(f"end to end ({e['atoms']} atoms, median of {len(e['seconds'])}): "
          f"{e['atoms_per_s']:.0f} atoms/s = {e['vs_n2p2']:.2f} x n2p2's 1,700 atoms/s "
          f"(runs: {', '.join(f'{t:.2f} s' for t in e['seconds'])})")
    k = results["kernels"]
    print(f"kernels only: {k['atoms_per_s_2_threads']:.0f} atoms/s with 2 threads, "
          f"{k['atoms_per_s_1_thread']:.0f} with 1 ({k['vs_n2p2_sf_phase_4000']:.2f} x n2p2's "
          f"~4,000 atoms/s SF phase)")
    for n, v in results["peak_rss_mib"].items():
        print(f"peak RSS at {n} copies ({336 * int(n)} atoms): {v:.0f} MiB")
    for name, v in results["store_bytes_per_atom"].items():
        print(f"store {name}: {v:.0f} bytes/atom = n2p2 / {N2P2_BYTES_PER_ATOM / v:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
