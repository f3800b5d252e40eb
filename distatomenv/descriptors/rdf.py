"""Neighbour counts and pair-distance histograms: the kernels of the neighbour survey.

Pure functions on arrays; only numpy, numba and :mod:`.neighbors` are
imported.  The entries are those of :func:`.neighbors.atom_entries`, the
search that makes compute's neighbour lists, so an atom at the cutoff is
counted here exactly when compute counts it.

Parallelism: :func:`survey_search` splits the atoms into ``hist.shape[0]``
chunks and runs them with numba's ``prange`` on the threads the caller set
(``numba.set_num_threads``); it never chooses a thread count itself.  Every
count is an integer sum, so the result is the same for any thread count.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .neighbors import FULL_LIST, atom_entries, cell_sort, entry_buffers

__all__ = ["survey_search", "count_histograms", "shell_volumes", "rdf_ideal_counts"]


@nb.njit(cache=True, parallel=True, error_model="numpy")
def survey_search(pos, lat, periodic, frac, nbin, reach, elem, rc2, dr, do_rdf, counts, hist):
    """Count every atom's entries per neighbour element, and histogram distances.

    Parameters
    ----------
    pos : float64 (n, 3)  positions (wrapped into the cell when periodic).
    lat, periodic, frac, nbin, reach : the :func:`.neighbors.cell_grid` of
        ``pos`` for a search radius R >= sqrt(rc2) and R >= hist.shape[3] * dr.
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
    bins, cstart, catoms = cell_sort(frac, nbin)
    nchunk = hist.shape[0]
    nbins = hist.shape[3]
    per = (n + nchunk - 1) // nchunk
    # the entries the counts or the histogram can take: within the cutoff,
    # and a hair beyond the last bin edge, so that no distance which
    # int(d / dr) puts into the last bin is lost to rounding
    r2 = rc2
    if do_rdf:
        r2 = max(rc2, (nbins * dr * (1.0 + 1e-9)) ** 2)
    no_stop = np.zeros(1, dtype=np.int64)
    counts[:, :] = 0
    for ch in nb.prange(nchunk):
        ej, ex, ey, ez, e2, es = entry_buffers(cstart, reach)
        for i in range(ch * per, min(n, (ch + 1) * per)):
            m = atom_entries(i, pos, lat, periodic, bins, cstart, catoms, nbin, reach, r2,
                             FULL_LIST, ej, ex, ey, ez, e2, es, no_stop)
            ei = elem[i]
            for k in range(m):
                b = elem[ej[k]]
                if e2[k] <= rc2:
                    counts[i, b] += 1
                if do_rdf:
                    h = int(math.sqrt(e2[k]) / dr)
                    if h < nbins:
                        hist[ch, ei, b, h] += 1


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
