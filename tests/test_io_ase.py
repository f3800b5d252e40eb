"""Tests of trajectory conversion (distatomenv.io.ase, ``distatomenv convert``,
``--format ase`` of compute and coarse-grain)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from distatomenv.cli import main
from distatomenv.errors import ConversionError, DistatomenvError, MissingDependencyError
from distatomenv.io.ase import convert, iter_structures, parse_index
from distatomenv.io.inputdata import read_structures, write_structures
from distatomenv.io.structure import Structure

ase = pytest.importorskip("ase", reason="the optional package ase is not installed")
import ase.io  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

#: Positions and forces must survive conversion to this absolute tolerance.
TOL = 1e-10


def _frames(seed=0, sizes=(3, 5, 4)):
    """Frames with awkward numbers (17 significant digits, atoms outside the cell)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, n in enumerate(sizes):
        lattice = np.array([[9.0 + k, 0.0, 0.0], [1.25, 8.5, 0.0], [-0.5, 0.75, 10.0]])
        out.append(dict(symbols=list(rng.choice(["H", "C", "O"], size=n)),
                        positions=rng.uniform(-3, 12, size=(n, 3)) * np.pi,
                        forces=rng.normal(size=(n, 3)) / 3.0, energy=-float(k) - 1 / 7,
                        lattice=lattice))
    return out


def _write_extxyz(path, frames):
    """Extended XYZ written by hand with repr() numbers (exact in binary)."""
    with open(path, "w") as f:
        for fr in frames:
            n = len(fr["symbols"])
            lat = " ".join(repr(float(v)) for v in fr["lattice"].reshape(-1))
            f.write(f"{n}\nLattice=\"{lat}\" Properties=species:S:1:pos:R:3:forces:R:3 "
                    f"energy={fr['energy']!r} pbc=\"T T T\"\n")
            for s, r, F in zip(fr["symbols"], fr["positions"], fr["forces"]):
                f.write(f"{s} " + " ".join(repr(float(v)) for v in (*r, *F)) + "\n")


def test_extxyz_round_trip(tmp_path):
    frames = _frames()
    xyz = tmp_path / "traj.xyz"
    _write_extxyz(xyz, frames)
    out = convert(xyz, tmp_path / "input.data")
    got = read_structures(out)
    assert len(got) == 3
    for fr, s in zip(frames, got):
        assert list(s.elements) == fr["symbols"]
        np.testing.assert_allclose(s.positions, fr["positions"], rtol=0, atol=TOL)
        np.testing.assert_allclose(s.forces, fr["forces"], rtol=0, atol=TOL)
        np.testing.assert_allclose(s.lattice, fr["lattice"], rtol=0, atol=TOL)
        assert s.energy == pytest.approx(fr["energy"], abs=TOL)
        assert s.charge == 0 and np.all(s.charges == 0) and "traj.xyz frame" in s.comment
    # and back: the input.data written as extended XYZ by ASE reads the same
    images = []
    for s in got:
        a = ase.Atoms(list(s.elements), positions=s.positions, cell=s.lattice, pbc=True)
        a.calc = SinglePointCalculator(a, energy=s.energy, forces=s.forces)
        images.append(a)
    ase.io.write(tmp_path / "back.xyz", images, format="extxyz")
    again = read_structures(convert(tmp_path / "back.xyz", tmp_path / "again.data"))
    for a, b in zip(got, again):
        # ASE writes extended XYZ with 8 decimals
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-8)
        np.testing.assert_allclose(a.forces, b.forces, rtol=0, atol=1e-8)


def test_input_data_round_trip_and_index(tmp_path):
    rng = np.random.default_rng(1)
    structures = [Structure(index=k, line=0, comment=f"s{k}", lattice=np.diag([7.0, 8.0, 9.0]),
                            positions=rng.normal(size=(4, 3)) * 5, elements=["O", "H", "H", "C"],
                            charges=np.zeros(4), atom_energies=np.zeros(4),
                            forces=rng.normal(size=(4, 3)), energy=-k / 3.0)
                  for k in range(5)]
    write_structures(tmp_path / "input.data", structures)
    convert(tmp_path / "input.data", tmp_path / "copy.data", fmt="n2p2")
    for a, b in zip(structures, read_structures(tmp_path / "copy.data")):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.forces, b.forces)
        assert a.energy == b.energy and a.comment == b.comment
    for index, want in ((":", [0, 1, 2, 3, 4]), ("1:4", [1, 2, 3]), ("::2", [0, 2, 4]),
                        ("-1", [4]), ("2", [2]), ("-2:", [3, 4]), ("::-2", [4, 2, 0])):
        got = list(iter_structures(tmp_path / "input.data", index=index, fmt="n2p2"))
        assert [s.comment for s in got] == [f"s{k}" for k in want], index
        assert [s.index for s in got] == list(range(len(want)))
    # the same selection of an ASE trajectory (.traj)
    images = []
    for s in structures:
        a = ase.Atoms(list(s.elements), positions=s.positions, cell=s.lattice, pbc=True)
        a.calc = SinglePointCalculator(a, energy=s.energy, forces=s.forces)
        images.append(a)
    ase.io.write(tmp_path / "t.traj", images)
    got = read_structures(convert(tmp_path / "t.traj", tmp_path / "t.data", index="1::2"))
    assert len(got) == 2
    for s, ref in zip(got, (structures[1], structures[3])):
        np.testing.assert_allclose(s.positions, ref.positions, rtol=0, atol=TOL)
        np.testing.assert_allclose(s.forces, ref.forces, rtol=0, atol=TOL)
        assert s.energy == pytest.approx(ref.energy, abs=TOL)


def test_non_periodic_frame(tmp_path):
    a = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    a.calc = SinglePointCalculator(a, energy=-1.0, forces=[[0, 0, 0.5], [0, 0, -0.5]])
    ase.io.write(tmp_path / "h2.xyz", a, format="extxyz")
    (s,) = read_structures(convert(tmp_path / "h2.xyz", tmp_path / "h2.data"))
    assert s.lattice is None and s.energy == -1.0
    np.testing.assert_allclose(s.forces, [[0, 0, 0.5], [0, 0, -0.5]])


def test_errors(tmp_path):
    with pytest.raises(ConversionError, match=r"nothing\.xyz: file not found"):
        convert(tmp_path / "nothing.xyz", tmp_path / "o.data")
    bare = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    ase.io.write(tmp_path / "noforces.xyz", [bare, bare], format="extxyz")
    with pytest.raises(ConversionError, match=r"noforces\.xyz: frame 0 \(0-based\) has no forces"):
        convert(tmp_path / "noforces.xyz", tmp_path / "o.data")
    assert not (tmp_path / "o.data").exists() and not (tmp_path / "o.data.part").exists()
    slab = ase.Atoms("H", positions=[[0, 0, 0]], cell=[3, 3, 3], pbc=[True, True, False])
    slab.calc = SinglePointCalculator(slab, forces=[[0, 0, 0]])
    ase.io.write(tmp_path / "slab.traj", slab)
    with pytest.raises(ConversionError, match=r"slab\.traj: frame 0 \(0-based\) is periodic along "
                                              r"\[True, True, False\] only"):
        convert(tmp_path / "slab.traj", tmp_path / "o.data")
    flat = ase.Atoms("H", positions=[[0, 0, 0]], cell=[3, 3, 0], pbc=True)
    flat.calc = SinglePointCalculator(flat, forces=[[0, 0, 0]])
    ase.io.write(tmp_path / "flat.traj", flat)
    with pytest.raises(ConversionError, match=r"flat\.traj: frame 0 \(0-based\) is periodic but "
                                              r"its cell is singular"):
        convert(tmp_path / "flat.traj", tmp_path / "o.data")
    dummy = ase.Atoms("X", positions=[[0, 0, 0]])
    dummy.calc = SinglePointCalculator(dummy, forces=[[0, 0, 0]])
    ase.io.write(tmp_path / "dummy.traj", dummy)
    with pytest.raises(ConversionError, match=r"symbols \['X'\], which are not chemical elements"):
        convert(tmp_path / "dummy.traj", tmp_path / "o.data")
    (tmp_path / "bad.xyz").write_text("3\nhello\nH 0 0\n")
    with pytest.raises(ConversionError, match=r"bad\.xyz: ASE could not read it"):
        convert(tmp_path / "bad.xyz", tmp_path / "o.data")
    frames = _frames()
    _write_extxyz(tmp_path / "t.xyz", frames)
    with pytest.raises(ConversionError, match=r"no frames selected \(--index 5:\)"):
        convert(tmp_path / "t.xyz", tmp_path / "o.data", index="5:")
    with pytest.raises(DistatomenvError, match=r"--index 7: the file has only"):
        convert(tmp_path / "t.xyz", tmp_path / "o.data", index="7")
    with pytest.raises(DistatomenvError, match=r"--index -9: the file has only 3 frames"):
        convert(tmp_path / "t.xyz", tmp_path / "o.data", index="-9")
    for bad in ("a", "1:2:3:4", "1.5", "::0"):
        with pytest.raises(DistatomenvError, match=r"--index"):
            parse_index(bad)
    with pytest.raises(DistatomenvError, match=r"the output .* is the input file"):
        convert(tmp_path / "t.xyz", tmp_path / "t.xyz")


def test_missing_ase_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ase", None)
    monkeypatch.setitem(sys.modules, "ase.io", None)
    _write_extxyz(tmp_path / "t.xyz", _frames())
    with pytest.raises(MissingDependencyError, match=r"needs the optional package ase.*"
                                                     r"pip install \"distatomenv\[ase\]\""):
        convert(tmp_path / "t.xyz", tmp_path / "o.data")
    assert main(["convert", str(tmp_path / "t.xyz"), "-o", str(tmp_path / "o.data")]) == 2


def test_cli_convert_compute_and_coarse_grain(tmp_path, capsys):
    from distatomenv.tools.synth.md import WaterModel, generate_water, water_settings_text
    structures = generate_water(2, 32, seed=5, equilibration_steps=200, stride=20,
                                model=WaterModel(rc=5.0))
    images = []
    for s in structures:
        a = ase.Atoms(list(s.elements), positions=s.positions, cell=s.lattice, pbc=True)
        a.calc = SinglePointCalculator(a, energy=s.energy, forces=s.forces)
        images.append(a)
    xyz = tmp_path / "water.extxyz"
    ase.io.write(xyz, images, format="extxyz")
    (tmp_path / "input.nn").write_text(water_settings_text(cutoff=4.0))
    assert main(["convert", str(xyz), "-o", str(tmp_path / "c.data"), "--index", "-1"]) == 0
    assert "converted 1 structures (96 atoms)" in capsys.readouterr().out
    store = tmp_path / "s.zarr"
    assert main(["compute", str(xyz), "--format", "ase", "--neighbors", "1 1 2 1", "-o",
                 str(store)]) == 0
    out = capsys.readouterr().out
    assert f"-> {store}.input.data" in out and "192 atoms in 2 structures" in out
    assert main(["coarse-grain", str(xyz), "--format", "ase", "--index", "1", "-o",
                 str(tmp_path / "cg.data"), "--bond-cutoff", "H-O=1.3", "-q"]) == 0
    (cg,) = read_structures(tmp_path / "cg.data")
    assert cg.natoms == 32
    np.testing.assert_allclose(cg.forces.sum(0), structures[1].forces.sum(0), atol=1e-7)


def test_compute_format_ase_under_mpiexec_is_refused(tmp_path, monkeypatch, capsys):
    _write_extxyz(tmp_path / "t.xyz", _frames())
    monkeypatch.setenv("PMI_SIZE", "2")
    assert main(["compute", str(tmp_path / "t.xyz"), "--format", "ase", "--neighbors", "1",
                 "-o", str(tmp_path / "s.zarr")]) == 2
    assert "--format ase under mpiexec: convert first" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr.input.data").exists()


# ----------------------------------------------------------------------------- input.data -> ASE
def _records(tmp_path):
    """input.data with a periodic record (energy, charges, per-atom energies,
    two comment lines), a non-periodic one without energy, and a third."""
    rng = np.random.default_rng(7)
    structures = [
        Structure(index=0, line=0, comment="first\nsecond line", lattice=np.diag([7.0, 8.0, 9.0]),
                  positions=rng.normal(size=(3, 3)) * 4, elements=["O", "H", "H"],
                  charges=[-0.8, 0.4, 0.4], atom_energies=[-1.5, 0.25, 0.25],
                  forces=rng.normal(size=(3, 3)), energy=-3.0 / 7, charge=0.0),
        Structure(index=1, line=0, comment="", lattice=None,
                  positions=rng.normal(size=(2, 3)), elements=["H", "H"], charges=np.zeros(2),
                  atom_energies=np.zeros(2), forces=rng.normal(size=(2, 3))),
        Structure(index=2, line=0, comment="third", lattice=np.diag([5.0, 5.0, 5.0]),
                  positions=rng.normal(size=(1, 3)), elements=["C"], charges=np.zeros(1),
                  atom_energies=np.zeros(1), forces=rng.normal(size=(1, 3)), energy=1.0),
    ]
    path = tmp_path / "input.data"
    write_structures(path, structures)
    return path, structures


def _same(atoms, s):
    assert atoms.get_chemical_symbols() == list(s.elements)
    np.testing.assert_array_equal(atoms.get_positions(), s.positions)
    np.testing.assert_array_equal(atoms.get_forces(), s.forces)
    np.testing.assert_array_equal(atoms.get_initial_charges(), s.charges)
    assert atoms.info.get("comment", "") == s.comment
    if s.lattice is None:
        assert not atoms.pbc.any()
    else:
        assert atoms.pbc.all()
        np.testing.assert_array_equal(atoms.cell.array, s.lattice)


def test_read_yields_atoms(tmp_path):
    from ase.calculators.calculator import PropertyNotImplementedError
    from distatomenv.io.ase import read
    path, structures = _records(tmp_path)
    frames = list(read(path))
    assert len(frames) == 3
    for a, s in zip(frames, structures):
        _same(a, s)
    assert frames[0].get_potential_energy() == structures[0].energy
    np.testing.assert_array_equal(frames[0].get_potential_energies(), [-1.5, 0.25, 0.25])
    with pytest.raises(PropertyNotImplementedError):       # the record has no energy line
        frames[1].get_potential_energy()
    assert [a.info["comment"] for a in read(path, index="::2")] == ["first\nsecond line", "third"]
    assert [len(a) for a in read(path, index=-1)] == [1]
    assert [len(a) for a in read(path, index=slice(0, 2))] == [3, 2]
    with open(path, "rb") as f:                          # an open binary file too
        assert [len(a) for a in read(f)] == [3, 2, 1]
    with pytest.raises(DistatomenvError, match=r"--index 5: the file has only"):
        list(read(path, index=5))


def test_ase_io_reads_and_writes_input_data(tmp_path):
    """input.data is ASE's format "n2p2" (entry point ase.ioformats)."""
    from importlib.metadata import entry_points
    if not any(ep.name == "n2p2" for ep in entry_points(group="ase.ioformats")):
        pytest.skip("distatomenv is not installed with its entry points (pip install -e .)")
    from ase.io.formats import filetype, ioformats
    assert ioformats["n2p2"].modes == "rw"
    path, structures = _records(tmp_path)
    frames = ase.io.read(path, format="n2p2", index=":")
    for a, s in zip(frames, structures):
        _same(a, s)
    assert filetype(str(path)) == "n2p2"                # the name input.data is recognised
    assert len(ase.io.read(path)) == 1                   # ASE's default: the last frame
    assert [len(a) for a in ase.io.iread(path, index="1:")] == [2, 1]
    out = tmp_path / "copy.input.data"
    ase.io.write(out, frames)                            # *.input.data is n2p2 too
    assert out.read_text() == path.read_text()           # byte for byte
    ase.io.write(tmp_path / "one.data", frames[2], format="n2p2")
    (s,) = read_structures(tmp_path / "one.data")
    np.testing.assert_array_equal(s.forces, structures[2].forces)
    bare = ase.Atoms("H", positions=[[0, 0, 0]])
    with pytest.raises(ConversionError, match=r"frame 0 has no forces"):
        ase.io.write(tmp_path / "bad.data", bare, format="n2p2")


# ----------------------------------------------------------------------------- compute from memory
@pytest.fixture(scope="module")
def lj_frames(tmp_path_factory):
    from distatomenv.tools.synth import write_lj_dataset
    import distatomenv
    from stores import store_arrays
    d = tmp_path_factory.mktemp("ljatoms")
    paths = write_lj_dataset(d, n_structures=3, n_atoms=64, seed=2)
    store = distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=d / "file.zarr",
                                chunk_rows=16, threads=1)
    return paths, store_arrays(store.path)


def test_compute_from_atoms_equals_compute_from_file(lj_frames, tmp_path):
    import distatomenv
    from distatomenv.io.ase import read
    from stores import assert_same_store
    paths, reference = lj_frames
    frames = list(read(paths["input.data"]))
    out = tmp_path / "mem.zarr"
    rd = distatomenv.compute(frames, settings=paths["input.nn"], neighbors="2 2 2 2", out=out,
                             chunk_rows=16, threads=1)
    assert_same_store(out, reference)
    converted = tmp_path / "mem.zarr.input.data"
    assert converted.read_bytes() == open(paths["input.data"], "rb").read()
    assert rd.meta["inputs"]["data"]["path"] == str(converted)
    # a generator streams into the same units; a trajectory ASE read works the same
    gen = (a for a in read(paths["input.data"]))
    distatomenv.compute(gen, settings=paths["input.nn"], neighbors="2 2 2 2",
                        out=tmp_path / "gen.zarr", chunk_rows=16, threads=1)
    assert_same_store(tmp_path / "gen.zarr", reference)
    # one Atoms is one structure
    one = distatomenv.compute(frames[0], settings=paths["input.nn"], neighbors="2 2 2 2",
                              out=tmp_path / "one.zarr", chunk_rows=16, threads=1)
    assert one.layout.n_structures == 1


def test_compute_from_atoms_errors(lj_frames, tmp_path):
    import distatomenv
    from distatomenv.io.ase import read
    paths, _ = lj_frames
    frames = list(read(paths["input.data"]))
    run = dict(settings=paths["input.nn"], neighbors="2 2 2 2", chunk_rows=16, threads=1)
    bare = frames[1].copy()                              # copy() drops the calculator
    with pytest.raises(ConversionError, match=r"<atoms>: frame 1 has no forces"):
        distatomenv.compute([frames[0], bare, frames[2]], out=tmp_path / "a.zarr", **run)
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "a.zarr.input.data").exists()
    slab = frames[2].copy()
    slab.calc = SinglePointCalculator(slab, forces=frames[2].get_forces())
    slab.pbc = [True, True, False]
    with pytest.raises(ConversionError, match=r"frame 2 is periodic along \[True, True, False\]"):
        distatomenv.compute(frames[:2] + [slab], out=tmp_path / "b.zarr", **run)
    with pytest.raises(DistatomenvError, match=r"frame 1 is a str, not an ase.Atoms"):
        distatomenv.compute([frames[0], "input.data"], out=tmp_path / "c.zarr", **run)
    with pytest.raises(DistatomenvError, match=r"cannot run under MPI"):
        distatomenv.compute(frames, out=tmp_path / "d.zarr", backend="mpi", **run)
    with pytest.raises(ConversionError, match=r"no frames to write"):
        distatomenv.compute([], out=tmp_path / "e.zarr", **run)
    with pytest.raises(DistatomenvError, match=r"give converted=PATH|write them to input.data"):
        distatomenv.compute(frames, out="s3://bucket/run.zarr", **run)
