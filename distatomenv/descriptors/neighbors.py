"""Neighbour search by cell lists: the one search of the package.

Compute's neighbour lists (:func:`neighbor_list`), the neighbour survey's
counts (:mod:`.rdf`), coarse-graining's bond graph (:mod:`distatomenv.tools.cg`)
and the synthetic data's pair forces (:mod:`distatomenv.tools.synth`) all find
their neighbours here, in layers:

* :func:`cell_grid` (:func:`grid_shape`): the grid of cells for a search
  radius: cells per lattice direction and how many cells either side of an
  atom's own a search visits;
* :func:`cell_sort`: every atom's cell, and the atoms sorted by cell;
* :func:`atom_entries`: one atom's entries, written into the caller's
  buffers (:func:`entry_buffers`; a full list, or a half list of the
  entries j >= i);
* :func:`half_pairs`: every pair once, cell by cell, for pair forces;
  :func:`min_image` for all-pairs loops in boxes too small for that;
* :func:`neighbor_list`: compute's distance-sorted lists (CSR).

A neighbour *entry* of atom i is an atom j, or one of its periodic images,
with |r_j + T - r_i| <= rc (T a lattice translation).  Every image is its own
entry, self-images of i included (only i itself at T = 0 is excluded), so
cells smaller than twice the cutoff work.  The vector of an entry is
evaluated as ``(r_j - r_i) + T``, so a self-image vector is exactly +-T.

Each atom's entries in a :class:`NeighborList` are sorted by distance.  n2p2
sorts with an unstable introsort, so the order of exactly equal distances is
an artefact there; we break ties deterministically: equal distances are
ordered by the neighbour's atom index, then by the image shift
(n_a, n_b, n_c) in lexicographic order.

The result is a CSR structure (see :class:`NeighborList`); all arrays are in
the caller's length unit (distatomenv passes n2p2-normalised units).

Size and interruption: the entries are counted first, and a list of more
than ``max_entries`` entries is refused before it is allocated
(:class:`~distatomenv.errors.NeighborListTooLargeError`);
:func:`estimate_entries` predicts the count of a periodic structure from its
atom count and cell alone, so a hopeless cutoff is refused before anything
is computed.  The search loops release the GIL and poll a ``stop`` flag
(:data:`distatomenv.interrupt.STOP`), so Ctrl-C ends even a very long search
within moments.

Compilation: every jitted function here has one signature (int64 and
float64 C-contiguous arrays, int32 entry indices and shifts), so each
compiles once and is cached: the Python wrappers convert their arguments,
and jitted callers pass :data:`FULL_LIST` or :data:`HALF_LIST`, never a
literal True or False.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np

from ..errors import NeighborListTooLargeError
from ..numba_setup import load_numpy_support

# numba's set-up before the first jitted call, without scipy.linalg (see numba_setup)
load_numpy_support()

_jit = nb.njit(cache=True, error_model="numpy", nogil=True)

#: Bytes per neighbour entry held by a :class:`NeighborList` (j int32, dx, dy,
#: dz, d float64, shift 3 x int32).
ENTRY_BYTES = 48
#: Most cells per direction of a non-periodic grid.
MAX_FREE_BINS = 1 << 10
_NO_STOP = np.zeros(1, dtype=np.int64)
#: The ``half`` argument of :func:`atom_entries`: every entry, or each pair
#: once.  numpy booleans, not Python ones: numba would compile a separate
#: version of the function for each literal True or False.
FULL_LIST = np.bool_(False)
HALF_LIST = np.bool_(True)
_PERIODIC = np.bool_(True)
#: Entries sorted by insertion before the merges of :func:`_sort_entries`.
_RUN = 16


def memory_budget() -> int:
    """Bytes one neighbour list may take: ``DISTATOMENV_MEMORY_BUDGET`` (an
    integer, optionally with K, M, G or T for powers of 1024), else half of
    the machine's physical memory (8 GiB where that is unknown)."""
    import os
    from ..errors import MEMORY_BUDGET_ENV, DistatomenvError
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if text:
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:].upper())
        number = text[:-1] if scale else text
        try:
            value = float(number) * (scale or 1)
        except ValueError:
            value = -1.0
        if not value > 0 or not math.isfinite(value):
            raise DistatomenvError(f"{MEMORY_BUDGET_ENV}={text!r}: expected a positive number of "
                                   "bytes, optionally with K, M, G or T (e.g. 16G)")
        return int(min(value, 2.0 ** 62))
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):   # pragma: no cover - not POSIX
        return 8 << 30


def estimate_entries(natoms, volume, rc) -> float:
    """Expected neighbour entries of a periodic structure: every atom sees the
    structure's mean density within a sphere of radius ``rc``, periodic images
    included, ``natoms * (natoms / volume) * 4/3 pi rc^3`` (``volume`` and
    ``rc`` in one length unit).  A float: it may exceed any integer type."""
    natoms = float(natoms)
    return natoms * natoms / float(volume) * (4.0 / 3.0) * math.pi * float(rc) ** 3


@dataclass
class NeighborList:
    """Distance-sorted neighbour entries of a set of atoms (CSR).

    Attributes
    ----------
    start : int64 (n_atoms + 1,)  entries of atom i are ``start[i]:start[i+1]``
        (empty for atoms that were not requested).
    j : int32 (M,)  atom index of each entry.
    dx, dy, dz : float64 (M,)  r_j + T - r_i, length unit of the positions.
    d : float64 (M,)  distance.
    shift : int32 (M, 3)  the image (n_a, n_b, n_c) of each entry.
    """

    start: np.ndarray
    j: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    dz: np.ndarray
    d: np.ndarray
    shift: np.ndarray

    def of(self, i: int) -> slice:
        return slice(int(self.start[i]), int(self.start[i + 1]))


# ----------------------------------------------------------------------------
# The grid
# ----------------------------------------------------------------------------
class CellGrid(NamedTuple):
    """Cell-list geometry of one structure for one search radius.

    pos : float64 (n, 3) the positions.
    lattice : float64 (3, 3) rows are the lattice vectors (zeros when not periodic).
    periodic : bool.
    frac : float64 (n, 3) in [0, 1]: where each atom lies in the cell
        (periodic) or in the bounding box (not periodic); atoms are binned by it.
    nbin : int64 (3,) cells per direction.
    reach : int64 (3,) cells either side of an atom's own that a search visits.
    """

    pos: np.ndarray
    lattice: np.ndarray
    periodic: bool
    frac: np.ndarray
    nbin: np.ndarray
    reach: np.ndarray


def grid_shape(extent, r, periodic, max_bins=None):
    """Cells per direction and cells searched on either side, int64 (3,) each.

    extent : float (3,) the distances between opposite lattice planes
        (periodic) or the bounding box edges (not periodic, at least 1e-300).
    r : search radius (> 0), same length unit.
    max_bins : most cells per direction (default: no limit when periodic,
        :data:`MAX_FREE_BINS` when not); fewer, larger cells use less memory
        for a sparse structure and a small radius.
    Every cell is at least ``r`` wide, or there is one cell per direction.
    """
    extent = np.asarray(extent, dtype=np.float64)
    if periodic:
        nbin = np.maximum(1, np.floor(extent / r)).astype(np.int64)
        if max_bins is not None:
            nbin = np.minimum(nbin, max(1, int(max_bins)))
        reach = np.ceil(r * nbin / extent).astype(np.int64)
        return nbin, reach
    cap = MAX_FREE_BINS if max_bins is None else max(1, min(int(max_bins), MAX_FREE_BINS))
    nbin = np.clip(np.floor(extent / r), 1, cap).astype(np.int64)
    # a flat direction (extent ~ 0) has one cell: the whole row of cells is in
    # reach (clipped before the cast, as r / 1e-300 does not fit an int64)
    reach = np.minimum(np.ceil(np.minimum(r * nbin / extent, nbin + 1.0)), nbin).astype(np.int64)
    return nbin, reach


def lattice_heights(lattice) -> np.ndarray:
    """Distances between opposite faces of the cell: volume / |a_k x a_l|."""
    lat = np.asarray(lattice, dtype=np.float64)
    faces = np.cross(lat[[1, 2, 0]], lat[[2, 0, 1]])
    return abs(np.linalg.det(lat)) / np.linalg.norm(faces, axis=1)


def cell_grid(positions, lattice, r) -> CellGrid:
    """The :class:`CellGrid` of ``positions`` (float (n, 3); for a periodic
    structure wrapped into the cell) with ``lattice`` (float (3, 3), rows are
    the lattice vectors, or None if not periodic) for search radius ``r``."""
    pos = np.ascontiguousarray(positions, dtype=np.float64).reshape(-1, 3)
    n = pos.shape[0]
    if lattice is not None:
        lat = np.ascontiguousarray(lattice, dtype=np.float64)
        frac = np.linalg.solve(lat.T, pos.T).T if n else np.zeros((0, 3))
        frac -= np.floor(frac)
        nbin, reach = grid_shape(lattice_heights(lat), r, True)
        return CellGrid(pos, lat, True, np.ascontiguousarray(frac), nbin, reach)
    lo = pos.min(axis=0) if n else np.zeros(3)
    hi = pos.max(axis=0) if n else np.zeros(3)
    span = np.maximum(hi - lo, 1e-300)
    frac = np.minimum((pos - lo) / span, np.nextafter(1.0, 0.0))
    nbin, reach = grid_shape(span, r, False)
    return CellGrid(pos, np.zeros((3, 3)), False, np.ascontiguousarray(frac), nbin, reach)


# ----------------------------------------------------------------------------
# Cell lists and the search (numba)
# ----------------------------------------------------------------------------
@_jit
def min_image(d, length):
    """Component ``d`` of a pair vector moved by whole box edges ``length`` into
    [-length / 2, length / 2]: the nearest image along one edge of an
    orthorhombic box (the minimum-image convention; every pair within rc is
    found this way when each edge is at least 2 rc)."""
    return d - length * math.floor(d / length + 0.5)


@_jit
def _bins(frac, nbin):
    n = frac.shape[0]
    b = np.empty((n, 3), dtype=np.int64)
    for i in range(n):
        for a in range(3):
            k = int(math.floor(frac[i, a] * nbin[a]))
            if k < 0:
                k = 0
            if k >= nbin[a]:
                k = nbin[a] - 1
            b[i, a] = k
    return b


@_jit
def cell_sort(frac, nbin):
    """Cell lists: the cell (3 bin indices) of every atom from its fractional
    coordinates ``frac`` (n, 3) in a grid of ``nbin`` (3,) cells, and the atoms
    sorted by flat cell index ``(b_0 * nbin_1 + b_1) * nbin_2 + b_2``
    (counting sort, ascending atom index within a cell): the atoms of cell c
    are ``catoms[cstart[c]:cstart[c + 1]]``.  Returns (bins (n, 3), cstart, catoms)."""
    n = frac.shape[0]
    b = _bins(frac, nbin)
    nb1, nb2 = nbin[1], nbin[2]
    ncell = nbin[0] * nb1 * nb2
    cell = (b[:, 0] * nb1 + b[:, 1]) * nb2 + b[:, 2]
    cstart = np.zeros(ncell + 1, dtype=np.int64)
    for i in range(n):
        cstart[cell[i] + 1] += 1
    for c in range(ncell):
        cstart[c + 1] += cstart[c]
    fill = cstart[:-1].copy()
    catoms = np.empty(n, dtype=np.int64)
    for i in range(n):
        catoms[fill[cell[i]]] = i
        fill[cell[i]] += 1
    return b, cstart, catoms


@_jit
def _grid_cell(c, nb, periodic):
    """Cell ``c`` of one direction, which may lie outside 0 .. nb - 1: the cell
    of the grid it is, and the image shift that wrapping it takes; (-1, 0)
    outside a non-periodic grid."""
    if periodic:
        w = c % nb
        return w, (c - w) // nb
    if c < 0 or c >= nb:
        return -1, 0
    return c, 0


@_jit
def atom_entries(i, pos, lattice, periodic, bins, cstart, catoms, nbin, reach, rc2, half,
                 out_j, out_dx, out_dy, out_dz, out_d2, out_shift, stop):
    """The entries of atom ``i`` with squared distance <= ``rc2``.

    pos, lattice, periodic, nbin, reach : a :class:`CellGrid`; bins, cstart,
        catoms : :func:`cell_sort` of its ``frac``.
    half : :data:`HALF_LIST`: only the entries of atoms j >= i (each pair
        once; the images of i itself, both T and -T, all count);
        :data:`FULL_LIST`: all.
    out_j int32, out_dx, out_dy, out_dz, out_d2 float64 (vector r_j + T - r_i
        and its squared length), out_shift int32 (., 3) (the image T in
        lattice vectors) : entry k is written while k < len(out_j); later
        ones are only counted (empty buffers count without writing).

    Visits the cells in a fixed order (shifts along the first lattice vector
    outermost), the atoms of a cell by ascending index.  Returns the number
    of entries; returns early, with a partial count, once ``stop[0]`` is set.
    """
    nb0, nb1, nb2 = nbin[0], nbin[1], nbin[2]
    xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
    end = out_j.shape[0]
    write = end > 0              # loop-invariant: the count-only search runs apart
    m = 0
    for da in range(-reach[0], reach[0] + 1):
        ca, sa = _grid_cell(bins[i, 0] + da, nb0, periodic)
        if ca < 0:
            continue
        for db in range(-reach[1], reach[1] + 1):
            cb, sb = _grid_cell(bins[i, 1] + db, nb1, periodic)
            if cb < 0:
                continue
            if stop[0]:
                return m
            for dc in range(-reach[2], reach[2] + 1):
                cc, sc = _grid_cell(bins[i, 2] + dc, nb2, periodic)
                if cc < 0:
                    continue
                tx = sa * lattice[0, 0] + sb * lattice[1, 0] + sc * lattice[2, 0]
                ty = sa * lattice[0, 1] + sb * lattice[1, 1] + sc * lattice[2, 1]
                tz = sa * lattice[0, 2] + sb * lattice[1, 2] + sc * lattice[2, 2]
                c = (ca * nb1 + cb) * nb2 + cc
                for q in range(cstart[c], cstart[c + 1]):
                    j = catoms[q]
                    if half and j < i:
                        continue
                    if j == i and sa == 0 and sb == 0 and sc == 0:
                        continue
                    # (r_j - r_i) + T: a self-image vector is then exactly +-T,
                    # so the +T and -T images tie exactly and the documented
                    # tie-break decides, whatever the atom's position
                    ddx = (pos[j, 0] - xi) + tx
                    ddy = (pos[j, 1] - yi) + ty
                    ddz = (pos[j, 2] - zi) + tz
                    r2 = ddx * ddx + ddy * ddy + ddz * ddz
                    if r2 <= rc2:
                        if write and m < end:
                            out_j[m] = j
                            out_dx[m] = ddx
                            out_dy[m] = ddy
                            out_dz[m] = ddz
                            out_d2[m] = r2
                            out_shift[m, 0] = sa
                            out_shift[m, 1] = sb
                            out_shift[m, 2] = sc
                        m += 1
    return m


@_jit
def entry_buffers(cstart, reach):
    """Scratch buffers for :func:`atom_entries` that hold the entries of any
    atom of a grid (``cstart`` from :func:`cell_sort`, ``reach`` from its
    :class:`CellGrid`): every atom of every cell in reach.  Returns (j
    int32, dx, dy, dz, d2 float64, shift int32 (., 3))."""
    most = 0
    for c in range(cstart.shape[0] - 1):
        most = max(most, cstart[c + 1] - cstart[c])
    room = most * (2 * reach[0] + 1) * (2 * reach[1] + 1) * (2 * reach[2] + 1)
    return (np.empty(room, dtype=np.int32), np.empty(room), np.empty(room), np.empty(room),
            np.empty(room), np.empty((room, 3), dtype=np.int32))


#: Cells of a half shell: a cell itself, then 13 of its 26 neighbours, no
#: two of them opposite (the first nonzero offset positive), in the order
#: :func:`half_pairs` visits them.
HALF_SHELL = np.array([(d0, d1, d2) for d0 in range(0, 2)
                       for d1 in range(-1 if d0 > 0 else 0, 2)
                       for d2 in range(-1 if (d0 > 0 or d1 > 0) else 0, 2)], dtype=np.int64)


@_jit
def half_pairs(c, pos, lattice, cstart, catoms, nbin, rc2, out_i, out_j, out_dx, out_dy, out_dz,
               out_d2):
    """The pairs within sqrt(rc2) of the atoms of cell ``c``: with each other
    and with the atoms of the other cells of its half shell.  Over all cells
    every pair is found once.

    For a periodic structure binned into at least 3 cells per direction,
    each at least sqrt(rc2) wide (so a pair has at most one image within
    reach, and the cells of a half shell are distinct).  pos : float64 (n, 3)
    positions wrapped into the cell; lattice, nbin as in :class:`CellGrid`;
    cstart, catoms from :func:`cell_sort`.

    Cells of the half shell in :data:`HALF_SHELL` order; for each, atom pairs
    (i in cell c, j in the other cell) in their cell order.  Pair k is
    written while k < len(out_i): out_i, out_j int32, and out_dx, out_dy,
    out_dz, out_d2 float64: the vector r_j + T - r_i, evaluated as
    ``-((r_i - T) - r_j)``, and its squared length.  Buffers of
    ``len(HALF_SHELL) * (most atoms in a cell)**2`` hold every cell's pairs.
    Returns the number of pairs (pairs past the buffers' length are
    counted, not written).
    """
    nb0, nb1, nb2 = nbin[0], nbin[1], nbin[2]
    c0 = c // (nb1 * nb2)
    c1 = (c // nb2) % nb1
    c2 = c % nb2
    end = out_i.shape[0]
    m = 0
    for k in range(HALF_SHELL.shape[0]):
        t0, s0 = _grid_cell(c0 + HALF_SHELL[k, 0], nb0, _PERIODIC)
        t1, s1 = _grid_cell(c1 + HALF_SHELL[k, 1], nb1, _PERIODIC)
        t2, s2 = _grid_cell(c2 + HALF_SHELL[k, 2], nb2, _PERIODIC)
        t = (t0 * nb1 + t1) * nb2 + t2
        tx = s0 * lattice[0, 0] + s1 * lattice[1, 0] + s2 * lattice[2, 0]
        ty = s0 * lattice[0, 1] + s1 * lattice[1, 1] + s2 * lattice[2, 1]
        tz = s0 * lattice[0, 2] + s1 * lattice[1, 2] + s2 * lattice[2, 2]
        for qa in range(cstart[c], cstart[c + 1]):
            a = catoms[qa]
            xa = pos[a, 0] - tx
            ya = pos[a, 1] - ty
            za = pos[a, 2] - tz
            for qb in range(qa + 1 if k == 0 else cstart[t], cstart[t + 1]):
                b = catoms[qb]
                dx = xa - pos[b, 0]
                dy = ya - pos[b, 1]
                dz = za - pos[b, 2]
                r2 = dx * dx + dy * dy + dz * dz
                if r2 <= rc2:
                    if m < end:
                        out_i[m] = a
                        out_j[m] = b
                        out_dx[m] = -dx
                        out_dy[m] = -dy
                        out_dz[m] = -dz
                        out_d2[m] = r2
                    m += 1
    return m


@_jit
def _search(pos, lattice, periodic, bins, cstart, catoms, nbin, reach, atoms, rc, count_only,
            start, out_j, out_dx, out_dy, out_dz, out_d2, out_shift, stop):
    """Count (count_only) or fill the entries of ``atoms`` (fill: atom i's at
    ``start[i]:start[i + 1]``, squared distances in ``out_d2``).  See
    neighbor_list.  Returns the counts; returns early, with partial counts,
    once ``stop[0]`` is set."""
    rc2 = rc * rc
    counts = np.zeros(atoms.shape[0], dtype=np.int64)
    for ai in range(atoms.shape[0]):
        if stop[0]:
            return counts
        i = atoms[ai]
        lo = 0 if count_only else start[i]
        hi = lo if count_only else start[i + 1]
        counts[ai] = atom_entries(i, pos, lattice, periodic, bins, cstart, catoms, nbin, reach, rc2,
                                  FULL_LIST, out_j[lo:hi], out_dx[lo:hi], out_dy[lo:hi],
                                  out_dz[lo:hi], out_d2[lo:hi], out_shift[lo:hi], stop)
    return counts


@_jit
def _before(dp, p, dq, q, j, shift):
    """Entry p (at distance dp) sorts before entry q (at dq): by distance,
    then atom index, then shift."""
    if dp != dq:
        return dp < dq
    if j[p] != j[q]:
        return j[p] < j[q]
    for a in range(3):
        if shift[p, a] != shift[q, a]:
            return shift[p, a] < shift[q, a]
    return False


@_jit
def _sort_entries(atoms, start, j, dx, dy, dz, d, shift):
    """Sort each atom's entries by (distance, atom index, shift) in place.

    No two entries of an atom have the same key, so the order is unique
    whatever the method: insertion-sorted runs, merged bottom-up, of the
    distances with their entry indices; the permutation is then applied to
    every array."""
    longest = 0
    for ai in range(atoms.shape[0]):
        i = atoms[ai]
        longest = max(longest, start[i + 1] - start[i])
    key = np.empty(longest, dtype=np.float64)
    src = np.empty(longest, dtype=np.int64)
    key2 = np.empty(longest, dtype=np.float64)
    dst = np.empty(longest, dtype=np.int64)
    fbuf = np.empty(longest, dtype=np.float64)
    ibuf = np.empty(longest, dtype=np.int32)
    for ai in range(atoms.shape[0]):
        i = atoms[ai]
        s, n = start[i], start[i + 1] - start[i]
        if n < 2:
            continue
        for k in range(n):
            src[k] = s + k
            key[k] = d[s + k]
        for lo in range(0, n, _RUN):
            for u in range(lo + 1, min(lo + _RUN, n)):
                v, kv = src[u], key[u]
                w = u - 1
                while w >= lo and _before(kv, v, key[w], src[w], j, shift):
                    src[w + 1] = src[w]
                    key[w + 1] = key[w]
                    w -= 1
                src[w + 1] = v
                key[w + 1] = kv
        width = _RUN
        while width < n:
            for lo in range(0, n, 2 * width):
                mid = min(lo + width, n)
                hi = min(lo + 2 * width, n)
                a, b = lo, mid
                for k in range(lo, hi):
                    if b < hi and (a >= mid or _before(key[b], src[b], key[a], src[a], j, shift)):
                        dst[k] = src[b]
                        key2[k] = key[b]
                        b += 1
                    else:
                        dst[k] = src[a]
                        key2[k] = key[a]
                        a += 1
            src, dst = dst, src
            key, key2 = key2, key
            width *= 2
        for k in range(n):
            d[s + k] = key[k]
        for k in range(n):
            ibuf[k] = j[src[k]]
        for k in range(n):
            j[s + k] = ibuf[k]
        for a in range(3):
            for k in range(n):
                ibuf[k] = shift[src[k], a]
            for k in range(n):
                shift[s + k, a] = ibuf[k]
        for x in (dx, dy, dz):
            for k in range(n):
                fbuf[k] = x[src[k]]
            for k in range(n):
                x[s + k] = fbuf[k]


def neighbor_list(positions, lattice, rc, atoms=None, *, max_entries=None,
                  stop=None) -> NeighborList:
    """Neighbour entries within ``rc`` of the requested atoms.

    Parameters
    ----------
    positions : float64 (n, 3); for periodic structures wrapped into the cell.
    lattice : float64 (3, 3), rows are the lattice vectors; None if not periodic.
    rc : cutoff radius (same unit as positions); entries with d <= rc count.
    atoms : int array of the atoms whose lists are wanted (default: all).
    max_entries : refuse (NeighborListTooLargeError) a list of more entries,
        after counting and before allocating (default: no limit).
    stop : int64 (1,) flag polled by the search (:data:`distatomenv.interrupt.STOP`);
        once it is set the search ends and KeyboardInterrupt is raised.
    """
    stop = _NO_STOP if stop is None else stop
    grid = cell_grid(positions, lattice, rc)
    pos, lat, periodic, frac, nbin, reach = grid
    n = pos.shape[0]
    atoms = np.arange(n, dtype=np.int64) if atoms is None else \
        np.ascontiguousarray(atoms, dtype=np.int64)
    bins, cstart, catoms = cell_sort(frac, nbin)
    empty = np.empty(0)
    counts = _search(pos, lat, periodic, bins, cstart, catoms, nbin, reach, atoms, float(rc), True,
                     np.zeros(1, np.int64), np.empty(0, np.int32), empty, empty, empty, empty,
                     np.empty((0, 3), np.int32), stop)
    if stop[0]:
        raise KeyboardInterrupt
    total = int(counts.sum())
    if max_entries is not None and total > max_entries:
        raise NeighborListTooLargeError(total, int(max_entries), ENTRY_BYTES)
    per_atom = np.zeros(n, dtype=np.int64)
    per_atom[atoms] = counts
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_atom, out=start[1:])
    m = int(start[-1])
    j = np.empty(m, np.int32)
    dx, dy, dz, d = (np.empty(m) for _ in range(4))
    shift = np.empty((m, 3), np.int32)
    _search(pos, lat, periodic, bins, cstart, catoms, nbin, reach, atoms, float(rc), False, start,
            j, dx, dy, dz, d, shift, stop)
    if stop[0]:
        raise KeyboardInterrupt
    np.sqrt(d, out=d)
    _sort_entries(atoms, start, j, dx, dy, dz, d, shift)
    return NeighborList(start=start, j=j, dx=dx, dy=dy, dz=dz, d=d, shift=shift)
