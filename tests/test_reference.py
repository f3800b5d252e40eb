"""compute + export against n2p2's own nnp-atomenv output (shared/reference).

Comparison rule (reference README): same lines, same tokens per line, same
element symbols; neighbor-list.data identical; numbers equal within one unit
in the last printed digit of %16.8E (|a - b| <= 10^(e-8), e the larger
decimal exponent).

Two documented exceptions:
* H2O_smallbox: the dG tokens 156-171 of rows 1 and 4 depend on how n2p2's
  unstable sort orders two exactly tied self-images.  distatomenv breaks
  ties by (distance, atom index, image shift) -- see neighbors.py -- so
  these tokens may legitimately differ; every other token must match.
* Cancellation-limited derivative tokens: a few dG values are tiny sums of
  much larger terms (e.g. near the edge of a compact SF's support), whose
  last digits depend on the order of floating-point operations.  A dG token
  that misses the ±1 rule is accepted only if |a - b| <= 1e-11 * max|row|;
  such tokens are counted and must stay rare (<= 0.1 % of a file).  G values
  and neighbour lists get no such slack.
"""
from __future__ import annotations

import gzip

import numpy as np
import pytest

import distatomenv

CASES = ["LJ", "H2O_RPBE-D3", "H2O_smallbox", "H2O_wide_poly2_sigma",
         "H2O_weighted_cos_center", "H2O_polynomial"]
FILES = ["atomic-env.G", "atomic-env.dGdx", "atomic-env.dGdy", "atomic-env.dGdz"]
TIE_TOKENS = {"H2O_smallbox": {(0, k) for k in range(155, 171)} | {(3, k) for k in range(155, 171)}}
CANCELLATION_REL = 1e-11
CANCELLATION_MAX_SHARE = 1e-3


def _read(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return [line.split() for line in f]


def compare_atomenv(expected, actual, *, allow=frozenset(), derivative=False):
    """Compare two atomic-env files token by token.

    Returns (n_tokens, cancellation-limited [(row, col, exp, act)], failures).
    ``allow``: (row, 0-based token) pairs that may differ.
    """
    assert len(actual) == len(expected), f"{len(actual)} lines, expected {len(expected)}"
    failures, cancel, n = [], [], 0
    for r, (e, a) in enumerate(zip(expected, actual)):
        assert len(a) == len(e), f"line {r + 1}: {len(a)} tokens, expected {len(e)}"
        assert a[0] == e[0], f"line {r + 1}: element {a[0]!r}, expected {e[0]!r}"
        ev = np.array(e[1:], dtype=float)
        av = np.array(a[1:], dtype=float)
        n += ev.size
        with np.errstate(divide="ignore"):
            ex = np.maximum(np.floor(np.log10(np.abs(ev))), np.floor(np.log10(np.abs(av))))
        ex[~np.isfinite(ex)] = -300
        tol = 10.0 ** (ex - 8) * (1 + 1e-6)   # slack for binary parsing
        bad = np.abs(ev - av) > tol
        for k in np.flatnonzero(bad):
            if (r, k + 1) in allow:
                continue
            if derivative and abs(ev[k] - av[k]) <= CANCELLATION_REL * np.abs(ev).max():
                cancel.append((r + 1, k + 2, e[k + 1], a[k + 1]))
            else:
                failures.append((r + 1, k + 2, e[k + 1], a[k + 1]))
    return n, cancel, failures


@pytest.fixture(scope="module")
def exported(reference_dir, tmp_path_factory):
    """compute + export every case once per test session."""
    out = {}

    def get(case):
        if case not in out:
            d = reference_dir / case
            tmp = tmp_path_factory.mktemp(case)
            distatomenv.compute(d / "input.data", neighbors=(d / "args").read_text(),
                                out=tmp / "store.zarr")
            distatomenv.export(tmp / "store.zarr", tmp / "out")
            out[case] = tmp / "out"
        return out[case]
    return get


def test_every_reference_case_is_covered(reference_dir):
    with_expected = sorted(p.parent.name for p in reference_dir.glob("*/expected"))
    assert with_expected == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_neighbor_list_identical(case, reference_dir, exported):
    out = exported(case)
    assert _read(out / "neighbor-list.data") == \
        _read(reference_dir / case / "expected" / "neighbor-list.data.gz")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", FILES)
def test_atomic_env_tokens(case, name, reference_dir, exported):
    out = exported(case)
    expected = _read(reference_dir / case / "expected" / f"{name}.gz")
    actual = _read(out / name)
    derivative = name != "atomic-env.G"
    allow = TIE_TOKENS.get(case, set()) if derivative else set()
    n, cancel, failures = compare_atomenv(expected, actual, allow=allow, derivative=derivative)
    assert not failures, f"{len(failures)} of {n} tokens differ, first: {failures[:5]}"
    assert len(cancel) <= CANCELLATION_MAX_SHARE * n, cancel[:10]
    if cancel:
        print(f"{case} {name}: {len(cancel)} cancellation-limited tokens: {cancel}")


def test_comparison_rule_detects_differences():
    e = [["H", "1.00000000E+00", "-2.50000000E-03"]]
    assert compare_atomenv(e, [["H", "1.00000001E+00", "-2.50000001E-03"]])[2] == []
    assert compare_atomenv(e, [["H", "9.99999999E-01", "-2.50000000E-03"]])[2] == []
    assert len(compare_atomenv(e, [["H", "1.00000002E+00", "-2.50000000E-03"]])[2]) == 1
    with pytest.raises(AssertionError, match="element"):
        compare_atomenv(e, [["O", "1.00000000E+00", "-2.50000000E-03"]])
    with pytest.raises(AssertionError, match="tokens"):
        compare_atomenv(e, [["H", "1.00000000E+00"]])
