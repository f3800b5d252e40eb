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

The sums run over all neighbours within the cutoff, in a fixed order (for
each atom i: its neighbours j by increasing index, the entries of j's list
that are i in list order, then i's own term), so the features are the same
bits whatever process or thread computes them.  The ∂G_j/∂r_i come from the
SF kernel's entry derivatives (:func:`.kernels.sf_values`), evaluated once
per atom j for all its entries.  When one thread computes a structure, the
kernel adds the linear sums itself (``kernels._entry_sinks``, in the same
order and with the same products, so the same bits); :class:`ForceMatchingSums`
then only holds the sums, adds the own terms and, for the quadratic features
or atoms split over threads, adds the neighbour terms from batches of entry
derivatives.
"""
from __future__ import annotations

import numba as nb
import numpy as np

_jit = nb.njit(cache=True, nogil=True, error_model="numpy")

__all__ = ["FORCE_MATCHING", "ForceMatchingLayout", "ForceMatchingSums"]

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
def _quad_add(Q, r, q0, n, g, dv):
    """Q[r, q0 + pair(s, t)] += g_s dv_t + g_t dv_s for s <= t < n."""
    c = q0
    for s in range(n):
        for t in range(s, n):
            for a in range(3):
                Q[r, c, a] += g[s] * dv[t, a] + g[t] * dv[s, a]
            c += 1


@_jit
def _add_term(D, Q, r, e, src, k, g, d_off, q_off, nsf, factor, dv):
    """Add the scaled derivative src[k] of the SFs of an atom of element e
    (G row ``g``) to feature row r: D[r] (and Q[r] if it has rows)."""
    n = nsf[e]
    o = d_off[e]
    for s in range(n):
        f = factor[e, s]
        for a in range(3):
            v = src[k, s, a] * f
            dv[s, a] = v
            D[r, o + s, a] += v
    if Q.shape[0] > 0:
        _quad_add(Q, r, q_off[e], n, g, dv)


@_jit
def _scatter(batch, start, nbj, e0, row_of, elem, d_off, q_off, nsf, factor, Gs, dGe, D, Q):
    """Add ∂G_j/∂r_i (scaled) of every j in ``batch`` to the rows of the owned
    atoms i in j's list: each entry q of j's list that is an owned atom
    (``row_of[nbj[q]] >= 0``) adds its entry derivative dGe[q - e0].  Q has
    zero rows unless the quadratic features are wanted."""
    dv = np.zeros((factor.shape[1], 3))
    for b in range(batch.shape[0]):
        j = batch[b]
        for q in range(start[j], start[j + 1]):
            r = row_of[nbj[q]]
            if r >= 0:
                _add_term(D, Q, r, elem[j], dGe, q - e0, Gs[j], d_off, q_off, nsf, factor, dv)


@_jit
def _add_own(owned, elem, d_off, q_off, nsf, factor, Gs, dG, D, Q):
    """Add the centre's own term ∂G_i/∂r_i (scaled) to D (and its quadratic
    term to Q)."""
    dv = np.zeros((factor.shape[1], 3))
    for r in range(owned.shape[0]):
        i = owned[r]
        _add_term(D, Q, r, elem[i], dG, i, Gs[i], d_off, q_off, nsf, factor, dv)


class ForceMatchingSums:
    """Accumulates the features of the owned atoms of one structure while the
    SF kernel runs over batches of atoms (see environment.py).

    Order of the sums, the same whatever process or thread computes them: for
    each owned atom i, every neighbour j in increasing atom index, each entry
    of j's list that is i in list order; the centre's own term last.
    """

    def __init__(self, mode, owned, n_atoms, elem, nsf, factor):
        self.mode = mode
        self.owned = np.asarray(owned, dtype=np.int64)
        self.elem = elem
        self.nsf = np.asarray(nsf, dtype=np.int64)
        self.factor = factor
        self.layout = ForceMatchingLayout(self.nsf)
        m = self.owned.shape[0]
        self.row_of = np.full(n_atoms, -1, dtype=np.int64)
        self.row_of[self.owned] = np.arange(m)
        self.D = np.zeros((m, self.layout.n_linear, 3))
        self.Q = np.zeros((m, self.layout.n_quadratic, 3) if mode == "quadratic" else (0, 0, 3))

    def add_batch(self, batch, start, nbj, e0, Gs, dGe):
        """Neighbour terms of the atoms ``batch`` (increasing), whose entry
        derivatives are dGe rows start[j] - e0 onwards."""
        lay = self.layout
        _scatter(batch, start, nbj, e0, self.row_of, self.elem, lay.d_offset, lay.q_offset,
                 self.nsf, self.factor, Gs, dGe, self.D, self.Q)

    def finish(self, Gs, dG_own):
        """Add the own terms; returns (D, Q or None)."""
        lay = self.layout
        _add_own(self.owned, self.elem, lay.d_offset, lay.q_offset, self.nsf, self.factor, Gs,
                 dG_own, self.D, self.Q)
        return self.D, (self.Q if self.mode == "quadratic" else None)
