"""The serial backend: one process runs every unit in order.

Numba threads (``prange`` over atoms inside the kernels) are the only
parallelism; their number is set here and nowhere else.
"""
from __future__ import annotations

import os
import time


def cores() -> int:
    """The number of cores this process may use (its CPU affinity on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not on Linux
        return os.cpu_count() or 1


def set_threads(threads=None) -> int:
    """Set numba's thread count (default: the cores this process may use)."""
    import numba
    if threads is None:
        threads = cores()
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads


def run(job, units, *, threads=None, progress=None) -> dict:
    """Run ``units`` of ``job`` here; returns seconds per phase.

    progress : optional callable(structures, atoms) called after each unit.
    """
    from ..pipeline import UnitRunner
    set_threads(threads)
    t0 = time.perf_counter()
    runner = UnitRunner(job)
    t_setup = time.perf_counter() - t0
    t_write = 0.0
    t1 = time.perf_counter()
    try:
        for unit in units:
            stats = runner.run(unit)
            t_write += stats["write"]
            if progress is not None:
                progress(stats["structures"], stats["atoms"])
    finally:
        runner.close()
    total = time.perf_counter() - t1
    return {"setup": t_setup, "compute": total - t_write, "write": t_write}
