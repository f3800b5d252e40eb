"""Execution backends: each runs the plan's work units with a UnitRunner.

Only backends touch process-level parallelism (MPI, Dask) and numba's
thread count; mpi4py and distributed are imported lazily, in their module.
"""
