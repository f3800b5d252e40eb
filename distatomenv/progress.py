"""Progress bars on the terminal (tqdm), one per phase of a run.

The pipeline and the backends report progress through a small protocol:

* ``progress.start(phase, structures, atoms)`` when a phase begins, with its
  totals (phases: ``"scaling"``, ``"compute"``);
* ``progress(structures, atoms)`` as work finishes (from rank 0 or the Dask
  client, as the backends forward it).

A plain callable ``progress(structures, atoms)`` also works (it then only sees
the compute phase).  :class:`ProgressBar` draws one bar per phase with atoms
done, the total, rate and time left, and the structures done.
"""
from __future__ import annotations

import os
import sys


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
