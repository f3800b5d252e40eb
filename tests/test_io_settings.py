"""Tests of distatomenv.io.settings (n2p2 input.nn)."""
from __future__ import annotations

import hashlib
import json
import re
import warnings

import pytest

from distatomenv.errors import SettingsError
from distatomenv.io.settings import IGNORED_KEYWORDS, Settings, read_settings

BASE = """\
# a comment line
number_of_elements 2            # trailing comment
elements O H                    ! another comment style
cutoff_type 2 0.1
scale_symmetry_functions
center_symmetry_functions
scale_min_short -1.0
scale_max_short 1.0
use_short_forces
global_hidden_layers_short 2
random_seed 1234
symfunction_short H 2 H 0.01 0.0 12.0
symfunction_short H 3 O H 0.01 1.0 4.0 12.0
symfunction_short O 2 H 0.01 0.0 12.0
"""
SF_LINE = 14      # first free line after BASE (BASE has 14 lines, see test_base)


def write(tmp_path, text, name="input.nn"):
    p = tmp_path / name
    p.write_text(text)
    return p


def expect(path, line, fragment):
    where = re.escape(str(path)) + (f":{line}: " if line is not None else ": ")
    return pytest.raises(SettingsError, match=where + ".*" + fragment)


def read_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the valid inputs here must not warn
        return read_settings(path)


def test_base(tmp_path):
    p = write(tmp_path, BASE)
    s = read_quiet(p)
    assert s.path == str(p)
    assert s.elements == ["H", "O"]                      # atomic-number order
    assert s.cutoff_type == 2 and s.cutoff_alpha == 0.1
    assert s.scaling == "scalecenter" and (s.scale_min, s.scale_max) == (-1.0, 1.0)
    assert not s.normalize and (s.mean_energy, s.conv_energy, s.conv_length) == (0.0, 1.0, 1.0)
    assert s.use_short_forces and s.warnings == []
    assert s.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert s.sfset.elements == ["H", "O"]
    assert (s.sfset.cutoff_type, s.sfset.cutoff_alpha) == (2, 0.1)
    h = s.sfset.by_element["H"]
    assert [(sf.type, sf.line) for sf in h] == [(2, 12), (3, 13)]
    assert (h[1].e1, h[1].e2) == ("H", "O")              # swapped to Z(e1) <= Z(e2)
    assert (h[1].eta, h[1].lambda_, h[1].zeta, h[1].rc, h[1].rs) == (0.01, 1.0, 4.0, 12.0, 0.0)
    assert s.sfset.by_element["O"][0].e1 == "H"
    assert len(BASE.splitlines()) == SF_LINE


def with_line(extra):
    return BASE + extra + "\n"


@pytest.mark.parametrize("line, expected", [
    ("H 2 O 0.5 1.5 6.0", dict(type=2, e1="O", e2=None, eta=0.5, rs=1.5, rc=6.0)),
    ("H 3 O O 0.5 -1 2.5 6.0", dict(type=3, e1="O", e2="O", eta=0.5, lambda_=-1.0, zeta=2.5, rc=6.0, rs=0.0)),
    ("H 9 O H 0.5 1 2 6.0 1.5", dict(type=9, e1="H", e2="O", eta=0.5, lambda_=1.0, zeta=2.0, rc=6.0, rs=1.5)),
    ("H 3 H O 0.5 0.5 1 6.0", dict(type=3, e1="H", e2="O", lambda_=0.5)),   # any lambda is accepted
    ("H 12 0.2 0.9 8.0", dict(type=12, e1=None, e2=None, eta=0.2, rs=0.9, rc=8.0)),
    ("H 13 0.2 0.5 -1 1.5 8.0", dict(type=13, eta=0.2, rs=0.5, lambda_=-1.0, zeta=1.5, rc=8.0)),
    ("H 20 O -12 12 p2", dict(type=20, e1="O", rl=-12.0, rc=12.0, subtype="p2")),
    ("H 21 O H 0 8 60 150 p4", dict(type=21, e1="H", e2="O", rl=0.0, rc=8.0, angle_left=60.0,
                                    angle_right=150.0, subtype="p4")),
    ("H 22 H H 1 9 -60 60 p2a", dict(type=22, e1="H", e2="H", angle_left=-60.0, angle_right=60.0)),
    ("H 23 1.0 8.0 e", dict(type=23, rl=1.0, rc=8.0, subtype="e")),
    ("H 24 -10 10 30 150 p4a", dict(type=24, rl=-10.0, angle_left=30.0, subtype="p4a")),
    ("H 25 0 10 150 210 p1", dict(type=25, angle_right=210.0, subtype="p1")),
    ("H 25 0 10 0 180 p3", dict(type=25, subtype="p3")),
    # issue 13: what n2p2 accepts (asked of nnp-scaling)
    ("H 20 O 0 6 p1a", dict(type=20, subtype="p1a")),
    ("H 21 O H 0 8 60 150 p3a", dict(type=21, subtype="p3a")),
    ("H 23 1.0 8.0 ea", dict(type=23, subtype="ea")),        # evaluated as e
    ("H 9 O H 0.5 1 -2.5 6.0", dict(type=9, zeta=-2.5)),
    ("H 13 0.2 0.5 -1 -1 8.0", dict(type=13, zeta=-1.0)),
    ("H 25 0 10 -180 180 p2", dict(angle_left=-180.0, angle_right=180.0)),
    ("H 24 0 10 0 360 p2", dict(angle_left=0.0, angle_right=360.0)),
])
def test_every_sf_type(tmp_path, line, expected):
    s = read_quiet(write(tmp_path, with_line("symfunction_short " + line)))
    (sf,) = [f for f in s.sfset.functions if f.line == SF_LINE + 1]
    assert sf.element == "H"
    for key, value in expected.items():
        assert getattr(sf, key) == value, key


@pytest.mark.parametrize("keywords, mode", [
    ([], "none"),
    (["scale_symmetry_functions"], "scale"),
    (["center_symmetry_functions"], "center"),
    (["scale_symmetry_functions", "center_symmetry_functions"], "scalecenter"),
    (["scale_symmetry_functions_sigma"], "sigma"),
    # n2p2's precedence (its nnp-atomenv log, issue 13): sigma counts only alone
    (["scale_symmetry_functions_sigma", "center_symmetry_functions"], "center"),
    (["scale_symmetry_functions_sigma", "scale_symmetry_functions"], "scale"),
    (["scale_symmetry_functions_sigma", "scale_symmetry_functions",
      "center_symmetry_functions"], "scalecenter"),
])
def test_scaling_modes(tmp_path, keywords, mode):
    text = BASE.replace("scale_symmetry_functions\n", "").replace("center_symmetry_functions\n", "")
    text = "\n".join(keywords) + "\n" + text
    assert read_quiet(write(tmp_path, text)).scaling == mode


def test_symfunction_and_symfunction_short_in_one_file(tmp_path):
    """n2p2 refuses a file using both names ("Multiple alternative versions of
    keyword"); so do we, naming both lines."""
    p = write(tmp_path, with_line("symfunction H 2 H 0.1 0 6"))
    with expect(p, SF_LINE + 1, r"'symfunction' and 'symfunction_short' \(line 12\) are two "
                                r"names of the same keyword"):
        read_settings(p)


def test_symfunction_is_another_name_of_symfunction_short(tmp_path):
    """n2p2 reads 'symfunction' as 'symfunction_short' (issue 13)."""
    a = read_quiet(write(tmp_path, BASE))
    b = read_quiet(write(tmp_path, BASE.replace("symfunction_short ", "symfunction ")))
    assert [f.describe() for f in a.sfset.functions] == [f.describe() for f in b.sfset.functions]


def test_defaults(tmp_path):
    text = "elements H\ncutoff_type 1\nsymfunction_short H 2 H 0.1 0 5\n"
    s = read_quiet(write(tmp_path, text))
    assert (s.scale_min, s.scale_max, s.cutoff_alpha, s.scaling) == (0.0, 1.0, 0.0, "none")
    assert not s.use_short_forces and not s.normalize


def test_normalization(tmp_path):
    s = read_quiet(write(tmp_path, "mean_energy -2.5\nconv_energy 240\nconv_length 5.8\n" + BASE))
    assert s.normalize and (s.mean_energy, s.conv_energy, s.conv_length) == (-2.5, 240.0, 5.8)


def test_to_dict_from_dict(tmp_path):
    with pytest.warns(UserWarning):
        s = read_settings(write(tmp_path, "conv_length 2\nmean_energy 0\nconv_energy 3\nfoo\n" + BASE))
    d = json.loads(json.dumps(s.to_dict()))
    back = Settings.from_dict(d)
    assert back == s
    assert back.sfset.by_element == s.sfset.by_element


def test_unknown_keyword_warns_once(tmp_path):
    text = BASE + "mystery_keyword 1\nmystery_keyword 2\nepochs 10\nkalman_q0 0.01\n"
    p = write(tmp_path, text)
    with pytest.warns(UserWarning, match=re.escape(f"{p}:15: unknown keyword 'mystery_keyword'")) as rec:
        s = read_settings(p)
    assert len([w for w in rec if "mystery_keyword" in str(w.message)]) == 1
    assert len(rec) == 1                                    # epochs and kalman_q0 are known
    assert s.warnings == [f"{p}:15: unknown keyword 'mystery_keyword' ignored"]
    assert {"epochs", "global_nodes_short", "atom_energy", "random_seed"} <= IGNORED_KEYWORDS


def test_duplicate_sf_warns_and_keeps_both(tmp_path):
    p = write(tmp_path, with_line("symfunction_short H 2 H 0.010 0 12"))
    with pytest.warns(UserWarning, match="identical to the one at line 12"):
        s = read_settings(p)
    assert s.sfset.n_sf("H") == 3
    assert len(s.warnings) == 1 and f"{p}:15:" in s.warnings[0]


def test_swapped_angular_duplicate_is_detected(tmp_path):
    p = write(tmp_path, with_line("symfunction_short H 3 H O 0.01 1.0 4.0 12.0"))
    with pytest.warns(UserWarning, match="identical to the one at line 13"):
        read_settings(p)


# ----------------------------------------------------------------------------
# Errors in symfunction_short lines
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("line, fragment", [
    ("H 2 H 0.1 0.0", r"type 2 takes 4 values after the type \(<ec> 2 <e1> <eta> <rs> <rc>\), found 3"),
    ("H 2 H 0.1 0.0 1 2", r"type 2 takes 4 values .*found 5"),
    ("H 3 H O 0.1 1 1", r"type 3 takes 6 or 7 values .*found 5"),
    ("H 9 H O 0.1 1 1 6 0 0", r"type 9 takes 6 or 7 values .*found 8"),
    ("H 12 0.1 0.0", r"type 12 takes 3 values .*found 2"),
    ("H 13 0.1 0.0 1 1", r"type 13 takes 5 values .*found 4"),
    ("H 20 H 0 6", r"type 20 takes 4 values .*found 3"),
    ("H 21 H O 0 6 0 180", r"type 21 takes 7 values .*found 6"),
    ("H 23 0 6", r"type 23 takes 3 values .*found 2"),
    ("H 24 0 6 0 180", r"type 24 takes 5 values .*found 4"),
    ("H", r"'symfunction_short' needs at least <ec> <type>, found 1"),
    ("H 4 H 0.1 0 6", r"unknown symmetry function type 4; supported types: 2, 3, 9, 12, 13, 20"),
    ("H 2.0 H 0.1 0 6", r"found '2.0' in column 3 \(type\), expected an integer"),
    ("H 20 H 0 6 p5", r"unknown subtype 'p5' \(column 7\); expected p1, p2, p3, p4 \(polynomials\), "
                      r"p1a, p2a, p3a, p4a \(asymmetric\) or e"),
    ("H 20 H 0 6 p2x", r"unknown subtype 'p2x'"),
    ("H 20 H 0 6 exyz", r"unknown subtype 'exyz'"),
    ("H 20 H 0 6 P2", r"unknown subtype 'P2'"),
    ("C 2 H 0.1 0 6", r"central element 'C' \(column 2\) is not declared in 'elements' \(H O\)"),
    ("H 2 N 0.1 0 6", r"neighbour element 'N' \(column 4\) is not declared in 'elements'"),
    ("H 3 H Xx 0.1 1 1 6", r"neighbour element 'Xx' \(column 5\) is not declared"),
    ("H 2 H 0.1 0 0", r"cutoff radius rc = 0 must be > 0"),
    ("H 12 0.1 0 -3", r"cutoff radius rc = -3 must be > 0"),
    ("H 20 H 6 6 p2", r"rl = 6 must be smaller than rc = 6"),
    ("H 23 7 6 p2", r"rl = 7 must be smaller than rc = 6"),
    ("H 2 H -0.1 0 6", r"eta = -0.1 must be >= 0"),
    ("H 13 -1 0 1 1 6", r"eta = -1 must be >= 0"),
    ("H 3 H O 0.1 1 0 6", r"zeta = 0 makes the angular factor .*n2p2 accepts it but writes NaN"),
    ("H 13 0.1 0 1 0 6", r"zeta = 0 makes the angular factor"),
    ("H 21 H O 0 6 90 90 p2", r"angleLeft = 90 must be smaller than angleRight = 90"),
    ("H 25 0 6 120 60 p2", r"angleLeft = 120 must be smaller than angleRight = 60"),
    ("H 22 H O 0 6 -90 300 p2", r"the angle window \(-90, 300\) reaches outside \[0, 180\] degrees, "
                                r"so its centre \(105\) must be 0 or 180"),
    ("H 22 H O 0 6 -181 181 p2", r"the angle window \(-181, 181\) .* within \[-180, 360\]"),
    ("H 21 H O 0 6 200 300 p2", r"the angle window \(200, 300\) reaches outside"),
    ("H 2 H abc 0 6", r"found 'abc' in column 5 \(eta\), expected a number"),
    ("H 3 H O 0.1 1 1 6 x", r"found 'x' in column 10 \(rs\), expected a number"),
    ("H 2 H 0.1 0 inf", r"found 'inf' in column 7 \(rc\), expected a finite number"),
])
def test_sf_errors(tmp_path, line, fragment):
    p = write(tmp_path, with_line("symfunction_short " + line))
    with expect(p, SF_LINE + 1, fragment):
        read_settings(p)


# ----------------------------------------------------------------------------
# Errors in other keywords
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("old, new, line, fragment", [
    ("cutoff_type 2 0.1", "cutoff_type 2 1.0", 4, r"cutoff alpha 1 must be in \[0, 1\)"),
    ("cutoff_type 2 0.1", "cutoff_type 2 -0.1", 4, r"cutoff alpha -0.1 must be in \[0, 1\)"),
    ("cutoff_type 2 0.1", "cutoff_type 9", 4, r"cutoff_type 9 is not one of 0-8"),
    ("cutoff_type 2 0.1", "cutoff_type -1", 4, r"cutoff_type -1 is not one of 0-8"),
    ("cutoff_type 2 0.1", "cutoff_type tanh", 4, r"found 'tanh' in column 2 \(T\), expected an integer"),
    ("cutoff_type 2 0.1", "cutoff_type 2 0.1 3", 4, r"'cutoff_type' takes 1 or 2 values \(T \[alpha\]\), found 3"),
    ("cutoff_type 2 0.1", "cutoff_type 2 a", 4, r"found 'a' in column 3 \(alpha\), expected a number"),
    ("number_of_elements 2", "number_of_elements 3", 2,
     r"number_of_elements is 3 but 'elements' \(line 3\) lists 2: O H"),
    ("number_of_elements 2", "number_of_elements two", 2, r"found 'two' in column 2 \(N\), expected an integer"),
    ("number_of_elements 2", "number_of_elements 2 3", 2, r"'number_of_elements' takes 1 value\(s\) \(N\), found 2"),
    ("elements O H", "elements O Hx", 3, r"'Hx' \(column 3\) is not a chemical element symbol"),
    ("elements O H", "elements O H O", 3, r"'elements' lists an element twice: O H O"),
    ("elements O H", "elements", 3, r"'elements' needs at least one element symbol"),
    ("scale_min_short -1.0", "scale_min_short", 7, r"'scale_min_short' takes 1 value\(s\) \(value\), found 0"),
    ("scale_max_short 1.0", "scale_max_short -1.0", 8,
     r"scale_max_short \(-1\) must be larger than scale_min_short \(-1\)"),
    ("scale_max_short 1.0", "scale_max_short x", 8, r"found 'x' in column 2 \(scale_max_short\)"),
    ("use_short_forces", "use_short_forces\ncutoff_type 1", 10, r"keyword 'cutoff_type' appears again \(first at line 4\)"),
])
def test_keyword_errors(tmp_path, old, new, line, fragment):
    assert old in BASE
    p = write(tmp_path, BASE.replace(old, new))
    with expect(p, line, fragment):
        read_settings(p)


@pytest.mark.parametrize("present, missing", [
    (["mean_energy 1"], "conv_energy, conv_length"),
    (["conv_length 2", "conv_energy 3"], "mean_energy"),
])
def test_partial_normalization(tmp_path, present, missing):
    p = write(tmp_path, "\n".join(present) + "\n" + BASE)
    with expect(p, 1, f"normalisation needs all of mean_energy, conv_energy and conv_length; "
                      f"missing: {missing}"):
        read_settings(p)


def test_non_positive_conv_length(tmp_path):
    p = write(tmp_path, "mean_energy 0\nconv_energy 1\nconv_length 0\n" + BASE)
    with expect(p, 3, "conv_length = 0 must be > 0"):
        read_settings(p)


def test_missing_elements(tmp_path):
    p = write(tmp_path, BASE.replace("elements O H", ""))
    with expect(p, None, "missing keyword 'elements'"):
        read_settings(p)


def test_missing_cutoff_type(tmp_path):
    p = write(tmp_path, BASE.replace("cutoff_type 2 0.1", ""))
    with expect(p, None, "missing keyword 'cutoff_type'"):
        read_settings(p)


def test_element_without_symmetry_functions(tmp_path):
    p = write(tmp_path, BASE.replace("symfunction_short O 2 H 0.01 0.0 12.0\n", ""))
    with expect(p, 3, "element O has no 'symfunction_short' lines"):
        read_settings(p)


# ----------------------------------------------------------------------------
# Reference input.nn files (read in place)
# ----------------------------------------------------------------------------
CASES = ["H2O_RPBE-D3", "H2O_smallbox", "H2O_wide_poly2_sigma", "H2O_weighted_cos_center",
         "H2O_polynomial", "LJ", "CG_water_inputs_only", "Cu2S_PBE_inputs_only"]
MODES = {"ST_NONE": "none", "ST_SCALE": "scale", "ST_CENTER": "center",
         "ST_SCALECENTER": "scalecenter", "ST_SCALESIGMA": "sigma"}


def readme_sf_tables(text):
    """{element: [(type, e1/e2 symbols, input.nn line), ...]} from the 'SF order' block."""
    tables, current = {}, None
    for raw in text.splitlines():
        m = re.match(r"Short range atomic symmetry functions element\s+(\w+)\s*:", raw)
        if m:
            current = m.group(1)
            tables[current] = []
            continue
        toks = raw.split()
        if current and len(toks) > 5 and toks[0].isdigit() and toks[1] == current:
            rest = toks[4:]
            elements = []
            while rest and rest[0].isalpha():
                elements.append(rest.pop(0))
            assert int(toks[0]) == len(tables[current]) + 1
            tables[current].append((int(toks[2]), tuple(elements), int(toks[-1])))
    return tables


def readme_type_counts(text):
    """{element: (total, {type: count})} from 'SF types and counts per element: ...'."""
    line = re.search(r"SF types and counts per element: (.*)", text).group(1)
    out = {}
    for part in line.split(";"):
        m = re.match(r"\s*(\w+): (\d+) \((.*)\)\.?\s*$", part)
        if not m:
            continue
        counts = {int(t): int(n) for n, t in re.findall(r"(\d+) x type (\d+)", m.group(3))}
        for n, types in re.findall(r"(\d+) each of types ([\d, ]+)", m.group(3)):
            counts.update({int(t): int(n) for t in types.replace(",", " ").split()})
        if not counts:                                    # e.g. "Ne: 5 (type 2, eta = 1 ...)"
            counts = {int(re.match(r"type (\d+)", m.group(3)).group(1)): int(m.group(2))}
        out[m.group(1)] = (int(m.group(2)), counts)
    return out


@pytest.mark.parametrize("case", CASES)
def test_reference_settings(reference_dir, case):
    text = (reference_dir / case / "README.md").read_text()
    s = read_quiet(reference_dir / case / "input.nn")

    order = re.search(r"Elements, in atomic-number order[^:]*: ([^.]*)\.", text).group(1)
    assert s.elements == [e.strip() for e in order.split(",")]
    m = re.search(r"`cutoff_type`: CT_\w+ \((\d)\), alpha = (\d+\.\d+)", text)
    assert (s.cutoff_type, s.cutoff_alpha) == (int(m.group(1)), float(m.group(2)))
    m = re.search(r"Scaling: (ST_\w+)", text)
    assert s.scaling == MODES[m.group(1)]
    m = re.search(r"Smin = (-?\d+\.\d+), Smax = (-?\d+\.\d+)", text)
    if m:
        assert (s.scale_min, s.scale_max) == (float(m.group(1)), float(m.group(2)))
    m = re.search(r"Normalization: (yes|no)", text)
    assert s.normalize == (m.group(1) == "yes")
    if s.normalize:
        assert s.conv_length == float(re.search(r"conv_length = ([-\dE.+]+)", text).group(1))
    assert s.use_short_forces

    counts = readme_type_counts(text)
    assert sorted(counts) == sorted(s.elements)
    for e, (total, per_type) in counts.items():
        sfs = s.sfset.by_element[e]
        assert len(sfs) == total, e
        assert {t: sum(sf.type == t for sf in sfs) for t in per_type} == per_type, e


@pytest.mark.parametrize("case", [c for c in CASES if not c.endswith("_inputs_only")])
def test_reference_sf_order(reference_dir, case):
    """Our sorted SFs, identified by their input.nn line, follow n2p2's logged order."""
    tables = readme_sf_tables((reference_dir / case / "README.md").read_text())
    s = read_quiet(reference_dir / case / "input.nn")
    assert sorted(tables) == sorted(s.elements)
    for e, rows in tables.items():
        ours = [(sf.type, tuple(x for x in (sf.e1, sf.e2) if x), sf.line)
                for sf in s.sfset.by_element[e]]
        assert ours == rows, f"{case} element {e}"
