"""Differential tests against n2p2 itself (issue 13).

n2p2's own ``nnp-scaling`` and ``nnp-atomenv`` (../shared/tools/n2p2, or
``DISTATOMENV_N2P2``) run on generated and stored inputs, and every file
distatomenv writes is compared with theirs (tests/differential/harness.py has
the comparison rule and the documented classes of tokens that may differ).

* ``test_ci_subset``: one generated case per cutoff type (0-8) x scaling
  keyword set (every mode, all eight keyword combinations), each with every SF
  type, the compact subtypes rotated so that every type meets every subtype.
* ``test_regression``: every divergence the differential tests found, as
  small input files under tests/data/differential/; n2p2's outputs are made at
  test time, never stored.
* The long run (>= 1,000 cases) is ``.venv/bin/python tests/differential/run.py
  --cases 1000`` (README, "Compatibility with n2p2").

Without the oracle these tests skip with the reason, or fail when
``DISTATOMENV_REQUIRE_REFERENCE=1`` (CI).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from differential.generator import (COMPACT_TYPES, SCALING_KEYWORDS, SF_TYPES, SUBTYPES,
                                    case_from_files, ci_cases, coverage_plan, generate,
                                    scaling_mode)
from differential.harness import (_env, oracle_dir, oracle_problem, read_tokens, run_case,
                                  shrink)

DATA = Path(__file__).parent / "data" / "differential"
CI_CASES = dict(ci_cases())


@pytest.fixture(scope="session")
def oracle() -> Path:
    """n2p2's binaries; skip (or fail with DISTATOMENV_REQUIRE_REFERENCE=1)
    when they cannot run here."""
    problem = oracle_problem()
    if problem:
        if os.environ.get("DISTATOMENV_REQUIRE_REFERENCE") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    return oracle_dir()


# ----------------------------------------------------------------------------- generator
def test_ci_subset_covers_every_type_cutoff_and_mode():
    """Without the oracle: the CI plan covers SF type x cutoff type x scaling
    mode, every compact type x subtype, every keyword combination."""
    seen, subtypes, flags = set(), set(), set()
    for k, cases in CI_CASES.items():
        case = cases[0]
        for t in case.sf_types():
            seen.add((t, case.cutoff_type, case.scaling))
        subtypes |= case.subtypes()
        flags.add(frozenset(case.flags))
    modes = {"none", "scale", "center", "scalecenter", "sigma"}
    assert seen == {(t, c, m) for t in SF_TYPES for c in range(9) for m in modes}
    assert {(t, s) for t in COMPACT_TYPES for s in SUBTYPES} <= subtypes
    assert len(flags) == 8
    assert len(coverage_plan()) == 45


def test_generator_is_reproducible_and_varied():
    a, b = generate(12345), generate(12345)
    assert a.input_nn() == b.input_nn() and a.input_data() == b.input_data()
    assert a.args() == b.args()
    cases = [generate(s) for s in range(60)]
    assert {c.sf_keyword for c in cases} == {"symfunction", "symfunction_short"}
    assert {len(c.elements) for c in cases} == {1, 2, 3, 4, 5}
    assert {s.kind for c in cases for s in c.structures} == \
        {"cubic", "orthorhombic", "skewed", "cluster"}
    assert any(c.norm for c in cases) and any(not c.norm for c in cases)
    assert any(c.extra["absent"] for c in cases)
    assert any(c.smin is not None for c in cases) and any(c.smax is None for c in cases)
    zetas = [float(ln.split()[6]) for c in cases for ln in c.sfs if ln.split()[1] in ("3", "9")]
    assert min(zetas) < 0 < max(zetas)


def test_scaling_mode_of_every_keyword_set():
    """The generator's idea of n2p2's precedence (asked of nnp-atomenv's log)."""
    from itertools import combinations
    want = {(): "none", ("scale_symmetry_functions",): "scale",
            ("center_symmetry_functions",): "center",
            ("scale_symmetry_functions_sigma",): "sigma",
            ("scale_symmetry_functions", "center_symmetry_functions"): "scalecenter",
            ("scale_symmetry_functions", "scale_symmetry_functions_sigma"): "scale",
            ("center_symmetry_functions", "scale_symmetry_functions_sigma"): "center",
            SCALING_KEYWORDS: "scalecenter"}
    for n in range(4):
        for flags in combinations(SCALING_KEYWORDS, n):
            assert scaling_mode(flags) == want[flags]


# ----------------------------------------------------------------------------- CI subset
@pytest.mark.parametrize("k", sorted(CI_CASES), ids=[
    f"cutoff{ct}-{scaling_mode(fl)}-{len(fl)}kw" for ct, fl in coverage_plan()])
def test_ci_subset(k, oracle, tmp_path):
    for case in CI_CASES[k]:
        res = run_case(case, tmp_path / f"case{case.seed}", oracle=oracle)
        if res.status != "n2p2-crash":           # n2p2 itself crashed: try the next seed
            break
    assert res.status == "match", res.summary() + "\n" + case.describe()


# ----------------------------------------------------------------------------- regressions
REGRESSIONS = sorted(p.name for p in DATA.iterdir() if (p / "args").exists()
                     and p.name not in ("zeta_zero", "n2p2_crash"))


@pytest.mark.parametrize("name", REGRESSIONS)
def test_regression(name, oracle, tmp_path, monkeypatch):
    if name == "collinear_axis":
        # axis-aligned self-images: cos theta is exactly -+1 for both programs,
        # so no token may need the rounding-dependent "collinear" class
        import differential.harness
        monkeypatch.setattr(differential.harness, "_collinear_prone", lambda sf: False)
    case = case_from_files(DATA / name)
    res = run_case(case, tmp_path / name, oracle=oracle, keep=True)
    assert res.status == "match", res.summary()
    if name == "degenerate_scaling":
        # scaling.data rows of an element without atoms (S) and with one atom (O)
        # are written byte for byte as nnp-scaling writes them
        def rows(p):
            return [ln for ln in open(p) if ln.strip() and not ln.startswith("#")]
        ours = rows(tmp_path / name / "ours" / "scaling.data")
        theirs = rows(tmp_path / name / "n2p2" / "scaling.data")
        degenerate = [k for k, ln in enumerate(theirs) if "NAN" in ln]
        assert len(degenerate) >= 3
        for k in degenerate:
            assert ours[k].split()[:2] == theirs[k].split()[:2]
            for a, b in zip(ours[k].split()[2:], theirs[k].split()[2:]):
                assert a == b or "NAN" not in a + b and abs(float(a) - float(b)) <= \
                    1e-13 * abs(float(b)), (ours[k], theirs[k])
        assert any("1.7976931348623157E+308" in theirs[k] for k in degenerate)


@pytest.mark.parametrize("flags", [(), *[(k,) for k in SCALING_KEYWORDS],
                                   SCALING_KEYWORDS[:2], SCALING_KEYWORDS[::2],
                                   SCALING_KEYWORDS[1:], SCALING_KEYWORDS])
def test_regression_scaling_keyword_precedence(flags, oracle, tmp_path):
    """n2p2's log names the scaling type it applies; ours must be the same, for
    every combination of the three keywords (both centre and sigma: centre)."""
    from distatomenv.io.settings import read_settings
    base = (DATA / "negative_zeta" / "input.nn").read_text()
    base = "\n".join(ln for ln in base.splitlines() if ln.split()[:1] != [SCALING_KEYWORDS[2]])
    text = base + "\n" + "\n".join(flags) + "\n"
    d = tmp_path / "n2p2"
    d.mkdir()
    (d / "input.nn").write_text(text)
    shutil.copy(DATA / "negative_zeta" / "input.data", d / "input.data")
    subprocess.run([str(oracle / "nnp-scaling"), "10"], cwd=d, env=_env(), capture_output=True,
                   check=True, timeout=300)
    log = subprocess.run([str(oracle / "nnp-atomenv"), "10", "0", "0", "0", "0"], cwd=d,
                         env=_env(), capture_output=True, text=True, timeout=300).stdout
    n2p2 = re.search(r"Scaling type::ST_(\w+)", log).group(1)
    names = {"NONE": "none", "SCALE": "scale", "CENTER": "center", "SCALECENTER": "scalecenter",
             "SCALESIGMA": "sigma"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_settings(d / "input.nn").scaling == names[n2p2] == scaling_mode(flags)


def test_regression_zeta_zero(oracle, tmp_path):
    """zeta = 0: n2p2 accepts it and writes NaN for every derivative of the SF;
    distatomenv refuses it with an error naming the file and line."""
    from distatomenv.errors import SettingsError
    from distatomenv.io.settings import read_settings
    d = tmp_path / "n2p2"
    shutil.copytree(DATA / "zeta_zero", d)
    subprocess.run([str(oracle / "nnp-scaling"), "10"], cwd=d, env=_env(), capture_output=True,
                   check=True, timeout=300)
    subprocess.run([str(oracle / "nnp-atomenv"), "10", *(d / "args").read_text().split()], cwd=d,
                   env=_env(), capture_output=True, check=True, timeout=300)
    dgdx = read_tokens(d / "atomic-env.dGdx")
    h_rows = [r for r in dgdx if r[0] == "H"]
    assert h_rows and all(np.isnan(float(r[2])) for r in h_rows)      # H's SF 2 is the zeta 0 one
    line = next(k for k, ln in enumerate((d / "input.nn").read_text().splitlines(), start=1)
                if " 9 O H " in ln)
    with pytest.raises(SettingsError, match=rf"input.nn:{line}: zeta = 0 makes the angular"):
        read_settings(d / "input.nn")


def test_shrink_keeps_the_failure_and_gets_smaller():
    """The shrinker (no oracle): a predicate that fails while a type 24 SF and
    at least 2 atoms remain shrinks a case down to exactly that."""
    def fails(c):
        return any(ln.split()[1] == "24" for ln in c.sfs) and \
            sum(len(s.atoms) for s in c.structures) >= 2
    case = next(c for c in (generate(s, all_types=True) for s in range(100))
                if fails(c) and len(c.structures) > 1)
    small = shrink(case, fails)
    assert fails(small)
    assert sum(len(s.atoms) for s in small.structures) == 2
    assert len(small.sfs) < len(case.sfs) and len(small.structures) == 1


def test_n2p2_crash_input_is_computed(oracle, tmp_path):
    """An input n2p2 itself crashes on (SIGSEGV while computing SFs; about 7 %
    of generated cases): distatomenv computes it.  Should an n2p2 build not
    crash, its files must match ours."""
    res = run_case(case_from_files(DATA / "n2p2_crash"), tmp_path / "case", oracle=oracle)
    assert res.our_error is None, res.summary()
    assert res.status in ("n2p2-crash", "match"), res.summary()
