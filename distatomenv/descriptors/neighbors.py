"""Neighbour lists with periodic images, by cell lists.

A neighbour *entry* of atom i is an atom j, or one of its periodic images,
with |r_j + T - r_i| <= rc (T a lattice translation).  Every image is its own
entry, self-images of i included (only i itself at T = 0 is excluded), so
cells smaller than twice the cutoff work.

Each atom's entries are sorted by distance.  n2p2 sorts with an unstable
introsort, so the order of exactly equal distances is an artefact there; we
break ties deterministically: equal distances are ordered by the neighbour's
atom index, then by the image shift (n_a, n_b, n_c) in lexicographic order.

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..errors import NeighborListTooLargeError

_jit = nb.njit(cache=True, error_model="numpy", nogil=True)

#: Bytes per neighbour entry held by a :class:`NeighborList` (j int32, dx, dy,
#: dz, d float64, shift 3 x int32).
ENTRY_BYTES = 48
_NO_STOP = np.zeros(1, dtype=np.int64)


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
    sorted by flat cell index (counting sort): the atoms of cell c are
    ``catoms[cstart[c]:cstart[c + 1]]``.  Returns (bins (n, 3), cstart, catoms)."""
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
def _search(pos, lattice, periodic, frac, nbin, reach, atoms, rc, count_only, start, out_j,
            out_dx, out_dy, out_dz, out_d, out_shift, stop):
    """Find (count_only) or fill the entries of ``atoms``.  See neighbor_list.
    Returns early, with partial counts, once ``stop[0]`` is set."""
    b, cstart, catoms = cell_sort(frac, nbin)
    nb0, nb1, nb2 = nbin[0], nbin[1], nbin[2]
    rc2 = rc * rc
    counts = np.zeros(atoms.shape[0], dtype=np.int64)
    for ai in range(atoms.shape[0]):
        if stop[0]:
            return counts
        i = atoms[ai]
        xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
        m = 0 if count_only else start[i]
        for da in range(-reach[0], reach[0] + 1):
            ca = b[i, 0] + da
            sa = (ca - (ca % nb0)) // nb0 if periodic else 0
            ca = ca % nb0 if periodic else ca
            if ca < 0 or ca >= nb0:
                continue
            for db in range(-reach[1], reach[1] + 1):
                cb = b[i, 1] + db
                sb = (cb - (cb % nb1)) // nb1 if periodic else 0
                cb = cb % nb1 if periodic else cb
                if cb < 0 or cb >= nb1:
                    continue
                if stop[0]:
                    return counts
                for dc in range(-reach[2], reach[2] + 1):
                    cc = b[i, 2] + dc
                    sc = (cc - (cc % nb2)) // nb2 if periodic else 0
                    cc = cc % nb2 if periodic else cc
                    if cc < 0 or cc >= nb2:
                        continue
                    tx = sa * lattice[0, 0] + sb * lattice[1, 0] + sc * lattice[2, 0]
                    ty = sa * lattice[0, 1] + sb * lattice[1, 1] + sc * lattice[2, 1]
                    tz = sa * lattice[0, 2] + sb * lattice[1, 2] + sc * lattice[2, 2]
                    c = (ca * nb1 + cb) * nb2 + cc
                    for q in range(cstart[c], cstart[c + 1]):
                        j = catoms[q]
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
                            if not count_only:
                                out_j[m] = j
                                out_dx[m] = ddx
                                out_dy[m] = ddy
                                out_dz[m] = ddz
                                out_d[m] = math.sqrt(r2)
                                out_shift[m, 0] = sa
                                out_shift[m, 1] = sb
                                out_shift[m, 2] = sc
                            m += 1
        counts[ai] = m if count_only else m - start[i]
    return counts


@_jit
def _tie_less(j, shift, p, q):
    if j[p] != j[q]:
        return j[p] < j[q]
    for a in range(3):
        if shift[p, a] != shift[q, a]:
            return shift[p, a] < shift[q, a]
    return False


@_jit
def _sort_entries(atoms, start, j, dx, dy, dz, d, shift):
    """Sort each atom's entries by (distance, atom index, shift) in place."""
    for ai in range(atoms.shape[0]):
        i = atoms[ai]
        s, e = start[i], start[i + 1]
        if e - s < 2:
            continue
        order = np.argsort(d[s:e], kind="mergesort") + s
        # break exact ties deterministically (insertion sort inside runs)
        k = 0
        n = e - s
        while k < n:
            r = k + 1
            while r < n and d[order[r]] == d[order[k]]:
                r += 1
            for u in range(k + 1, r):
                v = order[u]
                w = u - 1
                while w >= k and _tie_less(j, shift, v, order[w]):
                    order[w + 1] = order[w]
                    w -= 1
                order[w + 1] = v
            k = r
        j[s:e] = j[order].copy()
        dx[s:e] = dx[order].copy()
        dy[s:e] = dy[order].copy()
        dz[s:e] = dz[order].copy()
        d[s:e] = d[order].copy()
        shift[s:e] = shift[order].copy()


def neighbor_list(positions, lattice, rc, atoms=None, *, max_entries=None,
                  stop=None) -> NeighborList:
    """Neighbour entries within ``rc`` of the requested atoms.

    Parameters
    ----------
    positions : float64 (n, 3); for periodic structures already wrapped into
        the cell (any position works, wrapping only keeps cells compact).
    lattice : float64 (3, 3), rows are the lattice vectors; None if not periodic.
    rc : cutoff radius (same unit as positions); entries with d <= rc count.
    atoms : int array of the atoms whose lists are wanted (default: all).
    max_entries : refuse (NeighborListTooLargeError) a list of more entries,
        after counting and before allocating (default: no limit).
    stop : int64 (1,) flag polled by the search (:data:`distatomenv.interrupt.STOP`);
        once it is set the search ends and KeyboardInterrupt is raised.
    """
    stop = _NO_STOP if stop is None else stop
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    n = pos.shape[0]
    atoms = np.arange(n, dtype=np.int64) if atoms is None else np.asarray(atoms, dtype=np.int64)
    periodic = lattice is not None
    if periodic:
        lat = np.ascontiguousarray(lattice, dtype=np.float64)
        frac = np.linalg.solve(lat.T, pos.T).T
        frac -= np.floor(frac)
        volume = abs(np.linalg.det(lat))
        heights = np.array([volume / np.linalg.norm(np.cross(lat[(a + 1) % 3], lat[(a + 2) % 3]))
                            for a in range(3)])
        nbin = np.maximum(1, np.floor(heights / rc)).astype(np.int64)
        reach = np.ceil(rc * nbin / heights).astype(np.int64)
    else:
        lat = np.zeros((3, 3))
        lo = pos.min(axis=0) if n else np.zeros(3)
        hi = pos.max(axis=0) if n else np.zeros(3)
        span = np.maximum(hi - lo, 1e-300)
        nbin = np.clip(np.floor(span / rc), 1, 1 << 10).astype(np.int64)
        frac = (pos - lo) / span
        frac = np.minimum(frac, np.nextafter(1.0, 0.0))
        # a flat direction (span ~ 0) needs one bin; clip before the cast, as
        # rc / 1e-300 does not fit an int64
        reach = np.minimum(np.ceil(rc * nbin / span), nbin).astype(np.int64)
    empty = np.empty(0)
    counts = _search(pos, lat, periodic, frac, nbin, reach, atoms, float(rc), True,
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
    _search(pos, lat, periodic, frac, nbin, reach, atoms, float(rc), False, start, j, dx, dy, dz,
            d, shift, stop)
    if stop[0]:
        raise KeyboardInterrupt
    _sort_entries(atoms, start, j, dx, dy, dz, d, shift)
    return NeighborList(start=start, j=j, dx=dx, dy=dy, dz=dz, d=d, shift=shift)
