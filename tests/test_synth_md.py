"""Tests of the water-like molecular-dynamics generator (distatomenv.tools.synth.md)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from distatomenv.tools.cg import coarse_grain_structure, find_molecules
from distatomenv.cli import main
from distatomenv.elements import ATOMIC_MASS
from distatomenv.io.inputdata import read_structures
from distatomenv.io.settings import read_settings
from distatomenv.tools.synth.md import (ACCEL, KB_EV, WaterMD, WaterModel, format_atoms_fixed,
                                  generate_water, write_water_dataset, write_water_fast)

#: Central finite-difference step (A) and absolute force tolerance (eV/A).
#: Truncation ~ h^2/6 |U'''| <= 1e-10/6 * ~1e3 eV/A^3 (stiff bonds) ~ 2e-8 eV/A;
#: rounding ~ 1e-16 * |E| / h ~ 1e-16 * 30 eV / 1e-5 A ~ 3e-10 eV/A.  Forces are ~1 eV/A.
FD_STEP = 1e-5
FD_TOL = 1e-6


@pytest.fixture(scope="module")
def small():
    """32 molecules, rc 5 A: box 10.2 A, all-pairs path."""
    model = WaterModel(rc=5.0)
    return model, generate_water(3, 32, seed=2, model=model, equilibration_steps=300, stride=20)


@pytest.fixture(scope="module")
def celled():
    """125 molecules, rc 4 A: box 16 A, 4 cells per edge (cell-list path)."""
    model = WaterModel(rc=4.0)
    return model, generate_water(1, 125, seed=7, model=model, equilibration_steps=200)


def _whole(s):
    """Positions with every molecule made whole again (O H H layout)."""
    p = s.positions.copy()
    box = s.lattice[0, 0]
    for h in (1, 2):
        p[h::3] -= box * np.round((p[h::3] - p[0::3]) / box)
    return p


def _brute_force_energy(model, pos, box):
    """Bonds + angles + shifted-force LJ over all intermolecular minimum-image pairs (numpy)."""
    n = len(pos)
    lj = dict(model.lj)
    eps1 = np.array([lj["O"][0] if k % 3 == 0 else lj["H"][0] for k in range(n)])
    sig1 = np.array([lj["O"][1] if k % 3 == 0 else lj["H"][1] for k in range(n)])
    i, j = np.triu_indices(n, 1)
    keep = i // 3 != j // 3
    i, j = i[keep], j[keep]
    d = pos[i] - pos[j]
    d -= box * np.round(d / box)
    r = np.sqrt((d * d).sum(1))
    eps, sig, rc = np.sqrt(eps1[i] * eps1[j]), 0.5 * (sig1[i] + sig1[j]), model.rc

    def u(x):
        return 4 * eps * ((sig / x) ** 12 - (sig / x) ** 6)

    def du(x):
        return -24 * eps * (2 * (sig / x) ** 12 - (sig / x) ** 6) / x
    e_lj = np.where(r < rc, u(r) - u(rc) - (r - rc) * du(rc), 0.0).sum()
    a, b = pos[1::3] - pos[0::3], pos[2::3] - pos[0::3]
    ra, rb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    theta = np.arccos((a * b).sum(1) / (ra * rb))
    e_b = 0.5 * model.k_bond * (((ra - model.r0) ** 2).sum() + ((rb - model.r0) ** 2).sum())
    e_a = 0.5 * model.k_angle * ((theta - math.radians(model.theta0)) ** 2).sum()
    return e_lj + e_b + e_a


def test_structures(small):
    model, structures = small
    assert len(structures) == 3
    for k, s in enumerate(structures):
        box = s.lattice[0, 0]
        assert s.index == k and s.natoms == 96
        assert list(s.elements[:6]) == ["O", "H", "H", "O", "H", "H"]
        np.testing.assert_array_equal(s.lattice, np.diag([box] * 3))
        assert box == pytest.approx((32 / 0.030) ** (1 / 3))
        assert np.all((s.positions >= 0) & (s.positions < box))
        assert "distatomenv.tools.synth.md" in s.comment and "seed=2" in s.comment
        # exact energy and forces of the written (wrapped) configuration
        energy, forces = model.energy_forces(_whole(s), box)
        assert energy == pytest.approx(s.energy, abs=1e-12)
        np.testing.assert_allclose(forces, s.forces, atol=1e-12)
        np.testing.assert_allclose(s.forces.sum(0), 0.0, atol=1e-11)     # Newton's third law
        # whole molecules near their equilibrium geometry
        p = _whole(s)
        np.testing.assert_allclose(np.linalg.norm(p[1::3] - p[0::3], axis=1), model.r0, atol=0.1)
    assert not np.array_equal(structures[0].positions, structures[1].positions)
    again = generate_water(1, 32, seed=2, model=model, equilibration_steps=300, stride=20)
    np.testing.assert_array_equal(again[0].positions, structures[0].positions)
    other = generate_water(1, 32, seed=3, model=model, equilibration_steps=300, stride=20)
    assert not np.array_equal(other[0].positions, structures[0].positions)


@pytest.mark.parametrize("case", ["small", "celled"])
def test_energy_matches_brute_force(case, request):
    model, structures = request.getfixturevalue(case)
    s = structures[0]
    p = _whole(s)
    assert model.energy_forces(p, s.lattice)[0] == pytest.approx(
        _brute_force_energy(model, p, s.lattice[0, 0]), abs=1e-10)


@pytest.mark.parametrize("case", ["small", "celled"])
def test_forces_are_negative_energy_gradient(case, request):
    """Central differences, step FD_STEP A, |F - F_fd| < FD_TOL eV/A, on O and H atoms."""
    model, structures = request.getfixturevalue(case)
    s = structures[-1]
    p = _whole(s)
    box = s.lattice[0, 0]
    rng = np.random.default_rng(0)
    atoms = np.concatenate([rng.choice(np.arange(0, s.natoms, 3), 3, replace=False),
                            rng.choice(np.arange(1, s.natoms, 3), 3, replace=False)])
    for i in atoms:
        for c in range(3):
            plus, minus = p.copy(), p.copy()
            plus[i, c] += FD_STEP
            minus[i, c] -= FD_STEP
            fd = -(model.energy_forces(plus, box)[0] - model.energy_forces(minus, box)[0]) \
                / (2 * FD_STEP)
            assert abs(fd - s.forces[i, c]) < FD_TOL, (case, i, c, fd, s.forces[i, c])


def test_energy_conservation_without_thermostat():
    """Velocity Verlet (gamma = 0): the total energy fluctuates by much less than
    the kinetic energy, the fluctuation shrinks ~dt^2, momentum is conserved."""
    ranges = {}
    for dt in (0.5, 0.25):
        md = WaterMD(64, seed=3, dt=dt)
        md.run(int(100 / dt), gamma=0.05)                 # Langevin equilibration
        p0 = (md.masses[:, None] * md.velocities).sum(0)
        total, kinetic = [], []
        for _ in range(25):
            md.run(int(5 / dt), gamma=0.0)
            total.append(md.energy + md.kinetic_energy())
            kinetic.append(md.kinetic_energy())
        ranges[dt] = np.ptp(total)
        assert ranges[dt] < 0.2 * np.std(kinetic), (dt, ranges[dt], np.std(kinetic))
        np.testing.assert_allclose((md.masses[:, None] * md.velocities).sum(0), p0, atol=1e-10)
    assert ranges[0.25] < ranges[0.5] / 2.5


def test_thermostat_temperature():
    md = WaterMD(64, seed=4, temperature=250.0, gamma=0.05)
    md.run(400)
    temps = []
    for _ in range(20):
        md.run(20)
        temps.append(md.instantaneous_temperature())
    assert np.mean(temps) == pytest.approx(250.0, rel=0.1)
    # kinetic energy and temperature use consistent units
    assert md.kinetic_energy() == pytest.approx(0.5 * (3 * 192 - 3) * KB_EV * temps[-1])
    assert ACCEL == pytest.approx(9.64853e-3, rel=1e-6)


def test_model_errors():
    with pytest.raises(ValueError, match="box edge 9.0000 A is shorter than 2 rc = 12.0 A"):
        WaterModel().energy_forces(np.zeros((3, 3)), 9.0)
    with pytest.raises(ValueError, match=r"positions must have shape \(3 M, 3\)"):
        WaterModel().energy_forces(np.zeros((4, 3)), 20.0)
    with pytest.raises(ValueError, match="rc must be a positive number"):
        WaterModel(rc=-1.0)
    with pytest.raises(ValueError, match="theta0 must be in"):
        WaterModel(theta0=190.0)
    with pytest.raises(ValueError, match="lj needs parameters for O and H"):
        WaterModel(lj=(("O", (0.01, 3.0)),))
    with pytest.raises(ValueError, match="n_molecules must be >= 1"):
        WaterMD(0)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        WaterMD(64, gamma=-1.0)


def test_write_water_dataset_and_compute(tmp_path):
    import distatomenv
    paths = write_water_dataset(tmp_path, n_structures=3, n_molecules=64, seed=1,
                                equilibration_steps=300)
    assert paths["sf_cutoff"] == 6.0 and paths["box"] == pytest.approx(12.8732, abs=1e-4)
    atoms = read_structures(paths["atomistic_data"])
    cg = read_structures(paths["cg_data"])
    assert [s.natoms for s in atoms] == [192] * 3 and [s.natoms for s in cg] == [64] * 3
    for a, c in zip(atoms, cg):
        assert set(c.elements) == {"Cm"} and c.energy == a.energy
        np.testing.assert_allclose(c.forces, a.forces[0::3] + a.forces[1::3] + a.forces[2::3],
                                   atol=1e-12)
        ref = coarse_grain_structure(a, find_molecules(a, "H-O=1.3"))
        np.testing.assert_allclose(c.positions, ref.positions, atol=1e-12)
        m = np.array([ATOMIC_MASS["O"], ATOMIC_MASS["H"], ATOMIC_MASS["H"]])
        p = _whole(a)[:3]
        com = (m[:, None] * p).sum(0) / m.sum()
        np.testing.assert_allclose(c.positions[0], com - a.lattice[0, 0] * np.floor(
            com / a.lattice[0, 0]), atol=1e-12)
    st = read_settings(paths["atomistic_nn"])
    assert st.elements == ["H", "O"] and st.sfset.n_sf("H") == 28 and st.sfset.n_sf("O") == 28
    st = read_settings(paths["cg_nn"])
    assert st.elements == ["Cm"] and st.sfset.n_sf("Cm") == 12
    with pytest.raises(FileExistsError, match="already exists"):
        write_water_dataset(tmp_path, 1, 64)
    # both descriptions run through compute (the scaling pass runs itself)
    s1 = distatomenv.compute(paths["atomistic_data"], neighbors="H-H=1,H-O=1,O-H=2,O-O=1",
                             out=tmp_path / "atomistic.zarr")
    assert s1.n_rows("H") == 384 and s1.n_rows("O") == 192
    s2 = distatomenv.compute(paths["cg_data"], neighbors="4", out=tmp_path / "cg.zarr")
    assert s2.n_rows("Cm") == 192


def test_fast_path(tmp_path):
    model = WaterModel(rc=5.0)
    r = write_water_fast(tmp_path, 500, n_molecules=32, seed=0, base_samples=2,
                         equilibration_steps=100, stride=10, model=model)
    assert r["n_structures"] == 6 and r["n_atoms"] == 576 and r["sf_cutoff"] == 5.1
    atoms = read_structures(r["atomistic_data"])
    cg = read_structures(r["cg_data"])
    assert len(atoms) == len(cg) == 6
    for k, (a, c) in enumerate(zip(atoms, cg)):
        energy, forces = model.energy_forces(_whole(a), a.lattice)
        # positions and forces are written with 10 decimals
        assert energy == pytest.approx(a.energy, abs=1e-7)
        np.testing.assert_allclose(forces, a.forces, atol=1e-7)
        np.testing.assert_allclose(c.forces, a.forces[0::3] + a.forces[1::3] + a.forces[2::3],
                                   atol=1e-9)
        assert c.energy == a.energy and c.natoms == 32
        if k:
            assert not np.allclose(a.positions, atoms[0].positions)
    assert read_settings(r["cg_nn"]).elements == ["Cm"]


def test_format_atoms_fixed():
    pos = np.array([[0.0, -0.0, 1.25], [12345.6789012345, -0.00000000004, 9.99999999999]])
    frc = np.array([[-1.5, 2.0, 3e-11], [-99999.0, 0.5, -7e-11]])
    text = format_atoms_fixed(pos, ["O", "Cm"], frc).decode()
    lines = text.splitlines()
    assert len(lines) == 2 and len({len(x) for x in lines}) == 1
    toks = lines[1].split()
    assert toks[0] == "atom" and toks[4] == "Cm" and toks[5:7] == ["0", "0"]
    np.testing.assert_allclose([float(t) for t in toks[1:4]], pos[1], rtol=0, atol=5.1e-11)
    np.testing.assert_allclose([float(t) for t in toks[7:10]], frc[1], rtol=0, atol=5.1e-11)
    assert lines[0].split()[1:4] == ["0.0000000000", "0.0000000000", "1.2500000000"]
    with pytest.raises(ValueError, match="forces hold values that do not fit"):
        format_atoms_fixed(pos, ["O", "H"], frc * 10)


def test_cli_synth(tmp_path, capsys):
    assert main(["synth", "water", "-o", str(tmp_path / "w"), "--structures", "2",
                 "--molecules", "64", "--equilibration", "100", "--stride", "10"]) == 0
    out = capsys.readouterr().out
    assert "water-like liquid, 2 structures, 384 atoms" in out and "cg data:" in out
    assert len(read_structures(tmp_path / "w" / "cg" / "input.data")) == 2
    assert main(["synth", "water", "-o", str(tmp_path / "f"), "--total-atoms", "400",
                 "--molecules", "64", "--structures", "2", "--equilibration", "50"]) == 0
    assert "3 structures, 576 atoms" in capsys.readouterr().out
    assert main(["synth", "lj", "-o", str(tmp_path / "lj"), "--structures", "2"]) == 0
    assert len(read_structures(tmp_path / "lj" / "input.data")) == 2


def test_lj_fast_path(tmp_path, capsys):
    from distatomenv.tools.synth import LJMixture, write_lj_fast
    r = write_lj_fast(tmp_path, 200, atoms_per_structure=64, seed=1, base_samples=2,
                      equilibration_sweeps=20, sweeps_between=2)
    assert r["n_structures"] == 4 and r["n_atoms"] == 256
    structures = read_structures(r["input.data"])
    model = LJMixture()
    for s in structures:
        energy, forces = model.energy_forces(s.positions, s.elements, s.lattice)
        assert energy == pytest.approx(s.energy, abs=1e-8)
        np.testing.assert_allclose(forces, s.forces, atol=1e-8)
    assert not np.allclose(structures[0].positions, structures[2].positions)
    assert read_settings(r["input.nn"]).elements == ["Ar", "Kr"]
    assert main(["synth", "lj", "-o", str(tmp_path / "cli"), "--total-atoms", "100",
                 "--structures", "1"]) == 0
    assert "2 Lennard-Jones structures of 64 atoms" in capsys.readouterr().out
