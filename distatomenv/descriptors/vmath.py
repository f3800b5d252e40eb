"""Elementary functions that LLVM can vectorise: exp, tanh, cos and sin on [0, pi].

``math.exp`` and friends compile to calls into the C library, one element at
a time; a loop that calls them never vectorises.  These are branch-free
polynomial evaluations (selects, no calls), inlined into the kernels' loops,
so a loop over many partners runs 8 doubles per instruction on AVX-512.

Accuracy (measured against the C library on millions of arguments, see
tests/test_vmath.py): exp within 2 ulp; tanh on [0, 1] and cos, sin on
[0, pi] within a few ulp.  That is below the
last digit n2p2 prints, which is what the kernels are held to.

exp(x) = 2^m * 2^(j/64) * p(r), with k = round(64 x / ln 2), m = k >> 6,
j = k & 63, r = x - k ln2/64 (split in two parts, |r| <= ln2/128) and p the
degree-6 Taylor polynomial of exp(r) (error below 1e-18 on that interval).
2^m and 2^(j/64) come from two small tables (gathers vectorise).
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

_N = 64
#: 2^(j/64), j = 0..63, correctly rounded (computed in extended precision)
_TAB = np.array([float(np.exp2(np.longdouble(j) / _N)) for j in range(_N)])
#: 2^m for m = -_MOFF .. 1023
_MOFF = 1080
_TWOM = np.array([math.ldexp(1.0, m) for m in range(-_MOFF, 1024)])
_INV_LN2N = _N / math.log(2.0)
#: ln2/64 split: a head with few bits (exact products with k) and the tail
_LN2N_HI = float(np.float32(math.log(2.0) / _N))
_LN2N_LO = float(np.log(np.longdouble(2)) / _N - np.longdouble(_LN2N_HI))
_EXP_MIN = -745.0
_EXP_MAX = 709.0

_jit = nb.njit(cache=True, inline="always", error_model="numpy", fastmath={"contract"})


@_jit
def vexp(x):
    """exp(x), 0 below -745, clamped at exp(709)."""
    x = x if x > _EXP_MIN else _EXP_MIN
    x = x if x < _EXP_MAX else _EXP_MAX
    kf = math.floor(x * _INV_LN2N + 0.5)
    r = (x - kf * _LN2N_HI) - kf * _LN2N_LO
    k = np.int64(kf)
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (
        1.0 / 120.0 + r * (1.0 / 720.0))))))
    return _TWOM[(k >> 6) + _MOFF] * (_TAB[k & (_N - 1)] * p)


@_jit
def vtanh(u):
    """tanh(u) for u >= 0: (1 - e)/(1 + e), e = exp(-2u), and a Taylor
    polynomial below 1/8, where 1 - e would cancel."""
    e = vexp(-2.0 * u)
    big = (1.0 - e) / (1.0 + e)
    u2 = u * u
    p = 6404582.0 / 10854718875.0
    p = p * u2 - 929569.0 / 638512875.0
    p = p * u2 + 21844.0 / 6081075.0
    p = p * u2 - 1382.0 / 155925.0
    p = p * u2 + 62.0 / 2835.0
    p = p * u2 - 17.0 / 315.0
    p = p * u2 + 2.0 / 15.0
    p = p * u2 - 1.0 / 3.0
    small = u + u * u2 * p
    return small if u < 0.125 else big


#: Taylor coefficients of sin(w)/w and cos(w) in w^2, highest first:
#: (-1)^k/(2k+1)! and (-1)^k/(2k)! for k = 12..0 (enough for |w| <= pi/2)
_SIN_C = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(12, -1, -1))
_COS_C = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(12, -1, -1))


@_jit
def _horner(coefs, x):
    """sum coefs[i] x^(n-1-i) (highest power first); unrolled for a constant tuple."""
    p = 0.0
    for c in coefs:
        p = p * x + c
    return p


@_jit
def _sin_poly(w):
    """sin(w) for |w| <= pi/2."""
    return w * _horner(_SIN_C, w * w)


@_jit
def _cos_poly(w):
    """cos(w) for |w| <= pi/2."""
    return _horner(_COS_C, w * w)


#: pi and pi/2 as a double and the rest, for reductions that stay exact
_PI_HI = math.pi
_PI_LO = 1.2246467991473531772e-16       # pi - fl(pi), the known tail
_PIO2_HI = 0.5 * math.pi
_PIO2_LO = 0.5 * _PI_LO


@_jit
def vcos(w):
    """cos(w) for w in [0, pi]: -sin(w - pi/2), the shift done in two parts."""
    return -_sin_poly((w - _PIO2_HI) - _PIO2_LO)


@_jit
def vsin(w):
    """sin(w) for w in [0, pi]: sin(pi - w) above pi/2, the shift done in two
    parts, so that it stays accurate relative to its value near 0 and pi."""
    y = w if w < _PIO2_HI else (_PI_HI - w) + _PI_LO
    return _sin_poly(y)


@_jit
def vipow(p, n):
    """p**n for an integer 0 <= n < 64, by squaring, in six fixed steps with
    selects (no loop that depends on n, so a loop over p vectorises)."""
    out = 1.0
    b = p
    for bit in range(6):
        out = out * b if (n >> bit) & 1 else out
        b = b * b
    return out
