"""Parallelism shared by every layer: cores, numba's threads, the mapper and
the executor protocol.

* :func:`cores` and :func:`set_threads`: the cores this process may use and
  numba's thread count (set here and nowhere else).
* A **mapper** ``mapper(fn, items, shared, report=None)`` returns
  ``[fn(shared, item) for item in items]``, wherever it runs the items;
  :func:`local_map` runs them in this process, the executors provide mappers
  that spread them over MPI ranks or Dask workers.  ``report(result)`` is
  called as items finish.
* **Progress** is reported through a small protocol: ``progress(structures,
  atoms)`` as work finishes and, if the object has it, ``progress.start(phase,
  structures, atoms)`` when a phase begins (:func:`start_phase`).
* An :class:`Executor` runs the work units of a run (:mod:`distatomenv.executors`).

This module imports only the standard library (numba inside set_threads).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Protocol, runtime_checkable

from .errors import DistatomenvError

__all__ = ["Executor", "UnitWorker", "cores", "set_threads", "local_map", "start_phase",
           "positive_int_env", "optional_module"]


def optional_module(name: str, package: str, what: str, install: str):
    """Import ``name`` (an optional dependency of ``what``), or raise a
    DistatomenvError that says which package is missing and how to install it."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as exc:           # pragma: no cover - depends on the install
        raise DistatomenvError(f"{what} needs {package} ({exc}); install it with "
                               f"{install}") from None


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


def local_map(fn, items, shared, report=None):
    """The mapper of this process: ``[fn(shared, item) for item in items]``.

    Executors provide mappers with the same signature that spread the items
    over MPI ranks or Dask workers; ``report(result)`` is called as items finish.
    """
    out = []
    for item in items:
        out.append(fn(shared, item))
        if report is not None:
            report(out[-1])
    return out


def start_phase(progress, phase, structures, atoms) -> None:
    """Tell a progress object (if it wants to know) what the next phase's totals are."""
    start = getattr(progress, "start", None)
    if start is not None:
        start(phase, structures, atoms)


def positive_int_env(name, default) -> int:
    """The positive integer in environment variable ``name`` (``default`` when unset)."""
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    if not v.isdigit() or int(v) < 1:
        raise DistatomenvError(f"environment variable {name}={v!r}: expected a positive integer")
    return int(v)


class UnitWorker(Protocol):
    """What an executor makes from the job, once per process (or worker thread)."""

    def run(self, unit) -> dict:
        """Compute and write one unit; returns its counters: ``unit``, ``atoms``,
        ``structures``, ``seconds``, ``write`` (seconds spent writing)."""

    def close(self) -> None:
        """Drain the pending writes and release the resources."""


@runtime_checkable
class Executor(Protocol):
    """Runs the work units of a run: in this process, on MPI ranks, on a Dask cluster.

    The compute side hands everything in; an executor imports nothing of it:

    * ``start(n_workers=, mapper=, threads=)`` prepares the run on the
      coordinating process (the mapper runs the index blocks and scaling parts
      where the executor wants) and returns ``(job, todo, timings)``: the
      picklable job (with ``units`` and ``out``, the store), the units still
      to compute and seconds per phase;
    * ``make_worker(job)`` gives a :class:`UnitWorker` (picklable, e.g. a class);
    * ``finish(job, timings, stats, t_start)`` finalises the store and returns
      its reader; ``stats`` holds the executor's per-phase seconds.

    ``progress(structures, atoms)`` is called in the coordinating process as
    units finish.
    """

    def compute(self, start: Callable[..., Any], make_worker: Callable[[Any], UnitWorker],
                finish: Callable[..., Any], *, threads=None, progress=None) -> Any:
        """Run a whole compute; returns what ``finish`` returned (every MPI rank
        returns a reader of the finished store)."""

    def coordinate(self, fn: Callable[[Any, int], Any], *, threads=None) -> Any:
        """Run ``fn(mapper, threads)`` in the coordinating process with the
        executor's processes behind the mapper (the scaling pass on its own)."""
