"""Small random test structures shared by the derivative and invariance tests."""
from __future__ import annotations

import numpy as np

from distatomenv.io.structure import remap_positions

ELEMENTS = ["H", "C", "O"]          # atomic-number order

#: A triclinic cell whose heights are below twice the test cutoffs.
LATTICE_TRICLINIC = np.array([[6.4, 0.0, 0.0], [1.3, 5.9, 0.0], [-0.9, 0.7, 6.2]])
#: Lattice vectors shorter than the cutoffs: every atom sees its own images.
LATTICE_SMALL = np.array([[3.5, 0.0, 0.0], [0.6, 3.3, 0.0], [-0.4, 0.5, 3.7]])


def min_distance(pos, lattice):
    """Smallest distance between two atoms or periodic images (images up to +-2)."""
    shifts = [np.zeros(3)]
    if lattice is not None:
        shifts = [a * lattice[0] + b * lattice[1] + c * lattice[2]
                  for a in range(-2, 3) for b in range(-2, 3) for c in range(-2, 3)]
    best = np.inf
    for i in range(len(pos)):
        for T in shifts:
            d = np.linalg.norm(pos + T - pos[i], axis=1)
            if not T.any():
                d[i] = np.inf
            best = min(best, d.min())
    return best


def random_structure(seed, symbols, lattice=None, box=None, dmin=0.8, fixed=()):
    """Random positions, every pair (and image) at least ``dmin`` apart.

    The first atoms are at ``fixed``; the others are uniform in the cell, or
    for a cluster in ``box`` = (lower corner, upper corner).  Periodic
    positions are remapped into the cell.  Returns (element indices into
    ELEMENTS, positions (n, 3), lattice).
    """
    rng = np.random.default_rng(seed)
    pos = np.array(fixed, dtype=np.float64).reshape(-1, 3)
    assert len(pos) < 2 or min_distance(pos, lattice) >= dmin
    while len(pos) < len(symbols):
        if lattice is not None:
            p = rng.random(3) @ lattice
        else:
            p = box[0] + rng.random(3) * (box[1] - box[0])
        cand = np.vstack([pos, p])
        if min_distance(cand, lattice) >= dmin:
            pos = cand
    if lattice is not None:
        pos = remap_positions(pos, lattice)
    return np.array([ELEMENTS.index(s) for s in symbols], dtype=np.int64), pos, lattice
