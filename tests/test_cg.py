"""Tests of coarse-graining (distatomenv.tools.cg, ``distatomenv coarse-grain``)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from distatomenv.tools.cg import (BondCutoffs, coarse_grain, coarse_grain_structure, explicit_molecules,
                            find_molecules, format_composition, parse_bond_cutoff,
                            parse_composition, parse_masses, read_molecules)
from distatomenv.cli import main
from distatomenv.elements import ATOMIC_MASS, atomic_mass
from distatomenv.errors import CoarseGrainError, DistatomenvError, MoleculesFileError
from distatomenv.io.inputdata import read_structures, write_structures
from distatomenv.io.structure import Structure

M_O, M_H = ATOMIC_MASS["O"], ATOMIC_MASS["H"]


def _water_box(n_side=3, box=10.0, seed=0, shift=(0.0, 0.0, 0.0), lattice=None):
    """n_side^3 water molecules (O H H, 0.96 A, 104.5 deg) with random
    orientations on a grid, random forces; positions shifted by ``shift``
    (not wrapped: atoms may lie outside the cell)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    lat = np.diag([box] * 3) if lattice is None else lattice
    centres = ((grid + 0.5) / n_side + rng.normal(0, 0.01, size=grid.shape)) @ lat
    pos, el = [], []
    theta = math.radians(104.5)
    for o in centres:
        a = rng.normal(size=3)
        a /= np.linalg.norm(a)
        b = rng.normal(size=3)
        b -= (b @ a) * a
        b /= np.linalg.norm(b)
        pos += [o, o + 0.96 * a, o + 0.96 * (math.cos(theta) * a + math.sin(theta) * b)]
        el += ["O", "H", "H"]
    pos = np.array(pos) + np.asarray(shift)
    n = len(pos)
    return Structure(index=0, line=1, comment="water", lattice=lat, positions=pos, elements=el,
                     charges=np.zeros(n), atom_energies=np.zeros(n),
                     forces=rng.normal(size=(n, 3)), energy=-12.5, charge=0.0, path="box.data")


def _com(pos, el):
    m = np.array([ATOMIC_MASS[e] for e in el])
    return (m[:, None] * pos).sum(0) / m.sum()


def _wrap(r, lattice):
    f = r @ np.linalg.inv(lattice)
    f -= np.floor(f)
    return f @ lattice


def test_water_formula_of_the_tutorial():
    """One water molecule (O with its two nearest H) across a periodic boundary.

    The site is the centre of mass, R = r_O + m_H (r_H1 - r_O + r_H2 - r_O) / (m_O + 2 m_H).
    With the issue's convention Delta r_jk = r_j - r_k, so Delta r_OH = r_O - r_H, this is
    R = r_O - m_H (Delta r_OH1 + Delta r_OH2) / (m_O + 2 m_H).  The issue writes the
    prefactor as 2 m_H; that form moves the site twice as far from O as the centre of
    mass does (checked below), so the code follows the centre of mass.
    """
    box = 8.0
    r_o = np.array([7.7, 4.0, 0.1])
    r_h1 = np.array([8.55, 4.3, -0.3])         # outside the cell: +x and -z
    r_h2 = np.array([7.5, 4.9, 0.35])
    s = Structure(index=0, line=1, comment="", lattice=np.diag([box] * 3),
                  positions=[r_o, r_h1, r_h2], elements=["O", "H", "H"], charges=[0.1, -0.05, -0.05],
                  atom_energies=[1.0, 2.0, 3.0], forces=[[1.0, 2.0, 3.0], [0.5, 0.25, -1.0],
                                                        [-0.5, 1.0, 2.0]], energy=-3.0, charge=0.0)
    mol = find_molecules(s, "O-H=1.2")
    assert mol.as_lists() == [[0, 1, 2]]
    cg = coarse_grain_structure(s, mol)
    total = M_O + 2 * M_H
    com = r_o + M_H * (r_h1 - r_o + r_h2 - r_o) / total
    d1, d2 = r_o - r_h1, r_o - r_h2                  # Delta r_OH = r_O - r_H
    tutorial = r_o - M_H * (d1 + d2) / total
    np.testing.assert_allclose(com, tutorial, rtol=0, atol=1e-14)
    np.testing.assert_allclose(cg.positions[0], _wrap(com, s.lattice), rtol=0, atol=1e-12)
    as_written = r_o - 2 * M_H * (d1 + d2) / total
    assert np.linalg.norm(as_written - r_o) == pytest.approx(2 * np.linalg.norm(com - r_o))
    np.testing.assert_allclose(cg.forces[0], [1.0, 3.25, 4.0], atol=1e-15)
    assert cg.charges[0] == pytest.approx(0.0) and cg.atom_energies[0] == 6.0
    assert cg.energy == -3.0 and list(cg.elements) == ["Cm"]
    np.testing.assert_array_equal(cg.lattice, s.lattice)
    # same from an explicit molecule, and from the minimum image of the wrapped atoms
    wrapped = Structure(index=0, line=1, comment="", lattice=s.lattice,
                        positions=_wrap(s.positions, s.lattice), elements=s.elements,
                        charges=s.charges, atom_energies=s.atom_energies, forces=s.forces)
    for st, m in ((s, explicit_molecules(s, mol)), (wrapped, find_molecules(wrapped, 1.2)),
                  (wrapped, explicit_molecules(wrapped, mol))):
        np.testing.assert_allclose(coarse_grain_structure(st, m).positions, cg.positions,
                                   atol=1e-12)


def test_com_and_force_invariants_under_translation_and_wrapping():
    s = _water_box()
    mol = find_molecules(s, "O-H=1.2")
    assert mol.n_molecules == 27 and all(len(mol[k]) == 3 for k in range(27))
    ref = coarse_grain_structure(s, mol)
    # site k: centre of mass of molecule k, wrapped; force: sum of the three forces
    for k in range(27):
        a = mol[k]
        np.testing.assert_allclose(ref.positions[k], _wrap(_com(s.positions[a], s.elements[a]),
                                                           s.lattice), atol=1e-12)
        np.testing.assert_allclose(ref.forces[k], s.forces[a].sum(0), atol=1e-14)
    np.testing.assert_allclose(ref.forces.sum(0), s.forces.sum(0), atol=1e-12)
    assert np.all((ref.positions >= 0) & (ref.positions < 10.0))
    # translating everything by any vector translates every site (mod the cell)
    for shift in ([3.3, -7.1, 0.4], [10.0, 20.0, -30.0], [4.99, 5.01, 9.999]):
        t = _water_box(shift=shift)
        cg = coarse_grain_structure(t, find_molecules(t, "O-H=1.2"))
        diff = cg.positions - _wrap(ref.positions + np.array(shift), s.lattice)
        diff -= 10.0 * np.round(diff / 10.0)
        np.testing.assert_allclose(diff, 0.0, atol=1e-11)
        np.testing.assert_allclose(cg.forces, ref.forces, atol=0)
    # wrapping atoms one by one into the cell (molecules broken apart) changes nothing
    w = _water_box()
    w.positions = _wrap(w.positions + 4.5, w.lattice)
    for m in (find_molecules(w, 1.2), explicit_molecules(w, mol)):
        cg = coarse_grain_structure(w, m)
        diff = cg.positions - _wrap(ref.positions + 4.5, w.lattice)
        diff -= 10.0 * np.round(diff / 10.0)
        np.testing.assert_allclose(diff, 0.0, atol=1e-11)


def test_triclinic_cell_and_non_periodic():
    lat = np.array([[11.0, 0.0, 0.0], [3.0, 10.0, 0.0], [-2.0, 1.5, 10.5]])
    s = _water_box(lattice=lat, shift=(25.0, -13.0, 7.0))
    mol = find_molecules(s, "H-O=1.2")
    assert mol.n_molecules == 27
    cg = coarse_grain_structure(s, mol)
    for k in range(27):
        a = mol[k]
        want = _com(mol.unwrapped[mol.starts[k]:mol.starts[k + 1]], s.elements[a])
        np.testing.assert_allclose(cg.positions[k], _wrap(want, lat), atol=1e-11)
        # the unwrapped molecule is whole: O-H distances of 0.96
        u = mol.unwrapped[mol.starts[k]:mol.starts[k + 1]]
        np.testing.assert_allclose(np.linalg.norm(u[1:] - u[0], axis=1), 0.96, atol=1e-12)
    free = _water_box()
    free.lattice = None
    cg = coarse_grain_structure(free, find_molecules(free, 1.2))
    np.testing.assert_allclose(cg.positions[0], _com(free.positions[:3], ["O", "H", "H"]),
                               atol=1e-12)
    assert cg.lattice is None


def test_small_cell_and_large_cutoff_within_images():
    """A 3-atom cell smaller than the cutoff's reach: bonds through images are found
    (a cutoff > half the cell)."""
    box = 2.5
    s = Structure(index=0, line=1, comment="", lattice=np.diag([box] * 3),
                  positions=[[0.1, 0.1, 0.1], [2.3, 0.1, 0.1], [0.1, 0.1, 1.1]],
                  elements=["O", "H", "H"], charges=np.zeros(3), atom_energies=np.zeros(3),
                  forces=np.zeros((3, 3)))
    mol = find_molecules(s, "O-H=1.05")
    assert mol.as_lists() == [[0, 1, 2]]
    np.testing.assert_allclose(mol.unwrapped[1], [-0.2, 0.1, 0.1], atol=1e-12)


def test_spanning_molecule_is_an_error():
    s = _water_box()
    with pytest.raises(CoarseGrainError, match=r"box\.data:1: structure 1 \(1-based\): a molecule "
                       r"is connected to its own periodic image.*spans the cell.*atoms \d+ \(\w+\) "
                       r"and \d+ \(\w+\).*--bond-cutoff 5"):
        find_molecules(s, 5.0)
    # a chain along x bonded to its own image
    chain = Structure(index=2, line=40, comment="", lattice=np.diag([3.0, 10.0, 10.0]),
                      positions=[[0.0, 0, 0], [1.5, 0, 0]], elements=["O", "O"],
                      charges=np.zeros(2), atom_energies=np.zeros(2), forces=np.zeros((2, 3)),
                      path="chain.data")
    with pytest.raises(CoarseGrainError, match=r"chain\.data:40: structure 3 .*own periodic "
                       r"image.*atoms 0 \(O\) and 1 \(O\)"):
        find_molecules(chain, "O-O=1.6")
    single = Structure(index=0, line=1, comment="", lattice=np.diag([1.0, 10.0, 10.0]),
                       positions=[[0.0, 0, 0]], elements=["O"], charges=[0.0],
                       atom_energies=[0.0], forces=np.zeros((1, 3)), path="one.data")
    with pytest.raises(CoarseGrainError, match=r"atom 0 \(O\) is bonded to its own periodic "
                                               r"image \(-?1, 0, 0\) at 1"):
        find_molecules(single, 1.1)


def _write(path, structures):
    write_structures(path, structures)
    return path


def test_file_round_trip_and_streaming(tmp_path):
    boxes = [_water_box(seed=k) for k in range(3)]
    for k, b in enumerate(boxes):
        b.index = k
    data = _write(tmp_path / "input.data", boxes)
    out = tmp_path / "cg.data"
    result = coarse_grain(data, out, bond_cutoff="O-H=1.2,H-H=0")
    assert (result.n_structures, result.n_atoms, result.n_sites) == (3, 243, 81)
    assert result.composition == "H2O" and not (tmp_path / "cg.data.part").exists()
    cg = read_structures(out)
    assert len(cg) == 3 and all(c.natoms == 27 for c in cg)
    for b, c in zip(boxes, cg):
        ref = coarse_grain_structure(b, find_molecules(b, 1.2))
        np.testing.assert_array_equal(c.positions, ref.positions)
        np.testing.assert_array_equal(c.forces, ref.forces)
        assert c.energy == b.energy and set(c.elements) == {"Cm"}
        assert "coarse-grained by distatomenv" in c.comment and c.comment.startswith("water")
    # explicit molecules give the same, masses and element can be changed
    mfile = tmp_path / "molecules.txt"
    mfile.write_text("# O H H\n" + "".join(f"{3 * k}, {3 * k + 1} {3 * k + 2}\n"
                                           for k in range(27)))
    coarse_grain(data, tmp_path / "cg2.data", molecules=mfile)
    for a, b in zip(cg, read_structures(tmp_path / "cg2.data")):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-12)
    coarse_grain(data, tmp_path / "cg3.data", molecules=mfile, masses="H=2.014", cg_element="Xe",
                 composition="OH2")
    heavy = read_structures(tmp_path / "cg3.data")
    assert set(heavy[0].elements) == {"Xe"}
    a = np.array([0, 1, 2])
    m = np.array([M_O, 2.014, 2.014])
    want = (m[:, None] * boxes[0].positions[a]).sum(0) / m.sum()
    np.testing.assert_allclose(heavy[0].positions[0], _wrap(want, boxes[0].lattice), atol=1e-12)


def test_cli(tmp_path, capsys):
    data = _write(tmp_path / "input.data", [_water_box()])
    out = tmp_path / "cg.data"
    assert main(["coarse-grain", str(data), "-o", str(out), "--bond-cutoff", "H-O=1.2"]) == 0
    assert "81 atoms -> 27 Cm sites (H2O)" in capsys.readouterr().out
    assert read_structures(out)[0].natoms == 27
    assert main(["coarse-grain", str(data), "-o", str(out), "--bond-cutoff", "9"]) == 3   # bad input
    assert "own periodic image" in capsys.readouterr().err
    assert not out.exists() or read_structures(out)[0].natoms == 27   # old output untouched


def test_wrong_composition_is_an_error(tmp_path):
    s = _water_box(box=15.0)
    for step in np.random.default_rng(1).normal(size=(100, 3)):   # an H pulled away from all
        trial = s.positions[4] + 2.5 * step / np.linalg.norm(step)
        d = s.positions - trial
        d -= 15.0 * np.round(d / 15.0)
        if np.sqrt((d * d).sum(1)).min() > 1.5:
            s.positions[4] = trial
            break
    with pytest.raises(CoarseGrainError, match=r"a\.data:1: structure 1 \(1-based\): 2 of 28 "
                       r"molecule\(s\) are not H2O \(the composition of the first molecule of "
                       r"structure 1, atoms \[0, 1, 2\]\): atoms \[3, 5\] \(HO\); atoms \[4\] \(H\)"):
        coarse_grain(_write(tmp_path / "a.data", [s]), tmp_path / "o.data", bond_cutoff=1.2)
    assert not (tmp_path / "o.data").exists() and not (tmp_path / "o.data.part").exists()
    with pytest.raises(CoarseGrainError, match=r"27 of 27 molecule\(s\) are not H3O"):
        coarse_grain(_write(tmp_path / "b.data", [_water_box()]), tmp_path / "o.data",
                     bond_cutoff=1.2, composition="H3O")
    r = coarse_grain(tmp_path / "a.data", tmp_path / "o.data", bond_cutoff=1.2, composition="any")
    assert r.n_sites == 28 and r.composition == "any"
    # a later structure with other molecules than the first
    t = _water_box(seed=4)
    t.index = 1
    t.elements[3] = "N"
    with pytest.raises(CoarseGrainError, match=r"structure 2 \(1-based\): 1 of 27 molecule\(s\) "
                                               r"are not H2O.*atoms \[3, 4, 5\] \(H2N\)"):
        coarse_grain(_write(tmp_path / "c.data", [_water_box(), t]), tmp_path / "o.data",
                     bond_cutoff=1.2)


def test_molecules_file_errors(tmp_path):
    data = _write(tmp_path / "input.data", [_water_box()])
    f = tmp_path / "mol.txt"

    def run():
        coarse_grain(data, tmp_path / "o.data", molecules=f)
    f.write_text("0 1 2\n3 4 x\n")
    with pytest.raises(MoleculesFileError, match=r"mol\.txt:2: found 'x' in column 3 \(atom "
                                                 r"index\), expected an integer"):
        run()
    f.write_text("0 1 2\n\n3 4 -5\n")
    with pytest.raises(MoleculesFileError, match=r"mol\.txt:3: found '-5' in column 3, expected "
                                                 r"a 0-based atom index"):
        run()
    f.write_text("0 1 2\n3 4 2\n")
    with pytest.raises(MoleculesFileError, match=r"mol\.txt:2: atom 2 \(0-based\) is in two "
                                                 r"molecules: here and on line 1"):
        run()
    f.write_text("0 1 1\n")
    with pytest.raises(MoleculesFileError, match=r"atom 1 \(0-based\) is in two molecules: here "
                                                 r"and earlier on this line"):
        run()
    f.write_text("# nothing\n\n")
    with pytest.raises(MoleculesFileError, match=r"mol\.txt: no molecules"):
        run()
    with pytest.raises(MoleculesFileError, match=r"missing\.txt: file not found"):
        read_molecules(tmp_path / "missing.txt")
    f.write_text("".join(f"{3 * k} {3 * k + 1} {3 * k + 2}\n" for k in range(26)))
    with pytest.raises(CoarseGrainError, match=r"input\.data:1: structure 1 \(1-based\): 3 "
                                               r"atom\(s\) are in no molecule of .*mol\.txt: "
                                               r"atoms 78, 79, 80 \(0-based\)"):
        run()
    f.write_text("".join(f"{3 * k} {3 * k + 1} {3 * k + 2}\n" for k in range(27)) + "81 82 83\n")
    with pytest.raises(CoarseGrainError, match=r"structure 1 \(1-based\) has 81 atoms \(0-based "
                                               r"indices 0\.\.80\) but line 28 of .*mol\.txt names "
                                               r"atom 83"):
        run()


def test_option_errors(tmp_path):
    data = _write(tmp_path / "input.data", [_water_box()])
    with pytest.raises(DistatomenvError, match="exactly one of --bond-cutoff and --molecules"):
        coarse_grain(data, tmp_path / "o.data")
    with pytest.raises(DistatomenvError, match="exactly one of"):
        coarse_grain(data, tmp_path / "o.data", bond_cutoff=1.0, molecules="m.txt")
    with pytest.raises(DistatomenvError, match="--cg-element: 'Xx' is not an element symbol"):
        coarse_grain(data, tmp_path / "o.data", bond_cutoff=1.2, cg_element="Xx")
    with pytest.raises(DistatomenvError, match="unknown input format 'xyz'"):
        coarse_grain(data, tmp_path / "o.data", bond_cutoff=1.2, format="xyz")
    for spec, msg in (("", "is empty"), ("abc", "found 'abc', expected a positive number"),
                      ("O-H", "found 'O-H', expected a positive number"),
                      ("1.2,2.0", "a bare length may only come first"),
                      ("O-H-H=1", "expected an element pair"),
                      ("O-Q=1", "'Q' is not an element symbol"),
                      ("O-H=1,H-O=2", "the pair H-O is given twice"),
                      ("O-H=-1", "expected a number >= 0"),
                      ("H-H=0", "bonds nothing"), ("-1", "expected a positive number")):
        with pytest.raises(DistatomenvError, match=f"--bond-cutoff.*{msg}"):
            parse_bond_cutoff(spec)
    for spec, msg in (("H", "expected ELEMENT=MASS"), ("H=0", "expected a positive number"),
                      ("Zz=1", "'Zz' is not an element symbol")):
        with pytest.raises(DistatomenvError, match=f"--mass.*{msg}"):
            parse_masses(spec)
    for text in ("h2o", "H2O!", "", "H0"):
        with pytest.raises(DistatomenvError, match="--composition: found .* expected a formula"):
            parse_composition(text)


def test_missing_mass_is_an_error(monkeypatch):
    """Every element has a standard mass; a table without one asks for --mass."""
    monkeypatch.delitem(ATOMIC_MASS, "O")
    s = _water_box()
    with pytest.raises(DistatomenvError, match="no mass for element 'O'; give it with --mass O=MASS"):
        coarse_grain_structure(s, find_molecules(s, 1.2))
    coarse_grain_structure(s, find_molecules(s, 1.2), masses={"O": 16.0})


def test_option_parsers():
    c = parse_bond_cutoff("1.1,H-H=0,O-H=1.3")
    assert c.get("H", "H") == 0 and c.get("H", "O") == 1.3 and c.get("O", "O") == 1.1
    assert str(c) == "1.1,H-H=0,H-O=1.3"
    assert parse_bond_cutoff(1.5) == BondCutoffs(1.5)
    assert parse_bond_cutoff({"O-H": 1.2}).get("O", "H") == 1.2
    assert parse_masses(["H=2", "O=16,C=12"]) == {"H": 2.0, "O": 16.0, "C": 12.0}
    assert parse_composition("H2O") == {"H": 2, "O": 1} == parse_composition("OH2")
    assert parse_composition("any") == "any" and parse_composition(None) is None
    assert format_composition({"O": 1, "H": 2}) == "H2O"
    assert atomic_mass("Cm") == 247.0 and atomic_mass("O") == 15.999


def test_empty_data_file_is_an_error(tmp_path):
    from distatomenv.errors import DataFileError
    (tmp_path / "empty.data").write_text("\n\n")
    with pytest.raises(DataFileError, match=r"empty\.data: no structures found"):
        coarse_grain(tmp_path / "empty.data", tmp_path / "o.data", bond_cutoff=1.2)
    assert not (tmp_path / "o.data").exists() and not (tmp_path / "o.data.part").exists()
