"""Test-only entry point: distatomenv's command line with one work unit failing.

``mpiexec -n N python tests/mpi_faults.py UNIT compute ARGS...`` runs
``distatomenv compute ARGS...`` on every rank, except that the rank about to
run work unit ``UNIT`` raises instead of running it, so that the test suite
can make a rank fail deterministically (tests/test_mpi.py).  The fault is
injected here, by patching the unit runner in these processes; nothing in the
package reads a test switch.
"""
from __future__ import annotations

import sys


def fail_unit(unit_id: int) -> None:
    """Make :meth:`UnitRunner.run` raise for work unit ``unit_id`` in this process."""
    from distatomenv.engine import worker
    from distatomenv.errors import DistatomenvError

    run = worker.UnitRunner.run

    def failing(self, unit):
        if unit.id == unit_id:
            from mpi4py import MPI
            raise DistatomenvError(f"unit {unit.id} failed on purpose on MPI rank "
                                   f"{MPI.COMM_WORLD.Get_rank()} (tests/mpi_faults.py)")
        return run(self, unit)

    worker.UnitRunner.run = failing


if __name__ == "__main__":
    fail_unit(int(sys.argv[1]))
    from distatomenv.cli import main
    sys.argv = [sys.argv[0], *sys.argv[2:]]     # the command the store records
    sys.exit(main(sys.argv[1:]))
