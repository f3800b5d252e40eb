"""Numba kernel: symmetry functions and their analytic derivatives.

One serial kernel, :func:`sf_values`, over a distance-sorted neighbour list
(see neighbors.py).  For each requested atom i it gives, in one pass over i's
pairs and triples:

* G_i (unscaled);
* dG_i/dr_i, the partial derivative with every neighbour entry (periodic
  images included) held fixed, which is what n2p2 writes as the "own" block
  (for the exponential angular SFs it is formed as minus the sum of the
  entry derivatives: an SF does not change when i and all its entries move
  together);
* optionally dG_i/dr_m for every entry m of i's list: the derivative of i's
  SFs with respect to the position of one neighbour entry.  n2p2's neighbour
  blocks and the force-matching sums are gathered from these; or, when one
  thread computes a structure's atoms in increasing order, the kernel copies
  the blocks and adds the linear force-matching sums itself, while an atom's
  entry derivatives are still in cache (:func:`_entry_sinks`), and the array
  of every entry's derivatives is never written.

The per-term functions below return a term's value and its partial
derivatives with respect to the scalar variables r_ij, r_ik, r_jk and
cos(theta_ijk); the chain rule to Cartesian vectors is done once, in the
loops.  Inputs are assumed valid (validated at the boundary, in io/).

Speed comes from loops LLVM vectorises: the partner loops of the angular
SFs call no library function (the Gaussians, the r_jk cutoff and the powers
use the branch-free :mod:`.vmath` functions and :func:`.cutoff.cutoff_rows`),
have no early exit, and run over rows padded to a multiple of 8 with
partners that add exactly zero.

Compile time is part of the design: one kernel, the larger helper functions
compiled once each (no numba-level ``inline="always"`` for them: measured, it
tripled the kernel's compile time with no speed-up that the noise showed;
only the small vmath functions and the row sum are inlined), no
``parallel=True``, one signature.  The kernel releases the GIL; callers run
it on several threads over disjoint sets of atoms (see environment.py) or
over whole structures (engine/worker.py), so results never depend on the
thread count.

Parameter tables (their column layout is defined here) are filled and
stacked over elements by :func:`distatomenv.descriptors.tables.pack_tables`.
The kernel takes preallocated outputs.  This module imports only numpy,
numba, math, the cutoff functions (:mod:`.cutoff`) and :mod:`.vmath`.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .cutoff import CORE_ASYM, compact, cutoff, cutoff_rows
from .vmath import vexp, vipow

# Column layout of the kernels' float parameter table (one row per SF).
P_ETA, P_RS, P_RC, P_LAMBDA, P_ZETA, P_RL, P_AL, P_AR, P_PREF, P_RCI = range(10)
N_FLOAT_PARAMS = 10
# Column layout of the integer table.
I_TYPE, I_E1, I_E2, I_CORE, I_IZETA, I_JKPREV = range(6)
N_INT_PARAMS = 6

_jit = nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
# the angular loops: sums over k may be reordered so that they vectorise
_jit_vec = nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"})


# ----------------------------------------------------------------------------- terms
@_jit
def _pair_radial(fp, ip, s, r):
    """Per-entry radial factor of angular SF s: (R, dR/dr).

    Exponential types: fc(r) only (the Gaussian is applied per term);
    compact types: the radial compact function."""
    if ip[s, I_TYPE] >= 20:
        return compact(ip[s, I_CORE], r, fp[s, P_RL], fp[s, P_RC])
    return cutoff(ip[s, I_CORE], r, fp[s, P_RC], fp[s, P_RCI])


@_jit
def _jk_source(fp, ip, s, theta):
    """The SF whose radial function gives the r_jk factor of narrow compact SF
    s (types 21, 24) at angle theta, as n2p2 evaluates it: n2p2 reuses the
    factor of the previous SF of the same type and neighbour elements
    (I_JKPREV, in its sorted order) when that SF has the same rl and rc and
    its angle window holds theta, and so on back; otherwise s's own.  Asked of
    nnp-scaling on small clusters: with e then p2, p2's value is exactly that
    with e's r_jk factor on the triples in e's window; an SF of the same
    elements between them with another rl or rc, or a window without the
    angle, breaks the chain; SFs of other neighbour elements do not."""
    m = s
    while True:
        q = ip[m, I_JKPREV]
        if q < 0 or fp[q, P_RL] != fp[m, P_RL] or fp[q, P_RC] != fp[m, P_RC] or \
                not fp[q, P_AL] < theta < fp[q, P_AR]:
            return m
        m = q


#: rows of the angular work array X, one column per partner k of a pair j.
#: Geometry of the partners (laid out once per j):
(_C, _RIK, _FIK, _DFIK, _RJK, _FJK, _DFJK, _CJX, _CJY, _CJZ, _CKX, _CKY, _CKZ, _EX, _EY, _EZ,
 _UKX, _UKY, _UKZ,
 # the factors every SF of one (eta, rs) shares (once per j and (eta, rs)):
 # exp(-eta sum x^2) fij fik fjk and its derivatives by r_ij, r_ik, r_jk
 _EF, _DIJ, _DIK, _DJK,
 # one SF's angular factor pref (1 + lambda c)^zeta, its derivative by c,
 # and its terms' derivatives by r_ik, cos theta, r_jk
 _PZ, _DPZ, _TIK, _TC, _TJK) = range(28)
_NX = 28


@_jit_vec
def _exp_triples(i, e, fpe, ipe, members, m0, m1, narrow, w, rc, ctype, rci, fr, dfr, ja, jb, ka,
                 kb, same, r, ir, vx, vy, vz, ux, uy, uz, G, W, X, kp):
    """Exponential angular SFs (types 3, 9, 13) of one group: every triple
    (j in positions ja..jb, k in ka..kb, k > j when ``same``), added to G and
    W (entry derivatives, permuted positions).  dG_i/dr_i is not accumulated
    here: it is minus the sum of W over the entries (the SF is invariant
    under translation), formed once per atom by the caller.

    For each j the geometry of its partners k is laid out in the rows of X
    (contiguous in k), their positions in ``kp``.  Narrow SFs keep only the
    partners within the cutoff of j as well (a branch-free compaction): the
    others add exactly zero and are about half of all.  A term of SF s is pref_s (1 + lambda c)^zeta times a
    factor that depends on s only through (eta, rs), exp(-eta sum x^2) times
    the cutoffs, and likewise its derivatives by r_ij, r_ik and r_jk.  Those
    factors are formed once per (eta, rs) (the group's SFs are sorted by
    them); then each SF runs one loop of reductions over k (G and the
    derivative by r_j), then adds to the partners' entries of W (three
    contiguous loops, or one scattered loop over the kept partners).  No loop
    calls a function or branches on data.  (Measured on H2O: sharing the
    factors, 5-7 % faster than one loop per SF that recomputes them; keeping
    only the partners within the cutoff of j, 9-13 % faster again, 20 % on
    CG water.)
    """
    x_c = X[_C]
    x_rik = X[_RIK]
    x_fik = X[_FIK]
    x_dfik = X[_DFIK]
    x_rjk = X[_RJK]
    x_fjk = X[_FJK]
    x_dfjk = X[_DFJK]
    x_cjx = X[_CJX]
    x_cjy = X[_CJY]
    x_cjz = X[_CJZ]
    x_ckx = X[_CKX]
    x_cky = X[_CKY]
    x_ckz = X[_CKZ]
    x_ex = X[_EX]
    x_ey = X[_EY]
    x_ez = X[_EZ]
    x_ukx = X[_UKX]
    x_uky = X[_UKY]
    x_ukz = X[_UKZ]
    x_ef = X[_EF]
    x_dij = X[_DIJ]
    x_dik = X[_DIK]
    x_djk = X[_DJK]
    x_pz = X[_PZ]
    x_dpz = X[_DPZ]
    x_tik = X[_TIK]
    x_tc = X[_TC]
    x_tjk = X[_TJK]
    for pj in range(ja, jb):
        rij = r[pj]
        if rij >= rc:
            break
        fij = fr[pj]
        dfij = dfr[pj]
        ujx = ux[pj]
        ujy = uy[pj]
        ujz = uz[pj]
        klo = pj + 1 if same else ka
        khi = klo
        while khi < kb and r[khi] < rc:
            khi += 1
        if khi <= klo:
            continue
        # the partners k: all within the cutoff of i; narrow SFs keep only
        # those within the cutoff of j (the others add exactly zero), about
        # half of them
        if narrow:
            vjx = vx[pj]
            vjy = vy[pj]
            vjz = vz[pj]
            rc2 = rc * rc
            nk0 = 0
            for pk in range(klo, khi):
                ex = vx[pk] - vjx
                ey = vy[pk] - vjy
                ez = vz[pk] - vjz
                r2 = ex * ex + ey * ey + ez * ez
                kp[nk0] = pk             # branch-free: kept if within rc
                x_ex[nk0] = ex
                x_ey[nk0] = ey
                x_ez[nk0] = ez
                x_rjk[nk0] = r2
                nk0 += 1 if r2 < rc2 else 0
            if nk0 == 0:
                continue
        else:
            nk0 = khi - klo
            for t in range(nk0):
                kp[t] = klo + t
        # padded to a multiple of 8 with partners that add exactly zero
        nk = (nk0 + 7) & ~7
        for t in range(nk0, nk):
            x_c[t] = 0.0
            x_rik[t] = 1.0
            x_fik[t] = 0.0
            x_dfik[t] = 0.0
            x_rjk[t] = 1.0
            x_fjk[t] = 0.0
            x_dfjk[t] = 0.0
            x_cjx[t] = 0.0
            x_cjy[t] = 0.0
            x_cjz[t] = 0.0
            x_ckx[t] = 0.0
            x_cky[t] = 0.0
            x_ckz[t] = 0.0
            x_ex[t] = 0.0
            x_ey[t] = 0.0
            x_ez[t] = 0.0
            x_ukx[t] = 0.0
            x_uky[t] = 0.0
            x_ukz[t] = 0.0
        irij = 1.0 / rij
        for t in range(nk0):
            pk = kp[t]
            c = ujx * ux[pk] + ujy * uy[pk] + ujz * uz[pk]
            x_c[t] = c
            x_rik[t] = r[pk]
            x_fik[t] = fr[pk]
            x_dfik[t] = dfr[pk]
            x_ukx[t] = ux[pk]
            x_uky[t] = uy[pk]
            x_ukz[t] = uz[pk]
            # dc/dr_j = (u_k - c u_j)/rij, dc/dr_k = (u_j - c u_k)/rik, dc/dr_i = -(both)
            x_cjx[t] = (ux[pk] - c * ujx) * irij
            x_cjy[t] = (uy[pk] - c * ujy) * irij
            x_cjz[t] = (uz[pk] - c * ujz) * irij
            irik = ir[pk]
            x_ckx[t] = (ujx - c * ux[pk]) * irik
            x_cky[t] = (ujy - c * uy[pk]) * irik
            x_ckz[t] = (ujz - c * uz[pk]) * irik
        if narrow:
            for t in range(nk0):
                rjk = math.sqrt(x_rjk[t])
                irjk = 1.0 / rjk
                x_rjk[t] = rjk
                x_ex[t] *= irjk
                x_ey[t] *= irjk
                x_ez[t] *= irjk
            cutoff_rows(ctype, rc, rci, x_rjk, x_fjk, x_dfjk, nk0)
        prev_eta = -1.0
        prev_rs = 0.0
        for mm in range(m0, m1):
            s = members[e, mm]
            eta = fpe[s, P_ETA]
            rs = fpe[s, P_RS]
            lam = fpe[s, P_LAMBDA]
            zeta = fpe[s, P_ZETA]
            iz = ipe[s, I_IZETA]
            pref = w * fpe[s, P_PREF]
            if eta != prev_eta or rs != prev_rs:
                # the factors shared by every SF of this (eta, rs)
                prev_eta = eta
                prev_rs = rs
                xij = rij - rs
                dij = dfij - 2.0 * eta * xij * fij
                if narrow:
                    for t in range(nk):
                        fik = x_fik[t]
                        fjk = x_fjk[t]
                        xik = x_rik[t] - rs
                        xjk = x_rjk[t] - rs
                        ex_ = vexp(-eta * (xij * xij + xik * xik + xjk * xjk))
                        a = ex_ * fij
                        x_ef[t] = a * fik * fjk
                        x_dij[t] = ex_ * fik * fjk * dij
                        x_dik[t] = a * fjk * (x_dfik[t] - 2.0 * eta * xik * fik)
                        x_djk[t] = a * fik * (x_dfjk[t] - 2.0 * eta * xjk * fjk)
                else:
                    for t in range(nk):
                        fik = x_fik[t]
                        xik = x_rik[t] - rs
                        ex_ = vexp(-eta * (xij * xij + xik * xik))
                        a = ex_ * fij
                        x_ef[t] = a * fik
                        x_dij[t] = ex_ * fik * dij
                        x_dik[t] = a * (x_dfik[t] - 2.0 * eta * xik * fik)
            # pref (1 + lambda c)^zeta and its derivative by c
            if iz >= 1 and iz <= 64:
                for t in range(nk):
                    p = 1.0 + lam * x_c[t]
                    pz1 = pref * vipow(p, iz - 1)
                    x_pz[t] = pz1 * p
                    x_dpz[t] = zeta * lam * pz1
            else:
                for t in range(nk):
                    p = 1.0 + lam * x_c[t]
                    if p <= 0.0:
                        x_pz[t] = 0.0
                        x_dpz[t] = 0.0
                    else:
                        pz = pref * p ** zeta
                        x_pz[t] = pz
                        x_dpz[t] = zeta * lam * pz / p
            # G, and the derivative by r_j: by r_ij along u_j, by cos theta
            # along dc/dr_j, by r_jk (narrow) along -e_jk
            g = 0.0
            sij = 0.0
            wx = 0.0
            wy = 0.0
            wz = 0.0
            if narrow:
                for t in range(nk):
                    pz = x_pz[t]
                    tc = x_dpz[t] * x_ef[t]
                    tjk = pz * x_djk[t]
                    g += pz * x_ef[t]
                    sij += pz * x_dij[t]
                    wx += tc * x_cjx[t] - tjk * x_ex[t]
                    wy += tc * x_cjy[t] - tjk * x_ey[t]
                    wz += tc * x_cjz[t] - tjk * x_ez[t]
                    x_tik[t] = pz * x_dik[t]
                    x_tc[t] = tc
                    x_tjk[t] = tjk
            else:
                for t in range(nk):
                    pz = x_pz[t]
                    tc = x_dpz[t] * x_ef[t]
                    g += pz * x_ef[t]
                    sij += pz * x_dij[t]
                    wx += tc * x_cjx[t]
                    wy += tc * x_cjy[t]
                    wz += tc * x_cjz[t]
                    x_tik[t] = pz * x_dik[t]
                    x_tc[t] = tc
            G[i, s] += g
            W[s, 0, pj] += wx + sij * ujx
            W[s, 1, pj] += wy + sij * ujy
            W[s, 2, pj] += wz + sij * ujz
            # the derivative by r_k: by r_ik along u_k, by cos theta along
            # dc/dr_k, by r_jk (narrow) along e_jk
            if narrow:
                for t in range(nk0):
                    pk = kp[t]
                    tik = x_tik[t]
                    tc = x_tc[t]
                    tjk = x_tjk[t]
                    W[s, 0, pk] += tik * x_ukx[t] + tc * x_ckx[t] + tjk * x_ex[t]
                    W[s, 1, pk] += tik * x_uky[t] + tc * x_cky[t] + tjk * x_ey[t]
                    W[s, 2, pk] += tik * x_ukz[t] + tc * x_ckz[t] + tjk * x_ez[t]
            else:
                wkx = W[s, 0, klo:klo + nk]
                wky = W[s, 1, klo:klo + nk]
                wkz = W[s, 2, klo:klo + nk]
                for t in range(nk):
                    wkx[t] += x_tik[t] * x_ukx[t] + x_tc[t] * x_ckx[t]
                for t in range(nk):
                    wky[t] += x_tik[t] * x_uky[t] + x_tc[t] * x_cky[t]
                for t in range(nk):
                    wkz[t] += x_tik[t] * x_ukz[t] + x_tc[t] * x_ckz[t]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"},
          inline="always")
def _row_sum(a, n):
    """Sum of a[:n] (any order: it vectorises)."""
    acc = 0.0
    for p in range(n):
        acc += a[p]
    return acc


@_jit
def _compact_term(fp, ip, s, narrow, w, c, fij, dfij, fik, dfik, fjk, dfjk, rjk):
    """One angular term of compact SF s (types 21, 22, 24, 25) and its partial
    derivatives.

    fij/dfij etc. are the pair radial factors from _pair_radial (fjk = 1,
    dfjk = 0 for wide types).
    Returns (T, dT/dc, dT/drij, dT/drik, dT/drjk).
    """
    core = ip[s, I_CORE]
    if core > CORE_ASYM:         # the asymmetry applies to the radial part only
        core -= CORE_ASYM
    # n2p2 leaves out a pair whose cos theta is +-1 (collinear: in practice
    # the self-images i+T, i-T, i+2T of a small cell), even at the centre of
    # a window around 0 or 180 degrees (asked of nnp-atomenv: an atom on the
    # x axis of an orthorhombic cell).  Where rounding puts cos theta just
    # inside (-1, 1) n2p2 keeps the pair; so do we, but our rounding may
    # differ: the "collinear" class of tests/differential.
    if c <= -1.0 or c >= 1.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    theta = math.acos(c)
    ca, dca = compact(core, theta, fp[s, P_AL], fp[s, P_AR])
    if ca == 0.0 and dca == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    if narrow:
        src = _jk_source(fp, ip, s, theta)
        if src != s:                 # n2p2 shares the r_jk factor in a group
            fjk, dfjk = _pair_radial(fp, ip, src, rjk)
    sn = math.sqrt(1.0 - c * c)
    dca_dc = -dca / sn if sn > 0.0 else 0.0
    rr = fij * fik * fjk
    return (w * ca * rr, w * dca_dc * rr, w * ca * dfij * fik * fjk,
            w * ca * fij * dfik * fjk, w * ca * fij * fik * dfjk)


@_jit
def _element_segments(nbe, n, n_elem, order, seg):
    """Counting sort of entries 0..n-1 by element (stable: distance order kept).

    order[p] is the entry at position p; element a's entries are at positions
    seg[a]..seg[a + 1]."""
    for a in range(n_elem + 1):
        seg[a] = 0
    for q in range(n):
        seg[nbe[q] + 1] += 1
    for a in range(n_elem):
        seg[a + 1] += seg[a]
    fill = seg[:n_elem].copy()
    for q in range(n):
        order[fill[nbe[q]]] = q
        fill[nbe[q]] += 1


# ----------------------------------------------------------------------------- the kernel
#: Least length of the work rows (W, X): a loop that stores to one row of X
#: and reads another is vectorised behind a run-time check that the rows lie
#: at least a few vectors apart, and runs scalar otherwise.  A scalar sum
#: rounds differently from a vector one, so with rows sized by the longest
#: neighbour list of the atoms in a call, an atom's bits depended on which
#: atoms shared its call (the thread count, the batch).  Rows of 128 floats
#: are always far enough apart.
_MIN_ROW = 128


@_jit
def sf_values(atoms, elem, z, start, nbj, dx, dy, dz, d, fp, ip, nsf, rad, nrad, grp, ngrp,
              members, rkey, rkey_sf, nrkey, G, dG, ebase, dGe, fm_row, fm_off, fm_factor, D,
              dst_ptr, dst_q, dst_row, blk, stop):
    """Unscaled G_i, dG_i/dr_i and (optionally) dG_i/dr_m of ``atoms``.

    Parameters
    ----------
    atoms : int64 (n_req,)  atoms to compute, one after the other.
    elem : int64 (n_atoms,)  element index (atomic-number order) of every atom.
    z : float64 (n_elements,)  atomic number of each element (weights).
    start, nbj, dx, dy, dz, d : the neighbour list (NeighborList fields), with
        distances in the same unit as the SF parameters.
    fp .. nrkey : tables from :func:`pack_tables`.
    G : float64 (n_atoms, max_sf)  output, row i filled for requested atoms.
    dG : float64 (n_atoms, max_sf, 3)  output dG_i/dr_i (per length unit).
    ebase : int64 (n_atoms,)  where atom i's entry derivatives go: row
        ebase[i] + m of dGe holds dG_i/dr_m for entry m (0-based in i's list);
        -1: not wanted.
    dGe : float64 (n_entry_rows, max_sf, 3)  output entry derivatives (per
        length unit).  SFs that do not depend on an entry are exactly 0.
    fm_row, fm_off, fm_factor, D : the linear force-matching sums taken from
        the entry derivatives while they are still in cache, instead of
        writing them all to dGe (see :func:`_entry_sinks`); fm_row of length
        0: none.
    dst_ptr, dst_q, dst_row, blk : the entry derivatives wanted whole (the
        neighbour blocks), copied into rows of blk (see :func:`_entry_sinks`);
        dst_ptr of length 0: none.
    stop : int64 (1,)  polled once per atom; nonzero: return at once (Ctrl-C).
    """
    n_elem = z.shape[0]
    max_sf = fp.shape[1]
    nmax = 0
    for ai in range(atoms.shape[0]):
        i = atoms[ai]
        if start[i + 1] - start[i] > nmax:
            nmax = start[i + 1] - start[i]
    max_key = 1
    for a in range(n_elem):
        if nrkey[a] > max_key:
            max_key = nrkey[a]
    # per-atom work arrays, entries permuted by element (then distance)
    nbe = np.empty(nmax, dtype=np.int64)
    order = np.empty(nmax, dtype=np.int64)
    seg = np.empty(n_elem + 1, dtype=np.int64)
    r = np.empty(nmax)
    ir = np.empty(nmax)
    vx = np.empty(nmax)
    vy = np.empty(nmax)
    vz = np.empty(nmax)
    ux = np.empty(nmax)
    uy = np.empty(nmax)
    uz = np.empty(nmax)
    fcache = np.empty((max_key, nmax))
    dfcache = np.empty((max_key, nmax))
    # rows of at least _MIN_ROW: see _MIN_ROW
    lrow = max(nmax + 8, _MIN_ROW)
    W = np.empty((max_sf, 3, lrow))          # dG_i/dr_m, m in permuted order (+ padding)
    X = np.empty((_NX, lrow))                # per-partner work rows of the angular loops
    kp = np.empty(lrow, dtype=np.int64)      # the partners' positions of those rows
    inv = np.empty(nmax, dtype=np.int64)     # position p of each entry in W
    dv = np.empty((max_sf, 3))               # one entry's scaled derivatives
    sinks = fm_row.shape[0] > 0 or dst_ptr.shape[0] > 0
    for ai in range(atoms.shape[0]):
        if stop[0] != 0:
            return
        i = atoms[ai]
        e = elem[i]
        s0 = start[i]
        n = start[i + 1] - s0
        ns = nsf[e]
        want = ebase[i] >= 0
        for q in range(n):
            nbe[q] = elem[nbj[s0 + q]]
        _element_segments(nbe, n, n_elem, order, seg)
        for p in range(n):
            q = s0 + order[p]
            rp = d[q]
            irp = 1.0 / rp
            r[p] = rp
            ir[p] = irp
            vx[p] = dx[q]
            vy[p] = dy[q]
            vz[p] = dz[q]
            ux[p] = dx[q] * irp
            uy[p] = dy[q] * irp
            uz[p] = dz[q] * irp
        for s in range(ns):
            G[i, s] = 0.0
            dG[i, s, 0] = 0.0
            dG[i, s, 1] = 0.0
            dG[i, s, 2] = 0.0
        for s in range(ns):
            for c_ in range(3):
                for p in range(n + 8):
                    W[s, c_, p] = 0.0
        fpe = fp[e]
        ipe = ip[e]
        # radial functions (cutoff or compact window), once per key and entry
        for k_ in range(nrkey[e]):
            rep = rkey_sf[e, k_]
            rc = fpe[rep, P_RC]
            if ipe[rep, I_TYPE] < 20:         # a cutoff function: one vector loop
                cutoff_rows(ipe[rep, I_CORE], rc, fpe[rep, P_RCI], r, fcache[k_], dfcache[k_], n)
                continue
            for a in range(n_elem):
                for p in range(seg[a], seg[a + 1]):
                    if r[p] >= rc:
                        break
                    fcache[k_, p], dfcache[k_, p] = _pair_radial(fpe, ipe, rep, r[p])
        # --- radial SFs
        for r_ in range(nrad[e]):
            s = rad[e, r_]
            t = ipe[s, I_TYPE]
            weighted = t == 12 or t == 23
            e1 = ipe[s, I_E1]
            rc = fpe[s, P_RC]
            key = rkey[e, s]
            compact_type = t >= 20
            eta = fpe[s, P_ETA]
            rs = fpe[s, P_RS]
            g = 0.0
            gx = 0.0
            gy = 0.0
            gz = 0.0
            for a in range(n_elem):
                if weighted:
                    w = z[a]
                elif a == e1:
                    w = 1.0
                else:
                    continue
                # entries are sorted by distance: find the end, then one
                # loop without an exit, which vectorises
                hi = seg[a]
                while hi < seg[a + 1] and r[hi] < rc:
                    hi += 1
                for p in range(seg[a], hi):
                    rp = r[p]
                    fc = fcache[key, p]
                    dfc = dfcache[key, p]
                    x = rp - rs
                    ex_ = 1.0 if compact_type else vexp(-eta * x * x)
                    f = ex_ * fc
                    df = ex_ * dfc if compact_type else ex_ * (dfc - 2.0 * eta * x * fc)
                    g += w * f
                    wd = w * df
                    gx -= wd * ux[p]
                    gy -= wd * uy[p]
                    gz -= wd * uz[p]
                    W[s, 0, p] = wd * ux[p]
                    W[s, 1, p] = wd * uy[p]
                    W[s, 2, p] = wd * uz[p]
            G[i, s] = g
            dG[i, s, 0] = gx
            dG[i, s, 1] = gy
            dG[i, s, 2] = gz
        # --- angular groups
        for g_ in range(ngrp[e]):
            m0 = grp[e, g_, 0]
            m1 = grp[e, g_, 1]
            s_first = members[e, m0]
            t = ipe[s_first, I_TYPE]
            narrow = t == 3 or t == 13 or t == 21 or t == 24
            weighted = t == 13 or t == 24 or t == 25
            rc = fpe[s_first, P_RC]
            fr = fcache[rkey[e, s_first]]
            dfr = dfcache[rkey[e, s_first]]
            for ea in range(n_elem):
                for eb in range(ea, n_elem):
                    if weighted:
                        w = z[ea] * z[eb]
                    elif ea == ipe[s_first, I_E1] and eb == ipe[s_first, I_E2]:
                        w = 1.0
                    else:
                        continue
                    if t >= 20:
                        _compact_triples(i, e, fpe, ipe, members, m0, m1, t, narrow, w, rc, fr,
                                         dfr, seg[ea], seg[ea + 1], seg[eb], seg[eb + 1], ea == eb,
                                         r, vx, vy, vz, ux, uy, uz, G, dG, W)
                    else:
                        _exp_triples(i, e, fpe, ipe, members, m0, m1, narrow, w, rc,
                                     ipe[s_first, I_CORE], fpe[s_first, P_RCI], fr, dfr,
                                     seg[ea], seg[ea + 1], seg[eb], seg[eb + 1], ea == eb,
                                     r, ir, vx, vy, vz, ux, uy, uz, G, W, X, kp)
        # dG_i/dr_i of the exponential angular SFs: minus the sum of their
        # derivatives by every entry (translation invariance)
        for s in range(ns):
            t = ipe[s, I_TYPE]
            if t == 3 or t == 9 or t == 13:
                dG[i, s, 0] = -_row_sum(W[s, 0], n)
                dG[i, s, 1] = -_row_sum(W[s, 1], n)
                dG[i, s, 2] = -_row_sum(W[s, 2], n)
        if want:
            b = ebase[i]
            for p in range(n):
                row = b + order[p]
                for s in range(ns):
                    dGe[row, s, 0] = W[s, 0, p]
                    dGe[row, s, 1] = W[s, 1, p]
                    dGe[row, s, 2] = W[s, 2, p]
                for s in range(ns, max_sf):
                    dGe[row, s, 0] = 0.0
                    dGe[row, s, 1] = 0.0
                    dGe[row, s, 2] = 0.0
        if sinks:
            _entry_sinks(i, e, s0, n, ns, nbj, order, inv, W, fm_row, fm_off, fm_factor, D,
                         dst_ptr, dst_q, dst_row, blk, dv)


# The force-matching sums must be the same bits as forcematch._scatter's,
# which rounds each product before adding it.  No fastmath here, and the
# products go through dv in memory: inlined into the kernel (compiled with
# "contract"), a product added at once became one fused multiply-add, which
# rounds once (measured: last-bit differences).
@nb.njit(cache=True, nogil=True, error_model="numpy")
def _entry_sinks(i, e, s0, n, ns, nbj, order, inv, W, fm_row, fm_off, fm_factor, D, dst_ptr, dst_q,
                 dst_row, blk, dv):
    """Use atom i's entry derivatives W (entries in element order ``order``)
    at once, while they are in cache, instead of writing them all out.

    * Neighbour blocks: for k in dst_ptr[i]..dst_ptr[i + 1], entry dst_q[k]
      (0-based in i's list) is copied to blk[dst_row[k]] (SFs past i's
      element's count are 0).
    * Linear force-matching sums: every entry q of i's list (in list order)
      that is an atom with a row, r = fm_row[nbj[s0 + q]] >= 0, adds
      W * fm_factor[e] to D[r, fm_off[e]:fm_off[e] + ns].  The same products
      and the same order as :func:`distatomenv.descriptors.forcematch._scatter`
      when the atoms are computed in increasing order, so the same bits.
    """
    for p in range(n):
        inv[order[p]] = p
    if dst_ptr.shape[0] > 0:
        for k in range(dst_ptr[i], dst_ptr[i + 1]):
            p = inv[dst_q[k]]
            row = dst_row[k]
            for s in range(ns):
                blk[row, s, 0] = W[s, 0, p]
                blk[row, s, 1] = W[s, 1, p]
                blk[row, s, 2] = W[s, 2, p]
            for s in range(ns, blk.shape[1]):
                blk[row, s, 0] = 0.0
                blk[row, s, 1] = 0.0
                blk[row, s, 2] = 0.0
    if fm_row.shape[0] > 0:
        o = fm_off[e]
        for q in range(n):
            r = fm_row[nbj[s0 + q]]
            if r >= 0:
                p = inv[q]
                for s in range(ns):
                    f = fm_factor[e, s]
                    dv[s, 0] = W[s, 0, p] * f
                    dv[s, 1] = W[s, 1, p] * f
                    dv[s, 2] = W[s, 2, p] * f
                for s in range(ns):
                    D[r, o + s, 0] += dv[s, 0]
                    D[r, o + s, 1] += dv[s, 1]
                    D[r, o + s, 2] += dv[s, 2]


def no_sinks(max_sf):
    """sf_values' fm_row .. blk arguments when nothing is taken from the
    entry derivatives in the kernel."""
    i64 = np.zeros(0, dtype=np.int64)
    return (i64, i64, np.zeros((0, max_sf)), np.zeros((0, 0, 3)), i64, i64, i64,
            np.zeros((0, max_sf, 3)))


@_jit
def _compact_triples(i, e, fpe, ipe, members, m0, m1, t, narrow, w, rc, fr, dfr, ja, jb, ka, kb,
                     same, r, vx, vy, vz, ux, uy, uz, G, dG, W):
    """Compact angular SFs (types 21, 22, 24, 25) of one group: every triple
    (j in positions ja..jb, k in ka..kb, k > j when ``same``), added to G,
    dG (own) and W (entry derivatives, permuted positions)."""
    s_first = members[e, m0]
    for pj in range(ja, jb):
        rij = r[pj]
        if rij >= rc:
            break
        klo = pj + 1 if same else ka
        for pk in range(klo, kb):
            rik = r[pk]
            if rik >= rc:
                break
            c = ux[pj] * ux[pk] + uy[pj] * uy[pk] + uz[pj] * uz[pk]
            if narrow:
                ex = vx[pk] - vx[pj]
                ey = vy[pk] - vy[pj]
                ez = vz[pk] - vz[pj]
                rjk = math.sqrt(ex * ex + ey * ey + ez * ez)
                if rjk >= rc:
                    continue
                fjk, dfjk = _pair_radial(fpe, ipe, s_first, rjk)
                ex /= rjk
                ey /= rjk
                ez /= rjk
            else:
                rjk = 0.0
                fjk, dfjk = 1.0, 0.0
                ex = ey = ez = 0.0
            # dc/dr_j = (u_k - c u_j)/rij, dc/dr_k = (u_j - c u_k)/rik,
            # dc/dr_i = -(both)
            cjx = (ux[pk] - c * ux[pj]) / rij
            cjy = (uy[pk] - c * uy[pj]) / rij
            cjz = (uz[pk] - c * uz[pj]) / rij
            ckx = (ux[pj] - c * ux[pk]) / rik
            cky = (uy[pj] - c * uy[pk]) / rik
            ckz = (uz[pj] - c * uz[pk]) / rik
            cix = cjx + ckx
            ciy = cjy + cky
            ciz = cjz + ckz
            for mm in range(m0, m1):
                s = members[e, mm]
                tv, tc, tij, tik, tjk = _compact_term(
                    fpe, ipe, s, narrow, w, c, fr[pj], dfr[pj], fr[pk], dfr[pk], fjk, dfjk, rjk)
                G[i, s] += tv
                dG[i, s, 0] -= tij * ux[pj] + tik * ux[pk] + tc * cix
                dG[i, s, 1] -= tij * uy[pj] + tik * uy[pk] + tc * ciy
                dG[i, s, 2] -= tij * uz[pj] + tik * uz[pk] + tc * ciz
                W[s, 0, pj] += tij * ux[pj] + tc * cjx - tjk * ex
                W[s, 1, pj] += tij * uy[pj] + tc * cjy - tjk * ey
                W[s, 2, pj] += tij * uz[pj] + tc * cjz - tjk * ez
                W[s, 0, pk] += tik * ux[pk] + tc * ckx + tjk * ex
                W[s, 1, pk] += tik * uy[pk] + tc * cky + tjk * ey
                W[s, 2, pk] += tik * uz[pk] + tc * ckz + tjk * ez
