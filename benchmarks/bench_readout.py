"""Time and peak memory of the cross-validated force readout (issue 11).

(a) CG water (n2p2's coarse-graining example, ../shared/reference/CG_water_inputs_only,
    6,840 rows, ``--neighbors 4``: 60 dG columns): each tier on its own (linear:
    5 folds, null, interval, learning curve; G-weighted; k-NN reference).
(c) The design advice (importance, elimination, saturation; issue 12) over the
    readout alone: on CG water, and on the package's own CG water (20 x 64 molecules)
    computed with a generated input.nn of 108 SFs (60 radial, 48 angular), --neighbors 2.
(b) A generated one-element store of N rows x 60 dG columns per component (default
    5,000,000 rows; random rows, forces a noisy linear function of the dG rows, float64),
    written through the store writer: the linear tier, target <= 30 s and <= 1.5 GB on
    this 2-core machine.

Each measurement runs in its own child process, which reports its own peak RSS.

Usage::

    python benchmarks/bench_readout.py                     # (a) and (b)
    python benchmarks/bench_readout.py --rows 1000000      # a smaller (b)
    python benchmarks/bench_readout.py --skip-big          # (a) only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
import bench_analyze  # noqa: E402
from bench_analyze import _peak_mib, du, start_generated_store  # noqa: E402


def child_readout(spec):
    from distatomenv.analysis import Analyzer

    t = time.perf_counter()
    a = Analyzer(clusters_view=False, tiers=spec["tiers"], threads=spec.get("threads")).fit(spec["store"])
    wall = time.perf_counter() - t
    entries = [{k: r[k] for k in ("element", "tier", "components", "r2", "r2_low", "r2_high", "r2_null",
                                  "n_features", "skipped")} for r in a.readout_]
    return {"wall_s": wall, "peak_mib": _peak_mib(), "timings": a.timings_, "readout": entries}


def child_advice(spec):
    from distatomenv.analysis import Analyzer

    out = {}
    for advice in (False, True):
        t = time.perf_counter()
        a = Analyzer(clusters_view=False, tiers=["linear"], advice=advice).fit(spec["store"])
        out["with" if advice else "without"] = time.perf_counter() - t
    el = a.advice_["elimination"]
    return {**out, "timings": a.timings_, "peak_mib": _peak_mib(), "n_sf": el["n_sf"],
            "suggested": sum(len(v) for v in el["suggested"].values()),
            "r2_full": el["r2_full"], "r2_suggested": el["r2_suggested"],
            "n_features": [r["n_features"] for r in a.readout_ if r["tier"] == "linear"][0]}


def child_compute(spec):
    import distatomenv

    t = time.perf_counter()
    distatomenv.compute(spec["data"], settings=spec["settings"], scaling=spec.get("scaling"),
                        neighbors=spec.get("neighbors", "4"), out=spec["store"], overwrite=True)
    return {"wall_s": time.perf_counter() - t}


def child_many_sfs(spec):
    """The package's CG water with an input.nn of 108 SFs."""
    from distatomenv.tools.synth import write_water_dataset
    from distatomenv.tools.synth.settings import settings_text

    d = Path(spec["dir"])
    data = write_water_dataset(d, n_structures=20, n_molecules=64, seed=0, overwrite=True)
    radial = [(eta, rs) for eta in (0.01, 0.05, 0.2, 0.5, 1.0, 2.0) for rs in np.linspace(0, 5.4, 10)]
    angular = [(eta, lam, zeta) for eta in (0.001, 0.01, 0.03, 0.06, 0.1, 0.2)
               for lam in (1, -1) for zeta in (1, 2, 4, 8)]
    nn = d / "many.nn"
    nn.write_text(settings_text("CG water, 108 SFs", "benchmarks/bench_readout.py", ["Cm"], radial,
                                angular, angular_type=3, cutoff=6.0))
    return {"data": str(data["cg_data"]), "settings": str(nn)}


def child_generate(spec):
    from distatomenv.store.writer import finalize_store

    n, p, chunk = spec["rows"], spec["features"], spec["chunk_rows"]
    t = time.perf_counter()
    w, structure = start_generated_store(spec, derivatives=True)
    rng = np.random.default_rng(0)
    wvec = rng.standard_normal(p) / np.sqrt(p)
    step = chunk * 32
    for s in range(0, n, step):
        m = min(step, n - s)
        dG = [rng.standard_normal((m, p)) for _ in range(3)]
        F = np.column_stack([d @ wvec for d in dG]) + 0.3 * rng.standard_normal((m, 3))
        w.write_rows("Cm", s, {"G": rng.standard_normal((m, p)), "dGdx": dG[0], "dGdy": dG[1],
                               "dGdz": dG[2], "forces": F, "structure": structure[s:s + m],
                               "atom": (np.arange(s, s + m) % 1000).astype(np.int32)})
    w.mark_unit_done(0)
    finalize_store(spec["store"], 1)
    return {"wall_s": time.perf_counter() - t}


CHILDREN = {"readout": child_readout, "compute": child_compute, "generate": child_generate,
            "advice": child_advice, "many_sfs": child_many_sfs}


def run_child(kind, spec):
    return bench_analyze.run_child(kind, spec, script=HERE)


def _line(name, r):
    lin = [e for e in r["readout"] if e["r2"] is not None and len(e["components"]) == 3]
    r2 = ", ".join(f"{e['element']} {e['tier']} R2 {e['r2']:.4f} (null {e['r2_null']:.4f})" for e in lin)
    print(f"{name:<34} {r['wall_s']:7.2f} s  peak {r['peak_mib']:7.0f} MiB  {r2}")
    print(f"{'':<34} phases: " + ", ".join(f"{k} {v:.2f}" for k, v in r["timings"].items()))


def _advice_line(name, r):
    print(f"{name}: {r['n_features']} dG columns; readout alone {r['without']:.2f} s, with the "
          f"advice {r['with']:.2f} s (advice {r['timings'].get('advice', 0):.2f} s), peak "
          f"{r['peak_mib']:.0f} MiB; suggested {r['suggested']} of {r['n_sf']} SFs, R2 "
          + ", ".join(f"{e} {r['r2_full'][e]:.4f} -> {r['r2_suggested'][e]:.4f}" for e in r["r2_full"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--reference", default=str(HERE.parents[2] / "shared" / "reference"))
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-readout-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cg = Path(args.reference) / "CG_water_inputs_only"
        if cg.is_dir():
            store = str(work / "cg.zarr")
            run_child("compute", {"data": str(cg / "input.data"), "settings": str(cg / "input.nn"),
                                  "scaling": str(cg / "scaling.data"), "store": store})
            print("(a) CG water, 6,840 rows x 60 dG columns, 5 folds")
            for tiers in (["linear"], ["g_weighted"], ["reference_knn"]):
                _line(f"  {tiers[0]}", run_child("readout", {"store": store, "tiers": tiers}))
            _advice_line("(c) CG water, 12 SFs", run_child("advice", {"store": store}))
        else:
            print(f"(a) skipped: no CG water reference at {cg}")
        many = run_child("many_sfs", {"dir": str(work / "many")})
        store = str(work / "many.zarr")
        run_child("compute", {**many, "store": store, "neighbors": "2"})
        _advice_line("(c) generated CG water, 108 SFs", run_child("advice", {"store": store}))
        if not args.skip_big:
            store = str(work / "big.zarr")
            g = run_child("generate", {"store": store, "rows": args.rows, "features": 60,
                                       "chunk_rows": 2048})
            print(f"(b) generated {args.rows:,} rows x 60 dG columns (x, y, z): written in "
                  f"{g['wall_s']:.0f} s, {du(store) / 2**30:.2f} GiB on disk")
            _line("  linear (5 folds, null, curve)", run_child("readout", {"store": store,
                                                                          "tiers": ["linear"]}))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
