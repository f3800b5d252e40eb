"""Tests of the built-in Lennard-Jones data set (distatomenv.tools.synth.lj)."""
from __future__ import annotations

import numpy as np
import pytest

from distatomenv.io.inputdata import read_structures, write_structures
from distatomenv.io.settings import read_settings
from distatomenv.tools.synth import (DEFAULT_RC_LJ, DEFAULT_SF_CUTOFF, LJMixture, generate_lj,
                               lj_settings_text, write_lj_dataset)

#: Central finite-difference step (Angstrom) and absolute force tolerance (eV/A).
#: Truncation error ~ h^2 |U'''| ~ 1e-10 * 1 eV/A^3, rounding ~ 1e-16 * 3 eV / h
#: ~ 3e-11 eV/A; forces are ~0.1 eV/A.
FD_STEP = 1e-5
FD_TOL = 1e-7


@pytest.fixture(scope="module")
def structures():
    return generate_lj(4, 64, seed=3)


@pytest.fixture(scope="module")
def model():
    return LJMixture(("Ar", "Kr"), DEFAULT_RC_LJ)


def _energy(model, s, pos):
    return model.energy_forces(pos, s.elements, s.lattice)[0]


def test_structure_contents(structures, model):
    assert len(structures) == 4
    for k, s in enumerate(structures):
        assert s.index == k
        assert s.natoms == 64
        assert sorted(set(s.elements)) == ["Ar", "Kr"]
        assert (s.elements == "Ar").sum() == 32
        np.testing.assert_array_equal(s.lattice, np.diag(np.diag(s.lattice)))
        length = s.lattice[0, 0]
        assert np.all(np.diag(s.lattice) == length)
        assert np.all((s.positions >= 0) & (s.positions < length))
        assert np.all(s.charges == 0) and np.all(s.atom_energies == 0) and s.charge == 0
        assert "distatomenv.tools.synth.lj" in s.comment and "seed=3" in s.comment
        # liquid-like: negative cohesive energy of a few eps per atom
        assert -6 * model.epsilon.max() < s.energy / s.natoms < -model.epsilon.min()
        energy, forces = model.energy_forces(s.positions, s.elements, s.lattice)
        assert energy == s.energy
        np.testing.assert_array_equal(forces, s.forces)
        np.testing.assert_allclose(s.forces.sum(axis=0), 0.0, atol=1e-12)
    # samples differ from each other
    assert not np.array_equal(structures[0].positions, structures[1].positions)


def test_forces_are_negative_energy_gradient(structures, model):
    """Central differences, step FD_STEP A, |F - F_fd| < FD_TOL eV/A."""
    rng = np.random.default_rng(0)
    for s in structures[:3]:
        for i in rng.choice(s.natoms, size=4, replace=False):
            for c in range(3):
                plus = s.positions.copy()
                minus = s.positions.copy()
                plus[i, c] += FD_STEP
                minus[i, c] -= FD_STEP
                fd = -(_energy(model, s, plus) - _energy(model, s, minus)) / (2 * FD_STEP)
                assert abs(fd - s.forces[i, c]) < FD_TOL, (s.index, i, c, fd, s.forces[i, c])


def test_shifted_force_pair_is_continuous_at_cutoff(model):
    """Energy and force of one pair go to zero at rc (C^1 truncation)."""
    box = np.full(3, 2 * model.rc + 1.0)
    for a, b in (("Ar", "Ar"), ("Ar", "Kr"), ("Kr", "Kr")):
        for r, tol in ((model.rc - 1e-7, 1e-12), (model.rc + 1e-7, 0.0)):
            pos = np.array([[1.0, 1.0, 1.0], [1.0 + r, 1.0, 1.0]])
            e, f = model.energy_forces(pos, [a, b], box)
            assert abs(e) <= tol and np.all(np.abs(f) <= 1e3 * tol)
        # the minimum of the shifted-force potential is attractive and finite
        ij = model.types([a, b])
        r_min = 2 ** (1 / 6) * model.sigma[ij[0], ij[1]]
        e, f = model.energy_forces(np.array([[0, 0, 0], [r_min, 0, 0]]), [a, b], box)
        assert -model.epsilon[ij[0], ij[1]] < e < 0
        assert f[0, 0] < 0 < f[1, 0]       # attraction: atoms pulled together


def test_translation_and_lattice_vector_invariance(structures, model):
    s = structures[0]
    e0, f0 = s.energy, s.forces
    shifted = s.positions + np.array([0.37, -12.1, 5.9])
    e, f = model.energy_forces(shifted, s.elements, s.lattice)
    assert e == pytest.approx(e0, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(f, f0, rtol=0, atol=1e-12)
    rng = np.random.default_rng(1)
    for i in rng.choice(s.natoms, size=5, replace=False):
        moved = s.positions.copy()
        moved[i] += s.lattice[rng.integers(3)] * rng.choice([-2, -1, 1, 3])
        moved[(i + 1) % s.natoms] += s.lattice.sum(axis=0)
        e, f = model.energy_forces(moved, s.elements, s.lattice)
        assert e == pytest.approx(e0, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(f, f0, rtol=0, atol=1e-12)


def test_no_overlaps(structures, model):
    """No pair closer than 0.8 sigma_ij (minimum image)."""
    for s in structures:
        length = s.lattice[0, 0]
        d = s.positions[:, None, :] - s.positions[None, :, :]
        d -= length * np.round(d / length)
        r = np.sqrt((d ** 2).sum(axis=-1))
        np.fill_diagonal(r, np.inf)
        t = model.types(s.elements)
        assert (r / model.sigma[t[:, None], t[None, :]]).min() > 0.8


def test_determinism(tmp_path):
    a = write_lj_dataset(tmp_path / "a", n_structures=3, n_atoms=64, seed=7)
    b = write_lj_dataset(tmp_path / "b", n_structures=3, n_atoms=64, seed=7)
    c = write_lj_dataset(tmp_path / "c", n_structures=3, n_atoms=64, seed=8)
    assert set(a) == {"input.data", "input.nn"}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["input.data", "input.nn"]
    assert a["input.data"].read_bytes() == b["input.data"].read_bytes()
    assert a["input.nn"].read_bytes() == b["input.nn"].read_bytes()
    assert a["input.data"].read_bytes() != c["input.data"].read_bytes()


def test_write_refuses_to_overwrite(tmp_path):
    write_lj_dataset(tmp_path, n_structures=1, n_atoms=64)
    with pytest.raises(FileExistsError, match="input.data already exists"):
        write_lj_dataset(tmp_path, n_structures=1, n_atoms=64)
    write_lj_dataset(tmp_path, n_structures=1, n_atoms=64, seed=1, overwrite=True)


def test_read_back(tmp_path, structures, model):
    path = tmp_path / "input.data"
    write_structures(path, structures)
    back = read_structures(path)
    assert len(back) == len(structures)
    for s, r in zip(structures, back):
        np.testing.assert_array_equal(r.positions, s.positions)
        np.testing.assert_array_equal(r.forces, s.forces)
        np.testing.assert_array_equal(r.lattice, s.lattice)
        np.testing.assert_array_equal(r.elements, s.elements)
        assert r.energy == s.energy
        assert r.comment == s.comment
        # the file is self-consistent: recomputing from what was read gives what was read
        e, f = model.energy_forces(r.positions, r.elements, r.lattice)
        assert e == r.energy
        np.testing.assert_array_equal(f, r.forces)


def test_settings_match_data(tmp_path):
    paths = write_lj_dataset(tmp_path, n_structures=2, n_atoms=64, seed=0)
    settings = read_settings(paths["input.nn"])
    assert settings.warnings == []
    assert settings.elements == ["Ar", "Kr"]
    assert settings.cutoff_type == 2
    assert settings.use_short_forces
    assert settings.scale_min == 0.0 and settings.scale_max == 1.0
    sfs = settings.sfset
    rc_sf = sfs.max_cutoff()
    assert rc_sf == DEFAULT_SF_CUTOFF
    for e in ("Ar", "Kr"):
        assert sfs.n_sf(e) == 2 * 7 + 3 * 4
    text = paths["input.nn"].read_text()
    assert text.startswith("#") and "Generated by distatomenv" in text
    for s in read_structures(paths["input.data"]):
        edges = np.linalg.norm(s.lattice, axis=1)
        assert np.all(edges >= 2 * rc_sf)
        assert np.all(edges >= 2 * DEFAULT_RC_LJ)


def test_settings_text_element_order():
    text = lj_settings_text(("Kr", "Ar"), cutoff=5.0)
    assert "elements                        Ar Kr\n" in text
    assert "symfunction_short Kr 9 Ar Kr 0.01 -1 4 5\n" in text
    assert "symfunction_short Ar 2 Kr 1 4.25 5\n" in text


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"shorter than 2 rc"):
        generate_lj(1, 32)
    with pytest.raises(ValueError, match="twice the symmetry-function cutoff"):
        write_lj_dataset(tmp_path, n_structures=1, n_atoms=64, sf_cutoff=8.0)
    assert not (tmp_path / "input.data").exists()
    with pytest.raises(ValueError, match="no Lennard-Jones parameters for 'He'"):
        LJMixture(("Ar", "He"))
    with pytest.raises(ValueError, match="'Qq' is not an element symbol"):
        LJMixture(("Qq",))
    with pytest.raises(ValueError, match="repeated element"):
        LJMixture(("Ar", "Ar"))
    with pytest.raises(ValueError, match="cutoff rc must be a positive number"):
        LJMixture(("Ar",), rc=-1.0)
    with pytest.raises(ValueError, match="n_structures must be >= 1"):
        generate_lj(0)
    with pytest.raises(ValueError, match="n_atoms must be >= 2"):
        generate_lj(1, 1)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        generate_lj(1, temperature=0.0)
    with pytest.raises(ValueError, match="sweeps_between >= 1"):
        generate_lj(1, sweeps_between=0)
    with pytest.raises(ValueError, match="fractions must be 2 non-negative numbers"):
        generate_lj(1, fractions=[1.0])
    with pytest.raises(ValueError, match="cutoff must be a positive number"):
        lj_settings_text(cutoff=0.0)
    model = LJMixture()
    with pytest.raises(ValueError, match="orthorhombic boxes only"):
        model.check_box(np.eye(3) * 20 + 0.1)
    with pytest.raises(ValueError, match="box must be 3 edge lengths"):
        model.check_box([20.0, 20.0])
    with pytest.raises(ValueError, match="element 'Ne' is not in this LJ mixture"):
        model.types(["Ar", "Ne"])
    with pytest.raises(ValueError, match=r"positions must have shape \(n, 3\)"):
        model.energy_forces(np.zeros((2, 2)), ["Ar", "Ar"], [20.0] * 3)
    with pytest.raises(ValueError, match=r"elements must have shape \(2,\)"):
        model.energy_forces(np.zeros((2, 3)), ["Ar"], [20.0] * 3)


def test_one_element_and_fractions():
    s = generate_lj(1, 60, elements=("Ar", "Kr"), fractions=(3, 1), seed=2,
                    equilibration_sweeps=20)[0]
    assert (s.elements == "Ar").sum() == 45 and (s.elements == "Kr").sum() == 15
    s = generate_lj(1, 64, elements=("Ar",), seed=2, equilibration_sweeps=20)[0]
    assert set(s.elements) == {"Ar"}
