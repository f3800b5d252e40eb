"""Peak memory of one Dask worker for compute and for analyze (issue 7: sizing
the workers of deploy/kubernetes).

Workload: n2p2's H2O_RPBE-D3 input.data concatenated ``--copies`` times
(default 100: 33,600 atoms, H 22,400 rows, O 11,200 rows), ``--neighbors
"6 2 4 4"`` with derivatives (H: nG 162, ndG 1,053 per component; O: nG 136,
ndG 882), float64.

For every measurement a fresh LocalCluster of ONE worker process with one
thread is started (peak RSS only grows, so a worker is never reused), the job
runs on it, and the worker reports ``ru_maxrss`` of its own process:

* ``idle``: the worker after importing distatomenv and loading numba's kernels
  (a unit of 1 structure), i.e. the fixed part;
* ``compute chunk_rows=C``: the whole compute (every unit on this worker);
* ``analyze k<=K``: ``distatomenv analyze`` with the default k sweep up to K,
  the default descriptors (dGdx/dGdy/dGdz per component) and sample.

Usage:  python benchmarks/bench_worker_memory.py [--reference DIR] [--copies 100]
Needs the n2p2 reference data (shared/reference).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))


def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cluster():
    import distributed
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit=0)
    return cluster, distributed.Client(cluster)


def _worker_peak(client):
    return list(client.run(_maxrss_mib).values())[0]


def measure_compute(data, out, chunk_rows):
    import distatomenv
    cluster, client = _cluster()
    try:
        t0 = time.perf_counter()
        distatomenv.compute(data, neighbors="6 2 4 4", out=out, chunk_rows=chunk_rows,
                            overwrite=True, backend="dask", scheduler=cluster.scheduler_address)
        return _worker_peak(client), time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()


def measure_analyze(store, report, ks):
    import distatomenv
    cluster, client = _cluster()
    try:
        t0 = time.perf_counter()
        distatomenv.analyze(store, report, clusters=ks, scheduler=cluster.scheduler_address,
                            progress=False)
        return _worker_peak(client), time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()


def main():
    from bench_compute import build_input
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=Path, default=HERE.parents[2] / "shared" / "reference")
    p.add_argument("--copies", type=int, default=100)
    args = p.parse_args()
    ref = args.reference / "H2O_RPBE-D3"
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = tmp / "one"
        build_input(ref, small, 1)
        results["idle (1 structure)"] = measure_compute(small / "input.data", tmp / "one.zarr",
                                                        2048)
        data = tmp / "big"
        build_input(ref, data, args.copies, jitter=0.05)
        for chunk in (2048, 8192):
            results[f"compute chunk_rows={chunk}"] = measure_compute(
                data / "input.data", tmp / f"c{chunk}.zarr", chunk)
        store = tmp / "c2048.zarr"
        for ks in ([3, 5, 10, 20], [3, 5, 10, 20, 50, 100, 150, 200]):
            results[f"analyze k<={max(ks)}"] = measure_analyze(store, tmp / f"r{max(ks)}", ks)
    for k, (mib, s) in results.items():
        print(f"{k:28s} worker peak RSS {mib:7.0f} MiB   {s:6.1f} s")
    print(json.dumps({k: {"peak_rss_mib": round(m), "seconds": round(s, 1)}
                      for k, (m, s) in results.items()}))


if __name__ == "__main__":
    main()
