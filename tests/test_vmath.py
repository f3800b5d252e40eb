"""The vectorisable elementary functions (descriptors/vmath.py) and the
vectorised cutoff rows (descriptors/cutoff.cutoff_rows) against the C
library and the scalar cutoff, over the ranges the kernels use."""
from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest

from distatomenv.descriptors.cutoff import cutoff, cutoff_rows
from distatomenv.descriptors.vmath import vcos, vexp, vipow, vsin, vtanh


@nb.njit
def _apply(f, a, out):
    for t in range(a.size):
        out[t] = f(a[t])


def _ulps(got, want):
    ok = want != 0.0
    return np.max(np.abs(got - want)[ok] / np.spacing(np.abs(want[ok])))


RNG = np.random.default_rng(7)
#: arguments on [0, 1], dense near both ends
UNIT = np.concatenate([RNG.uniform(0, 1, 100_000), 10 ** RNG.uniform(-14, 0, 50_000),
                       1 - 10 ** RNG.uniform(-14, 0, 50_000), [0.0, 0.125, 0.5, 1.0]])


@pytest.mark.parametrize("name, f, ref, args, max_ulp", [
    ("exp", vexp, math.exp, np.concatenate([RNG.uniform(-700, 700, 100_000),
                                            RNG.uniform(-3, 3, 100_000), [0.0, -1e-300]]), 2),
    ("tanh", vtanh, math.tanh, UNIT, 8),
    ("cos", vcos, math.cos, math.pi * UNIT, 4),
    ("sin", vsin, math.sin, math.pi * UNIT, 4),
])
def test_elementary_functions_are_within_a_few_ulp(name, f, ref, args, max_ulp):
    got = np.empty_like(args)
    _apply(f, args, got)
    want = np.array([ref(v) for v in args])
    assert _ulps(got, want) <= max_ulp, name


def test_exp_underflows_to_zero_and_saturates():
    got = np.empty(3)
    _apply(vexp, np.array([-800.0, -745.2, 800.0]), got)
    assert got[0] == 0.0 and got[1] < 1e-320 and got[2] == math.exp(709.0)


@nb.njit
def _ipow_all(p, n):
    out = np.empty(p.size)
    for t in range(p.size):
        out[t] = vipow(p[t], n)
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 7, 16, 63])
def test_integer_powers(n):
    p = RNG.uniform(0, 2, 1000)
    want = p ** n
    np.testing.assert_allclose(_ipow_all(p, n), want, rtol=8 * n * 2.2e-16 + 1e-300, atol=0)


@nb.njit
def _scalar_rows(ctype, rc, rci, r, f, df):
    for t in range(r.size):
        f[t], df[t] = cutoff(ctype, r[t], rc, rci)


@pytest.mark.parametrize("ctype", range(9))
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_cutoff_rows_agree_with_the_scalar_cutoff(ctype, alpha):
    rc = 6.35
    rci = alpha * rc
    r = np.concatenate([RNG.uniform(0.5, 7.0, 20_000), [rci, rc, rc - 1e-12, rci + 1e-12]])
    f1, d1, f2, d2 = (np.empty_like(r) for _ in range(4))
    _scalar_rows(ctype, rc, rci, r, f1, d1)
    cutoff_rows(ctype, rc, rci, r, f2, d2, r.size - 3)     # n is honoured
    n = r.size - 3
    # the same function: exact zeros beyond rc, exact ones inside rci
    out = r[:n] >= rc
    inner = ((r[:n] < rci) & (ctype not in (2, 3))) | (ctype == 0)    # TANH: no inner cutoff
    assert np.all(f2[:n][out] == 0.0) and np.all(d2[:n][out] == 0.0)
    assert np.all(f2[:n][inner & ~out] == 1.0) and np.all(d2[:n][inner & ~out] == 0.0)
    # within rounding: the polynomials cancel near x = 1 (POLY4 has terms up to 2520)
    np.testing.assert_allclose(f2[:n], f1[:n], rtol=0, atol=2e-13)
    np.testing.assert_allclose(d2[:n], d1[:n], rtol=0, atol=2e-13 * max(1.0, np.abs(d1).max()))
