"""Tests of distatomenv.io.inputdata, io.index and io.structure (n2p2 input.data)."""
from __future__ import annotations

import hashlib
import io
import math
import re

import numpy as np
import pytest

from distatomenv.errors import DataFileError, FileAccessError
from distatomenv.io.index import file_digest, index_data
from distatomenv.io.inputdata import count_newlines, index_file, read_structure, read_structures, write_structures
from distatomenv.io.structure import DataIndex, Structure

HO = ["H", "O"]

RECORD = """\
begin
comment test structure
lattice 10.0 0.0 0.0
lattice 0.0 10.0 0.0
lattice 0.0 0.0 10.0
atom 1.0 2.0 3.0 H 0.1 0.2 0.3 0.4 0.5
atom 4.0 5.0 6.0 O -0.1 -0.2 -0.3 -0.4 -0.5
atom 7.0 8.0 9.0 H 0.0 0.0 1.0E+00 2.5e-3 -3
energy -1.5
charge 0.0
end
"""


def write(tmp_path, text, name="input.data"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def expect(path, line, fragment):
    """pytest.raises context matching 'FILE:LINE: ...fragment...'."""
    where = re.escape(str(path)) + (f":{line}: " if line is not None else ": ")
    return pytest.raises(DataFileError, match=where + ".*" + fragment)


def all_index_fields_equal(a: DataIndex, b: DataIndex):
    for name in ("offset", "nbytes", "line", "natoms", "counts", "periodic", "energy", "charge"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.lattice, b.lattice)    # NaN == NaN here
    assert a.elements == b.elements and a.file_size == b.file_size and a.path == b.path


# ----------------------------------------------------------------------------
# Reading valid files
# ----------------------------------------------------------------------------
def test_index_and_read_one_record(tmp_path):
    p = write(tmp_path, RECORD)
    idx = index_file(p, HO)
    assert idx.n_structures == 1 and idx.n_atoms == 3
    assert idx.counts.tolist() == [[2, 1]]
    assert idx.offset.tolist() == [0] and idx.nbytes.tolist() == [len(RECORD)]
    assert idx.line.tolist() == [1] and idx.periodic.tolist() == [True]
    np.testing.assert_array_equal(idx.lattice[0], 10.0 * np.eye(3))
    assert idx.energy.tolist() == [-1.5] and idx.charge.tolist() == [0.0]
    assert idx.sha256 == hashlib.sha256(RECORD.encode()).hexdigest()
    assert idx.elements == HO and idx.file_size == len(RECORD)

    s = read_structure(p, idx, 0)
    assert (s.index, s.line, s.natoms, s.periodic) == (0, 1, 3, True)
    assert s.comment == "test structure" and s.path == str(p)
    assert s.elements.tolist() == ["H", "O", "H"]
    np.testing.assert_array_equal(s.positions, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    np.testing.assert_array_equal(s.charges, [0.1, -0.1, 0.0])
    np.testing.assert_array_equal(s.atom_energies, [0.2, -0.2, 0.0])
    np.testing.assert_array_equal(s.forces, [[0.3, 0.4, 0.5], [-0.3, -0.4, -0.5], [1.0, 2.5e-3, -3.0]])
    assert s.positions.dtype == np.float64 and s.positions.flags.c_contiguous
    assert s.energy == -1.5 and s.charge == 0.0


def test_tolerant_syntax(tmp_path):
    """Indented keywords, CRLF, tabs, blank lines anywhere, comment anywhere."""
    text = ("\r\n \r\n begin\r\n\r\n\tlattice\t10 0 0\r\n  lattice 0 10 0\r\n"
            "lattice 0 0 10\r\n\r\n atom 1 2 3 O 0 0 0 0 0\r\n"
            "energy 2.0\r\ncomment late   comment  \r\n\t end \r\n\r\n"
            "begin\natom 0 0 0 H 0 0 0 0 0\natom 1 0 0 H 0 0 0 0 0\nend")   # no final newline
    p = write(tmp_path, text)
    idx = index_file(p, HO)
    assert idx.n_structures == 2
    assert idx.line.tolist() == [3, 14]
    assert idx.counts.tolist() == [[0, 1], [2, 0]]
    assert idx.periodic.tolist() == [True, False]
    raw = p.read_bytes()
    assert raw[idx.offset[0]:].startswith(b" begin")
    assert raw[idx.offset[0]:idx.offset[0] + idx.nbytes[0]].endswith(b"\t end \r\n")
    assert idx.offset[1] + idx.nbytes[1] == len(raw)
    s0, s1 = read_structure(p, idx, 0), read_structure(p, idx, -1)
    assert s0.comment == "late   comment" and s0.energy == 2.0
    assert s1.index == 1 and s1.lattice is None and math.isnan(s1.energy) and s1.charge == 0.0
    assert np.isnan(idx.lattice[1]).all() and np.isnan(idx.energy[1])


def test_multiple_comments_are_joined(tmp_path):
    p = write(tmp_path, "begin\ncomment one\natom 0 0 0 H 0 0 0 0 0\ncomment\ncomment two\nend\n")
    assert read_structures(p)[0].comment == "one\n\ntwo"


def test_read_structures_any_element_and_restricted(tmp_path):
    p = write(tmp_path, RECORD + RECORD.replace(" O ", " Cu "))
    structures = read_structures(p)
    assert [s.index for s in structures] == [0, 1]
    assert structures[1].elements.tolist() == ["H", "Cu", "H"]
    assert structures[1].line == 12
    with expect(p, 18, r"element 'Cu' \(column 5\) is not one of the elements of the settings \(H, O\)"):
        read_structures(p, elements=HO)


def test_remapped_positions(tmp_path):
    lattice = np.array([[9.1, 0.0, 0.0], [0.7, 10.3, 0.0], [0.4, -0.9, 11.2]])
    frac = np.array([[0.2, 0.3, 0.4], [-0.048, 0.5, 0.5], [1.0016, 0.1, -1.7], [0.0, 0.0, 0.0]])
    s = Structure(index=0, line=1, comment="", lattice=lattice, positions=frac @ lattice,
                  elements=["H"] * 4, charges=np.zeros(4), atom_energies=np.zeros(4),
                  forces=np.zeros((4, 3)))
    r = s.remapped_positions()
    f = r @ np.linalg.inv(lattice)
    assert ((f >= -1e-12) & (f < 1.0 + 1e-12)).all()
    np.testing.assert_allclose(f, frac - np.floor(frac), atol=1e-12)
    # the shift is a lattice translation
    n = (s.positions - r) @ np.linalg.inv(lattice)
    np.testing.assert_allclose(n, np.round(n), atol=1e-12)
    assert r is not s.positions

    free = Structure(index=0, line=1, comment="", lattice=None, positions=frac,
                     elements=["H"] * 4, charges=np.zeros(4), atom_energies=np.zeros(4),
                     forces=np.zeros((4, 3)))
    r = free.remapped_positions()
    np.testing.assert_array_equal(r, frac)
    r[0, 0] = 99.0
    assert free.positions[0, 0] != 99.0      # a copy


def test_structure_shape_validation():
    good = dict(index=0, line=1, comment="", lattice=None, positions=np.zeros((2, 3)),
                elements=["H", "H"], charges=np.zeros(2), atom_energies=np.zeros(2),
                forces=np.zeros((2, 3)))
    Structure(**good)
    with pytest.raises(ValueError, match=r"positions must have shape \(n, 3\)"):
        Structure(**{**good, "positions": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"forces must have shape \(2, 3\)"):
        Structure(**{**good, "forces": np.zeros((3, 3))})
    with pytest.raises(ValueError, match=r"lattice must have shape \(3, 3\)"):
        Structure(**{**good, "lattice": np.eye(2)})


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------
def random_structures(rng, n_structures=3):
    out = []
    for k in range(n_structures):
        n = int(rng.integers(1, 20))
        scale = 10.0 ** rng.integers(-30, 30, size=(n, 3))
        lattice = None if k == 1 else np.diag(rng.uniform(5, 20, 3)) + rng.normal(0, 0.5, (3, 3))
        out.append(Structure(
            index=k, line=0, comment="" if k == 2 else f"structure {k}\nsecond line",
            lattice=lattice, positions=rng.normal(size=(n, 3)) * 7.0,
            elements=rng.choice(["H", "O"], n), charges=rng.normal(size=n),
            atom_energies=rng.normal(size=n) * 1e-7, forces=rng.normal(size=(n, 3)) * scale,
            energy=math.nan if k == 1 else float(rng.normal() * 1e4),
            charge=float(rng.normal()) if lattice is None else 0.0))
    out[0].forces[0, 0] = -0.0
    out[0].positions[0, 0] = 5e-324          # smallest subnormal
    return out


def test_write_read_round_trip_is_bit_identical(tmp_path):
    rng = np.random.default_rng(7)
    structures = random_structures(rng)
    p = tmp_path / "out.data"
    write_structures(p, structures)
    back = read_structures(p)
    assert len(back) == len(structures)
    for a, b in zip(structures, back):
        for name in ("positions", "charges", "atom_energies", "forces"):
            x, y = getattr(a, name), getattr(b, name)
            assert x.shape == y.shape
            assert (x.view(np.int64) == y.view(np.int64)).all(), name
        assert a.elements.tolist() == b.elements.tolist()
        if a.lattice is None:
            assert b.lattice is None
        else:
            assert (a.lattice.view(np.int64) == b.lattice.view(np.int64)).all()
        assert a.comment == b.comment
        assert (math.isnan(a.energy) and math.isnan(b.energy)) or a.energy == b.energy
        assert a.charge == b.charge
    idx = index_file(p, HO)
    assert idx.natoms.tolist() == [s.natoms for s in structures]


def test_write_format_and_file_object(tmp_path):
    s = read_structures(write(tmp_path, RECORD))[0]
    buf = io.StringIO()
    write_structures(buf, [s])
    lines = buf.getvalue().splitlines()
    assert lines[0] == "begin" and lines[-1] == "end"
    assert lines[1] == "comment test structure"
    assert lines[2] == "lattice   1.0000000000000000E+01   0.0000000000000000E+00   0.0000000000000000E+00"
    assert lines[5].split()[:5] == ["atom", "1.0000000000000000E+00", "2.0000000000000000E+00",
                                    "3.0000000000000000E+00", "H"]
    assert lines[-3] == "energy  -1.5000000000000000E+00"
    assert lines[-2] == "charge   0.0000000000000000E+00"


@pytest.mark.parametrize("attr, value, fragment", [
    ("positions", np.array([[np.nan, 0, 0]] * 3), "positions holds non-finite"),
    ("lattice", np.full((3, 3), np.inf), "lattice holds non-finite"),
    ("charge", math.inf, "charge is not finite"),
])
def test_write_rejects_non_finite(tmp_path, attr, value, fragment):
    s = read_structures(write(tmp_path, RECORD))[0]
    setattr(s, attr, value)
    with pytest.raises(ValueError, match=fragment):
        write_structures(io.StringIO(), [s])


# ----------------------------------------------------------------------------
# Errors: each names the file and the line
# ----------------------------------------------------------------------------
def bad(tmp_path, old, new):
    return write(tmp_path, RECORD.replace(old, new))


def test_error_unknown_keyword(tmp_path):
    p = bad(tmp_path, "energy -1.5", "energie -1.5")
    with expect(p, 9, "unknown keyword 'energie' in a record"):
        index_file(p, HO)


def test_error_too_few_atom_columns(tmp_path):
    p = bad(tmp_path, "atom 4.0 5.0 6.0 O -0.1 -0.2 -0.3 -0.4 -0.5", "atom 4.0 5.0 6.0 O -0.1 -0.2 -0.3 -0.4")
    with expect(p, 7, r"'atom' line has 8 value\(s\), expected 9"):
        index_file(p, HO)


def test_error_too_many_atom_columns(tmp_path):
    p = bad(tmp_path, "-0.4 -0.5", "-0.4 -0.5 7")
    with expect(p, 7, r"'atom' line has 10 value\(s\), expected 9"):
        index_file(p, HO)


@pytest.mark.parametrize("old, new, line, fragment", [
    ("lattice 0.0 10.0 0.0", "lattice 0.0 abc 0.0", 4, r"found 'abc' in column 3 \(ay\), expected a number"),
    ("lattice 0.0 0.0 10.0", "lattice 0.0 0.0", 5, r"'lattice' line has 2 value\(s\), expected 3"),
    ("energy -1.5", "energy 1,5", 9, r"found '1,5' in column 2 \(energy\), expected a number"),
    ("charge 0.0", "charge nan", 10, r"found 'nan' in column 2 \(charge\), expected a finite number"),
])
def test_error_bad_number_at_index_time(tmp_path, old, new, line, fragment):
    p = bad(tmp_path, old, new)
    with expect(p, line, fragment):
        index_file(p, HO)


@pytest.mark.parametrize("new, fragment", [
    ("atom 4.0 abc 6.0 O -0.1 -0.2 -0.3 -0.4 -0.5", r"found 'abc' in column 3 \(y\), expected a number"),
    ("atom 4.0 5.0 6.0 O -0.1 -0.2 -0.3 -0.4 0x1", r"found '0x1' in column 10 \(fz\), expected a number"),
    ("atom 4.0 5.0 6.0 O -0.1 inf -0.3 -0.4 -0.5", r"found 'inf' in column 7 \(energy\), expected a finite"),
    ("atom 4.0 5.0 6.0 O q -0.2 -0.3 -0.4 -0.5", r"found 'q' in column 6 \(charge\), expected a number"),
])
def test_error_bad_atom_number(tmp_path, new, fragment):
    p = bad(tmp_path, "atom 4.0 5.0 6.0 O -0.1 -0.2 -0.3 -0.4 -0.5", new)
    idx = index_file(p, HO)            # atom numbers are not converted by default ...
    with expect(p, 7, fragment):       # ... but reading the structure fails on the real line
        read_structure(p, idx, 0)
    with expect(p, 7, fragment):
        index_file(p, HO, validate_atoms=True)
    with expect(p, 7, fragment):
        read_structures(p)


@pytest.mark.parametrize("keep", [1, 2])
def test_error_one_or_two_lattice_lines(tmp_path, keep):
    lines = RECORD.splitlines(keepends=True)
    text = "".join(lines[:2 + keep] + lines[5:])
    p = write(tmp_path, text)
    with expect(p, 1, f"has {keep} 'lattice' line\\(s\\); n2p2 needs 0 \\(non-periodic\\) or 3"):
        index_file(p, HO)


def test_error_four_lattice_lines(tmp_path):
    p = bad(tmp_path, "lattice 0.0 0.0 10.0\n", "lattice 0.0 0.0 10.0\nlattice 1 1 1\n")
    with expect(p, 6, "4th 'lattice' line in the record starting at line 1"):
        index_file(p, HO)


def test_error_singular_cell(tmp_path):
    p = bad(tmp_path, "lattice 0.0 0.0 10.0", "lattice 10.0 10.0 1e-12")
    with expect(p, 3, r"the cell is singular \(\|det\| = "):
        index_file(p, HO)


def test_error_zero_length_cell_vector(tmp_path):
    p = bad(tmp_path, "lattice 0.0 0.0 10.0", "lattice 0.0 0.0 0.0")
    with expect(p, 3, "the cell is singular"):
        index_file(p, HO)


def test_error_unknown_element(tmp_path):
    p = bad(tmp_path, " O -0.1", " Cu -0.1")
    with expect(p, 7, r"element 'Cu' \(column 5\) is not one of the elements of the settings \(H, O\)"):
        index_file(p, HO)


def test_error_not_an_element_symbol(tmp_path):
    p = bad(tmp_path, " O -0.1", " Xx -0.1")
    with expect(p, 7, r"'Xx' in column 5 \(element\) is not a chemical element symbol"):
        read_structures(p)


@pytest.mark.parametrize("text, line, word", [
    ("atom 0 0 0 H 0 0 0 0 0\n" + RECORD, 1, "atom"),
    (RECORD + "\nenergy 1.0\n", 13, "energy"),
    (RECORD + "end\n", 12, "end"),
    (RECORD + "lattice 1 0 0\n" + RECORD, 12, "lattice"),
])
def test_error_keyword_outside_record(tmp_path, text, line, word):
    p = write(tmp_path, text)
    with expect(p, line, f"'{word}' outside a 'begin' ... 'end' record"):
        index_file(p, HO)


def test_error_begin_inside_record(tmp_path):
    p = write(tmp_path, RECORD.replace("end\n", "") + RECORD)
    with expect(p, 11, r"'begin' inside the record that starts at line 1 \(missing 'end'\?\)"):
        index_file(p, HO)


def test_error_missing_end_at_end_of_file(tmp_path):
    p = write(tmp_path, RECORD + RECORD.replace("end\n", "\n\n"))
    with expect(p, 12, "the record starting here has no 'end' before the end of the file"):
        index_file(p, HO)


@pytest.mark.parametrize("text", ["", "\n\n  \r\n\t\n"])
def test_error_empty_file(tmp_path, text):
    p = write(tmp_path, text)
    with expect(p, None, "no structures found"):
        index_file(p, HO)
    with expect(p, None, "no structures found"):
        read_structures(p)


def test_error_charged_periodic_structure(tmp_path):
    p = bad(tmp_path, "charge 0.0", "charge 1.0E-6")
    with expect(p, 10, "periodic structure with non-zero total charge 1e-06; n2p2 refuses"):
        index_file(p, HO)


def test_charged_non_periodic_structure_is_fine(tmp_path):
    text = "begin\natom 0 0 0 H 0 0 0 0 0\ncharge 1.0\nend\n"
    idx = index_file(write(tmp_path, text), HO)
    assert idx.charge.tolist() == [1.0] and idx.periodic.tolist() == [False]


def test_error_record_without_atoms(tmp_path):
    p = write(tmp_path, RECORD + "begin\ncomment nothing\nenergy 1.0\nend\n")
    with expect(p, 12, r"the record starting here \(ending at line 15\) has no 'atom' lines"):
        index_file(p, HO)


@pytest.mark.parametrize("kw, first", [("energy", 9), ("charge", 10)])
def test_error_second_energy_or_charge_line(tmp_path, kw, first):
    p = bad(tmp_path, "end\n", f"{kw} 0.0\nend\n")
    with expect(p, 11, f"second '{kw}' line in the record \\(the first is at line {first}\\)"):
        index_file(p, HO)


@pytest.mark.parametrize("old, new, line, word", [
    ("begin\n", "begin 1\n", 1, "begin"), ("end\n", "end of it\n", 11, "end")])
def test_error_text_after_begin_or_end(tmp_path, old, new, line, word):
    p = bad(tmp_path, old, new)
    with expect(p, line, f"unexpected text after '{word}'"):
        index_file(p, HO)


def test_error_file_changed_after_indexing(tmp_path):
    p = write(tmp_path, RECORD + RECORD)
    idx = index_file(p, HO)
    p.write_bytes((RECORD + RECORD + "\n").encode())
    with expect(p, None, "the file has .* bytes but the index was made for"):
        read_structure(p, idx, 1)
    p.write_bytes(("\n" + RECORD + RECORD[:-1]).encode())        # same size, shifted
    with expect(p, 12, "no 'begin' at byte offset"):
        read_structure(p, idx, 1)


def test_read_structure_index_out_of_range(tmp_path):
    p = write(tmp_path, RECORD)
    idx = index_file(p, HO)
    with pytest.raises(IndexError, match="structure index 1 out of range for 1"):
        read_structure(p, idx, 1)


def test_index_file_argument_errors(tmp_path):
    p = write(tmp_path, RECORD)
    with pytest.raises(ValueError, match="invalid byte range"):
        index_file(p, HO, start=10, stop=5)
    with pytest.raises(ValueError, match="invalid byte range"):
        index_file(p, HO, start=-1)
    with pytest.raises(ValueError, match="elements must not be empty"):
        index_file(p, [])
    with pytest.raises(ValueError, match="elements must be unique"):
        index_file(p, ["H", "H"])


# ----------------------------------------------------------------------------
# Byte ranges (parallel indexing)
# ----------------------------------------------------------------------------
GAPPY = ("\n" + RECORD + "\n\n" + RECORD.replace("begin", "  begin").replace("\n", "\r\n")
         + "begin\natom 0 0 0 O 0 0 0 0 0\nend\n\n"
         + RECORD.replace("lattice", "\tlattice").replace("charge 0.0", "").replace("end", " end "))


def test_every_two_way_split_matches_whole_file(tmp_path):
    p = write(tmp_path, GAPPY)
    whole = index_file(p, HO)
    assert whole.n_structures == 4
    size = len(GAPPY.encode())
    for cut in range(size + 1):
        a = index_file(p, HO, start=0, stop=cut)
        b = index_file(p, HO, start=cut)
        assert a.sha256 is None or cut >= size
        assert b.sha256 is None or cut == 0
        merged = DataIndex.merge([a, b])
        all_index_fields_equal(merged, whole)


def test_three_way_split_with_line_offset(tmp_path):
    p = write(tmp_path, GAPPY * 3)
    whole = index_file(p, HO)
    size = p.stat().st_size
    cuts = [0, 101, 450, size]
    parts = []
    for s, e in zip(cuts[:-1], cuts[1:]):
        off = count_newlines(p, 0, s)
        assert off == p.read_bytes()[:s].count(b"\n")
        parts.append(index_file(p, HO, start=s, stop=e, line_offset=off))
    merged = DataIndex.merge(parts)
    all_index_fields_equal(merged, whole)
    assert merged.sha256 is None and whole.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    # every indexed record can be read back
    for i in range(merged.n_structures):
        assert read_structure(p, merged, i).line == merged.line[i]


def test_error_in_a_range_names_the_real_line(tmp_path):
    text = RECORD + RECORD + RECORD.replace("energy -1.5", "energy x")
    p = write(tmp_path, text)
    start = 2 * len(RECORD) - 5          # inside the 2nd record: the 3rd is ours
    with expect(p, 31, r"found 'x' in column 2 \(energy\)"):
        index_file(p, HO, start=start)
    assert index_file(p, HO, start=0, stop=start).n_structures == 2


def block_digest(data: bytes, block: int) -> str:
    """The recorded checksum, written out: sha256 over the blocks' sha256 digests."""
    h = hashlib.sha256()
    for a in range(0, max(len(data), 1), block):
        h.update(hashlib.sha256(data[a:a + block]).digest())
    return h.hexdigest()


@pytest.mark.parametrize("block", [1, 7, 64, 333, 10 ** 6])
def test_index_data_over_blocks_matches_whole_file(tmp_path, block):
    p = write(tmp_path, GAPPY * 3)
    whole = index_file(p, HO)
    calls = []

    def mapper(fn, items, shared):           # what a backend does, in reverse order
        items = list(items)
        calls.append(len(items))
        return [r for r in reversed([fn(shared, it) for it in reversed(items)])]
    idx = index_data(p, HO, mapper=mapper, block_bytes=block)
    all_index_fields_equal(idx, whole)
    data = p.read_bytes()
    assert calls == [-(-len(data) // block)]
    assert idx.digest == block_digest(data, block) == file_digest(p, block)
    assert index_data(p, HO).digest == block_digest(data, 16 << 20)


@pytest.mark.parametrize("block", [1, 50, 10 ** 6])
def test_index_data_reports_the_first_error_with_its_line(tmp_path, block):
    text = RECORD + RECORD.replace("energy -1.5", "energy x") + RECORD + "\nfoo\n"
    p = write(tmp_path, text)
    with expect(p, 20, r"found 'x' in column 2 \(energy\)"):
        index_data(p, HO, block_bytes=block)
    p2 = write(tmp_path, RECORD + RECORD + "\n\nfoo bar\n", name="b.data")
    with expect(p2, 25, "'foo' outside a 'begin' ... 'end' record"):
        index_data(p2, HO, block_bytes=block)
    p3 = write(tmp_path, RECORD + RECORD.replace("end", ""), name="c.data")
    with expect(p3, 12, "has no 'end' before the end of the file"):
        index_data(p3, HO, block_bytes=block)


def test_index_data_empty_and_missing_files(tmp_path):
    with pytest.raises(DataFileError, match="no structures found"):
        index_data(write(tmp_path, "\n\n"), HO, block_bytes=1)
    with pytest.raises(FileAccessError, match=r"nope\.data: cannot read input\.data: No such file"):
        index_data(tmp_path / "nope.data", HO)


def test_gap_after_last_record_is_checked_by_its_owner(tmp_path):
    text = RECORD + "\n\natom 0 0 0 H 0 0 0 0 0\n\n" + RECORD
    p = write(tmp_path, text)
    garbage = text.index("atom 0 0 0")
    # the range [0, 5) owns the first record, and validates the gap after it
    with expect(p, 14, "'atom' outside a 'begin' ... 'end' record"):
        index_file(p, HO, start=0, stop=5)
    # a range starting inside the gap skips to the next 'begin'
    assert index_file(p, HO, start=garbage).n_structures == 1


def test_range_without_records_is_empty(tmp_path):
    p = write(tmp_path, RECORD + RECORD)
    part = index_file(p, HO, start=3, stop=20)
    assert part.n_structures == 0 and part.counts.shape == (0, 2) and part.lattice.shape == (0, 3, 3)
    assert index_file(p, HO, start=10 * len(RECORD)).n_structures == 0


def test_merge_errors(tmp_path):
    p = write(tmp_path, RECORD + RECORD)
    whole = index_file(p, HO)
    with pytest.raises(ValueError, match="at least one part"):
        DataIndex.merge([])
    with pytest.raises(ValueError, match="different files or element lists"):
        DataIndex.merge([whole, index_file(p, ["O", "H"], start=1)])
    with pytest.raises(ValueError, match="overlap or are not in file order"):
        DataIndex.merge([whole, whole])
    empty = index_file(p, HO, start=1, stop=2)
    with expect(p, None, "no structures found"):
        DataIndex.merge([empty, empty])


def test_count_newlines(tmp_path):
    p = write(tmp_path, "a\nb\r\n\nc")
    assert count_newlines(p) == 3
    assert count_newlines(p, 2) == 2
    assert count_newlines(p, 1, 4) == 1
    assert count_newlines(p, 7, 100) == 0


# ----------------------------------------------------------------------------
# Reference files (read in place)
# ----------------------------------------------------------------------------
CASES = ["H2O_RPBE-D3", "H2O_smallbox", "H2O_wide_poly2_sigma", "H2O_weighted_cos_center",
         "H2O_polynomial", "LJ", "CG_water_inputs_only", "Cu2S_PBE_inputs_only"]
NON_PERIODIC = {"LJ"}


def readme_counts(case_dir):
    """(structures, atoms, {element: atoms}) from '* N structure(s), M atoms (a X, b Y).'"""
    text = (case_dir / "README.md").read_text()
    m = re.search(r"^\* (\d+) structure\(s\), (\d+) atoms \(([^)]*)\)", text, re.M)
    assert m, "no data line in README"
    per = {}
    for part in m.group(3).split(","):
        n, e = part.split()
        per[e] = int(n)
    return int(m.group(1)), int(m.group(2)), per


def elements_of(case_dir):
    text = (case_dir / "README.md").read_text()
    m = re.search(r"Elements, in atomic-number order[^:]*: ([^.]*)\.", text)
    return [e.strip() for e in m.group(1).split(",")]


@pytest.mark.parametrize("case", CASES)
def test_reference_index_matches_readme(reference_dir, case):
    case_dir = reference_dir / case
    path = case_dir / "input.data"
    elements = elements_of(case_dir)
    n_structures, n_atoms, per_element = readme_counts(case_dir)
    idx = index_file(path, elements)
    assert idx.n_structures == n_structures
    assert idx.n_atoms == n_atoms
    assert dict(zip(elements, idx.counts.sum(axis=0).tolist())) == per_element
    assert idx.periodic.all() == (case not in NON_PERIODIC)
    assert idx.periodic.any() == (case not in NON_PERIODIC)
    assert idx.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    if case == "H2O_RPBE-D3":
        assert (n_structures, n_atoms, per_element) == (4, 336, {"H": 224, "O": 112})

    structures = read_structures(path, elements)
    assert len(structures) == n_structures
    for i in sorted({0, n_structures // 2, n_structures - 1}):
        s = read_structure(path, idx, i)
        assert s.line == structures[i].line == idx.line[i]
        np.testing.assert_array_equal(s.positions, structures[i].positions)
        np.testing.assert_array_equal(s.forces, structures[i].forces)
        assert s.natoms == idx.natoms[i]
        assert s.energy == idx.energy[i] or (math.isnan(s.energy) and math.isnan(idx.energy[i]))


@pytest.mark.parametrize("case", CASES)
def test_reference_partial_ranges_merge_to_whole(reference_dir, case):
    path = reference_dir / case / "input.data"
    elements = elements_of(reference_dir / case)
    whole = index_file(path, elements)
    size = path.stat().st_size
    for cuts in ([0, size // 3 + 17, (2 * size) // 3 - 5, size], [0, 1, size - 1, size]):
        parts = [index_file(path, elements, start=s, stop=e) for s, e in zip(cuts[:-1], cuts[1:])]
        all_index_fields_equal(DataIndex.merge(parts), whole)


def test_reference_smallbox_remap(reference_dir):
    s = read_structures(reference_dir / "H2O_smallbox" / "input.data")[0]
    frac = s.positions @ np.linalg.inv(s.lattice)
    outside = ((frac < 0) | (frac >= 1)).any(axis=1)
    assert np.flatnonzero(outside).tolist() == [3, 5]      # the README's atoms 3 and 5
    f = s.remapped_positions() @ np.linalg.inv(s.lattice)
    assert ((f > -1e-12) & (f < 1 + 1e-12)).all()
    np.testing.assert_allclose(s.remapped_positions()[~outside], s.positions[~outside], atol=1e-12)
