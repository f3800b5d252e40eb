"""The kernels' parameter tables, filled from the symmetry functions.

:func:`element_tables` fills one element's float and integer tables (column
layout: :mod:`.kernels`), :func:`pack_tables` stacks them over elements and
builds the angular groups and shared radial functions the kernel loops over.
Host-side Python: the kernels themselves import nothing of the SF model.
"""
from __future__ import annotations

import math

import numpy as np

from .kernels import (I_CORE, I_E1, I_E2, I_IZETA, I_JKPREV, I_TYPE, N_FLOAT_PARAMS,
                      N_INT_PARAMS, P_AL, P_AR, P_ETA, P_LAMBDA, P_PREF, P_RC, P_RCI, P_RL, P_RS,
                      P_ZETA)
from .symfuncs import compact_core

__all__ = ["element_tables", "pack_tables"]


def element_tables(sfset, element: str, conv_length: float = 1.0):
    """Parameter tables of one element's SFs for the kernels.

    Lengths are multiplied by ``conv_length`` and eta divided by its
    square (n2p2's unit normalisation); angles are converted to radians.

    Returns
    -------
    fparams : float64 array (n_sf, N_FLOAT_PARAMS)
    iparams : int64 array (n_sf, N_INT_PARAMS); element columns hold the
        element index in atomic-number order (-1 where unused).  For the
        narrow compact types 21 and 24, I_JKPREV is the previous SF (in
        n2p2's order) of the same type and neighbour elements, -1 for the
        first and for other types: n2p2 reuses that SF's r_jk factor of a
        triple when it has the same rl and rc and its angle window holds
        the triple's angle, whatever its own core function (see
        kernels._jk_source; asked of nnp-scaling on small clusters).
    """
    sfs = sfset.by_element[element]
    fp = np.zeros((len(sfs), N_FLOAT_PARAMS))
    ip = np.full((len(sfs), N_INT_PARAMS), -1, dtype=np.int64)
    L = conv_length
    for s, sf in enumerate(sfs):
        ip[s, I_TYPE] = sf.type
        ip[s, I_E1] = sfset.index(sf.e1) if sf.e1 else -1
        ip[s, I_E2] = sfset.index(sf.e2) if sf.e2 else -1
        fp[s, P_ETA] = sf.eta / (L * L)
        fp[s, P_RS] = sf.rs * L
        fp[s, P_RC] = sf.rc * L
        fp[s, P_RL] = sf.rl * L
        fp[s, P_LAMBDA] = sf.lambda_
        fp[s, P_ZETA] = sf.zeta
        fp[s, P_AL] = math.radians(sf.angle_left)
        fp[s, P_AR] = math.radians(sf.angle_right)
        fp[s, P_RCI] = sfset.cutoff_alpha * sf.rc * L
        if sf.is_compact:
            ip[s, I_CORE] = compact_core(sf.subtype)
        else:
            ip[s, I_CORE] = sfset.cutoff_type
        if sf.type in (21, 24):
            ip[s, I_JKPREV] = next((m for m in range(s - 1, -1, -1) if
                                    (sfs[m].type, sfs[m].e1, sfs[m].e2) ==
                                    (sf.type, sf.e1, sf.e2)), -1)
        if sf.type in (3, 9, 13):
            fp[s, P_PREF] = 2.0 ** (1.0 - sf.zeta)
            iz = int(round(sf.zeta))
            ip[s, I_IZETA] = iz if (iz == sf.zeta and 0 <= iz <= 64) else -1
        else:
            fp[s, P_PREF] = 1.0
    return fp, ip


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
        f, i = element_tables(sfset, e, conv_length)
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
