"""The one neighbour search (distatomenv.descriptors.neighbors) and its entry points.

Every entry point is checked against a brute-force loop over explicit
periodic images in plain numpy: compute's sorted lists, the half lists of
coarse-graining, the growing scratch buffers of the survey, and the
cell-by-cell pairs of the synthetic MD.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from distatomenv.descriptors import neighbors as nbr

TRICLINIC = np.array([[3.0, 0.0, 0.0], [1.7, 2.6, 0.0], [-0.9, 0.4, 2.2]])


def brute_force(pos, lattice, rc):
    """{(i, j, shift): vector r_j + T - r_i} of every entry within rc."""
    if lattice is None:
        shifts = [(0, 0, 0)]
    else:
        h = nbr.lattice_heights(lattice)
        k = [int(math.ceil(rc / h[a])) + 1 for a in range(3)]
        shifts = list(itertools.product(*[range(-x, x + 1) for x in k]))
    out = {}
    for s in shifts:
        t = np.zeros(3) if lattice is None else np.asarray(s, dtype=float) @ lattice
        v = pos[None, :, :] + t - pos[:, None, :]                 # v[i, j]
        near = np.einsum("ijk,ijk->ij", v, v) <= rc * rc
        if s == (0, 0, 0):
            np.fill_diagonal(near, False)
        for i, j in zip(*np.nonzero(near)):
            out[(int(i), int(j), s)] = v[i, j]
    return out


def cases():
    rng = np.random.default_rng(7)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return {
        "cubic": (rng.random((40, 3)) * 7.0, np.eye(3) * 7.0, 2.6),
        "triclinic, cell smaller than the cutoff": (rng.random((3, 3)) @ TRICLINIC, TRICLINIC, 4.0),
        "one atom, self-images only": (np.array([[0.3, 0.2, 0.1]]), np.diag([2.0, 2.5, 3.0]), 4.0),
        "lattice, many equal distances": (grid.astype(float), np.eye(3) * 3.0, 2.1),
        "free": (rng.random((30, 3)) * 5.0, None, 2.0),
        "free and flat": (np.c_[rng.random((15, 2)) * 4.0, np.zeros(15)], None, 1.5),
    }


@pytest.mark.parametrize("name", list(cases()))
def test_neighbor_list_is_brute_force_sorted_by_distance_index_shift(name):
    pos, lat, rc = cases()[name]
    want = brute_force(pos, lat, rc)
    nl = nbr.neighbor_list(pos, lat, rc)
    assert len(nl.j) == len(want)
    for i in range(len(pos)):
        sl = nl.of(i)
        keys = [(float(d), int(j), tuple(int(x) for x in s))
                for d, j, s in zip(nl.d[sl], nl.j[sl], nl.shift[sl])]
        assert keys == sorted(keys)                  # the documented order, ties included
        for (d, j, s), v in zip(keys, np.c_[nl.dx[sl], nl.dy[sl], nl.dz[sl]]):
            np.testing.assert_allclose(v, want[(i, j, s)], rtol=0, atol=1e-12)
            assert d == math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])


@pytest.mark.parametrize("name", list(cases()))
def test_half_list_is_the_full_list_from_j_ge_i(name):
    pos, lat, rc = cases()[name]
    grid = nbr.cell_grid(pos, lat, rc)
    bins, cstart, catoms = nbr.cell_sort(grid.frac, grid.nbin)
    buf = nbr.entry_buffers(cstart, grid.reach)
    stop = np.zeros(1, dtype=np.int64)
    for i in range(len(pos)):
        lists = []
        for half in (nbr.FULL_LIST, nbr.HALF_LIST):
            m = nbr.atom_entries(i, grid.pos, grid.lattice, grid.periodic, bins, cstart, catoms,
                                 grid.nbin, grid.reach, rc * rc, half, *buf, stop)
            assert m <= len(buf[0])
            lists.append([(int(buf[0][k]), tuple(buf[5][k]), float(buf[4][k])) for k in range(m)])
        full, half = lists
        assert half == [e for e in full if e[0] >= i]


def test_entries_past_the_buffers_are_counted_not_written():
    pos, lat, rc = cases()["triclinic, cell smaller than the cutoff"]
    grid = nbr.cell_grid(pos, lat, rc)
    bins, cstart, catoms = nbr.cell_sort(grid.frac, grid.nbin)
    stop = np.zeros(1, dtype=np.int64)
    args = (0, grid.pos, grid.lattice, grid.periodic, bins, cstart, catoms, grid.nbin,
            grid.reach, rc * rc, nbr.FULL_LIST)
    full = nbr.entry_buffers(cstart, grid.reach)
    m = nbr.atom_entries(*args, *full, stop)
    nl = nbr.neighbor_list(pos, lat, rc)
    assert m == nl.of(0).stop - nl.of(0).start > 5
    small = tuple(b[:5].copy() for b in full)
    fresh = tuple(b[:5] for b in nbr.entry_buffers(cstart, grid.reach))
    assert nbr.atom_entries(*args, *fresh, stop) == m
    for a, b in zip(fresh, small):
        np.testing.assert_array_equal(a, b)
    empty = tuple(b[:0] for b in full)
    assert nbr.atom_entries(*args, *empty, stop) == m


@pytest.mark.parametrize("lattice", [np.eye(3) * 10.0, np.diag([9.0, 10.5, 12.0]),
                                     np.array([[10.0, 0, 0], [1.5, 9.8, 0], [-1.0, 0.7, 10.2]])])
def test_half_pairs_find_every_pair_once(lattice):
    rng = np.random.default_rng(3)
    rc = 2.9
    frac = rng.random((120, 3))
    pos = frac @ lattice
    want = brute_force(pos, lattice, rc)
    grid = nbr.cell_grid(pos, lattice, rc)
    assert (grid.nbin >= 3).all() and (grid.reach == 1).all()
    bins, cstart, catoms = nbr.cell_sort(grid.frac, grid.nbin)
    room = len(nbr.HALF_SHELL) * int(np.diff(cstart).max()) ** 2
    buf = (np.empty(room, np.int32), np.empty(room, np.int32)) + tuple(np.empty((4, room)))
    seen = []
    for c in range(int(np.prod(grid.nbin))):
        m = nbr.half_pairs(c, grid.pos, grid.lattice, cstart, catoms, grid.nbin, rc * rc, *buf)
        assert m <= room
        for k in range(m):
            i, j = int(buf[0][k]), int(buf[1][k])
            v = np.array([buf[2][k], buf[3][k], buf[4][k]])
            dx, dy, dz = -v                       # evaluated as (r_i - T) - r_j
            assert buf[5][k] == dx * dx + dy * dy + dz * dz
            s = tuple(int(x) for x in np.round(np.linalg.solve(lattice.T, v - (pos[j] - pos[i]))))
            np.testing.assert_allclose(v, want[(i, j, s)], rtol=0, atol=1e-12)
            seen.append(frozenset([(i, j, s), (j, i, tuple(-x for x in s))]))
    assert len(seen) == len(set(seen)) == len(want) // 2


def test_grid_shape():
    nbin, reach = nbr.grid_shape([10.0, 3.0, 1.0], 2.0, True)
    assert nbin.tolist() == [5, 1, 1] and reach.tolist() == [1, 1, 2]
    nbin, reach = nbr.grid_shape([10.0, 3.0, 1.0], 2.0, True, max_bins=2)
    assert nbin.tolist() == [2, 1, 1] and reach.tolist() == [1, 1, 2]
    # not periodic: a flat direction is one cell, the whole row in reach
    nbin, reach = nbr.grid_shape([10.0, 1e-300, 1e5], 2.0, False)
    assert nbin.tolist() == [5, 1, nbr.MAX_FREE_BINS] and reach.tolist() == [1, 1, 1]


def test_one_signature_per_function():
    """Callers of every kind (compute, coarse-graining, MD) share one compiled
    version of each search function: no literal or layout variants.  (A
    version loaded from the cache inside a caller's code is not listed, so
    this sees everything only on a cold cache.)"""
    from distatomenv.tools.cg import find_molecules
    from distatomenv.io.structure import Structure
    from distatomenv.tools.synth.md import WaterModel, WaterMD
    pos, lat, rc = cases()["cubic"]
    nbr.neighbor_list(pos, lat, rc)
    nbr.neighbor_list(pos[:, ::-1], None, rc, atoms=np.arange(10)[::2])
    n = len(pos)
    find_molecules(Structure(index=0, line=1, comment="", lattice=lat, positions=pos,
                             elements=["O"] * n, charges=np.zeros(n), atom_energies=np.zeros(n),
                             forces=np.zeros((n, 3))), 1.0)
    md = WaterMD(200, seed=1)                     # a box of 3 cells per edge
    WaterModel().energy_forces(md.positions, md.box)
    for name in ("cell_sort", "atom_entries", "entry_buffers", "half_pairs", "_search",
                 "_sort_entries"):
        sigs = getattr(nbr, name).signatures
        assert len(sigs) <= 1, (name, sigs)
