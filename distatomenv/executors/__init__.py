"""Executors: where the work units of a run (and the maps of the index and the
scaling pass) run.  Each implements :class:`distatomenv.parallel.Executor`.

* :mod:`.serial` -- this process, units in order;
* :mod:`.mpi` -- every rank of an MPI job (``mpiexec -n N distatomenv ...``);
* :mod:`.dask` -- tasks on a ``distributed`` cluster.

Only executors touch process-level parallelism: mpi4py and distributed are
imported lazily, in their module.  They import nothing of the compute side:
the job, the worker factory and the start/finish steps are handed in.
"""
from __future__ import annotations

from ..errors import DistatomenvError

#: The executors' names (``backend=`` of compute and scaling, ``--backend``).
EXECUTORS = ("serial", "mpi", "dask")


def get_executor(name, **options):
    """The executor called ``name`` ("serial", "mpi", "dask") built with its
    options (mpi: ``comm``; dask: ``workers``, ``scheduler``)."""
    if name == "serial":
        from .serial import SerialExecutor as cls
    elif name == "mpi":
        from .mpi import MPIExecutor as cls
    elif name == "dask":
        from .dask import DaskExecutor as cls
    else:
        raise DistatomenvError(f"unknown backend {name!r}")
    return cls(**options)


__all__ = ["EXECUTORS", "get_executor"]
