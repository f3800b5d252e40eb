"""Cost of the force-matching features (issue 17) and R² of every readout tier.

Workloads (n2p2's examples, built in a temporary directory): H2O_RPBE-D3 x 100
(400 structures, 33,600 atoms, ``--neighbors "6 2 4 4"``) and CG water x 100
(``--neighbors "4"``), copies jittered (positions + N(0, 0.05)) so that the store
sizes are honest.  Side by side, interleaved rounds, medians:

* end-to-end ``distatomenv compute --threads 1`` CPU and wall time with
  ``--force-matching none``, ``linear`` and ``quadratic`` (numba cache warm: a
  warm-up run first); the ratio is taken on CPU time, which a busy shared
  machine distorts least;
* store bytes per atom of each;
* the readout of the quadratic store: time of the environment-row tiers and
  of the potential tiers, and the R² of every tier.

Usage:  python benchmarks/bench_forcematch.py [--reference DIR] [--copies 100] [--rounds 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from bench_compute import build_input, store_bytes, timed_process  # noqa: E402

CASES = (("H2O_RPBE-D3", "6 2 4 4"), ("CG_water_inputs_only", "4"))
MODES = ("none", "linear", "quadratic")


def run_compute(data, store, *extra):
    """Wall and CPU seconds (user + system) of one `distatomenv compute` process,
    one thread: CPU time is what a busy shared machine distorts least."""
    res = timed_process([sys.executable, "-m", "distatomenv.cli", "compute", str(data), "-o", str(store),
                         "--overwrite", "-q", "--threads", "1", *extra])
    return res["seconds"], res["cpu"]


def readout(store, tiers):
    from distatomenv.analysis import Analyzer

    t = time.perf_counter()
    a = Analyzer(clusters_view=False, advice=False, tiers=tiers).fit(store)
    return time.perf_counter() - t, a


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=str(HERE.parents[2] / "shared" / "reference"))
    ap.add_argument("--copies", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-fm-"))
    for case, nb in CASES:
        ref = Path(args.reference) / case
        if not ref.is_dir():
            print(f"{case}: skipped, no reference at {ref}")
            continue
        data = build_input(ref, work / case, args.copies, jitter=0.05)
        run_compute(data, work / f"{case}-warm.zarr", "--neighbors", nb, "--force-matching", "quadratic")
        secs = {m: [] for m in MODES}
        cpus = {m: [] for m in MODES}
        for _ in range(args.rounds):
            for m in MODES:
                s, c = run_compute(data, work / f"{case}-{m}.zarr", "--neighbors", nb, "--force-matching", m)
                secs[m].append(s)
                cpus[m].append(c)
        base = statistics.median(cpus["none"])
        print(f"{case} x {args.copies}, --neighbors \"{nb}\", --threads 1:")
        for m in MODES:
            med = statistics.median(cpus[m])
            print(f"  compute --force-matching {m:<9} CPU {med:7.2f} s ({', '.join(f'{x:.1f}' for x in cpus[m])}; "
                  f"wall {', '.join(f'{x:.1f}' for x in secs[m])}), {med / base - 1:+.0%} over none; "
                  f"{store_bytes(work / f'{case}-{m}.zarr'):8.0f} bytes/atom")
        store = work / f"{case}-quadratic.zarr"
        t_env, a = readout(store, ["linear", "g_weighted", "reference_knn"])
        t_pot, b = readout(store, ["linear", "potential_linear", "potential_quadratic"])
        print(f"  readout: environment-row tiers {t_env:.1f} s; linear + potential tiers {t_pot:.1f} s")
        for r in a.readout_ + [r for r in b.readout_ if r["tier"].startswith("potential")]:
            if len(r["components"]) == 3:
                r2 = "skipped" if r["r2"] is None else f"{r['r2']:.4f}"
                extra = f", energies {r['energy_r2']:.4f}" if r.get("energy_r2") is not None else ""
                print(f"    {r['element']:<4} {r['tier']:<20} R2 {r2} ({r['n_features']} features){extra}")


if __name__ == "__main__":
    main()
