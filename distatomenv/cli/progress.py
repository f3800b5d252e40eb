"""Progress bars on the terminal (tqdm), one per phase of a run, and the one
builder every subcommand uses (:func:`progress_bar`).

The compute side and the executors report progress through a small protocol
(:mod:`distatomenv.parallel`):

* ``progress.start(phase, structures, atoms)`` when a phase begins, with its
  totals (phases: ``"scaling"``, ``"compute"``);
* ``progress(structures, atoms)`` as work finishes (from rank 0 or the Dask
  client, as the executors forward it).

A plain callable ``progress(structures, atoms)`` also works (it then only sees
the compute phase).  :class:`ProgressBar` draws one bar per phase with atoms
done, the total, rate and time left, and the structures done.
"""
from __future__ import annotations

import os
import sys

from ..executors.launcher import detect_backend, launcher_on_terminal, launcher_rank


class ProgressBar:
    """tqdm bars for the phases of a run (on stderr)."""

    def __init__(self, file=None, disable=False):
        self.file = file if file is not None else sys.stderr
        self.disable = disable
        self.bar = None
        self.structures = 0
        self.total_structures = 0

    def start(self, phase, structures, atoms):
        from tqdm import tqdm
        self.close()
        self.structures, self.total_structures = 0, int(structures)
        # a terminal without a size (some pseudo-terminals) would get no bar at all
        try:
            sized = os.get_terminal_size(self.file.fileno()).columns > 0
        except (AttributeError, OSError, ValueError):
            sized = False
        self.bar = tqdm(total=int(atoms), unit="atom", unit_scale=True, desc=phase,
                        dynamic_ncols=sized, ncols=None if sized else 100,
                        nrows=None if sized else 20, file=self.file, disable=self.disable)
        self.bar.set_postfix_str(self._structures_text(), refresh=False)

    def _structures_text(self):
        return f"{self.structures}/{self.total_structures} structures"

    def __call__(self, structures, atoms):
        if self.bar is None:
            self.start("compute", 0, 0)
        self.structures += int(structures)
        self.bar.set_postfix_str(self._structures_text(), refresh=False)
        self.bar.update(int(atoms))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def running_totals(self, structures, atoms):
        """Report totals so far (structures and atoms done since the start)
        instead of increments."""
        if self.bar is None:
            self.start("compute", 0, 0)
        self(int(structures) - self.structures, int(atoms) - self.bar.n)


def show_progress(args) -> bool:
    """Progress bars: with --progress; never with --quiet or on MPI ranks > 0;
    else when stderr is a terminal (under MPI: the launcher's stderr)."""
    if getattr(args, "quiet", False) or launcher_rank() > 0:
        return False
    if getattr(args, "progress", False):
        return True
    if sys.stderr.isatty():
        return True
    return detect_backend() == "mpi" and launcher_on_terminal()


def progress_bar(args, phase=None):
    """The progress bar of a subcommand (:class:`ProgressBar`), or None when
    :func:`show_progress` says no; ``phase``: start that phase now (its totals
    unknown)."""
    if not show_progress(args):
        return None
    bar = ProgressBar()
    if phase is not None:
        bar.start(phase, 0, 0)
    return bar
