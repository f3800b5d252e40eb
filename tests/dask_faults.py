"""Test-only fault injection for the Dask backend (tests/test_dask.py).

:class:`KillWorkerAfterUnit` is a worker plugin: registered on a cluster, it
makes the worker process that has just run a given work unit (its rows are
written) exit at once with ``os._exit(1)`` before reporting the unit, unless
its marker file exists; it creates the marker first, so the rescheduled unit
does not die again.  The marker holds the killed process's id.  Nothing in the
package reads a test switch: the plugin wraps the executor's task function in
the worker processes.
"""
from __future__ import annotations

import os

from distributed import WorkerPlugin


class KillWorkerAfterUnit(WorkerPlugin):
    """Kill the worker process that finishes work unit ``unit_id``, once."""

    def __init__(self, unit_id: int, marker: str):
        self.unit_id = int(unit_id)
        self.marker = os.fspath(marker)

    def setup(self, worker):
        from distatomenv.executors import dask as backend
        run = backend._run_unit
        if getattr(run, "killer", None) is not None:        # already wrapped here
            return
        unit_id, marker = self.unit_id, self.marker

        def run_then_die(job, uid, token, threads):
            stats = run(job, uid, token, threads)
            if uid == unit_id:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return stats
                os.write(fd, f"{os.getpid()}\n".encode())
                os.close(fd)
                os._exit(1)
            return stats

        run_then_die.killer = self
        # tasks name the function by module and attribute, so the worker runs this one
        backend._run_unit = run_then_die


def kill_worker_after_unit(monkeypatch, unit_id: int, marker) -> None:
    """Register :class:`KillWorkerAfterUnit` on every local cluster the Dask
    executor starts in this test (through ``monkeypatch``)."""
    from distatomenv.executors import dask as backend
    start = backend._local_cluster

    def start_with_plugin(n_workers):
        cluster, client = start(n_workers)
        client.register_plugin(KillWorkerAfterUnit(unit_id, marker))
        return cluster, client

    monkeypatch.setattr(backend, "_local_cluster", start_with_plugin)
