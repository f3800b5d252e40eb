"""Tests of distatomenv.io.scaling (n2p2 scaling.data and the scaling maps)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from distatomenv.descriptors.symfuncs import SymmetryFunction, SymmetryFunctionSet
from distatomenv.errors import ScalingFileError
from distatomenv.io.scaling import SCALING_MODES, ScalingTable, read_scaling, write_scaling
from distatomenv.io.settings import read_settings


def small_sfset():
    """H: 2 SFs, O: 3 SFs."""
    functions = [SymmetryFunction("H", 2, e1="H", eta=0.1, rc=6.0),
                 SymmetryFunction("H", 2, e1="O", eta=0.1, rc=6.0),
                 SymmetryFunction("O", 2, e1="H", eta=0.1, rc=6.0),
                 SymmetryFunction("O", 2, e1="O", eta=0.1, rc=6.0),
                 SymmetryFunction("O", 2, e1="O", eta=0.5, rc=6.0)]
    return SymmetryFunctionSet(["O", "H"], functions, cutoff_type=2)


ROWS = [  # e_index sf_index min max mean sigma
    (1, 1, 0.5, 2.5, 1.0, 0.25),
    (1, 2, -1.0, 3.0, 0.0, 1.0),
    (2, 1, 1.0, 1.0, 1.0, 0.0),          # degenerate: max == min, sigma == 0
    (2, 2, 0.0, 4.0, 2.0, 0.5),
    (2, 3, 1e-3, 2e-3, 1.5e-3, 1e-4),
]


def text_of(rows, header="# comment\n#  e_index   sf_index\n"):
    return header + "".join(" ".join(map(str, r)) + "\n" for r in rows)


def write(tmp_path, text, name="scaling.data"):
    p = tmp_path / name
    p.write_text(text)
    return p


def expect(path, line, fragment):
    where = re.escape(str(path)) + (f":{line}: " if line is not None else ": ")
    return pytest.raises(ScalingFileError, match=where + ".*" + fragment)


def small_table(tmp_path):
    return read_scaling(write(tmp_path, text_of(ROWS), name="small.data"), small_sfset())


# ----------------------------------------------------------------------------
# Reading and writing
# ----------------------------------------------------------------------------
def test_read_small(tmp_path):
    t = read_scaling(write(tmp_path, text_of(ROWS)), small_sfset())
    assert t.elements == ["H", "O"]
    np.testing.assert_array_equal(t.min["H"], [0.5, -1.0])
    np.testing.assert_array_equal(t.max["O"], [1.0, 4.0, 2e-3])
    np.testing.assert_array_equal(t.mean["O"], [1.0, 2.0, 1.5e-3])
    np.testing.assert_array_equal(t.sigma["H"], [0.25, 1.0])
    assert t.n_sf("H") == 2 and t.n_sf("O") == 3
    assert t.min["H"].dtype == np.float64


def test_read_tolerates_blank_lines_comments_and_any_order(tmp_path):
    text = "\n#x\n" + text_of(ROWS[::-1], header="   # indented comment\n\n") + "\r\n\n"
    t = read_scaling(write(tmp_path, text), small_sfset())
    assert t.to_dict() == small_table(tmp_path).to_dict()


def test_round_trip_is_bit_identical(tmp_path):
    rng = np.random.default_rng(3)
    sfset = small_sfset()
    stats = {s: {e: rng.normal(size=sfset.n_sf(e)) * 10.0 ** rng.integers(-200, 200, sfset.n_sf(e))
                 for e in sfset.elements} for s in ("min", "mean")}
    table = ScalingTable(
        elements=sfset.elements, min=stats["min"], mean=stats["mean"],
        max={e: stats["min"][e] + np.abs(rng.normal(size=sfset.n_sf(e))) for e in sfset.elements},
        sigma={e: np.abs(rng.normal(size=sfset.n_sf(e))) for e in sfset.elements})
    p = tmp_path / "out.data"
    write_scaling(p, table, sfset)
    back = read_scaling(p, sfset)
    for stat in ("min", "max", "mean", "sigma"):
        for e in sfset.elements:
            a, b = getattr(table, stat)[e], getattr(back, stat)[e]
            assert (a.view(np.int64) == b.view(np.int64)).all(), (stat, e)


def test_written_format(tmp_path):
    p = tmp_path / "out.data"
    write_scaling(p, small_table(tmp_path), small_sfset())
    lines = p.read_text().splitlines()
    data = [ln for ln in lines if not ln.startswith("#")]
    assert len(data) == 5
    assert data[0] == ("         1          1   5.0000000000000000E-01   2.5000000000000000E+00"
                       "   1.0000000000000000E+00   2.5000000000000000E-01")
    assert data[1].startswith("         1          2  -1.0000000000000000E+00")
    assert lines[0].startswith("#") and all(ln.startswith("#") for ln in lines[:len(lines) - 5])
    assert any(ln.startswith("#        1          2                        3") for ln in lines)
    assert any(ln.split() == ["#", "e_index", "sf_index", "sf_min", "sf_max", "sf_mean", "sf_sigma"]
               for ln in lines)


def test_write_checks_table_against_sfset(tmp_path):
    table = small_table(tmp_path)
    other = SymmetryFunctionSet(["H"], [SymmetryFunction("H", 2, e1="H", eta=1.0, rc=5.0)])
    with pytest.raises(ValueError, match=r"elements \['H', 'O'\] do not match the SF set \['H'\]"):
        write_scaling(tmp_path / "x", table, other)
    bigger = small_sfset()
    bigger = SymmetryFunctionSet(bigger.elements, bigger.functions +
                                 [SymmetryFunction("H", 2, e1="H", eta=9.0, rc=6.0)])
    with pytest.raises(ValueError, match="scaling table has 2 SFs for H, the SF set 3"):
        write_scaling(tmp_path / "x", table, bigger)


def test_table_validation_and_dict_round_trip(tmp_path):
    t = small_table(tmp_path)
    back = ScalingTable.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back.to_dict() == t.to_dict()
    with pytest.raises(ValueError, match=r"ScalingTable.max has elements \['H'\], expected \['H', 'O'\]"):
        ScalingTable(["H", "O"], min=t.min, max={"H": t.max["H"]}, mean=t.mean, sigma=t.sigma)
    with pytest.raises(ValueError, match="min/max/mean/sigma of O differ in length"):
        ScalingTable(["H", "O"], min=t.min, max=t.max, mean={**t.mean, "O": [1.0]}, sigma=t.sigma)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------
def line_of(k):
    return k + 3    # two header lines, rows from line 3


@pytest.mark.parametrize("k, new, fragment", [
    (1, "1 2 -1.0 3.0 0.0", r"found 5 columns, expected 6 \(e_index sf_index sf_min"),
    (1, "1 2 -1.0 3.0 0.0 1.0 7", r"found 7 columns, expected 6"),
    (1, "1 2 -1.0 abc 0.0 1.0", r"found 'abc' in column 4 \(sf_max\), expected a number"),
    (1, "1 2 nan 3.0 0.0 1.0", r"found 'nan' in column 3 \(sf_min\), expected a finite number"),
    (1, "1 2 -1.0 inf 0.0 1.0", r"found sf_min -1.0, sf_max inf: an infinite value is only allowed "
                                r"in a row of an element without atoms"),
    (1, "1 2 -1.0 3.0 inf 1.0", r"found 'inf' in column 5 \(sf_mean\), expected a finite number"),
    (1, "1.0 2 -1.0 3.0 0.0 1.0", r"found '1.0' in column 1 \(e_index\), expected an integer"),
    (1, "1 b -1.0 3.0 0.0 1.0", r"found 'b' in column 2 \(sf_index\), expected an integer"),
    (1, "0 2 -1.0 3.0 0.0 1.0", r"e_index 0 out of range 1..2 \(elements H O\)"),
    (1, "3 2 -1.0 3.0 0.0 1.0", r"e_index 3 out of range 1..2"),
    (1, "1 3 -1.0 3.0 0.0 1.0", r"sf_index 3 out of range 1..2 for element H"),
    (4, "2 0 1e-3 2e-3 1.5e-3 1e-4", r"sf_index 0 out of range 1..3 for element O"),
    (1, "1 1 -1.0 3.0 0.0 1.0", r"duplicate row for element H sf_index 1 \(first at line 3\)"),
    (1, "1 2 3.0 -1.0 0.0 1.0", r"sf_max -1.0 is smaller than sf_min 3.0"),
    (1, "1 2 -1.0 3.0 0.0 -1.0", r"sf_sigma -1.0 is negative"),
])
def test_row_errors(tmp_path, k, new, fragment):
    rows = [" ".join(map(str, r)) for r in ROWS]
    rows[k] = new
    p = write(tmp_path, "# comment\n#  e_index   sf_index\n" + "\n".join(rows) + "\n")
    with expect(p, line_of(k), fragment):
        read_scaling(p, small_sfset())


def test_missing_rows(tmp_path):
    p = write(tmp_path, text_of(ROWS[:2] + ROWS[3:4]))
    with expect(p, None, r"element O \(e_index 2\): expected 3 rows, found 1; missing sf_index 1, 3"):
        read_scaling(p, small_sfset())


def test_missing_element_and_empty_file(tmp_path):
    p = write(tmp_path, text_of(ROWS[2:]))
    with expect(p, None, r"element H \(e_index 1\): expected 2 rows, found 0; missing sf_index 1, 2"):
        read_scaling(p, small_sfset())
    p = write(tmp_path, "", name="empty.data")
    with expect(p, None, "element H .*found 0"):
        read_scaling(p, small_sfset())


def test_many_missing_rows_are_abbreviated(tmp_path):
    sfset = SymmetryFunctionSet(["H"], [SymmetryFunction("H", 2, e1="H", eta=0.1 * k, rc=6.0)
                                        for k in range(1, 13)])
    p = write(tmp_path, "1 12 0 1 0.5 0.1\n")
    with expect(p, None, r"expected 12 rows, found 1; missing sf_index 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, \.\.\."):
        read_scaling(p, sfset)


# ----------------------------------------------------------------------------
# Scaling maps
# ----------------------------------------------------------------------------
def test_coefficients_follow_the_formulas(tmp_path):
    t = small_table(tmp_path)
    rng = np.random.default_rng(1)
    G = rng.normal(size=(7, 2))
    gmin, gmax, gmean, gsig = t.min["H"], t.max["H"], t.mean["H"], t.sigma["H"]
    smin, smax = -1.0, 2.0
    expected = {
        "none": (G, np.ones(2)),
        "scale": (smin + (smax - smin) * (G - gmin) / (gmax - gmin), (smax - smin) / (gmax - gmin)),
        "center": (G - gmean, np.ones(2)),
        "scalecenter": (smin + (smax - smin) * (G - gmean) / (gmax - gmin), (smax - smin) / (gmax - gmin)),
        "sigma": (smin + (smax - smin) * (G - gmean) / gsig, (smax - smin) / gsig),
    }
    assert set(expected) == set(SCALING_MODES)
    for mode, (gs, factor) in expected.items():
        np.testing.assert_allclose(t.apply("H", G, mode, smin, smax), gs, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(t.factor("H", mode, smin, smax), factor, rtol=1e-15)
        shift, fac, offset = t.coefficients("H", mode, smin, smax)
        assert shift.shape == fac.shape == offset.shape == (2,)
        np.testing.assert_allclose((G - shift) * fac + offset, gs, rtol=1e-14, atol=1e-14)
    # default target range [0, 1]
    np.testing.assert_allclose(t.apply("H", G, "scale"), (G - gmin) / (gmax - gmin), rtol=1e-14)


def test_scaling_does_not_modify_the_table(tmp_path):
    t = small_table(tmp_path)
    before = t.to_dict()
    for mode in SCALING_MODES:
        shift, factor, offset = t.coefficients("O", mode)
        shift += 1.0
        factor *= 2.0
    assert t.to_dict() == before


@pytest.mark.parametrize("mode", ["scale", "scalecenter", "sigma"])
def test_degenerate_sf_uses_factor_one(tmp_path, mode):
    """O SF 1 has max == min and sigma == 0: factor 1 instead of infinity."""
    t = small_table(tmp_path)
    factor = t.factor("O", mode, 0.0, 1.0)
    assert factor[0] == 1.0 and np.isfinite(factor).all()
    G = np.array([[1.0, 2.0, 1.5e-3], [1.25, 2.0, 1.5e-3]])
    gs = t.apply("O", G, mode)
    assert gs[0, 0] == 0.0                 # exactly Smin on the table's data ...
    assert gs[1, 0] == 0.25                # ... and still informative elsewhere
    assert np.isfinite(gs).all()


def test_scaling_argument_errors(tmp_path):
    t = small_table(tmp_path)
    with pytest.raises(ValueError, match="unknown scaling mode 'minmax'"):
        t.coefficients("H", "minmax")
    with pytest.raises(ValueError, match=r"G has shape \(4, 3\); its last axis must have 2 SFs of H"):
        t.apply("H", np.zeros((4, 3)), "scale")


# ----------------------------------------------------------------------------
# Reference scaling.data files (read in place)
# ----------------------------------------------------------------------------
CASES = ["H2O_RPBE-D3", "H2O_smallbox", "H2O_wide_poly2_sigma", "H2O_weighted_cos_center",
         "H2O_polynomial", "LJ", "CG_water_inputs_only", "Cu2S_PBE_inputs_only"]


def scaling_files(reference_dir, case):
    files = [reference_dir / case / "scaling.data"]
    expected = reference_dir / case / "expected" / "scaling.data"
    return files + ([expected] if expected.exists() else [])


@pytest.mark.parametrize("case", CASES)
def test_reference_scaling(reference_dir, case, tmp_path):
    sfset = read_settings(reference_dir / case / "input.nn").sfset
    for path in scaling_files(reference_dir, case):
        table = read_scaling(path, sfset)
        raw = np.loadtxt(path, comments="#")
        for ei, e in enumerate(sfset.elements, start=1):
            rows = raw[raw[:, 0] == ei]
            np.testing.assert_array_equal(rows[:, 1], np.arange(1, sfset.n_sf(e) + 1))
            for k, stat in enumerate(("min", "max", "mean", "sigma"), start=2):
                np.testing.assert_array_equal(getattr(table, stat)[e], rows[:, k])
        # our writer reproduces n2p2's data lines byte for byte
        out = tmp_path / "scaling.data"
        write_scaling(out, table, sfset)
        ours = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
        theirs = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        assert ours == theirs
        assert read_scaling(out, sfset).to_dict() == table.to_dict()


@pytest.mark.parametrize("case", [c for c in CASES if c in
                                  ("H2O_wide_poly2_sigma", "H2O_weighted_cos_center",
                                   "H2O_polynomial", "LJ")])
def test_reference_expected_scaling_equals_input(reference_dir, case):
    """The README says expected/scaling.data is identical to the case's input file."""
    sfset = read_settings(reference_dir / case / "input.nn").sfset
    a, b = scaling_files(reference_dir, case)
    assert b.parent.name == "expected"
    assert read_scaling(a, sfset).to_dict() == read_scaling(b, sfset).to_dict()


# ----------------------------------------------------------------------------
# Degenerate rows as nnp-scaling writes them (issue 13)
# ----------------------------------------------------------------------------
NO_ATOMS_ROW = "         2          {}  1.7976931348623157E+308 -1.7976931348623157E+308" \
               "                     -NAN                     -NAN"


def test_degenerate_rows_read_and_written_as_n2p2(tmp_path):
    """An element without atoms: +-DBL_MAX and -NAN; one atom: sigma -NAN.
    They are read (n2p2 reads them too) and written back byte for byte."""
    from distatomenv.io.scaling import NO_ATOMS
    rows = ["         1          1   5.0000000000000000E-01   5.0000000000000000E-01"
            "   5.0000000000000000E-01                     -NAN",
            "         1          2  -1.0000000000000000E+00   3.0000000000000000E+00"
            "   0.0000000000000000E+00   1.0000000000000000E+00"]
    rows += [NO_ATOMS_ROW.format(k) for k in (1, 2, 3)]
    p = write(tmp_path, "".join(r + "\n" for r in rows))
    t = read_scaling(p, small_sfset())
    assert np.isnan(t.sigma["H"][0]) and t.sigma["H"][1] == 1.0
    assert (t.min["O"] == NO_ATOMS[0]).all() and (t.max["O"] == NO_ATOMS[1]).all()
    assert np.isnan(t.mean["O"]).all() and t.absent() == ["O"]
    out = tmp_path / "out.data"
    write_scaling(out, t, small_sfset())
    written = [ln.rstrip("\n") for ln in open(out) if not ln.startswith("#")]
    assert written == rows
    # such rows scale to something finite (factor 1), never to NaN or INF
    for mode in SCALING_MODES:
        shift, factor, offset = t.coefficients("H", mode)
        assert np.isfinite(factor).all()


def test_from_moments_gives_n2p2s_degenerate_rows():
    from distatomenv.io.scaling import NO_ATOMS
    n = {"H": 0, "O": 1}
    z = {"H": np.zeros(2), "O": np.zeros(3)}
    v = {"H": np.zeros(2), "O": np.array([1.0, 2.0, 3.0])}
    t = ScalingTable.from_moments(["H", "O"], n, v, v, v, z)
    assert (t.min["H"] == NO_ATOMS[0]).all() and (t.max["H"] == NO_ATOMS[1]).all()
    assert np.isnan(t.mean["H"]).all() and np.isnan(t.sigma["H"]).all()
    assert np.isnan(t.sigma["O"]).all() and (t.mean["O"] == [1, 2, 3]).all()
    t2 = ScalingTable.from_moments(["H", "O"], {"H": 3, "O": 3}, v, v, v,
                                   {"H": np.array([2.0, 8.0]), "O": np.zeros(3)})
    np.testing.assert_array_equal(t2.sigma["H"], [1.0, 2.0])      # sample sigma, N - 1


def test_no_atoms_row_for_an_element_the_data_has(tmp_path):
    """A scaling.data made from data without O, used with data that has O:
    refused before anything is computed (n2p2 would scale O with 1.8e308)."""
    import distatomenv
    d = tmp_path
    (d / "input.nn").write_text("elements H O\ncutoff_type 2\nscale_symmetry_functions\n"
                                "symfunction_short H 2 H 0.1 0 6\nsymfunction_short H 2 O 0.1 0 6\n"
                                "symfunction_short O 2 H 0.1 0 6\nsymfunction_short O 2 O 0.1 0 6\n"
                                "symfunction_short O 2 O 0.5 0 6\n")
    (d / "input.data").write_text("begin\natom 0 0 0 H 0 0 0 0 0\natom 1 0 0 O 0 0 0 0 0\n"
                                  "energy 0\ncharge 0\nend\n")
    rows = ["1 1 0.5 2.5 1.0 0.25", "1 2 -1.0 3.0 0.0 1.0"] + \
        [NO_ATOMS_ROW.format(k) for k in (1, 2, 3)]
    (d / "scaling.data").write_text("\n".join(rows) + "\n")
    with pytest.raises(
            ScalingFileError, match=r"scaling.data: the rows of element O say it has no atoms .* "
                                    r"but the data has 1 O atom\(s\)"):
        distatomenv.compute(d / "input.data", neighbors="0 0 0 0", out=d / "s.zarr")
