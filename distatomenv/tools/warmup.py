"""Compile every numba function ahead of time (``distatomenv warmup``).

Numba compiles on first use and keeps the machine code in its cache
(``NUMBA_CACHE_DIR``, by default ``__pycache__`` beside the package).  A fresh
container, CI runner or Dask worker image pays that compile on its first
``compute`` unless the cache was filled when the image was built: the
Dockerfile runs ``distatomenv warmup`` for that.

The warm-up computes a tiny store from data made here: two periodic
structures of H and O with an input.nn holding every supported SF type
(exponential 2, 3, 9, 12, 13 and compact 20-25) and the quadratic
force-matching features, then surveys its neighbours.  The kernels have one
signature each (int64 and float64 arrays), so this one run compiles what any
input needs.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["warmup", "WARMUP_SETTINGS"]

#: input.nn of the warm-up: every SF type, lengths in Angstrom.
WARMUP_SETTINGS = """\
number_of_elements 2
elements H O
cutoff_type 6 0.0
scale_symmetry_functions
scale_min_short -1.0
scale_max_short 1.0
use_short_forces
symfunction_short H 2 H 0.5 0.0 4.0
symfunction_short H 2 O 0.5 1.0 4.0
symfunction_short O 2 H 0.5 0.0 4.0
symfunction_short O 2 O 0.5 0.0 4.0
symfunction_short H 3 O O 0.1 1.0 2.0 4.0
symfunction_short H 3 H O 0.1 -1.0 1.5 4.0 0.5
symfunction_short O 9 H H 0.1 1.0 1.0 4.0
symfunction_short O 12 0.5 0.0 4.0
symfunction_short O 13 0.1 0.0 1.0 2.0 4.0
symfunction_short H 20 O 0.5 4.0 p2
symfunction_short O 20 H 0.0 4.0 p4a
symfunction_short O 21 H H 0.5 4.0 60.0 180.0 p2
symfunction_short H 22 H O 0.5 4.0 30.0 150.0 e
symfunction_short H 23 0.5 4.0 p3
symfunction_short O 24 0.5 4.0 150.0 210.0 p1
symfunction_short O 25 0.5 4.0 30.0 120.0 p4
"""


def _structures(path: Path, n_structures=2, cell=6.5, seed=0) -> None:
    """n2p2 input.data: water-like H/O on a jittered grid in a cubic cell."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    lines = []
    for s in range(n_structures):
        pos = (grid + 0.5 + rng.uniform(-0.15, 0.15, grid.shape)) * cell / 3
        lines += ["begin", f"comment warm-up structure {s + 1}"]
        lines += [f"lattice {' '.join(f'{v:.6f}' for v in row)}" for row in np.eye(3) * cell]
        for a, p in enumerate(pos):
            el = "O" if a % 3 == 0 else "H"
            f = rng.normal(0.0, 0.5, 3)
            lines.append(f"atom {p[0]:.6f} {p[1]:.6f} {p[2]:.6f} {el} 0.0 0.0 "
                         f"{f[0]:.6f} {f[1]:.6f} {f[2]:.6f}")
        lines += [f"energy {rng.normal(-100.0, 1.0):.6f}", "charge 0.0", "end"]
    path.write_text("\n".join(lines) + "\n")


def warmup(directory=None, threads=1) -> dict:
    """Compile the kernels of compute (every SF family, force matching) and of
    the neighbour survey.  Returns seconds per step.  ``directory``: where
    the tiny inputs and store go (default: a temporary directory, removed)."""
    from ..engine.run import compute
    from .survey import survey_neighbors

    timings = {}
    with tempfile.TemporaryDirectory(prefix="distatomenv-warmup-") as tmp:
        d = Path(directory) if directory is not None else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        (d / "input.nn").write_text(WARMUP_SETTINGS)
        _structures(d / "input.data")
        t = time.perf_counter()
        compute(d / "input.data", neighbors="1 1 1 1", out=d / "warmup.zarr", overwrite=True,
                force_matching="quadratic", threads=threads)
        timings["compute"] = time.perf_counter() - t
        t = time.perf_counter()
        survey_neighbors(d / "input.data", settings=d / "input.nn")
        timings["neighbors"] = time.perf_counter() - t
    return timings
