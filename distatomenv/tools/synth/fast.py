"""Large benchmark inputs, fast: exact forces, many distinct structures, quick writing.

Running molecular dynamics or Monte Carlo long enough for 10^7 atoms of
independent samples takes hours; benchmarks need distinct structures with
exact forces, not independent samples.  So a few samples of one simulation
are turned into many structures:

* each structure written is a sample under a random symmetry of the cube
  (axis permutation and sign flips, 48 in all), a random translation and a
  small Gaussian displacement of every atom;
* its energy and forces are recomputed exactly for those positions, so every
  structure is distinct and its forces are the negative energy gradient;
* atom lines are formatted fixed-point in one parallel numba pass
  (:func:`format_atoms_fixed`), the slow part of writing input.data in Python.

:func:`write_replicas` does this for any model (the water-like liquid of
:mod:`.md` uses it in :func:`~distatomenv.tools.synth.md.write_water_fast`);
:func:`write_lj_fast` for the Lennard-Jones liquid of :mod:`.lj`.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numba
import numpy as np

from ...io.structure import Structure

__all__ = ["FIXED_WIDTH", "FIXED_DECIMALS", "CUBE_PERMUTATIONS", "format_atoms_fixed",
           "write_replicas", "write_lj_fast"]

#: Axis permutations; with the 8 sign flips they make the 48 symmetries of the cube.
CUBE_PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))

#: Field width and decimals of the fixed-point numbers written by the fast path.
FIXED_WIDTH = 17
FIXED_DECIMALS = 10


@numba.njit(cache=True, inline="always")
def _put_fixed(buf, end, v, decimals, p10):
    """Write v right-aligned, with ``decimals`` decimals, ending before buf[end]
    (the caller has filled the field with spaces and checked |v|)."""
    neg = v < 0.0
    scaled = np.int64(math.floor(abs(v) * p10 + 0.5))
    k = end - 1
    for _ in range(decimals):
        buf[k] = 48 + scaled % 10
        scaled //= 10
        k -= 1
    buf[k] = 46                      # '.'
    k -= 1
    buf[k] = 48 + scaled % 10
    scaled //= 10
    k -= 1
    while scaled > 0:
        buf[k] = 48 + scaled % 10
        scaled //= 10
        k -= 1
    if neg:
        buf[k] = 45                  # '-'


@numba.njit(cache=True, parallel=True)
def _format_atoms(pos, sym, forces, buf, width, decimals):
    """Atom lines ``atom X Y Z EE 0 0 FX FY FZ`` into buf (uint8 (n * linelength,))."""
    n = pos.shape[0]
    line = 5 + 3 * (width + 1) + 2 + 4 + 3 * (width + 1) + 1
    p10 = 10.0 ** decimals
    for i in numba.prange(n):
        o = i * line
        for k in range(line):
            buf[o + k] = 32
        buf[o] = 97      # 'atom'
        buf[o + 1] = 116
        buf[o + 2] = 111
        buf[o + 3] = 109
        c = o + 5
        for d in range(3):
            _put_fixed(buf, c + width, pos[i, d], decimals, p10)
            c += width + 1
        buf[c] = sym[i, 0]
        buf[c + 1] = sym[i, 1]
        c += 3
        buf[c] = 48      # '0 0' : charge and atomic energy
        buf[c + 2] = 48
        c += 4
        for d in range(3):
            _put_fixed(buf, c + width, forces[i, d], decimals, p10)
            c += width + 1
        buf[o + line - 1] = 10


def format_atoms_fixed(positions, symbols, forces, width: int = FIXED_WIDTH,
                       decimals: int = FIXED_DECIMALS) -> bytes:
    """The ``atom`` lines of input.data, fixed-point, in one fast numba pass.

    positions, forces : float (n, 3); symbols : str (n,), 1 or 2 characters.
    Numbers are written with ``decimals`` decimals in fields of ``width``
    characters (absolute rounding error 0.5e-``decimals``); charge and atomic
    energy are written as 0.  ValueError when a number does not fit.
    """
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    frc = np.ascontiguousarray(forces, dtype=np.float64)
    limit = 10.0 ** (width - decimals - 2) - 10.0 ** -decimals
    for name, a in (("positions", pos), ("forces", frc)):
        if a.size and not (np.isfinite(a).all() and np.abs(a).max() < limit):
            raise ValueError(f"{name} hold values that do not fit {width} characters with "
                             f"{decimals} decimals (|x| < {limit:g})")
    sym = np.frombuffer(np.asarray(symbols, dtype="S2").tobytes(), dtype=np.uint8).reshape(-1, 2)
    sym = np.where(sym == 0, 32, sym).astype(np.uint8)
    line = 5 + 3 * (width + 1) + 2 + 4 + 3 * (width + 1) + 1
    buf = np.empty(len(pos) * line, dtype=np.uint8)
    _format_atoms(pos, sym, frc, buf, width, decimals)
    return buf.tobytes()


def write_replicas(out, bases, box: float, symbols, energy_forces, n_structures: int, rng, *,
                   jitter: float = 0.01, comment: str = "", derived=None, progress=None) -> int:
    """Write ``n_structures`` records to the binary file ``out`` (input.data).

    bases : list of float (n, 3) positions (A) in a cubic box of edge ``box``
        (molecules whole if the model needs it); structure k uses bases[k % len].
    symbols : str (n,) element symbols.
    energy_forces : callable(positions) -> (energy in eV, float (n, 3) forces
        in eV/A), exact for the positions given (any periodic image).
    rng : numpy Generator for the symmetries, translations and jitter.
    jitter : standard deviation of the displacement of every atom (A).
    derived : optional (file, fn) writing a second description of the same
        structure, fn(Structure) -> (positions, symbols, forces) (e.g. the CG
        sites), with the same comment, cell and energy.
    progress : optional callable(structures, atoms).
    Returns the number of atoms written to ``out``.
    """
    box = float(box)
    lattice = "".join(f"lattice {v[0]:24.16E} {v[1]:24.16E} {v[2]:24.16E}\n"
                      for v in np.diag(np.full(3, box)))
    total = 0
    for k in range(int(n_structures)):
        base = bases[k % len(bases)]
        perm = CUBE_PERMUTATIONS[rng.integers(6)]
        flip = rng.choice([-1.0, 1.0], size=3)
        p = base[:, perm] * flip + rng.uniform(0, box, size=3)
        p = np.ascontiguousarray(p + rng.normal(scale=jitter, size=p.shape))
        energy, forces = energy_forces(p)
        wrapped = p - box * np.floor(p / box)
        wrapped[(wrapped >= box) | (wrapped < 0)] = 0.0
        head = (f"begin\ncomment {comment} structure {k + 1}/{n_structures} (base sample "
                f"{k % len(bases) + 1})\n" + lattice).encode()
        tail = f"energy {energy:24.16E}\ncharge {0.0:24.16E}\nend\n".encode()
        out.write(head)
        out.write(format_atoms_fixed(wrapped, symbols, forces))
        out.write(tail)
        n = len(p)
        total += n
        if derived is not None:
            f2, fn = derived
            s = Structure(index=k, line=0, comment="", lattice=np.diag(np.full(3, box)),
                          positions=wrapped, elements=symbols, charges=np.zeros(n),
                          atom_energies=np.zeros(n), forces=forces, energy=energy)
            pos2, sym2, frc2 = fn(s)
            f2.write(head)
            f2.write(format_atoms_fixed(pos2, sym2, frc2))
            f2.write(tail)
        if progress is not None:
            progress(1, n)
    return total


def write_lj_fast(directory, n_atoms: int, atoms_per_structure: int = 1000, seed: int = 0, *,
                  base_samples: int = 10, jitter: float = 0.01, sf_cutoff: float | None = None,
                  overwrite: bool = False, progress=None, **kwargs) -> dict:
    """The Lennard-Jones data set of :mod:`.lj` with at least ``n_atoms`` atoms, fast.

    ``base_samples`` Monte Carlo samples of ``atoms_per_structure`` atoms
    (:func:`~distatomenv.tools.synth.lj.generate_lj`, ``**kwargs``) become as many
    structures as needed (see :func:`write_replicas`).  Writes
    ``input.data`` and ``input.nn`` into ``directory``.

    Returns dict ``{"input.data": Path, "input.nn": Path, "n_structures",
    "n_atoms", "box", "seconds"}``.
    """
    from .lj import (DEFAULT_ELEMENTS, DEFAULT_SF_CUTOFF, LJMixture, generate_lj, lj_settings_text,
                     output_paths)
    t0 = time.perf_counter()
    paths = output_paths(directory, overwrite)
    directory = Path(os.fspath(directory))
    per = int(atoms_per_structure)
    n_structures = max(1, -(-int(n_atoms) // per))
    base = generate_lj(int(base_samples), per, seed=seed, **kwargs)
    box = float(base[0].lattice[0, 0])
    elements = kwargs.get("elements", DEFAULT_ELEMENTS)
    model = LJMixture(elements, kwargs.get("rc_lj", 7.0), kwargs.get("parameters"))
    symbols = base[0].elements
    types = model.types(symbols)
    rc = float(min(DEFAULT_SF_CUTOFF if sf_cutoff is None else sf_cutoff,
                   math.floor(50.0 * box) / 100.0))

    def energy_forces(p):
        return model.energy_forces(p, types, np.full(3, box))
    directory.mkdir(parents=True, exist_ok=True)
    with open(paths["input.data"], "wb") as f:
        write_replicas(f, [s.positions for s in base], box, symbols, energy_forces, n_structures,
                       np.random.default_rng([seed, 2]), jitter=jitter,
                       comment=f"distatomenv.tools.synth.lj fast Lennard-Jones liquid (seed {seed})",
                       progress=progress)
    desc = (f"Data set: {n_structures} structures of {per} atoms, box {box:.6f} A, seed {seed}, "
            f"{base_samples} Monte Carlo samples under cube symmetries, translations and "
            f"{jitter} A jitter.")
    paths["input.nn"].write_text(lj_settings_text(elements, cutoff=rc, description=desc))
    return {**paths, "n_structures": n_structures, "n_atoms": n_structures * per, "box": box,
            "seconds": time.perf_counter() - t0}
