"""Finite-difference checks of every analytic symmetry-function derivative.

Coverage: SF types 2, 3, 9, 12, 13 (rs = 0 and rs > 0, lambda +-1, zeta 1, 2,
3, 4 and non-integer 0.7, 1.5, 2.5) under every cutoff type 0-8 with alpha = 0
and alpha = 0.3; SF types 20-25 with every core p1 p2 p3 p4 e p2a p4a, radial
windows inside (0, rc), centred on 0 (rl = -rc) and outer shells, angular
windows (150, 210), (-60, 60), (30, 120), (0, 180), (90, 175); elements H, C,
O as central atoms and in every neighbour role; three structures: a triclinic
cell, a small triclinic cell whose lattice vectors are shorter than the
cutoffs (atoms see their own images) and a non-periodic cluster.

What is checked
---------------
* ``sf_values`` -- the "own" derivative dG_i/dr_i, the partial derivative with
  every neighbour entry of i (periodic images of i itself included) held
  fixed.  Moving r_i by +h changes every entry vector r_m - r_i of atom i by
  -h, so the finite difference edits the (dx, dy, dz, d) arrays of *all* of
  atom i's entries by -h and recomputes G_i (``test_own_derivative_*``).
* ``sf_values``' entry derivatives -- the neighbour derivative dG_a/dr_m: one entry m
  of atom a's list (any entry, also beyond an SF's cutoff, also a self-image)
  is moved by +h, nothing else (``test_entry_derivative_*``).
* Both together: the total dG_a/dr_i when atom i moves with all its images is
  the own derivative plus the neighbour derivatives of every entry that is an
  image of i; FD with the neighbour list rebuilt from moved positions
  (:func:`test_total_derivative_sums_images`).
* ``EnvironmentCalculator.compute`` end to end on the cluster (no images, so
  partial = total): the own block of a row against the FD of the atom's
  scaled G when moving that atom, each neighbour block against the FD of the
  neighbour's scaled G when moving the central atom, with identity scaling,
  per-SF factors, and conv_length = 1.3 (derivatives are per normalised
  length unit) (:func:`test_environment_rows_cluster`).

The neighbour list is built once; a finite difference only edits its entry
vectors and recomputes d = |(dx, dy, dz)|.  Before calling ``sf_values`` on
an edited list each atom's entries are re-sorted by distance (the kernels stop
at the first entry beyond a cutoff, so the list must stay sorted).  G_a only
depends on atom a's own entries, so one kernel call evaluates the finite
difference of every atom at once (own derivative), or of entry number q of
every atom at once (neighbour derivative).

Step and tolerance
------------------
Central differences ``(G(x + h) - G(x - h)) / 2h`` with ``FD_STEP = 1e-5``
length units, and

    |analytic - fd| <= FD_RTOL * max(1, |analytic|, |G|),   FD_RTOL = 1e-6.

Truncation error is h^2 |G'''| / 6 ~ 2e-11 |G'''|; with windows ~1 length
unit or 30 degrees wide and the steep e/p4a cores, |G'''| reaches ~1e3-1e4
(~1e-7).  Rounding error is ~ eps * W / h where W is the size of the largest
terms summed in G: |G| itself (up to ~1e3 for the weighted types), or, near
window edges, the cancelling terms of the p4/p4a polynomials (coefficients
up to 630) times weights Z_j Z_k <= 64, which gives ~1e-7 even where |G| ~ 1.
h = 1e-5 balances the two: measured over every test here the largest
|analytic - fd| / scale is 1.7e-7 (type 25 p4a, rounding-dominated; type 24
e, truncation-dominated, is 1.1e-7), where h = 1e-4 gives 1e-5 and h = 1e-6
gives 1e-6.  Most types agree to 1e-9 - 1e-10.  Scaling the analytic
derivatives by (1 + 1e-5) fails 260 of the 264 own/neighbour tests (the
other four, type 3 with the small TANHU cutoff, fail at 1e-4), so the bound
catches any real error.

Geometry preconditions (asserted, :func:`_assert_smooth_geometry`): for each
SF, no distance r_ij, r_ik (and r_jk for angular SFs) lies within
``MARGIN_R`` of a radial edge (rc, the inner cutoff alpha * rc, the left edge
rl of compact windows) and no angle within ``MARGIN_DEG`` of an angular
window edge, so every function is smooth within +-h of every configuration
used.  This matters most for the HARD cutoff (0), which is discontinuous at
rc.  Exactly collinear triplets (an atom's two self-images +-T in the small
cell) are exempt: there the angular term is stationary with respect to every
displacement.  Every SF must also have nonzero values and derivatives
somewhere in the geometry, otherwise the comparison proves nothing
(:func:`_assert_nontrivial`, in every test).
"""
from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest

from distatomenv.descriptors.environment import EnvironmentCalculator
from distatomenv.descriptors.kernels import no_sinks, sf_values
from distatomenv.descriptors.tables import pack_tables
from distatomenv.descriptors.neighbors import neighbor_list
from distatomenv.descriptors.symfuncs import (COMPACT_SUBTYPES, SymmetryFunction,
                                              SymmetryFunctionSet)
from structures import ELEMENTS, LATTICE_SMALL, LATTICE_TRICLINIC, random_structure

#: Central-difference step, length units.
FD_STEP = 1e-5
#: |analytic - fd| <= FD_RTOL * max(1, |analytic|, |G|)  (see module docstring).
FD_RTOL = 1e-6
#: No pair distance within this of a radial edge (10 FD steps).
MARGIN_R = 1e-4
#: No triplet angle within this many degrees of an angular window edge
#: (an FD step moves angles by at most h / 0.8 rad ~ 7e-4 degrees).
MARGIN_DEG = 2e-3
#: A derivative "is nonzero" above this.
NONZERO = 1e-6
#: Neighbour-list cutoff, larger than every SF cutoff below, so entries
#: beyond an SF's cutoff are checked too (their derivative must be 0).
R_LIST = 5.6

Z = np.array([1.0, 6.0, 8.0])

EXPONENTIAL_TYPES = (2, 3, 9, 12, 13)
COMPACT_SF_TYPES = (20, 21, 22, 23, 24, 25)
SUBTYPES = tuple(COMPACT_SUBTYPES)  # p1 p2 p3 p4 e p2a p4a
#: (cutoff_type, alpha): every cutoff without and with an inner cutoff; for
#: HARD, TANHU and TANH alpha is unused (checked by test_alpha_unused).
CUTOFFS = [(c, a) for c in range(9) for a in (0.0, 0.3)]


# ----------------------------------------------------------------------------- structures
#: The triclinic cell, the small cell (self-images) and a non-periodic cluster
#: whose first atoms form a slightly bent chain H H H C H O H, so every element
#: has an H-X-H triplet at 160-175 degrees (needed for the narrow SFs with the
#: (150, 210) window).
CHAIN = [[0.0, 0.0, 0.0], [1.05, 0.12, 0.03], [2.1, 0.02, 0.21], [3.2, 0.15, 0.1],
         [4.25, -0.04, 0.02], [5.35, 0.1, -0.12], [6.4, 0.05, 0.11]]


@functools.lru_cache(maxsize=None)
def structures():
    return {
        "triclinic": random_structure(13, list("HOCHOHCOHHOC"), lattice=LATTICE_TRICLINIC),
        "small_cell": random_structure(5, list("OHCH"), lattice=LATTICE_SMALL),
        "cluster": random_structure(4, list("HHHCHOHOCOH"), fixed=CHAIN,
                                    box=np.array([[-0.5, -2.0, -1.8], [6.9, 1.9, 2.1]])),
    }


# ----------------------------------------------------------------------------- SF sets
def _sf(el, t, **kw):
    return SymmetryFunction(el, t, **kw)


def exponential_sfs(t):
    """Several SFs of exponential type t for every central element: all neighbour
    elements / pairs, rs = 0 and rs > 0, lambda +-1, integer and non-integer zeta."""
    out = []
    for c in ELEMENTS:
        if t == 2:
            for e1 in ELEMENTS:
                out.append(_sf(c, 2, e1=e1, eta=0.25, rc=4.6))
            out.append(_sf(c, 2, e1=c, eta=0.9, rs=1.6, rc=5.3))
        elif t in (3, 9):
            rc = {3: (4.9, 5.3, 4.4), 9: (5.4, 4.7, 5.1)}[t]
            out += [_sf(c, t, e1="H", e2="H", eta=0.05, lambda_=1.0, zeta=1.0, rc=rc[0]),
                    _sf(c, t, e1="H", e2="O", eta=0.02, lambda_=-1.0, zeta=2.5, rc=rc[1]),
                    _sf(c, t, e1="C", e2="O", eta=0.1, rs=0.9, lambda_=1.0, zeta=1.5, rc=rc[2]),
                    _sf(c, t, e1="O", e2="O", eta=0.03, lambda_=-1.0, zeta=4.0, rc=rc[0]),
                    _sf(c, t, e1="H", e2="C", eta=0.3, rs=1.2, lambda_=1.0, zeta=2.0, rc=rc[1]),
                    _sf(c, t, e1="H", e2="O", eta=0.15, rs=1.4, lambda_=-1.0, zeta=0.7,
                        rc=rc[1])]
        elif t == 12:
            out += [_sf(c, 12, eta=0.2, rc=5.0), _sf(c, 12, eta=1.0, rs=2.1, rc=4.5)]
        elif t == 13:
            out += [_sf(c, 13, eta=0.05, lambda_=1.0, zeta=1.0, rc=5.0),
                    _sf(c, 13, eta=0.1, rs=1.1, lambda_=-1.0, zeta=2.5, rc=4.7),
                    _sf(c, 13, eta=0.02, lambda_=1.0, zeta=3.0, rc=4.7)]
    return out


#: Radial windows (rl, rc) of the compact SFs: inside (0, rc), cutoff-like
#: (rl = -rc, the bump is centred on 0) and an outer shell.
RADIAL_WINDOWS = [(0.9, 4.25), (-4.8, 4.8), (2.0, 5.4)]
#: Angular windows in degrees, including the periodic (150, 210) and (-60, 60).
ANGULAR_WINDOWS = [(150.0, 210.0), (-60.0, 60.0), (30.0, 120.0), (0.0, 180.0), (90.0, 175.0)]
PAIRS = [("H", "H"), ("H", "O"), ("C", "O"), ("O", "O"), ("H", "C")]


def compact_sfs(t, sub):
    out = []
    for c in ELEMENTS:
        if t == 20:
            for k, e1 in enumerate(ELEMENTS):
                rl, rc = RADIAL_WINDOWS[k]
                out.append(_sf(c, 20, e1=e1, rl=rl, rc=rc, subtype=sub))
        elif t == 23:
            for rl, rc in RADIAL_WINDOWS:
                out.append(_sf(c, 23, rl=rl, rc=rc, subtype=sub))
        elif t in (21, 22):
            wins = [(-5.5, 5.5), (0.5, 4.95), (1.0, 4.6), (0.7, 5.3), (-3.0, 4.4)]
            for (e1, e2), (rl, rc), (al, ar) in zip(PAIRS, wins, ANGULAR_WINDOWS):
                out.append(_sf(c, t, e1=e1, e2=e2, rl=rl, rc=rc, angle_left=al,
                               angle_right=ar, subtype=sub))
        elif t in (24, 25):
            wins = [(-5.5, 5.5), (0.5, 4.1), (1.0, 4.6), (0.7, 4.3), (-3.0, 4.4)]
            for (rl, rc), (al, ar) in zip(wins, ANGULAR_WINDOWS):
                out.append(_sf(c, t, rl=rl, rc=rc, angle_left=al, angle_right=ar,
                               subtype=sub))
    return out


def _sfset(functions, cutoff=1, alpha=0.0):
    return SymmetryFunctionSet(list(ELEMENTS), functions, cutoff_type=cutoff,
                               cutoff_alpha=alpha)


# ----------------------------------------------------------------------------- machinery
#: Names of the arrays :func:`pack_tables` returns, in order (its docstring);
#: the kernels take them as parameters of the same names.
TABLE_NAMES = ("fp", "ip", "nsf", "rad", "nrad", "grp", "ngrp", "members", "rkey", "rkey_sf",
               "nrkey")


def _table_args(kernel, tables):
    """The pack_tables arrays a kernel takes, in the order of its parameters."""
    named = dict(zip(TABLE_NAMES, tables))
    params = inspect.signature(kernel.py_func).parameters
    return [named[p] for p in params if p in named]


class Case:
    """One structure with its neighbour list (all atoms) and an SF set's tables."""

    def __init__(self, name, sfset):
        self.name = name
        self.sfset = sfset
        self.elem, self.pos, self.lattice = structures()[name]
        self.n = len(self.elem)
        self.nl = neighbor_list(self.pos, self.lattice, R_LIST)
        self.start = self.nl.start
        self.count = np.diff(self.start)
        self.owner = np.repeat(np.arange(self.n), self.count)
        self.tables = pack_tables(sfset)
        self.max_sf = self.tables[0].shape[1]
        self.nsf = self.tables[2]
        self.sfs = [sfset.by_element[e] for e in sfset.elements]

    def values(self, dx, dy, dz, atoms=None):
        """G and own dG of ``atoms`` (default all) on an edited entry list."""
        atoms = np.arange(self.n, dtype=np.int64) if atoms is None else atoms
        d = np.sqrt(dx * dx + dy * dy + dz * dz)
        order = np.lexsort((d, self.owner))
        G = np.zeros((self.n, self.max_sf))
        dG = np.zeros((self.n, self.max_sf, 3))
        sf_values(atoms, self.elem, Z, self.start, self.nl.j[order], dx[order], dy[order],
                  dz[order], d[order], *_table_args(sf_values, self.tables), G, dG,
                  *_no_entries(self.n, self.max_sf))
        return G, dG

    def entry_derivatives(self, atoms, entries):
        """dG_a/dr_m of every SF of a, for the (atom, global entry) pairs."""
        atoms = np.asarray(atoms, dtype=np.int64)
        entries = np.asarray(entries, dtype=np.int64)
        nl = self.nl
        everyone = np.arange(self.n, dtype=np.int64)
        dGe = np.full((nl.d.size, self.max_sf, 3), np.nan)
        sf_values(everyone, self.elem, Z, self.start, nl.j, nl.dx, nl.dy, nl.dz, nl.d,
                  *_table_args(sf_values, self.tables), np.zeros((self.n, self.max_sf)),
                  np.zeros((self.n, self.max_sf, 3)), self.start[:-1].astype(np.int64), dGe,
                  *no_sinks(self.max_sf), np.zeros(1, dtype=np.int64))
        assert ((entries >= self.start[atoms]) & (entries < self.start[atoms + 1])).all()
        return dGe[entries]

    def label(self, atom, s):
        return self.sfs[self.elem[atom]][s].describe()


def _no_entries(n, max_sf):
    """sf_values' trailing arguments when no entry derivatives are wanted."""
    return (np.full(n, -1, dtype=np.int64), np.zeros((0, max_sf, 3)), *no_sinks(max_sf),
            np.zeros(1, dtype=np.int64))


def _edited(nl, entries, axis, delta):
    dxyz = [nl.dx.copy(), nl.dy.copy(), nl.dz.copy()]
    dxyz[axis][entries] += delta
    return dxyz


def _compare(analytic, fd, gval, where, what):
    """Assert the FD criterion elementwise; report the worst failures."""
    scale = np.maximum(1.0, np.maximum(np.abs(analytic), np.abs(gval)))
    err = np.abs(analytic - fd)
    bad = np.argwhere(err > FD_RTOL * scale)
    if bad.size:
        lines = [f"{what}: {len(bad)} derivative(s) disagree with central differences"]
        for idx in bad[np.argsort(-err[tuple(bad.T)])][:8]:
            idx = tuple(idx)
            lines.append(f"  {where(idx)}: analytic {analytic[idx]:.12g} fd {fd[idx]:.12g} "
                         f"|diff| {err[idx]:.3g} > {FD_RTOL * scale[idx]:.3g}")
        pytest.fail("\n".join(lines))
    return float((err / scale).max()) if err.size else 0.0


def _angle_edges(sf):
    """Angular window edges (degrees) inside [0, 180] of a compact angular SF."""
    edges = []
    for a in (sf.angle_left, sf.angle_right):
        for b in (a, -a, 360.0 - a):
            if -1e-12 <= b <= 180.0 + 1e-12:
                edges.append(b)
    return edges


def _radial_edges(sf, sfset):
    if sf.is_compact:
        return [sf.rc, sf.rl]
    edges = [sf.rc]
    if sfset.cutoff_alpha > 0 and sfset.cutoff_type not in (0, 2, 3):
        edges.append(sfset.cutoff_alpha * sf.rc)
    return edges


def _assert_smooth_geometry(case):
    """Every distance and angle an SF depends on is away from the SF's edges (so
    every SF is smooth within +-FD_STEP of every configuration used).

    For each SF with cutoff rc: the entries with d < rc + MARGIN_R, their
    mutual distances r_jk and the angles between them."""
    nl = case.nl
    checks = {}
    for sf in (sf for row in case.sfs for sf in row):
        key = (sf.rc, tuple(sorted(_radial_edges(sf, case.sfset))),
               tuple(sorted(_angle_edges(sf))) if sf.is_compact and sf.is_angular else ())
        checks[key] = sf
    for (rc, redges, aedges), sf in checks.items():
        redges = np.array(redges)
        for i in range(case.n):
            sl = nl.of(i)
            v = np.stack([nl.dx[sl], nl.dy[sl], nl.dz[sl]], axis=1)
            v = v[nl.d[sl] < rc + MARGIN_R]
            r = np.linalg.norm(v, axis=1)
            iu = np.triu_indices(len(v), 1)
            rjk = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=2)[iu]
            allr = np.concatenate([r, rjk]) if sf.is_angular else r
            if allr.size:
                gap = np.abs(allr[:, None] - redges[None, :]).min()
                assert gap > MARGIN_R, (f"{case.name}: atom {i} has a distance within {gap:g} "
                                        f"of an edge of {sf.describe()}")
            if aedges and len(v) > 1:
                u = v / r[:, None]
                cos = np.clip(u @ u.T, -1.0, 1.0)[iu]
                theta = np.degrees(np.arccos(cos))
                theta = theta[np.abs(cos + 1.0) > 1e-12]        # exactly collinear: exempt
                if theta.size:
                    gap = np.abs(theta[:, None] - np.array(aedges)[None, :]).min()
                    assert gap > MARGIN_DEG, (f"{case.name}: atom {i} has an angle within "
                                              f"{gap:g} degrees of an edge of {sf.describe()}")


def _assert_nontrivial(sfset, gmax, dmax, what):
    """Every SF has a nonzero value and derivative somewhere in the geometry."""
    for e in sfset.elements:
        for s, sf in enumerate(sfset.by_element[e]):
            g, dg = gmax.get((e, s), 0.0), dmax.get((e, s), 0.0)
            assert g > 0.0 and dg > NONZERO, (
                f"{what}: {sf.describe()} has max|G| = {g:g}, max|dG| = {dg:g} in every "
                "structure; the finite-difference check would prove nothing")


def _track(stats, case, atoms, values):
    """stats[(element, sf)] = max |values| over rows whose atom is of that element."""
    for a, row in zip(atoms, values):
        e = case.sfset.elements[case.elem[a]]
        for s in range(case.nsf[case.elem[a]]):
            stats[(e, s)] = max(stats.get((e, s), 0.0), float(np.abs(row[s]).max()))


@functools.lru_cache(maxsize=None)
def _case(kind, key, name):
    """The Case of an SF set on a structure, its geometry checked (cached: the
    own and the neighbour tests share it)."""
    case = Case(name, _sfset_for(kind, key))
    _assert_smooth_geometry(case)
    return case


def _sfset_for(kind, key):
    if kind == "exp":
        t, cutoff, alpha = key
        return _sfset(exponential_sfs(t), cutoff, alpha)
    t, sub = key
    return _sfset(compact_sfs(t, sub))


def _check_own(kind, key, what):
    """FD check of sf_values' dG_i/dr_i for every atom of every structure;
    returns the largest |analytic - fd| / scale."""
    gmax, dmax = {}, {}
    worst = 0.0
    for name in structures():
        case = _case(kind, key, name)
        sfset = case.sfset
        nl = case.nl
        G, dG = case.values(nl.dx, nl.dy, nl.dz)
        allents = np.arange(len(nl.d))
        for axis in range(3):
            Gp, _ = case.values(*_edited(nl, allents, axis, -FD_STEP))   # r_i + h
            Gm, _ = case.values(*_edited(nl, allents, axis, +FD_STEP))   # r_i - h
            fd = (Gp - Gm) / (2 * FD_STEP)
            mask = np.arange(case.max_sf)[None, :] < case.nsf[case.elem][:, None]
            an = np.where(mask, dG[:, :, axis], 0.0)
            fd = np.where(mask, fd, 0.0)
            worst = max(worst, _compare(
                an, fd, G,
                lambda idx: f"{name} atom {idx[0]} {case.label(idx[0], idx[1])} axis {axis}",
                f"{what}, own derivative dG_i/dr_i"))
        atoms = np.arange(case.n)
        _track(gmax, case, atoms, G)
        _track(dmax, case, atoms, dG)
    _assert_nontrivial(sfset, gmax, dmax, what + " (own)")
    return worst


def _collinear_exempt(case, sel, entries):
    """(P, max_sf) mask: compact angular SFs of atom sel[p] whose entry
    entries[p] makes an exactly collinear pair (cos theta = +-1, computed as the
    kernels do) with another entry, e.g. the self-images +T and -T.  n2p2
    leaves such pairs out (issue 13), so G is discontinuous there and a
    central difference cannot check the derivative."""
    nl = case.nl
    out = np.zeros((len(sel), case.max_sf), dtype=bool)
    for p, (a, m) in enumerate(zip(sel, entries)):
        sl = nl.of(a)
        u = np.stack([nl.dx[sl], nl.dy[sl], nl.dz[sl]], axis=1) / nl.d[sl][:, None]
        um = np.array([nl.dx[m], nl.dy[m], nl.dz[m]]) / nl.d[m]
        c = u[:, 0] * um[0] + u[:, 1] * um[1] + u[:, 2] * um[2]
        c[m - sl.start] = 0.0
        if (np.abs(c) >= 1.0).any():
            for s_, sf in enumerate(case.sfs[case.elem[a]]):
                out[p, s_] = sf.type in (21, 22, 24, 25)
    return out


def _check_entries(kind, key, what):
    """FD check of sf_values' entry derivatives for every entry of every atom of every
    structure; returns the largest |analytic - fd| / scale."""
    gmax, dmax = {}, {}
    worst = 0.0
    for name in structures():
        case = _case(kind, key, name)
        sfset = case.sfset
        nl = case.nl
        atoms = np.arange(case.n, dtype=np.int64)
        G0, _ = case.values(nl.dx, nl.dy, nl.dz, atoms)
        qmax = int(case.count[atoms].max())
        for q in range(qmax):
            sel = atoms[case.count[atoms] > q]
            entries = case.start[sel] + q
            an = case.entry_derivatives(sel, entries)                  # (P, max_sf, 3)
            mask = np.arange(case.max_sf)[None, :] < case.nsf[case.elem[sel]][:, None]
            mask &= ~_collinear_exempt(case, sel, entries)
            for axis in range(3):
                Gp, _ = case.values(*_edited(nl, entries, axis, +FD_STEP), sel)
                Gm, _ = case.values(*_edited(nl, entries, axis, -FD_STEP), sel)
                fd = np.where(mask, (Gp[sel] - Gm[sel]) / (2 * FD_STEP), 0.0)
                a_ax = np.where(mask, an[:, :, axis], 0.0)
                worst = max(worst, _compare(
                    a_ax, fd, G0[sel],
                    lambda idx: (f"{name} atom {sel[idx[0]]} entry {q} (atom "
                                 f"{nl.j[entries[idx[0]]]}, image "
                                 f"{tuple(nl.shift[entries[idx[0]]])}, d "
                                 f"{nl.d[entries[idx[0]]]:.4f}) "
                                 f"{case.label(sel[idx[0]], idx[1])} axis {axis}"),
                    f"{what}, neighbour derivative dG_a/dr_m"))
            _track(dmax, case, sel, an)
        _track(gmax, case, atoms, G0[atoms])
    _assert_nontrivial(sfset, gmax, dmax, what + " (neighbour)")
    return worst


EXP_CASES = [pytest.param(t, c, a, id=f"type{t}-cutoff{c}-alpha{a:g}")
             for t in EXPONENTIAL_TYPES for c, a in CUTOFFS]
COMPACT_CASES = [pytest.param(t, sub, id=f"type{t}-{sub}")
                 for t in COMPACT_SF_TYPES for sub in SUBTYPES]


# ----------------------------------------------------------------------------- tests
@pytest.mark.parametrize("t, cutoff, alpha", EXP_CASES)
def test_own_derivative_exponential(t, cutoff, alpha):
    _check_own("exp", (t, cutoff, alpha), f"type {t} cutoff {cutoff} alpha {alpha}")


@pytest.mark.parametrize("t, sub", COMPACT_CASES)
def test_own_derivative_compact(t, sub):
    _check_own("compact", (t, sub), f"type {t} subtype {sub}")


@pytest.mark.parametrize("t, cutoff, alpha", EXP_CASES)
def test_entry_derivative_exponential(t, cutoff, alpha):
    _check_entries("exp", (t, cutoff, alpha),
                   f"type {t} cutoff {cutoff} alpha {alpha}")


@pytest.mark.parametrize("t, sub", COMPACT_CASES)
def test_entry_derivative_compact(t, sub):
    _check_entries("compact", (t, sub), f"type {t} subtype {sub}")


# ----------------------------------------------------------------------------- end to end
def mixed_sfs():
    """Every SF type in one set (compact types with assorted subtypes)."""
    out = []
    for t in EXPONENTIAL_TYPES:
        out += exponential_sfs(t)
    for t, sub in zip(COMPACT_SF_TYPES, ("p2", "p3", "e", "p4a", "p2a", "p1")):
        out += compact_sfs(t, sub)
    return out


#: Neighbour counts of the end-to-end check (rows: central H, C, O; columns:
#: neighbour H, C, O); the cluster has enough neighbours for all of them.
NCUT = np.array([[2, 1, 2], [3, 1, 2], [2, 2, 2]])


def _scaling(sfset, kind):
    """(shift, factor, offset) per element: trivial, or per-SF factors."""
    out = {}
    for a, e in enumerate(sfset.elements):
        n = sfset.n_sf(e)
        if kind == "identity":
            out[e] = (np.zeros(n), np.ones(n), np.zeros(n))
        else:
            k = np.arange(n)
            out[e] = (0.1 * (k % 3) + 0.05 * a, 0.4 + 0.37 * ((k * 7 + a) % 6),
                      -0.5 + 0.1 * (k % 4))
    return out


def _own_g(out, sfset, n):
    """Scaled own G of every atom, from the rows of compute()."""
    rows = {}
    for e, res in out.items():
        nsf = sfset.n_sf(e)
        for r, atom in enumerate(res["atom"]):
            rows[int(atom)] = res["G"][r, :nsf]
    return [rows[i] for i in range(n)]


@pytest.mark.parametrize("scaling, conv_length", [("identity", 1.0), ("factors", 1.0),
                                                  ("factors", 1.3)])
def test_environment_rows_cluster(scaling, conv_length):
    """compute() on the cluster: own and neighbour dG blocks against central
    differences of the scaled G rows.  dG is per normalised length unit
    (positions x conv_length), so the FD in input units is divided by it."""
    sfset = _sfset(mixed_sfs(), cutoff=7, alpha=0.3)
    elem, pos, _ = structures()["cluster"]
    n = len(elem)
    calc = EnvironmentCalculator(sfset, NCUT, _scaling(sfset, scaling), conv_length=conv_length)
    lay = calc.layout
    base = calc.compute(elem, pos, None)
    own_g = _own_g(base, sfset, n)
    fd = np.zeros((n, 3), dtype=object)               # fd[i, axis][j] = dGs_j / dr_i
    for i in range(n):
        for axis in range(3):
            plus, minus = pos.copy(), pos.copy()
            plus[i, axis] += FD_STEP
            minus[i, axis] -= FD_STEP
            gp = _own_g(calc.compute(elem, plus, None), sfset, n)
            gm = _own_g(calc.compute(elem, minus, None), sfset, n)
            fd[i, axis] = [(gp[j] - gm[j]) / (2 * FD_STEP) / conv_length for j in range(n)]
    checked_own = checked_nb = 0.0
    for a, e in enumerate(lay.elements):
        res = base[e]
        nsf = sfset.n_sf(e)
        blocks = lay.dg_block_columns(a)
        benum = lay.block_element(a)
        for r, i in enumerate(res["atom"]):
            for axis, key in enumerate(("dGdx", "dGdy", "dGdz")):
                dg = res[key][r]
                _compare(dg[:nsf], fd[i, axis][i], own_g[i],
                         lambda idx: f"atom {i} {sfset.by_element[e][idx[0]].describe()}",
                         f"compute() own block, axis {axis}")
                checked_own = max(checked_own, np.abs(dg[:nsf]).max())
                for b, cols in enumerate(blocks):
                    j = int(res["nb_atom"][r, b])
                    en = lay.elements[benum[b]]
                    rel = lay.relevant[a][benum[b]]
                    assert cols.stop - cols.start == len(rel)
                    _compare(dg[cols], fd[i, axis][j][rel], own_g[j][rel],
                             lambda idx: (f"atom {i} block {b} (atom {j}) "
                                          f"{sfset.by_element[en][rel[idx[0]]].describe()}"),
                             f"compute() neighbour block, axis {axis}")
                    checked_nb = max(checked_nb, np.abs(dg[cols]).max())
                    # SFs of j outside the relevant subset do not depend on atom i
                    other = np.setdiff1d(np.arange(sfset.n_sf(en)), rel)
                    np.testing.assert_allclose(fd[i, axis][j][other], 0.0, atol=1e-9)
    assert checked_own > NONZERO and checked_nb > NONZERO


def test_alpha_unused_by_hard_and_tanh_cutoffs():
    """alpha only moves the inner cutoff of cutoff types 1 and 4-8; HARD (0),
    TANHU (2) and TANH (3) ignore it, and for the others it changes G."""
    for cutoff in range(9):
        outs = []
        for alpha in (0.0, 0.3):
            case = Case("triclinic", _sfset(exponential_sfs(2) + exponential_sfs(13), cutoff,
                                            alpha))
            outs.append(case.values(case.nl.dx, case.nl.dy, case.nl.dz))
        same = all(np.array_equal(x, y) for x, y in zip(*outs))
        assert same == (cutoff in (0, 2, 3)), cutoff


@pytest.mark.parametrize("name", ["small_cell", "triclinic"])
def test_total_derivative_sums_images(name):
    """Moving atom i moves all of its periodic images: the total dG_a/dr_i is
    the own derivative (a = i) plus the neighbour derivatives of every entry of
    a that is an image of i (self-images included).  Checked against central
    differences of G with the neighbour list rebuilt from moved positions."""
    case = Case(name, _sfset(mixed_sfs(), cutoff=7, alpha=0.3))
    _assert_smooth_geometry(case)
    nl, n = case.nl, case.n
    G0, dG0 = case.values(nl.dx, nl.dy, nl.dz)
    atoms = case.owner.astype(np.int64)
    ent = case.entry_derivatives(atoms, np.arange(len(atoms)))        # every entry
    total = np.zeros((n, n, case.max_sf, 3))                          # [a, i]
    total[np.arange(n), np.arange(n)] = dG0
    np.add.at(total, (atoms, nl.j.astype(np.int64)), ent)
    mask = np.arange(case.max_sf)[None, :] < case.nsf[case.elem][:, None]
    total = np.where(mask[:, None, :, None], total, 0.0)
    n_images = np.bincount(atoms * n + nl.j, minlength=n * n).reshape(n, n)
    if name == "small_cell":
        assert (n_images.diagonal() > 0).all()           # every atom sees its own images
    for i in range(n):
        for axis in range(3):
            Gs = []
            for sign in (+1, -1):
                pos = case.pos.copy()
                pos[i, axis] += sign * FD_STEP
                moved = neighbor_list(pos, case.lattice, R_LIST)
                G = np.zeros((n, case.max_sf))
                sf_values(np.arange(n, dtype=np.int64), case.elem, Z, moved.start, moved.j,
                          moved.dx, moved.dy, moved.dz, moved.d,
                          *_table_args(sf_values, case.tables), G, np.zeros((n, case.max_sf, 3)),
                          *_no_entries(n, case.max_sf))
                Gs.append(G)
            fd = np.where(mask, (Gs[0] - Gs[1]) / (2 * FD_STEP), 0.0)
            _compare(total[:, i, :, axis], fd, G0,
                     lambda idx: (f"{name} G of atom {idx[0]} ({n_images[idx[0], i]} entries "
                                  f"of atom {i}) {case.label(idx[0], idx[1])} axis {axis}"),
                     f"total derivative dG_a/dr_{i}")
    assert np.abs(total).max() > NONZERO


@pytest.mark.parametrize("name", ["cluster", "small_cell", "triclinic"])
def test_an_atoms_bits_do_not_depend_on_the_atoms_beside_it(name):
    """The kernel gives an atom the same G, dG and entry derivatives, to the
    bit, whether it is computed alone, with every atom, or after others:
    callers split atoms over threads and batches and promise results that do
    not depend on the split.  (With work rows sized by the longest list in a
    call, LLVM's run-time overlap check of the rows let some loops run scalar
    for one split and vectorised for another, a last-bit difference.)"""
    case = Case(name, _sfset(mixed_sfs(), cutoff=7, alpha=0.3))
    nl, n = case.nl, case.n

    def run(groups):
        G = np.zeros((n, case.max_sf))
        dG = np.zeros((n, case.max_sf, 3))
        dGe = np.zeros((nl.d.size, case.max_sf, 3))
        for atoms in groups:
            sf_values(np.asarray(atoms, dtype=np.int64), case.elem, Z, nl.start, nl.j, nl.dx,
                      nl.dy, nl.dz, nl.d, *_table_args(sf_values, case.tables), G, dG,
                      nl.start[:-1].astype(np.int64), dGe, *no_sinks(case.max_sf),
                      np.zeros(1, dtype=np.int64))
        return G, dG, dGe

    together = run([np.arange(n)])
    assert np.abs(together[2]).max() > NONZERO
    shortest = int(np.argmin(case.count))
    for split in ([[i] for i in range(n)], [np.arange(n)[::-1]],
                  [[shortest], np.delete(np.arange(n), shortest)]):
        for what, a, b in zip(("G", "dG", "entry derivatives"), together, run(split)):
            np.testing.assert_array_equal(b, a, err_msg=f"{name}: {what}, atoms split {split}")
