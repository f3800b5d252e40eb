"""Trajectories in any format ASE reads, as n2p2 ``input.data``.

An optional extra: ``pip install "distatomenv[ase]"`` (ase >= 3.23).  ASE is
imported lazily, inside the functions here, so the rest of distatomenv works
without it; calling them without ASE raises
:class:`~distatomenv.errors.MissingDependencyError` saying how to install it.

Formats: whatever :func:`ase.io.iread` reads with forces, for example
extended XYZ (``extxyz``), VASP ``OUTCAR`` (``vasp-out``), LAMMPS text dumps
with ``fx fy fz`` columns (``lammps-dump-text``; give the dump an ``element``
or ``mass`` column, or ASE maps LAMMPS type k to the element of atomic number k) and ASE
trajectories (``traj``).  ASE guesses the format from the file name unless
it is given.

Each frame becomes one input.data record:

* ``lattice``: the cell rows, when the frame is periodic in all three
  directions; no lattice when it is periodic in none.  n2p2 knows nothing
  in between, so a partly periodic frame is an error.
* positions, element symbols, forces (``atoms.get_forces()``; a frame
  without forces is an error), the potential energy
  (``atoms.get_potential_energy()``; no ``energy`` line when there is none),
  initial charges (0 by default) and their sum as the total charge, and
  per-atom energies when the calculator has them (else 0).
* units are not converted: ASE's eV and Angstrom for the formats it converts.

Conversion streams frame by frame (ASE's extended-XYZ reader first scans the
file for frame positions, then parses one frame at a time), so memory does
not grow with the trajectory.  Parallel indexing of large inputs is a
property of input.data (byte ranges, :func:`distatomenv.io.index.index_data`):
convert once, then compute in parallel.

The other way, and in memory:

* :func:`read` yields the structures of an input.data as :class:`ase.Atoms`
  (a SinglePointCalculator holds the forces, the energy when the record has
  one and the per-atom energies when any is non-zero; initial charges are the
  atomic charges; ``info["comment"]`` the comment).
* :func:`write` writes ase.Atoms (any iterable, or one) as input.data, and
  ``distatomenv.compute(list_of_atoms, ...)`` computes a store from frames in
  memory (they are written to input.data beside the store first,
  :func:`write_for_store`).
* input.data is the ASE I/O format ``"n2p2"`` (:mod:`.ase_format`, registered
  with the ``ase.ioformats`` entry point when distatomenv is installed):
  ``ase.io.read("input.data", index=":")`` (the name ``input.data`` or
  ``*.input.data`` is recognised; else give ``format="n2p2"``) and
  ``ase.io.write("input.data", images, format="n2p2")`` go through
  :func:`read_n2p2` and :func:`write_n2p2`.
"""
from __future__ import annotations

import io
import itertools
import math
import os

import numpy as np

from ..errors import ConversionError, DistatomenvError, MissingDependencyError
from .files import replacing
from .inputdata import iter_structures as iter_n2p2, write_structures
from .structure import SINGULAR_CELL_TOL, Structure

__all__ = ["ase_available", "parse_index", "atoms_to_structure", "iter_structures", "convert",
           "structure_to_atoms", "read", "write", "atoms_structures", "write_for_store",
           "read_n2p2", "write_n2p2"]

_INSTALL = ('pip install "distatomenv[ase]"  (or: pip install "ase>=3.23")')


def _ase_io():
    try:
        import ase.io
    except ImportError as exc:
        raise MissingDependencyError(f"reading other trajectory formats needs the optional "
                                     f"package ase, which is not installed ({exc}); install it "
                                     f"with: {_INSTALL}") from None
    return ase.io


def ase_available() -> bool:
    """Whether ``import ase`` works."""
    import importlib.util
    return importlib.util.find_spec("ase") is not None


def parse_index(index) -> slice | int:
    """ASE-style frame selection: ``":"``, ``"3"``, ``"-1"``, ``"0:100:2"``,
    or an int / slice, to an int or a slice."""
    if index is None:
        return slice(None)
    if isinstance(index, (int, np.integer)):
        return int(index)
    if isinstance(index, slice):
        return index
    text = str(index).strip()
    try:
        if ":" not in text:
            return int(text)
        parts = text.split(":")
        if len(parts) > 3:
            raise ValueError
        vals = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
    except ValueError:
        raise DistatomenvError(f"--index: found '{text}', expected a frame number or a slice "
                               "START:STOP:STEP such as ':', '-1' or '0:100:10'") from None
    if vals[2] == 0:
        raise DistatomenvError(f"--index '{text}': the step of a slice cannot be 0")
    return slice(*vals)


def _select(items, index, count=None):
    """Apply an int / slice to an iterator, streaming when it can."""
    if isinstance(index, int):
        if index < 0:
            items = list(items)
            if -index > len(items):
                raise DistatomenvError(f"--index {index}: the file has only {len(items)} frames")
            return iter([items[index]])
        for k, it in enumerate(items):
            if k == index:
                return iter([it])
        raise DistatomenvError(f"--index {index}: the file has only {index if count is None else count} "
                               "frames or fewer")
    start, stop, step = index.start, index.stop, index.step
    if all(v is None or v >= 0 for v in (start, stop)) and (step is None or step > 0):
        return itertools.islice(items, start, stop, step)
    return iter(list(items)[index])


def atoms_to_structure(atoms, index: int = 0, path: str = "", frame: str | None = None,
                       comment: str | None = None) -> Structure:
    """One :class:`ase.Atoms` (with a calculator holding forces) as a Structure.

    index : the structure's 0-based index in its output.
    path, frame : the source file and a description of the frame, for messages.
    comment : the record's comment (default: where the frame came from).
    Raises ConversionError for missing forces, partial periodicity, a singular
    cell or unknown element symbols.
    """
    from ..elements import ATOMIC_NUMBER
    where = frame or f"frame {index}"
    path = os.fspath(path) if path else "<atoms>"
    pbc = np.asarray(atoms.get_pbc(), dtype=bool)
    if pbc.all():
        lattice = np.array(atoms.get_cell(complete=False).array, dtype=np.float64)
        det = abs(float(np.linalg.det(lattice)))
        scale = float(np.prod(np.linalg.norm(lattice, axis=1)))
        if not det > SINGULAR_CELL_TOL * scale:
            raise ConversionError(path, None, f"{where} is periodic but its cell is singular "
                                              f"(|det| = {det:.6g}); n2p2 needs 3 independent "
                                              "lattice vectors")
    elif not pbc.any():
        lattice = None
    else:
        raise ConversionError(path, None, f"{where} is periodic along {pbc.tolist()} only; "
                                          "n2p2's input.data is periodic in all three directions "
                                          "or in none (set atoms.pbc accordingly)")
    symbols = atoms.get_chemical_symbols()
    bad = sorted({s for s in symbols if s not in ATOMIC_NUMBER})
    if bad:
        raise ConversionError(path, None, f"{where} has atoms with symbols {bad}, which are not "
                              "chemical elements")
    forces = None
    if atoms.calc is not None:
        try:
            forces = atoms.get_forces()
        except Exception:                       # PropertyNotImplementedError, RuntimeError...
            forces = None
    if forces is None and "forces" in atoms.arrays:
        forces = atoms.arrays["forces"]
    if forces is None:
        raise ConversionError(path, None, f"{where} has no forces (ASE found no forces for it); "
                                          "input.data needs the force on every atom")
    energy = math.nan
    atom_energies = np.zeros(len(atoms))
    if atoms.calc is not None:
        try:
            energy = float(atoms.get_potential_energy())
        except Exception:
            energy = math.nan
        try:
            atom_energies = np.asarray(atoms.get_potential_energies(), dtype=np.float64)
        except Exception:
            atom_energies = np.zeros(len(atoms))
    charges = np.asarray(atoms.get_initial_charges(), dtype=np.float64)
    if comment is None:
        comment = f"converted by distatomenv from {os.path.basename(path)} {where}"
    s = Structure(index=index, line=0, comment=comment, lattice=lattice,
                  positions=np.array(atoms.get_positions(), dtype=np.float64),
                  elements=np.array(symbols), charges=charges, atom_energies=atom_energies,
                  forces=np.array(forces, dtype=np.float64), energy=energy,
                  charge=float(charges.sum()), path=path)
    for name in ("positions", "forces", "charges", "atom_energies"):
        if not np.isfinite(getattr(s, name)).all():
            raise ConversionError(path, None, f"{where}: {name} hold non-finite values")
    return s


def iter_structures(path, index=":", fmt: str | None = None):
    """Yield the frames of a trajectory as Structures, one at a time.

    path : any file ASE reads (or input.data with ``fmt="n2p2"``).
    index : ASE-style frame selection (``":"``, ``"-1"``, ``"0:100:10"``).
    fmt : ASE format name (``"extxyz"``, ``"vasp-out"``, ``"lammps-dump-text"``,
        ``"traj"``, ...), None to let ASE guess from the name, or ``"n2p2"``.
    """
    path = os.fspath(path)
    sel = parse_index(index)
    if fmt == "n2p2":
        for k, s in enumerate(_select(iter_n2p2(path), sel)):
            s.index = k
            yield s
        return
    aio = _ase_io()
    if not os.path.exists(path):
        raise ConversionError(path, None, "file not found")
    try:
        frames = aio.iread(path, index=":", format=fmt)
        shown = "" if index in (None, ":") else f" of those selected by --index {index}"
        count = 0
        for k, atoms in enumerate(_select(frames, sel)):
            count += 1
            yield atoms_to_structure(atoms, k, path, f"frame {k} (0-based{shown})")
    except DistatomenvError:
        raise
    except Exception as exc:                     # ASE's own parse errors
        raise ConversionError(path, None, f"ASE could not read it"
                              f"{'' if fmt is None else f' as {fmt}'}: "
                              f"{type(exc).__name__}: {exc}") from exc
    if count == 0:
        raise ConversionError(path, None, f"no frames selected (--index {index})")


def convert(in_path, out_path, index=":", fmt: str | None = None, progress=None) -> str:
    """Convert a trajectory to n2p2's ``input.data``; returns ``out_path``.

    in_path : any file ASE reads with forces, or input.data (``fmt="n2p2"``).
    out_path : input.data to write (replaced); written as ``out_path.part``
        and renamed when complete, so a failure never leaves a partial file.
    index, fmt : see :func:`iter_structures`.
    progress : optional callable(structures, atoms) after each frame.
    """
    out_path = os.fspath(out_path)
    if os.path.abspath(out_path) == os.path.abspath(os.fspath(in_path)):
        raise DistatomenvError(f"convert: the output {out_path} is the input file")
    with replacing(out_path) as f:
        for s in iter_structures(in_path, index=index, fmt=fmt):
            write_structures(f, [s])
            if progress is not None:
                progress(1, s.natoms)
    return out_path


# ----------------------------------------------------------------------------- the other way
def structure_to_atoms(s: Structure):
    """One input.data record as an :class:`ase.Atoms`.

    Positions as written in the file (not wrapped into the cell); the cell and
    full periodicity when the record has a lattice, else none; initial charges
    from the atomic charges; a SinglePointCalculator holding the forces, the
    energy (when the record has an ``energy`` line) and the per-atom energies
    (when any is non-zero); ``info["comment"]`` the comment, when there is one.
    """
    try:
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator
    except ImportError:
        _ase_io()                                # raises the clear error
        raise
    atoms = Atoms(symbols=[str(e) for e in s.elements], positions=s.positions.copy(),
                  cell=None if s.lattice is None else s.lattice.copy(), pbc=s.periodic)
    atoms.set_initial_charges(s.charges.copy())
    results = {"forces": s.forces.copy()}
    if math.isfinite(s.energy):
        results["energy"] = s.energy
    if np.any(s.atom_energies != 0):
        results["energies"] = s.atom_energies.copy()
    atoms.calc = SinglePointCalculator(atoms, **results)
    if s.comment:
        atoms.info["comment"] = s.comment
    return atoms


def read(path, index=":"):
    """Yield the structures of an n2p2 input.data as :class:`ase.Atoms`, one at a time.

    path : a path, or a binary file open at its start (a gzip file, for instance).
    index : frame selection as in ASE: ``":"`` (all, the default), ``"-1"``,
        ``"0:100:10"``, an int or a slice.  Selections that count from the end
        hold the structures in memory; the others stream.
    See :func:`structure_to_atoms` for what each Atoms holds.
    """
    if not hasattr(path, "read"):
        path = os.fspath(path)
    for s in _select(iter_n2p2(path), parse_index(index)):
        yield structure_to_atoms(s)


def atoms_structures(images, path: str = ""):
    """Yield the Structures of ``images``: an iterable of :class:`ase.Atoms` (or
    one Atoms; :class:`~distatomenv.io.structure.Structure` items pass through),
    consumed one at a time.  A frame that cannot be converted (no forces, a
    partly periodic or singular cell, ...) is a ConversionError naming its
    0-based index in ``images``; ``path`` names the source in messages (default
    ``<atoms>``).  An Atoms's ``info["comment"]`` becomes the record's comment
    (none without it), so input.data read by :func:`read` is written back byte
    for byte."""
    if hasattr(images, "get_positions"):          # one Atoms
        images = [images]
    try:
        frames = iter(images)
    except TypeError:
        raise DistatomenvError(f"expected ase.Atoms or an iterable of them, got "
                               f"{type(images).__name__}") from None
    for k, atoms in enumerate(frames):
        if isinstance(atoms, Structure):
            yield atoms
            continue
        if not hasattr(atoms, "get_positions"):
            raise DistatomenvError(f"frame {k} is a {type(atoms).__name__}, not an ase.Atoms")
        comment = atoms.info.get("comment") if isinstance(atoms.info, dict) else None
        yield atoms_to_structure(atoms, k, path, f"frame {k}",
                                 comment=comment if isinstance(comment, str) else "")


def write(path, images) -> str:
    """Write ``images`` (ase.Atoms, see :func:`atoms_structures`) as n2p2's
    input.data at ``path``; returns ``path``.  Written as ``path.part`` and
    renamed when complete: a failure (a frame without forces) leaves no file."""
    path = os.fspath(path)
    count = 0
    with replacing(path) as f:
        for s in atoms_structures(images):
            write_structures(f, [s])
            count += 1
        if count == 0:
            raise ConversionError("<atoms>", None, "no frames to write")
    return path


def write_for_store(images, out, converted=None) -> str:
    """The input.data that ``distatomenv.compute`` reads for frames held in
    memory: ``images`` written to ``converted`` (default ``STORE.input.data``
    beside the store ``out``, like ``distatomenv compute --format ase``);
    returns its path.  A store on an object store (a URL) needs ``converted``."""
    if converted is None:
        store = os.fspath(out).rstrip("/\\")
        if "://" in store:
            raise DistatomenvError(f"compute from ase.Atoms into {store}: give converted=PATH, "
                                   "a local input.data for the frames")
        converted = store + ".input.data"
    return write(converted, images)


def convert_for_store(traj, out, *, converted=None, index=":", fmt=None, settings=None,
                      scaling=None):
    """``distatomenv compute --format ase``: convert the trajectory ``traj`` to
    the input.data that compute reads; returns ``(data, settings, scaling)``.

    The input.data goes to ``converted`` (default ``STORE.input.data`` beside
    the store ``out``; for an object-store URL, ``<name>.input.data`` beside the
    trajectory).  input.nn and scaling.data default to the ones beside the
    trajectory (scaling.data only where there is one).
    """
    store = os.fspath(out).rstrip("/\\")
    if "://" in store:                   # an object-store URL: convert beside the input
        store = os.path.join(os.path.dirname(os.path.abspath(traj)), store.rsplit("/", 1)[-1])
    data = converted or store + ".input.data"
    convert(traj, data, index=index, fmt=fmt)
    here = os.path.dirname(os.path.abspath(traj))
    settings = settings or os.path.join(here, "input.nn")
    if scaling is None and os.path.exists(os.path.join(here, "scaling.data")):
        scaling = os.path.join(here, "scaling.data")
    return data, settings, scaling


# ----------------------------------------------------------------------------- ASE's plugin API
def read_n2p2(fd, index=-1):
    """ASE's reader of the ``n2p2`` format (an open binary file; see :mod:`.ase_format`)."""
    yield from read(fd, -1 if index is None else index)


def write_n2p2(fd, images):
    """ASE's writer of the ``n2p2`` format (an open binary file; see :mod:`.ase_format`)."""
    text = fd if isinstance(fd, io.TextIOBase) else io.TextIOWrapper(
        fd, encoding="utf-8", newline="\n")
    try:
        for s in atoms_structures(images, getattr(fd, "name", "") or ""):
            write_structures(text, [s])
        text.flush()
    finally:
        if text is not fd:
            text.detach()                         # leave fd open for ASE to close
