"""First-run compile cost of ``distatomenv compute``, per numba function.

A fresh process with an empty NUMBA_CACHE_DIR computes the LJ reference case
(``--neighbors 1``) while listening to numba's compile events; a second
process repeats it with the cache now warm.  Printed: the seconds spent
compiling each function (inclusive of the functions it calls that were
compiled for it), the wall and CPU seconds and peak RSS of both processes, and
the difference cold - warm.

Usage:  python benchmarks/bench_compile.py [--reference DIR] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from bench_compute import timed_process  # noqa: E402

#: runs compute in this process and prints the compile seconds per function as JSON
PROBE = """
import json, sys, time, collections
from numba.core import event
spent = collections.defaultdict(float)
open_ = {}

class Listener(event.Listener):
    def on_start(self, ev):
        open_[id(ev)] = time.perf_counter()
        ev.data["_t"] = open_[id(ev)]

    def on_end(self, ev):
        d = ev.data["dispatcher"].py_func
        spent[d.__module__ + "." + d.__qualname__] += time.perf_counter() - ev.data["_t"]

event.register("numba:compile", Listener())
from distatomenv.cli import main
rc = main(sys.argv[1:])
print("COMPILE " + json.dumps(dict(spent)))
sys.exit(rc)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=str(HERE.parents[2] / "shared" / "reference"))
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    lj = Path(args.reference) / "LJ" / "input.data"
    if not lj.exists():
        sys.exit(f"no LJ reference case at {lj} (--reference)")
    cold, warm, per_fn = [], [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
            env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "cache"))
            cmd = [sys.executable, "-c", PROBE, "compute", str(lj), "--neighbors", "1", "-o",
                   str(Path(tmp) / "s.zarr"), "--overwrite", "-q"]
            cold.append(timed_process(cmd, env=env))
            warm.append(timed_process(cmd, env=env))
            out = subprocess.run(cmd, env=dict(env, NUMBA_CACHE_DIR=str(Path(tmp) / "c2")),
                                 capture_output=True, text=True)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("COMPILE ")][-1]
            per_fn.append(json.loads(line[len("COMPILE "):]))
    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    print(f"LJ reference, --neighbors 1, {args.rounds} rounds, medians")
    for name, runs in (("cold (empty cache)", cold), ("warm", warm)):
        print(f"  {name:20s} wall {med(runs, 'seconds'):6.1f} s  CPU {med(runs, 'cpu'):6.1f} s  "
              f"peak RSS {med(runs, 'maxrss_kib') / 1024:6.0f} MiB")
    print(f"  cold - warm: wall {med(cold, 'seconds') - med(warm, 'seconds'):.1f} s, "
          f"CPU {med(cold, 'cpu') - med(warm, 'cpu'):.1f} s")
    names = sorted({k for d in per_fn for k in d}, key=lambda k: -statistics.median(
        d.get(k, 0.0) for d in per_fn))
    print("  compile seconds per function (inclusive; >= 0.05 s):")
    for k in names:
        v = statistics.median(d.get(k, 0.0) for d in per_fn)
        if v >= 0.05:
            print(f"    {v:6.2f}  {k}")


if __name__ == "__main__":
    main()
