"""The serial executor: one process runs every unit in order.

Numba threads (inside the kernels) are the only parallelism; their number is
set with :func:`distatomenv.parallel.set_threads`.
"""
from __future__ import annotations

import time

from ..parallel import set_threads
from ..store.writer import record_failure

__all__ = ["SerialExecutor", "run"]


def run(job, units, make_worker, *, threads=None, progress=None) -> dict:
    """Run ``units`` of ``job`` here with one ``make_worker(job)``; returns
    seconds per phase.

    progress : optional callable(structures, atoms) called after each unit.
    """
    set_threads(threads)
    t0 = time.perf_counter()
    worker = make_worker(job)
    t_setup = time.perf_counter() - t0
    t_write = 0.0
    t1 = time.perf_counter()
    try:
        for unit in units:
            stats = worker.run(unit)
            t_write += stats["write"]
            if progress is not None:
                progress(stats["structures"], stats["atoms"])
    finally:
        worker.close()
    total = time.perf_counter() - t1
    return {"setup": t_setup, "compute": total - t_write, "write": t_write}


class SerialExecutor:
    """:class:`distatomenv.parallel.Executor` of this process alone; options
    of the other executors are ignored."""

    def __init__(self, **options):
        pass

    def compute(self, start, make_worker, finish, *, threads=None, progress=None):
        t_start = time.perf_counter()
        job, todo, timings = start(n_workers=1, mapper=None, threads=threads)
        try:
            stats = run(job, todo, make_worker, threads=threads, progress=progress)
        except BaseException as exc:
            record_failure(job.out, exc)
            raise
        return finish(job, timings, stats, t_start)

    def coordinate(self, fn, *, threads=None):
        return fn(None, threads)
