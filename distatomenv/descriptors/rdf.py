"""Neighbour counts and pair-distance histograms: the kernels of the neighbour survey.

Pure functions on arrays; only numpy and numba are imported.  A neighbour
*entry* is defined exactly as in :mod:`.neighbors` (and so as in n2p2): an
atom j or one of its periodic images with |r_j + T - r_i|^2 <= rc^2, every
image its own entry, only i itself at T = 0 excluded.  The squared distance
is evaluated with the same expression, ``((x_j - x_i) + t_x)^2 + ...``, so an
atom at the cutoff is counted here exactly when compute counts it.

Parallelism: :func:`survey_search` splits the atoms into ``hist.shape[0]``
chunks and runs them with numba's ``prange`` on the threads the caller set
(``numba.set_num_threads``); it never chooses a thread count itself.  Every
count is an integer sum, so the result is the same for any thread count.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .neighbors import cell_sort

__all__ = ["cell_grid", "survey_search", "count_histograms", "shell_volumes", "rdf_ideal_counts"]


def cell_grid(positions, lattice, r):
    """Cell-list geometry for a search radius ``r``.

    positions : float64 (n, 3), wrapped into the cell when periodic.
    lattice : float64 (3, 3), rows = lattice vectors, or None (not periodic).
    r : search radius > 0 (same length unit).

    Returns (lat float64 (3, 3), periodic bool, frac float64 (n, 3) in [0, 1),
    nbin int64 (3,), reach int64 (3,)): atoms are binned by ``frac``, a search
    visits ``reach`` cells either side of the atom's cell.
    """
    pos = np.asarray(positions, dtype=np.float64)
    n = pos.shape[0]
    if lattice is not None:
        lat = np.ascontiguousarray(lattice, dtype=np.float64)
        frac = np.linalg.solve(lat.T, pos.T).T if n else np.zeros((0, 3))
        frac -= np.floor(frac)
        volume = abs(np.linalg.det(lat))
        heights = np.array([volume / np.linalg.norm(np.cross(lat[(a + 1) % 3], lat[(a + 2) % 3]))
                            for a in range(3)])
        nbin = np.maximum(1, np.floor(heights / r)).astype(np.int64)
        reach = np.ceil(r * nbin / heights).astype(np.int64)
        return lat, True, np.ascontiguousarray(frac), nbin, reach
    lo = pos.min(axis=0) if n else np.zeros(3)
    hi = pos.max(axis=0) if n else np.zeros(3)
    span = np.maximum(hi - lo, 1e-300)
    nbin = np.clip(np.floor(span / r), 1, 1 << 10).astype(np.int64)
    frac = np.minimum((pos - lo) / span, np.nextafter(1.0, 0.0))
    # a flat dimension (span ~ 0) has one cell: the whole row of cells is in reach
    reach = np.minimum(np.ceil(np.minimum(r * nbin / span, nbin + 1.0)), nbin).astype(np.int64)
    return np.zeros((3, 3)), False, np.ascontiguousarray(frac), nbin, reach


@nb.njit(cache=True, parallel=True, error_model="numpy")
def survey_search(pos, lat, periodic, frac, nbin, reach, elem, rc2, dr, do_rdf, counts, hist):
    """Count every atom's entries per neighbour element, and histogram distances.

    Parameters
    ----------
    pos : float64 (n, 3)  positions (wrapped into the cell when periodic).
    lat, periodic, frac, nbin, reach : from :func:`cell_grid` for a search
        radius R >= sqrt(rc2) and R >= hist.shape[3] * dr.
    elem : int64 (n,)  element index per atom, 0 .. n_el - 1.
    rc2 : squared cutoff of the counts.
    dr : bin width of the distance histogram.
    do_rdf : whether to fill ``hist``.
    counts : int64 (n, n_el), output (overwritten): entries of each element
        with r^2 <= rc2.
    hist : int64 (nchunk, n_el, n_el, nbins), added to: hist[c, a, b, k]
        counts entries of element b around atoms of element a with
        k * dr <= d < (k + 1) * dr, for atoms of chunk c.
    """
    n = pos.shape[0]
    nb0, nb1, nb2 = nbin[0], nbin[1], nbin[2]
    bidx, cstart, catoms = cell_sort(frac, nbin)
    nchunk = hist.shape[0]
    nbins = hist.shape[3]
    per = (n + nchunk - 1) // nchunk
    counts[:, :] = 0
    for ch in nb.prange(nchunk):
        for i in range(ch * per, min(n, (ch + 1) * per)):
            ei = elem[i]
            xi, yi, zi = pos[i, 0], pos[i, 1], pos[i, 2]
            for da in range(-reach[0], reach[0] + 1):
                ca = bidx[i, 0] + da
                sa = (ca - (ca % nb0)) // nb0 if periodic else 0
                ca = ca % nb0 if periodic else ca
                if ca < 0 or ca >= nb0:
                    continue
                for db in range(-reach[1], reach[1] + 1):
                    cb = bidx[i, 1] + db
                    sb = (cb - (cb % nb1)) // nb1 if periodic else 0
                    cb = cb % nb1 if periodic else cb
                    if cb < 0 or cb >= nb1:
                        continue
                    for dc in range(-reach[2], reach[2] + 1):
                        cc = bidx[i, 2] + dc
                        sc = (cc - (cc % nb2)) // nb2 if periodic else 0
                        cc = cc % nb2 if periodic else cc
                        if cc < 0 or cc >= nb2:
                            continue
                        tx = sa * lat[0, 0] + sb * lat[1, 0] + sc * lat[2, 0]
                        ty = sa * lat[0, 1] + sb * lat[1, 1] + sc * lat[2, 1]
                        tz = sa * lat[0, 2] + sb * lat[1, 2] + sc * lat[2, 2]
                        c = (ca * nb1 + cb) * nb2 + cc
                        for q in range(cstart[c], cstart[c + 1]):
                            j = catoms[q]
                            if j == i and sa == 0 and sb == 0 and sc == 0:
                                continue
                            ddx = (pos[j, 0] - xi) + tx
                            ddy = (pos[j, 1] - yi) + ty
                            ddz = (pos[j, 2] - zi) + tz
                            r2 = ddx * ddx + ddy * ddy + ddz * ddz
                            ej = elem[j]
                            if r2 <= rc2:
                                counts[i, ej] += 1
                            if do_rdf:
                                k = int(math.sqrt(r2) / dr)
                                if k < nbins:
                                    hist[ch, ei, ej, k] += 1


def count_histograms(counts, elem, n_el, hists=None):
    """Add one structure's per-atom counts to the per-pair count histograms.

    counts : int64 (n, n_el) from :func:`survey_search`; elem : int64 (n,).
    hists : dict (a, b) -> int64 array (h[m] = atoms of element a with exactly
        m entries of element b), updated in place and grown as needed; a new
        dict when None.  Returns ``hists``.
    """
    if hists is None:
        hists = {(a, b): np.zeros(0, dtype=np.int64) for a in range(n_el) for b in range(n_el)}
    for a in range(n_el):
        rows = counts[elem == a]
        if rows.shape[0] == 0:
            continue
        for b in range(n_el):
            add = np.bincount(rows[:, b])
            h = hists[(a, b)]
            if add.size > h.size:
                h = np.concatenate([h, np.zeros(add.size - h.size, dtype=np.int64)])
            h[:add.size] += add
            hists[(a, b)] = h
    return hists


def shell_volumes(edges):
    """Volumes 4/3 pi (r_{k+1}^3 - r_k^3) of the spherical shells between ``edges``
    (float64 (nbins + 1,)).  Returns float64 (nbins,)."""
    e = np.asarray(edges, dtype=np.float64)
    return 4.0 / 3.0 * np.pi * (e[1:] ** 3 - e[:-1] ** 3)


def rdf_ideal_counts(natoms_per_element, volume, shells):
    """Ideal-gas expectation of the pair-distance histogram of one structure.

    natoms_per_element : int (n_el,) atoms of each element; volume : cell
    volume; shells : float64 (nbins,) from :func:`shell_volumes`.
    Returns float64 (n_el, n_el, nbins): N_a * rho_b * shell, with
    rho_b = (N_b - [a == b]) / V (the central atom itself excluded).
    """
    nat = np.asarray(natoms_per_element, dtype=np.float64)
    others = nat[None, :] - np.eye(nat.size)
    rho = np.maximum(others, 0.0) / float(volume)
    return nat[:, None, None] * rho[:, :, None] * np.asarray(shells)[None, None, :]
