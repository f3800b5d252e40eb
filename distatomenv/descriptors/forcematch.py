"""Force-matching features: the derivatives a potential built on the SFs needs.

A potential E = Σ_j E_{e_j}(G_j) has the force F_i = −Σ_j (∂E/∂G_j) · ∂G_j/∂r_i,
summed over **every** atom j whose SFs depend on r_i (i itself included).  For
its simplest members the force is linear in features computed here, per atom
i and component α:

linear, E = Σ_j w_{e_j} · G_j
    D_i^α[e', s] = Σ_{j of element e'} ∂G_{j,s}/∂r_{i,α}: one column per SF of
    every element (Σ_e nSF(e) columns, elements in atomic-number order, SFs
    in n2p2's order); F_i = −Σ_{e'} w_{e'} · D_i[e'].
quadratic, E = Σ_j (w_{e_j} · G_j + G_jᵀ Q_{e_j} G_j)
    also Q_i^α[e', (s, t)] = Σ_{j of element e'} ∂(G_{j,s} G_{j,t})/∂r_{i,α}
    = Σ_j (G_{j,s} ∂G_{j,t} + G_{j,t} ∂G_{j,s}) for s ≤ t (the derivative of the
    quadratic basis; nSF(nSF+1)/2 columns per element, pairs in row-major
    upper-triangle order).

Conventions are those of the store's dG: G scaled as in the store (scaled
G_s = (G − shift)·factor + offset, derivatives times factor), derivatives
with respect to normalised coordinates.  Periodic images: moving atom i moves
all its images, so every entry of j's neighbour list that is atom i counts
(j = i too: i's own images).

The sums run over all neighbours within the cutoff, in a fixed order (by
central atom, then its list, then the entries of j's list), so the features
are the same bits whatever process computes them.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import sf_entry_derivatives

_jit = nb.njit(cache=True, error_model="numpy")

__all__ = ["FORCE_MATCHING", "ForceMatchingLayout", "force_matching_features"]

FORCE_MATCHING = ("none", "linear", "quadratic")


class ForceMatchingLayout:
    """Columns of the force-matching features (the same for every central element).

    nsf : int (n_el,)  SFs per element, atomic-number order.
    """

    def __init__(self, nsf):
        self.nsf = np.asarray(nsf, dtype=np.int64)
        self.d_offset = np.concatenate([[0], np.cumsum(self.nsf)]).astype(np.int64)
        tri = self.nsf * (self.nsf + 1) // 2
        self.q_offset = np.concatenate([[0], np.cumsum(tri)]).astype(np.int64)

    @property
    def n_linear(self) -> int:
        return int(self.d_offset[-1])

    @property
    def n_quadratic(self) -> int:
        return int(self.q_offset[-1])

    def bytes_per_atom(self, mode: str, itemsize: int = 8) -> int:
        """Stored bytes per atom (three components, uncompressed)."""
        n = self.n_linear + (self.n_quadratic if mode == "quadratic" else 0)
        return 3 * n * itemsize if mode != "none" else 0


@_jit
def _pairs(owned, start, nbj, counts_only, out_j, out_q, out_i):
    """Every (j, q) with q an entry of j's list that is owned atom i, for
    every distinct j in i's list (i itself included when its images are
    there).  Returns the number of pairs (fills the outputs unless counts_only)."""
    p = 0
    for r in range(owned.shape[0]):
        i = owned[r]
        for a in range(start[i], start[i + 1]):
            j = nbj[a]
            first = True                     # j seen before in i's list?
            for b in range(start[i], a):
                if nbj[b] == j:
                    first = False
                    break
            if not first:
                continue
            for q in range(start[j], start[j + 1]):
                if nbj[q] == i:
                    if not counts_only:
                        out_j[p] = j
                        out_q[p] = q
                        out_i[p] = r
                    p += 1
    return p


@_jit
def _scatter_linear(D, rows, col0, subset, nsub, vals):
    for p in range(rows.shape[0]):
        r = rows[p]
        c0 = col0[p]
        for u in range(nsub[p]):
            c = c0 + subset[p, u]
            D[r, c, 0] += vals[p, u, 0]
            D[r, c, 1] += vals[p, u, 1]
            D[r, c, 2] += vals[p, u, 2]


@_jit
def _quad_add(Q, r, q0, n, g, dv):
    """Q[r, q0 + pair(s, t)] += g_s dv_t + g_t dv_s for s <= t < n."""
    c = q0
    for s in range(n):
        for t in range(s, n):
            for a in range(3):
                Q[r, c, a] += g[s] * dv[t, a] + g[t] * dv[s, a]
            c += 1


@_jit
def _scatter_quadratic(Q, rows, q0, nsf_j, jj, subset, nsub, vals, Gs):
    max_sf = Gs.shape[1]
    dv = np.zeros((max_sf, 3))
    for p in range(rows.shape[0]):
        n = nsf_j[p]
        for s in range(n):
            dv[s, 0] = 0.0
            dv[s, 1] = 0.0
            dv[s, 2] = 0.0
        for u in range(nsub[p]):
            s = subset[p, u]
            dv[s, 0] = vals[p, u, 0]
            dv[s, 1] = vals[p, u, 1]
            dv[s, 2] = vals[p, u, 2]
        _quad_add(Q, rows[p], q0[p], n, Gs[jj[p]], dv)


@_jit
def _own_quadratic(Q, owned, elem, q0_of, nsf, Gs, dGs):
    for r in range(owned.shape[0]):
        i = owned[r]
        e = elem[i]
        _quad_add(Q, r, q0_of[e], nsf[e], Gs[i], dGs[i])


def force_matching_features(mode, owned, elem, nl, Gs, dG_own, factor, relevant, tables, z):
    """The features of the atoms ``owned`` of one structure.

    Parameters
    ----------
    mode : "linear" or "quadratic".
    owned : int64 (m,)  atoms whose rows are wanted.
    elem : int64 (n,)  element index (atomic-number order) of every atom.
    nl : NeighborList holding the lists of the owned atoms and of all their
        neighbours (normalised length unit).
    Gs : float64 (n, max_sf)  scaled G of every atom in those lists.
    dG_own : float64 (n, max_sf, 3)  unscaled dG_i/dr_i (from the SF kernel).
    factor : float64 (n_el, max_sf)  scaling factors.
    relevant : relevant[a][en] = SF indices of element en that depend on an
        atom of element a (the environment layout's).
    tables : the kernels' tables (:func:`.kernels.pack_tables`).
    z : float64 (n_el,)  atomic numbers.

    Returns
    -------
    D : float64 (m, n_linear, 3); Q : float64 (m, n_quadratic, 3) or None.
    """
    ne = len(relevant)
    nsf = np.asarray(tables[2], dtype=np.int64)            # SFs per element
    lay = ForceMatchingLayout(nsf)
    m = owned.shape[0]
    D = np.zeros((m, lay.n_linear, 3))
    # own term: ∂G_i/∂r_i (the centre's derivative)
    own_e = elem[owned]
    for a in range(ne):
        rows = np.flatnonzero(own_e == a)
        if rows.size:
            n = int(nsf[a])
            D[rows, lay.d_offset[a]:lay.d_offset[a] + n, :] = (
                dG_own[owned[rows], :n, :] * factor[a, None, :n, None])
    # neighbour terms: ∂G_j/∂r_i for every j whose list holds i
    start, nbj = nl.start, nl.j.astype(np.int64)
    P = _pairs(owned, start, nbj, True, np.empty(0, np.int64), np.empty(0, np.int64),
               np.empty(0, np.int64))
    jj = np.empty(P, np.int64)
    qq = np.empty(P, np.int64)
    rr = np.empty(P, np.int64)
    _pairs(owned, start, nbj, False, jj, qq, rr)
    Q = None
    if mode == "quadratic":
        Q = np.zeros((m, lay.n_quadratic, 3))
        dGs_own = dG_own * factor[elem][:, :, None]
        _own_quadratic(Q, owned, elem, lay.q_offset, nsf, Gs, dGs_own)
    if P:
        ej = elem[jj]
        ei = elem[owned[rr]]
        max_sub = max(1, max(len(relevant[a][en]) for a in range(ne) for en in range(ne)))
        subset = np.zeros((P, max_sub), dtype=np.int64)
        nsub = np.zeros(P, dtype=np.int64)
        for a in range(ne):
            for en in range(ne):
                mask = (ei == a) & (ej == en)
                if mask.any():
                    rel = relevant[a][en]
                    subset[mask, :len(rel)] = rel
                    nsub[mask] = len(rel)
        vals = np.zeros((P, max_sub, 3))
        fp, ip = tables[0], tables[1]
        rkey, rkey_sf, nrkey = tables[8:11]
        sf_entry_derivatives(jj, qq, subset, nsub, elem, z, start, nl.j, nl.dx, nl.dy, nl.dz, nl.d,
                             fp, ip, rkey, rkey_sf, nrkey, vals)
        vals *= factor[ej[:, None], subset][:, :, None]
        _scatter_linear(D, rr, lay.d_offset[ej], subset, nsub, vals)
        if Q is not None:
            _scatter_quadratic(Q, rr, lay.q_offset[ej], nsf[ej], jj, subset, nsub, vals, Gs)
    return D, Q
