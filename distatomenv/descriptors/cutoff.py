"""Cutoff functions f_c(r) and the core functions of compact symmetry functions.

Pure numba functions of scalars, inlined into the symmetry-function kernels,
and :func:`cutoff_rows`, the same cutoffs over a row of distances in one
vectorised loop.

Cutoff types (n2p2's ``cutoff_type`` numbers).  With the inner cutoff
``rci = alpha * rc`` and ``x = (r - rci) / (rc - rci)``, f_c = 1 for r < rci,
f_c = 0 for r >= rc, and in between:

====  =====  ==============================================
 0    HARD   1
 1    COS    (cos(pi x) + 1) / 2
 2    TANHU  tanh^3(1 - r/rc)               (alpha unused)
 3    TANH   tanh^3(1 - r/rc) / tanh^3(1)   (alpha unused)
 4    EXP    exp(1 - 1 / (1 - x^2))
 5    POLY1  (2x - 3) x^2 + 1
 6    POLY2  ((15 - 6x) x - 10) x^3 + 1
 7    POLY3  (x (x (20x - 70) + 84) - 35) x^4 + 1
 8    POLY4  (x (x ((315 - 70x) x - 540) + 420) - 126) x^5 + 1
====  =====  ==============================================

The compact SFs (types 20-25) use the same polynomials and exponential as
"core functions" c(x) on x in [0, 1] (c(0) = 1, c(1) = 0): subtypes p1-p4
are POLY1-4 and e is EXP.  A compact window [left, right] gives the bump
C(a) = c(|a - centre| / half_width), symmetric about the centre, and zero
outside the window.  The asymmetric subtypes p1a-p4a use the p1-p4
polynomials of y = x (2 - x) instead of x (so they are flat only to first
order at the centre and fall off faster): C(a) = p(y), x = |a - centre| /
half_width.  (Established against n2p2's own output in the reference set.)
"""
from __future__ import annotations

import math

import numba as nb

from .vmath import vcos, vexp, vsin, vtanh

HARD, COS, TANHU, TANH, EXP, POLY1, POLY2, POLY3, POLY4 = range(9)
# 1 / tanh(1)^3, the normalisation of the TANH cutoff.
_TANH_NORM = 1.0 / math.tanh(1.0) ** 3

# Core-function codes of compact SFs (see symfuncs.COMPACT_SUBTYPES).
CORE_P1, CORE_P2, CORE_P3, CORE_P4, CORE_E = 1, 2, 3, 4, 5
#: asymmetric pka is CORE_ASYM + k (p1a = 6 ... p4a = 9)
CORE_ASYM = 5

_jit = nb.njit(cache=True, inline="always", error_model="numpy", fastmath={"contract"})


@_jit
def poly_core(kind, x):
    """Value and derivative d/dx of core function ``kind`` at x in [0, 1].

    kind: 1-4 for POLY1-4, 5 for EXP.  Returns (c, dc/dx).
    """
    # Derivatives in expanded Horner form, as n2p2 evaluates them: near x = 1
    # the factored forms (e.g. -630 x^4 (x-1)^4) differ from it in the last digits.
    if kind == 1:
        return (2.0 * x - 3.0) * x * x + 1.0, x * (6.0 * x - 6.0)
    if kind == 2:
        return (((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0,
                x * x * (x * (60.0 - 30.0 * x) - 30.0))
    if kind == 3:
        return ((x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x * x * x * x + 1.0,
                x * x * x * (x * (x * (140.0 * x - 420.0) + 420.0) - 140.0))
    if kind == 4:
        x2 = x * x
        return ((x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0,
                x2 * x2 * (x * (x * (x * (2520.0 - 630.0 * x) - 3780.0) + 2520.0) - 630.0))
    # EXP
    if x >= 1.0:
        return 0.0, 0.0
    d = 1.0 - x * x
    f = math.exp(1.0 - 1.0 / d)
    return f, -2.0 * x * f / (d * d)


@_jit
def cutoff(ctype, r, rc, rci):
    """Cutoff function f_c and df_c/dr at distance r.

    Parameters: ctype (0-8), r, rc (cutoff radius), rci (inner cutoff alpha*rc),
    all lengths in the same (normalised) unit.  Returns (f, df/dr); (0, 0) for r >= rc.
    """
    if r >= rc:
        return 0.0, 0.0
    if ctype == TANHU or ctype == TANH:
        t = math.tanh(1.0 - r / rc)
        f = t * t * t
        df = -3.0 * t * t * (1.0 - t * t) / rc
        if ctype == TANH:
            return f * _TANH_NORM, df * _TANH_NORM
        return f, df
    if ctype == HARD or r < rci:
        return 1.0, 0.0
    w = rc - rci
    x = (r - rci) / w
    if ctype == COS:
        return 0.5 * (math.cos(math.pi * x) + 1.0), -0.5 * math.pi * math.sin(math.pi * x) / w
    # EXP and POLY1-4 share the core functions.
    kind = 5 if ctype == EXP else ctype - 4
    f, dfdx = poly_core(kind, x)
    return f, dfdx / w


@_jit
def compact(core, a, left, right):
    """Compact window function C(a) on [left, right] and dC/da.

    core: 1-5 symmetric core functions p1-p4, e; 6-9 the asymmetric p1a-p4a
    (the polynomial of y = x (2 - x), see the module docstring).
    """
    if a <= left or a >= right:
        return 0.0, 0.0
    hw = 0.5 * (right - left)
    centre = left + hw
    s = a - centre
    x = abs(s) / hw
    if core > CORE_ASYM:
        # asymmetric polynomial: p(y) with y = x (2 - x), dy/dx = 2 (1 - x)
        c, dc = poly_core(core - CORE_ASYM, x * (2.0 - x))
        dc *= 2.0 * (1.0 - x)
    else:
        c, dc = poly_core(core, x)
    if s >= 0.0:
        return c, dc / hw
    return c, -dc / hw


_jit_rows = nb.njit(cache=True, error_model="numpy", fastmath={"contract"})


@_jit_rows
def cutoff_rows(ctype, rc, rci, r, f, df, n):
    """``f[t], df[t] = cutoff(ctype, r[t], rc, rci)`` for t < n.

    The same function as :func:`cutoff`, written as one branch-free loop per
    type (selects instead of branches, the elementary functions of
    :mod:`.vmath`), so that LLVM vectorises it.  Used where a cutoff is
    evaluated for many distances at once (every partner pair of an angular
    SF); agrees with :func:`cutoff` to a few ulp.
    """
    if ctype == TANHU or ctype == TANH:
        norm = _TANH_NORM if ctype == TANH else 1.0
        for t in range(n):
            rt = r[t]
            u = 1.0 - rt / rc
            th = vtanh(u if u > 0.0 else 0.0)
            inside = rt < rc
            f[t] = norm * (th * th * th) if inside else 0.0
            df[t] = norm * (-3.0 * th * th * (1.0 - th * th) / rc) if inside else 0.0
        return
    if ctype == HARD:
        for t in range(n):
            f[t] = 1.0 if r[t] < rc else 0.0
            df[t] = 0.0
        return
    w = rc - rci
    if ctype == COS:
        for t in range(n):
            rt = r[t]
            x = (rt - rci) / w
            x = x if x > 0.0 else 0.0
            x = x if x < 1.0 else 1.0
            ft = 0.5 * (vcos(math.pi * x) + 1.0)
            dft = -0.5 * math.pi * vsin(math.pi * x) / w
            f[t] = (1.0 if rt < rci else ft) if rt < rc else 0.0
            df[t] = (0.0 if rt < rci else dft) if rt < rc else 0.0
        return
    if ctype == EXP:
        for t in range(n):
            rt = r[t]
            x = (rt - rci) / w
            x = x if x > 0.0 else 0.0
            d = 1.0 - x * x
            d = d if d > 1e-300 else 1e-300
            ft = vexp(1.0 - 1.0 / d)
            dft = -2.0 * x * ft / (d * d) / w
            f[t] = (1.0 if rt < rci else ft) if rt < rc else 0.0
            df[t] = (0.0 if rt < rci else dft) if rt < rc else 0.0
        return
    # POLY1-4: one loop per polynomial, so that the kind folds away
    if ctype == POLY1:
        _poly_rows(1, rc, rci, w, r, f, df, n)
    elif ctype == POLY2:
        _poly_rows(2, rc, rci, w, r, f, df, n)
    elif ctype == POLY3:
        _poly_rows(3, rc, rci, w, r, f, df, n)
    else:
        _poly_rows(4, rc, rci, w, r, f, df, n)


@nb.njit(cache=True, inline="always", error_model="numpy", fastmath={"contract"})
def _poly_rows(kind, rc, rci, w, r, f, df, n):
    for t in range(n):
        rt = r[t]
        x = (rt - rci) / w
        x = x if x > 0.0 else 0.0
        x = x if x < 1.0 else 1.0
        ft, dfx = poly_core(kind, x)
        f[t] = (1.0 if rt < rci else ft) if rt < rc else 0.0
        df[t] = (0.0 if rt < rci else dfx / w) if rt < rc else 0.0
