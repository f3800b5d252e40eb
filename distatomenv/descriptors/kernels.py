"""Numba kernels: symmetry functions and their analytic derivatives.

Two kernels, both over a distance-sorted neighbour list (see neighbors.py):

* :func:`sf_values` -- G_i (unscaled) and dG_i/dr_i of each requested atom.
  dG_i/dr_i is the partial derivative with every neighbour entry (periodic
  images included) held fixed, which is what n2p2 writes as the "own" block.
* :func:`sf_entry_derivatives` -- dG_a/dr_m for given (atom a, entry m) pairs:
  the derivative of atom a's SFs with respect to the position of one of its
  neighbour entries, restricted to a subset of SFs.  This is n2p2's
  neighbour block.

Both kernels share the per-term functions below, which return a term's value
and its partial derivatives with respect to the scalar variables r_ij, r_ik,
r_jk and cos(theta_ijk); the chain rule to Cartesian vectors is done once, in
the loops.  Inputs are assumed valid (validated at the boundary, in io/).

Parameter tables come from :meth:`SymmetryFunctionSet.tables`, stacked over
elements by :func:`pack_tables`.  Kernels take preallocated outputs and never
choose their own parallelism (the backend sets numba's thread count).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from .cutoff import CORE_ASYM, compact, cutoff
from .symfuncs import (I_CORE, I_E1, I_E2, I_IZETA, I_JKPREV, I_TYPE, N_FLOAT_PARAMS,
                       N_INT_PARAMS, P_AL, P_AR, P_ETA, P_LAMBDA, P_PREF, P_RC, P_RCI, P_RL,
                       P_RS, P_ZETA)

_inline = nb.njit(cache=True, inline="always", error_model="numpy", fastmath={"contract"})
_kernel = nb.njit(cache=True, parallel=True, error_model="numpy", fastmath={"contract"})


# ----------------------------------------------------------------------------- packing
def pack_tables(sfset, conv_length=1.0):
    """Stack every element's parameter tables and build the angular groups.

    Returns a tuple ``(fp, ip, nsf, rad, nrad, grp, ngrp, members, rkey, rkey_sf,
    nrkey)``: fp (n_elem, max_sf, N_FLOAT_PARAMS), ip (n_elem, max_sf,
    N_INT_PARAMS), nsf (n_elem,), rad (n_elem, max_sf) radial SF indices,
    nrad (n_elem,), grp (n_elem, max_grp, 2) start/stop into members (n_elem,
    max_sf), ngrp; rkey (n_elem, max_sf) the radial-function key of each SF,
    rkey_sf (n_elem, max_sf) one SF per key, nrkey (n_elem,).
    Angular SFs that share type, neighbour elements, cutoff and radial core
    form a group whose pair geometry is computed once; SFs that share a
    radial function (cutoff type and radius, or compact core and window)
    share one evaluation of it per neighbour entry.
    """
    ne = sfset.n_elements
    max_sf = max(1, max(sfset.n_sf(e) for e in sfset.elements))
    fp = np.zeros((ne, max_sf, N_FLOAT_PARAMS))
    ip = np.full((ne, max_sf, N_INT_PARAMS), -1, dtype=np.int64)
    nsf = np.zeros(ne, dtype=np.int64)
    rad = np.zeros((ne, max_sf), dtype=np.int64)
    nrad = np.zeros(ne, dtype=np.int64)
    members = np.zeros((ne, max_sf), dtype=np.int64)
    grp = np.zeros((ne, max_sf, 2), dtype=np.int64)
    ngrp = np.zeros(ne, dtype=np.int64)
    rkey = np.zeros((ne, max_sf), dtype=np.int64)
    rkey_sf = np.zeros((ne, max_sf), dtype=np.int64)
    nrkey = np.zeros(ne, dtype=np.int64)
    for a, e in enumerate(sfset.elements):
        f, i = sfset.tables(e, conv_length)
        n = f.shape[0]
        fp[a, :n] = f
        ip[a, :n] = i
        nsf[a] = n
        groups: dict = {}
        for s, sf in enumerate(sfset.by_element[e]):
            if sf.is_angular:
                key = (sf.type, i[s, I_E1], i[s, I_E2], f[s, P_RC], f[s, P_RL], i[s, I_CORE])
                groups.setdefault(key, []).append(s)
            else:
                rad[a, nrad[a]] = s
                nrad[a] += 1
        # members with equal (eta, rs) next to each other share one Gaussian
        for key in groups:
            groups[key].sort(key=lambda s_: (f[s_, P_ETA], f[s_, P_RS]))
        pos = 0
        for g, sfs in enumerate(groups.values()):
            grp[a, g] = (pos, pos + len(sfs))
            members[a, pos:pos + len(sfs)] = sfs
            pos += len(sfs)
        ngrp[a] = len(groups)
        keys: dict = {}
        for s_ in range(n):
            key = (i[s_, I_TYPE] >= 20, i[s_, I_CORE], f[s_, P_RC], f[s_, P_RCI], f[s_, P_RL])
            if key not in keys:
                keys[key] = len(keys)
                rkey_sf[a, keys[key]] = s_
            rkey[a, s_] = keys[key]
        nrkey[a] = len(keys)
    return fp, ip, nsf, rad, nrad, grp, ngrp, members, rkey, rkey_sf, nrkey


# ----------------------------------------------------------------------------- terms
@_inline
def _pair_radial(fp, ip, s, r):
    """Per-entry radial factor of angular SF s: (R, dR/dr).

    Exponential types: fc(r) only (the Gaussian is applied per term);
    compact types: the radial compact function."""
    if ip[s, I_TYPE] >= 20:
        return compact(ip[s, I_CORE], r, fp[s, P_RL], fp[s, P_RC])
    return cutoff(ip[s, I_CORE], r, fp[s, P_RC], fp[s, P_RCI])


@_inline
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


@_inline
def _gaussian(eta, xij, xik, xjk, narrow):
    """exp(-eta (xij^2 + xik^2 [+ xjk^2])) with x = r - rs."""
    arg = xij * xij + xik * xik
    if narrow:
        arg += xjk * xjk
    return math.exp(-eta * arg)


@_inline
def _angular_term(fp, ip, s, narrow, w, c, rij, rik, rjk, fij, dfij, fik, dfik, fjk, dfjk,
                  expo=-1.0):
    """One angular term of SF s and its partial derivatives.

    fij/dfij etc. are the pair radial factors from _pair_radial (fjk = 1,
    dfjk = 0 for wide types).  ``expo``: the Gaussian factor of exponential
    types if the caller has it already (SFs of a group sorted by eta and rs
    share it), or -1 to compute it here.
    Returns (T, dT/dc, dT/drij, dT/drik, dT/drjk).
    """
    t = ip[s, I_TYPE]
    if t >= 20:
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
    eta = fp[s, P_ETA]
    rs = fp[s, P_RS]
    lam = fp[s, P_LAMBDA]
    zeta = fp[s, P_ZETA]
    iz = ip[s, I_IZETA]
    p = 1.0 + lam * c
    if iz >= 1:
        pz1 = 1.0
        for _ in range(iz - 1):
            pz1 *= p
        pz = pz1 * p
        dpz = zeta * lam * pz1
    else:
        if p <= 0.0:
            return 0.0, 0.0, 0.0, 0.0, 0.0
        pz = p ** zeta
        dpz = zeta * lam * pz / p
    xij = rij - rs
    xik = rik - rs
    xjk = rjk - rs if narrow else 0.0
    if expo < 0.0:
        expo = _gaussian(eta, xij, xik, xjk, narrow)
    a = w * fp[s, P_PREF] * expo
    ap = a * pz
    return (ap * fij * fik * fjk,
            a * dpz * fij * fik * fjk,
            ap * fik * fjk * (dfij - 2.0 * eta * xij * fij),
            ap * fij * fjk * (dfik - 2.0 * eta * xik * fik),
            ap * fij * fik * (dfjk - 2.0 * eta * xjk * fjk))


@_inline
def _element_segments(nbe, n_elem, order, seg):
    """Counting sort of entry indices by element (stable: distance order kept)."""
    n = nbe.shape[0]
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


# ----------------------------------------------------------------------------- kernel 1
@_kernel
def sf_values(atoms, elem, z, start, nbj, dx, dy, dz, d, fp, ip, nsf, rad, nrad, grp, ngrp,
              members, rkey, rkey_sf, nrkey, G, dG):
    """Unscaled G_i and dG_i/dr_i of ``atoms``.

    Parameters
    ----------
    atoms : int64 (n_req,)  atoms to compute.
    elem : int64 (n_atoms,)  element index (atomic-number order) of every atom.
    z : float64 (n_elements,)  atomic number of each element (weights).
    start, nbj, dx, dy, dz, d : the neighbour list (NeighborList fields), with
        distances in the same unit as the SF parameters.
    fp .. members : tables from :func:`pack_tables`.
    G : float64 (n_atoms, max_sf)  output, row i filled for requested atoms.
    dG : float64 (n_atoms, max_sf, 3)  output dG_i/dr_i (per length unit).
    """
    n_elem = z.shape[0]
    for ai in nb.prange(atoms.shape[0]):
        i = atoms[ai]
        e = elem[i]
        s0 = start[i]
        n = start[i + 1] - s0
        nbe = np.empty(n, dtype=np.int64)
        for q in range(n):
            nbe[q] = elem[nbj[s0 + q]]
        ux = np.empty(n)
        uy = np.empty(n)
        uz = np.empty(n)
        for q in range(n):
            r = d[s0 + q]
            ux[q] = dx[s0 + q] / r
            uy[q] = dy[s0 + q] / r
            uz[q] = dz[s0 + q] / r
        for s in range(nsf[e]):
            G[i, s] = 0.0
            dG[i, s, 0] = 0.0
            dG[i, s, 1] = 0.0
            dG[i, s, 2] = 0.0
        fpe = fp[e]
        ipe = ip[e]
        # radial functions (cutoff or compact window), once per key and entry
        fcache = np.zeros((nrkey[e], n))
        dfcache = np.zeros((nrkey[e], n))
        for k_ in range(nrkey[e]):
            rep = rkey_sf[e, k_]
            rc = fpe[rep, P_RC]
            for q in range(n):
                r = d[s0 + q]
                if r >= rc:
                    break
                fcache[k_, q], dfcache[k_, q] = _pair_radial(fpe, ipe, rep, r)
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
            for q in range(n):
                r = d[s0 + q]
                if r >= rc:
                    break
                if weighted:
                    w = z[nbe[q]]
                elif nbe[q] == e1:
                    w = 1.0
                else:
                    continue
                fc = fcache[key, q]
                dfc = dfcache[key, q]
                if compact_type:
                    f, df = fc, dfc
                else:
                    x = r - rs
                    ex_ = math.exp(-eta * x * x)
                    f = ex_ * fc
                    df = ex_ * (dfc - 2.0 * eta * x * fc)
                g += w * f
                gx -= w * df * ux[q]
                gy -= w * df * uy[q]
                gz -= w * df * uz[q]
            G[i, s] = g
            dG[i, s, 0] = gx
            dG[i, s, 1] = gy
            dG[i, s, 2] = gz
        # --- angular groups
        order = np.empty(n, dtype=np.int64)
        seg = np.empty(n_elem + 1, dtype=np.int64)
        _element_segments(nbe, n_elem, order, seg)
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
            if weighted:
                ja, jb, ka_same = 0, n, True
                kb_lo, kb_hi = 0, n
            else:
                e1 = ipe[s_first, I_E1]
                e2 = ipe[s_first, I_E2]
                ja, jb = seg[e1], seg[e1 + 1]
                ka_same = e1 == e2
                kb_lo, kb_hi = seg[e2], seg[e2 + 1]
            for jj in range(ja, jb):
                qj = jj if weighted else order[jj]
                rij = d[s0 + qj]
                if rij >= rc:
                    break
                klo = jj + 1 if ka_same else kb_lo
                for kk in range(klo, kb_hi):
                    qk = kk if weighted else order[kk]
                    rik = d[s0 + qk]
                    if rik >= rc:
                        break
                    c = ux[qj] * ux[qk] + uy[qj] * uy[qk] + uz[qj] * uz[qk]
                    if narrow:
                        ex = dx[s0 + qk] - dx[s0 + qj]
                        ey = dy[s0 + qk] - dy[s0 + qj]
                        ez = dz[s0 + qk] - dz[s0 + qj]
                        rjk = math.sqrt(ex * ex + ey * ey + ez * ez)
                        if rjk >= rc:
                            continue
                        fjk, dfjk = _pair_radial(fpe, ipe, s_first, rjk)
                    else:
                        rjk = 0.0
                        fjk, dfjk = 1.0, 0.0
                    w = z[nbe[qj]] * z[nbe[qk]] if weighted else 1.0
                    # dc/dr_i = -[(u_ik - c u_ij)/rij + (u_ij - c u_ik)/rik]
                    cix = (ux[qk] - c * ux[qj]) / rij + (ux[qj] - c * ux[qk]) / rik
                    ciy = (uy[qk] - c * uy[qj]) / rij + (uy[qj] - c * uy[qk]) / rik
                    ciz = (uz[qk] - c * uz[qj]) / rij + (uz[qj] - c * uz[qk]) / rik
                    prev_eta = -1.0
                    prev_rs = 0.0
                    expo = -1.0
                    for mm in range(m0, m1):
                        s = members[e, mm]
                        if t < 20:
                            eta = fpe[s, P_ETA]
                            rs = fpe[s, P_RS]
                            if eta != prev_eta or rs != prev_rs:
                                expo = _gaussian(eta, rij - rs, rik - rs, rjk - rs, narrow)
                                prev_eta = eta
                                prev_rs = rs
                        tv, tc, tij, tik, tjk = _angular_term(
                            fpe, ipe, s, narrow, w, c, rij, rik, rjk, fr[qj], dfr[qj], fr[qk],
                            dfr[qk], fjk, dfjk, expo)
                        G[i, s] += tv
                        dG[i, s, 0] -= tij * ux[qj] + tik * ux[qk] + tc * cix
                        dG[i, s, 1] -= tij * uy[qj] + tik * uy[qk] + tc * ciy
                        dG[i, s, 2] -= tij * uz[qj] + tik * uz[qk] + tc * ciz


# ----------------------------------------------------------------------------- kernel 2
@_kernel
def sf_entry_derivatives(pairs_atom, pairs_entry, subset, nsubset, elem, z, start, nbj, dx, dy,
                         dz, d, fp, ip, rkey, rkey_sf, nrkey, out):
    """dG_a/dr_m of atom a's SFs with respect to its neighbour entry m.

    Parameters
    ----------
    pairs_atom : int64 (P,)  atom a of each request.
    pairs_entry : int64 (P,)  global entry index m (into the neighbour arrays;
        must lie in a's range).
    subset : int64 (P, max_sub)  SF indices of a's element to return, in order.
    nsubset : int64 (P,)  how many of ``subset`` are used.
    rkey, rkey_sf, nrkey : radial-function keys from :func:`pack_tables`.
    out : float64 (P, max_sub, 3)  output, per length unit.
    """
    for p in nb.prange(pairs_atom.shape[0]):
        a = pairs_atom[p]
        e = elem[a]
        s0 = start[a]
        n = start[a + 1] - s0
        m = pairs_entry[p] - s0
        rm = d[s0 + m]
        umx = dx[s0 + m] / rm
        umy = dy[s0 + m] / rm
        umz = dz[s0 + m] / rm
        em = elem[nbj[s0 + m]]
        fpe = fp[e]
        ipe = ip[e]
        nk = nrkey[e]
        krc = np.empty(nk)
        fm = np.zeros(nk)
        dfm = np.zeros(nk)
        fk = np.zeros(nk)
        dfk = np.zeros(nk)
        fjk = np.zeros(nk)
        dfjk = np.zeros(nk)
        for k_ in range(nk):
            krc[k_] = fpe[rkey_sf[e, k_], P_RC]
            if rm < krc[k_]:
                fm[k_], dfm[k_] = _pair_radial(fpe, ipe, rkey_sf[e, k_], rm)
        rc_ang = 0.0
        for u in range(nsubset[p]):
            s = subset[p, u]
            out[p, u, 0] = 0.0
            out[p, u, 1] = 0.0
            out[p, u, 2] = 0.0
            t = ipe[s, I_TYPE]
            rc = fpe[s, P_RC]
            if t == 2 or t == 12 or t == 20 or t == 23:
                if rm < rc:
                    if t == 12 or t == 23:
                        w = z[em]
                    elif em == ipe[s, I_E1]:
                        w = 1.0
                    else:
                        w = 0.0
                    if w != 0.0:
                        key = rkey[e, s]
                        if t >= 20:
                            df = dfm[key]
                        else:
                            x = rm - fpe[s, P_RS]
                            eta = fpe[s, P_ETA]
                            df = math.exp(-eta * x * x) * (dfm[key] - 2.0 * eta * x * fm[key])
                        out[p, u, 0] = w * df * umx
                        out[p, u, 1] = w * df * umy
                        out[p, u, 2] = w * df * umz
            elif rm < rc and rc > rc_ang:
                rc_ang = rc
        if rc_ang == 0.0:
            continue
        # angular SFs: every pair (m, k), geometry and radial functions once per k
        for k in range(n):
            if k == m:
                continue
            rk = d[s0 + k]
            if rk >= rc_ang:
                break
            ek = elem[nbj[s0 + k]]
            ukx = dx[s0 + k] / rk
            uky = dy[s0 + k] / rk
            ukz = dz[s0 + k] / rk
            c = umx * ukx + umy * uky + umz * ukz
            ex = dx[s0 + k] - dx[s0 + m]
            ey = dy[s0 + k] - dy[s0 + m]
            ez = dz[s0 + k] - dz[s0 + m]
            rjk = math.sqrt(ex * ex + ey * ey + ez * ez)
            for k_ in range(nk):
                rep = rkey_sf[e, k_]
                if rk < krc[k_]:
                    fk[k_], dfk[k_] = _pair_radial(fpe, ipe, rep, rk)
                if rjk < krc[k_]:
                    fjk[k_], dfjk[k_] = _pair_radial(fpe, ipe, rep, rjk)
            # d c/d r_m = (u_k - c u_m) / r_m;  d rjk/d r_m = -(r_k - r_m) / rjk
            cmx = (ukx - c * umx) / rm
            cmy = (uky - c * umy) / rm
            cmz = (ukz - c * umz) / rm
            for u in range(nsubset[p]):
                s = subset[p, u]
                t = ipe[s, I_TYPE]
                if t == 2 or t == 12 or t == 20 or t == 23:
                    continue
                rc = fpe[s, P_RC]
                if rm >= rc or rk >= rc:
                    continue
                narrow = t == 3 or t == 13 or t == 21 or t == 24
                if narrow and rjk >= rc:
                    continue
                if t == 13 or t == 24 or t == 25:
                    w = z[em] * z[ek]
                else:
                    e1 = ipe[s, I_E1]
                    e2 = ipe[s, I_E2]
                    if (em == e1 and ek == e2) or (em == e2 and ek == e1):
                        w = 1.0
                    else:
                        continue
                key = rkey[e, s]
                if narrow:
                    tv, tc, tm, tk, tjk = _angular_term(fpe, ipe, s, True, w, c, rm, rk, rjk,
                                                        fm[key], dfm[key], fk[key], dfk[key],
                                                        fjk[key], dfjk[key])
                    out[p, u, 0] += tm * umx + tc * cmx - tjk * ex / rjk
                    out[p, u, 1] += tm * umy + tc * cmy - tjk * ey / rjk
                    out[p, u, 2] += tm * umz + tc * cmz - tjk * ez / rjk
                else:
                    tv, tc, tm, tk, tjk = _angular_term(fpe, ipe, s, False, w, c, rm, rk, 0.0,
                                                        fm[key], dfm[key], fk[key], dfk[key],
                                                        1.0, 0.0)
                    out[p, u, 0] += tm * umx + tc * cmx
                    out[p, u, 1] += tm * umy + tc * cmy
                    out[p, u, 2] += tm * umz + tc * cmz
