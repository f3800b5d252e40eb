"""Was this process started by an MPI launcher (mpiexec, mpirun, srun)?

Read from the launcher's environment variables and /proc, without importing
mpi4py: the command line picks the MPI executor, silences ranks > 0 and
decides on progress bars from these.
"""
from __future__ import annotations

import os

__all__ = ["detect_backend", "launcher_rank", "launcher_on_terminal"]


def detect_backend() -> str:
    """"mpi" when this process was started by an MPI launcher with more than one
    rank (MPICH/Hydra, Open MPI, Slurm PMI), else "serial"."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        v = os.environ.get(var)
        if v and v.isdigit() and int(v) > 1:
            return "mpi"
    return "serial"


def launcher_rank() -> int:
    """This process's rank as set by an MPI launcher (0 when not under MPI)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    return 0


_LAUNCHERS = ("mpiexec", "mpirun", "mpiexec.hydra", "orterun", "prterun", "srun")


def launcher_on_terminal() -> bool:
    """Whether the MPI launcher that started this process (an ancestor process on
    this host) writes its stderr to a terminal: the ranks' own stderr is a pipe
    to the launcher, which copies it to its own.  Linux /proc only."""
    pid = os.getpid()
    for _ in range(8):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
        if name in _LAUNCHERS:
            try:
                return os.readlink(f"/proc/{pid}/fd/2").startswith(("/dev/pts/", "/dev/tty"))
            except OSError:
                return False
    return False
