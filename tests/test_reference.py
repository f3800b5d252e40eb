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

Every file is compared twice: from a lossless store and from a store made
with ``precision="n2p2"`` (``--precision n2p2``: G and dG rounded to 33
mantissa bits), which must meet the same rule.
"""
from __future__ import annotations

import gzip

import numpy as np
import pytest

import distatomenv

# precision="n2p2" stores declare numcodecs' bitround filter, which zarr flags
# as outside the Zarr v3 specification (the store layer silences it outside pytest)
pytestmark = pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr:UserWarning")

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
    """compute + export every case once per test session (per precision)."""
    out = {}

    def get(case, precision="full"):
        if (case, precision) not in out:
            d = reference_dir / case
            tmp = tmp_path_factory.mktemp(f"{case}-{precision}")
            distatomenv.compute(d / "input.data", neighbors=(d / "args").read_text(),
                                out=tmp / "store.zarr", precision=precision)
            distatomenv.export(tmp / "store.zarr", tmp / "out")
            out[case, precision] = tmp / "out"
        return out[case, precision]
    return get


def test_every_reference_case_is_covered(reference_dir):
    with_expected = sorted(p.parent.name for p in reference_dir.glob("*/expected"))
    assert with_expected == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_neighbor_list_identical(case, reference_dir, exported):
    out = exported(case)
    assert _read(out / "neighbor-list.data") == \
        _read(reference_dir / case / "expected" / "neighbor-list.data.gz")


@pytest.mark.parametrize("precision", ["full", "n2p2"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", FILES)
def test_atomic_env_tokens(case, name, precision, reference_dir, exported):
    out = exported(case, precision)
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


@pytest.mark.parametrize("case", ["H2O_RPBE-D3", "H2O_polynomial"])
def test_precision_n2p2_moves_printed_tokens_by_at_most_one_unit(case, exported):
    """The rounding itself (33 bits, <= 0.06 of the last printed digit) changes a
    printed token by at most one unit, and only rarely (a boundary crossed)."""
    for name in FILES:
        full = _read(exported(case) / name)
        lossy = _read(exported(case, "n2p2") / name)
        n, cancel, failures = compare_atomenv(full, lossy)
        assert not failures and not cancel, failures[:5]
        changed = sum(a != b for x, y in zip(full, lossy) for a, b in zip(x, y))
        assert changed <= 0.03 * n, (name, changed, n)
