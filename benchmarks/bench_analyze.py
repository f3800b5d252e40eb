"""Time and peak memory of ``distatomenv analyze`` (issue 5).

(a) CG water (n2p2's coarse-graining example, ../shared/reference/CG_water_inputs_only,
    6,840 rows, ``--neighbors 4``: 60 columns of G and of dGdx), the full k sweep
    3..200 on F_x with dGdx, against n2p2's notebook method run in the same script:
    scikit-learn ``KMeans(n_clusters=k)`` (n_init=10, the notebook-era default) on
    the whole array in memory, then ``scipy.stats.ttest_ind(cluster, rest,
    equal_var=False)`` for every cluster.  Also: dask-ml ``Incremental(
    MiniBatchKMeans)`` (one pass per k) against our one-pass sweep, fit only, on
    CG water and on a generated store of 1 million rows x 60.
(b) A generated store of >= 5 million rows x 60 features (random blobs written
    directly through the store writer; forces a noisy linear function of the
    descriptors), the full default analysis (k sweep, 3 seeds, 100 permutation
    rounds, all three components, descriptor G), peak memory target <= 3 GB.

Every measurement runs in its own child process, which reports its own peak
RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, plus its children's).

Usage::

    python benchmarks/bench_analyze.py                    # (a) and (b)
    python benchmarks/bench_analyze.py --skip-big         # (a) only
    python benchmarks/bench_analyze.py --big-rows 200000  # a smaller (b) to try
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
KS = [3, 5, 10, 20, 50, 100, 150, 200]
ALPHA = 0.0026997960632601866


def _peak_mib():
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kib, child_kib) / 1024.0


# ----------------------------------------------------------------------------
# children
# ----------------------------------------------------------------------------
def child_ours(spec):
    import distatomenv

    t = time.perf_counter()
    res = distatomenv.analyze(spec["store"], spec["out"], **spec["params"])
    wall = time.perf_counter() - t
    shares = {f"{r['element']}/{r['component']}/{r['descriptor']}/{r['k']}":
              [r["significant_share"], r["null_low"], r["null_high"], r["eta2"], r["stability_ari"]]
              for r in res.results}
    return {"wall_s": wall, "timings": res.timings, "shares": shares}


def child_notebook(spec):
    """n2p2's notebook: everything in memory, sklearn KMeans, a t-test loop."""
    from scipy import stats
    from sklearn.cluster import KMeans

    import distatomenv

    t = time.perf_counter()
    reader = distatomenv.open_store(spec["store"])
    X = reader.read(spec["element"], spec["descriptor"])
    f = reader.read(spec["element"], "forces")[:, "xyz".index(spec["component"])]
    shares = {}
    for k in spec["ks"]:
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).labels_
        sig = 0
        for i in range(k):
            p = stats.ttest_ind(f[labels == i], f[labels != i], equal_var=False).pvalue
            sig += p < ALPHA
        shares[str(k)] = sig / k
    return {"wall_s": time.perf_counter() - t, "shares": shares}


def child_incremental(spec):
    """Fit time of the sweep: dask-ml Incremental (one pass per k) vs ours (all k, one pass)."""
    from dask_ml.wrappers import Incremental
    from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus

    import distatomenv
    from distatomenv.analysis.clustering import StreamingKMeans

    reader = distatomenv.open_store(spec["store"])
    e, d = spec["element"], spec["descriptor"]
    Xd = reader.dask(e, d).astype(np.float64)
    n = reader.n_rows(e)
    rows = np.sort(np.random.default_rng(0).choice(n, size=min(n, 10000), replace=False))
    sample = reader.read(e, d, rows).astype(np.float64)
    t = time.perf_counter()
    for k in spec["ks"]:
        init, _ = kmeans_plusplus(sample, k, random_state=k)
        Incremental(MiniBatchKMeans(n_clusters=k, init=init, n_init=1, batch_size=4096,
                                    compute_labels=False), shuffle_blocks=True,
                    random_state=0).fit(Xd)
    t_inc = time.perf_counter() - t
    chunk = reader.layout.chunk_rows

    def blocks(epoch):
        for s in range(0, n, 8 * chunk):
            yield reader.read(e, d, slice(s, min(n, s + 8 * chunk))).astype(np.float64)

    t = time.perf_counter()
    StreamingKMeans(spec["ks"], seeds=[0], batch_size=4096).fit(blocks, sample)
    t_ours = time.perf_counter() - t
    return {"incremental_fit_s": t_inc, "ours_fit_s": t_ours}


def start_generated_store(spec, derivatives=False):
    """A one-element store of ``spec["rows"]`` rows x ``spec["features"]``
    columns in structures of 1,000 atoms, created through the store writer and
    ready for rows: returns (writer, structure index of every row)."""
    from distatomenv.store.schema import StoreLayout
    from distatomenv.store.writer import StoreWriter, create_store

    n, p, chunk = spec["rows"], spec["features"], spec["chunk_rows"]
    per_struct = 1000
    S = -(-n // per_struct)
    counts = np.full(S, per_struct, dtype=np.int64)
    counts[-1] = n - per_struct * (S - 1)
    layout = StoreLayout(elements=["Cm"], n_rows={"Cm": n}, nG={"Cm": p},
                         ndG={"Cm": p if derivatives else 0}, nblocks={"Cm": 0},
                         derivatives=derivatives, n_structures=S, chunk_rows=chunk)
    structures = {"natoms": counts, "periodic": np.ones(S, bool),
                  "lattice": np.tile(np.eye(3) * 30.0, (S, 1, 1)), "energy": np.zeros(S),
                  "charge": np.zeros(S), "counts": counts[:, None]}
    create_store(spec["store"], layout, structures, {"command": f"benchmarks/{HERE.name}",
                                                     "inputs": {"generated": spec}},
                 n_units=1, overwrite=True)
    return StoreWriter(spec["store"]), np.repeat(np.arange(S), counts)


def child_generate(spec):
    """A one-element store of random blobs, written through the store writer."""
    from distatomenv.store.writer import finalize_store

    n, p, chunk = spec["rows"], spec["features"], spec["chunk_rows"]
    t = time.perf_counter()
    w, structure = start_generated_store(spec)
    rng = np.random.default_rng(0)
    centers = rng.uniform(-3, 3, size=(40, p))
    wvec = rng.standard_normal((p, 3)) / np.sqrt(p)
    step = chunk * 64
    for s in range(0, n, step):
        m = min(step, n - s)
        X = centers[rng.integers(40, size=m)] + rng.standard_normal((m, p))
        F = X @ wvec + rng.standard_normal((m, 3))
        w.write_rows("Cm", s, {"G": X, "forces": F, "structure": structure[s:s + m],
                               "atom": (np.arange(s, s + m) % 1000).astype(np.int32)})
    w.mark_unit_done(0)
    finalize_store(spec["store"], 1)
    return {"wall_s": time.perf_counter() - t}


CHILDREN = {"ours": child_ours, "notebook": child_notebook, "incremental": child_incremental,
            "generate": child_generate}


def run_child(kind, spec, script=HERE):
    """Run ``script --child kind SPEC`` in a fresh process; its last stdout line (JSON)."""
    out = subprocess.run([sys.executable, str(script), "--child", kind, json.dumps(spec)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"child {kind} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def du(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# ----------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"))
    ap.add_argument("--reference", default=str(HERE.parents[2] / "shared" / "reference"))
    ap.add_argument("--workdir", help="keep the stores here (default: a temporary folder)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--big-rows", type=int, default=5_000_000)
    ap.add_argument("--features", type=int, default=60)
    ap.add_argument("--incremental-rows", type=int, default=1_000_000,
                    help="rows of the store for the Incremental-vs-ours fit comparison")
    args = ap.parse_args()
    if args.child:
        kind, spec = args.child
        result = CHILDREN[kind](json.loads(spec))
        result["peak_rss_mib"] = _peak_mib()
        print(json.dumps(result))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_analyze_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}; {os.cpu_count()} cores")
    try:
        if not args.skip_small:
            import distatomenv

            ref = Path(args.reference) / "CG_water_inputs_only"
            store = work / "cg_water.zarr"
            if not store.exists():
                t = time.perf_counter()
                distatomenv.compute(ref / "input.data", neighbors="4", out=store)
                print(f"(a) CG water store computed in {time.perf_counter() - t:.1f} s")
            base = {"store": str(store), "element": "Cm", "descriptor": "dGdx", "component": "x",
                    "ks": KS}
            nb = run_child("notebook", base)
            print(f"(a) notebook method (sklearn KMeans n_init=10 + t-test loop), k sweep {KS}: "
                  f"{nb['wall_s']:.1f} s, peak RSS {nb['peak_rss_mib']:.0f} MiB")
            runs = {}
            for label, extra in (("defaults (3 seeds, 100 permutations, report)", {}),
                                 ("like the notebook (1 seed, no permutations, report)",
                                  {"seeds": 1, "permutations": 0})):
                spec = {"store": str(store), "out": str(work / "report_cg"),
                        "params": {"component": "x", **extra}}
                ours = runs[label] = run_child("ours", spec)
                print(f"(a) distatomenv analyze --component x, {label}: {ours['wall_s']:.1f} s "
                      f"(analysis {ours['timings']['total']:.1f} s: " +
                      ", ".join(f"{k} {v:.1f}" for k, v in ours["timings"].items() if k != "total") +
                      f"), peak RSS {ours['peak_rss_mib']:.0f} MiB")
            ours = next(iter(runs.values()))
            print("(a) significant share per k: notebook | ours [chance band] eta2 ARI")
            for k in KS:
                share, lo, hi, eta2, ari = ours["shares"][f"Cm/x/dGdx/{k}"]
                print(f"    k={k:>3}: {nb['shares'][str(k)]:.2f} | {share:.2f} [{lo:.2f}, {hi:.2f}] "
                      f"{eta2:.3f} {ari:.2f}")
            inc = run_child("incremental", base)
            print(f"(a) fit of the sweep only, CG water: dask-ml Incremental(MiniBatchKMeans) one "
                  f"pass per k {inc['incremental_fit_s']:.1f} s; ours, all k in one pass "
                  f"{inc['ours_fit_s']:.1f} s")
            m = args.incremental_rows
            run_child("generate", {"store": str(work / "mid.zarr"), "rows": m,
                                   "features": args.features, "chunk_rows": 4096})
            inc = run_child("incremental", {**base, "store": str(work / "mid.zarr"), "descriptor": "G"})
            print(f"(a) fit of the sweep only, generated {m:,} x {args.features}: dask-ml "
                  f"Incremental one pass per k {inc['incremental_fit_s']:.1f} s; ours, all k in "
                  f"one pass (1 thread) {inc['ours_fit_s']:.1f} s")
        if not args.skip_big:
            store = work / "big.zarr"
            spec = {"store": str(store), "rows": args.big_rows, "features": args.features,
                    "chunk_rows": 4096}
            gen = run_child("generate", spec)
            print(f"(b) generated {args.big_rows:,} rows x {args.features} features in "
                  f"{gen['wall_s']:.0f} s; store {du(store) / 2**30:.2f} GiB on disk")
            ours = run_child("ours", {"store": str(store), "out": str(work / "report_big"),
                                      "params": {"descriptor": "G"}})
            print(f"(b) distatomenv analyze --descriptor G (defaults: k sweep {KS}, 3 seeds, "
                  f"100 permutations, components x y z): {ours['wall_s']:.0f} s (" +
                  ", ".join(f"{k} {v:.0f}" for k, v in ours["timings"].items() if k != "total") +
                  f"), peak RSS {ours['peak_rss_mib']:.0f} MiB "
                  f"({'met' if ours['peak_rss_mib'] <= 3000 else 'NOT met'}: target <= 3 GB)")
            for key, v in sorted(ours["shares"].items(), key=lambda kv: (kv[0].split('/')[1], int(kv[0].split('/')[-1]))):
                print(f"    {key}: share {v[0]:.2f} chance [{v[1]:.2f}, {v[2]:.2f}] eta2 {v[3]:.3f} "
                      f"ARI {v[4]:.2f}")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
