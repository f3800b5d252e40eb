"""Lennard-Jones configurations with exact forces: distatomenv's built-in data set.

A binary noble-gas liquid (argon and krypton by default) in a periodic cubic
box, sampled by Metropolis Monte Carlo and written as an n2p2 ``input.data``
with a matching ``input.nn``.  ``distatomenv demo`` uses it, and tests use it
wherever a realistic data set with exact forces is needed.

Physics
-------
Units are Angstrom (lengths), eV (energies), eV/Angstrom (forces) and Kelvin
(temperature, with k_B = :data:`KB_EV`).

Pair potential: Lennard-Jones, ``U(r) = 4 eps ((sigma/r)^12 - (sigma/r)^6)``,
in its *shifted-force* form truncated at ``rc``::

    U_sf(r) = U(r) - U(rc) - (r - rc) U'(rc)      for r < rc,   0 otherwise.

Energy and force both go continuously to zero at ``rc``, so the total energy
is a C^1 function of the positions and the forces written to input.data are
exactly (to rounding) its negative gradient.  Like pairs use
:data:`LJ_PARAMETERS`; unlike pairs use Lorentz-Berthelot mixing,
``sigma_ab = (sigma_a + sigma_b) / 2`` and ``eps_ab = sqrt(eps_a eps_b)``.

Periodicity: orthorhombic (here cubic) boxes with the minimum-image
convention, valid because every box edge is at least ``2 rc``: at most one
image of each atom lies within ``rc``, so the minimum-image energy equals the
full periodic sum.

Sampling: atoms start on a jittered simple-cubic lattice, element identities
are shuffled over the sites, then Metropolis MC with single-atom moves runs at
the given temperature (an adaptive maximum displacement during
equilibration, fixed afterwards), and a configuration is kept every
``sweeps_between`` sweeps.  All random numbers come from
``numpy.random.default_rng(seed)`` and are passed into the numba kernels, so
the same seed gives bit-identical output on a given platform.

Default state point: 50/50 Ar/Kr, T = 115 K, 0.0185 atoms/A^3 (reduced
T* = kT/eps_ArKr = 0.80, rho* = rho sigma_ArKr^3 = 0.79: a dense liquid),
rc = 7.0 A (2.06 sigma_Ar, 1.94 sigma_Kr; small because the default 64-atom
box is only 15.1 A wide).  The matching symmetry functions use rc = 6.0 A.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numba
import numpy as np

from ...descriptors.neighbors import min_image
from ...elements import ATOMIC_NUMBER, sort_by_atomic_number
from ...io.inputdata import write_structures
from ...io.structure import Structure
from .settings import settings_text

__all__ = [
    "KB_EV",
    "LJ_PARAMETERS",
    "LJMixture",
    "box_length",
    "generate_lj",
    "lj_settings_text",
    "write_lj_dataset",
    "DEFAULT_ELEMENTS",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_DENSITY",
    "DEFAULT_RC_LJ",
    "DEFAULT_SF_CUTOFF",
]

#: Boltzmann constant in eV/K (CODATA 2018).
KB_EV = 8.617333262e-5

#: Lennard-Jones parameters of the noble gases: symbol -> (eps/k_B in K, sigma in A).
#: Commonly quoted fits to gas-phase data (e.g. Ar 119.8 K / 3.405 A).
LJ_PARAMETERS = {
    "Ne": (35.6, 2.75),
    "Ar": (119.8, 3.405),
    "Kr": (171.0, 3.60),
    "Xe": (221.0, 4.10),
}

DEFAULT_ELEMENTS = ("Ar", "Kr")
#: Temperature of the Monte Carlo sampling (K).
DEFAULT_TEMPERATURE = 115.0
#: Number density (atoms per A^3).
DEFAULT_DENSITY = 0.0185
#: Cutoff of the shifted-force LJ potential (A).
DEFAULT_RC_LJ = 7.0
#: Cutoff of the symmetry functions written by :func:`lj_settings_text` (A).
DEFAULT_SF_CUTOFF = 6.0


# ----------------------------------------------------------------------------
# Kernels (numpy + numba only; arrays preallocated by the caller)
# ----------------------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def lj_pair(r2, eps, sig, rc, ucut, ducut):
    """(U_sf(r), dU_sf/dr / r) for one pair at squared distance r2 < rc^2."""
    r = math.sqrt(r2)
    s2 = sig * sig / r2
    s6 = s2 * s2 * s2
    s12 = s6 * s6
    u = 4.0 * eps * (s12 - s6)
    du = -24.0 * eps * (2.0 * s12 - s6) / r
    return u - ucut - (r - rc) * ducut, (du - ducut) / r


@numba.njit(cache=True)
def lj_add(i, j, dx, dy, dz, types, eps, sig, ucut, ducut, rc, rc2, forces):
    """Shifted-force LJ of atoms i and j at the vector r_i - r_j = (dx, dy, dz)
    (nearest image), types and pair parameters as in :func:`_energy_forces`:
    adds the pair's forces to ``forces`` and returns its energy; nothing
    (energy 0) for r^2 >= rc2."""
    r2 = dx * dx + dy * dy + dz * dz
    if r2 >= rc2:
        return 0.0
    ti = types[i]
    tj = types[j]
    u, g = lj_pair(r2, eps[ti, tj], sig[ti, tj], rc, ucut[ti, tj], ducut[ti, tj])
    # F_i = -dU/dr * (r_i - r_j) / r
    forces[i, 0] -= g * dx
    forces[i, 1] -= g * dy
    forces[i, 2] -= g * dz
    forces[j, 0] += g * dx
    forces[j, 1] += g * dy
    forces[j, 2] += g * dz
    return u


@numba.njit(cache=True)
def _energy_forces(pos, types, box, eps, sig, ucut, ducut, rc, forces):
    """Total shifted-force LJ energy; fills forces.

    pos : float64 (n, 3), positions (A), any image.
    types : int64 (n,), element index of each atom into eps/sig.
    box : float64 (3,), edge lengths of the orthorhombic box (A), each >= 2 rc.
    eps, sig, ucut, ducut : float64 (E, E), pair epsilon (eV), sigma (A),
        U(rc) (eV) and U'(rc) (eV/A).
    rc : cutoff (A).
    forces : float64 (n, 3), output, -dE/dpos (eV/A).
    Returns the energy (eV).
    """
    n = pos.shape[0]
    rc2 = rc * rc
    energy = 0.0
    forces[:, :] = 0.0
    for i in range(n - 1):
        for j in range(i + 1, n):
            dx = min_image(pos[i, 0] - pos[j, 0], box[0])
            dy = min_image(pos[i, 1] - pos[j, 1], box[1])
            dz = min_image(pos[i, 2] - pos[j, 2], box[2])
            energy += lj_add(i, j, dx, dy, dz, types, eps, sig, ucut, ducut, rc, rc2, forces)
    return energy


@numba.njit(cache=True)
def _atom_energy(pos, types, box, eps, sig, ucut, ducut, rc, i, x, y, z):
    """Energy of atom i placed at (x, y, z) with all other atoms (eV)."""
    n = pos.shape[0]
    rc2 = rc * rc
    ti = types[i]
    e = 0.0
    for j in range(n):
        if j == i:
            continue
        dx = min_image(x - pos[j, 0], box[0])
        dy = min_image(y - pos[j, 1], box[1])
        dz = min_image(z - pos[j, 2], box[2])
        r2 = dx * dx + dy * dy + dz * dz
        if r2 < rc2:
            tj = types[j]
            u, g = lj_pair(r2, eps[ti, tj], sig[ti, tj], rc, ucut[ti, tj], ducut[ti, tj])
            e += u
    return e


@numba.njit(cache=True)
def _wrap(x, length):
    y = x - length * math.floor(x / length)
    if y >= length or y < 0.0:      # rounding at the upper edge
        y = 0.0
    return y


@numba.njit(cache=True)
def _mc_sweeps(pos, types, box, eps, sig, ucut, ducut, rc, beta, dmax, steps, uniforms):
    """Metropolis sweeps with single-atom moves; moves pos in place.

    steps : float64 (nsweep, n, 3), uniform in [-1, 1); atom i's trial
        displacement in sweep s is dmax * steps[s, i].
    uniforms : float64 (nsweep, n), uniform in [0, 1), the acceptance draws.
    beta : 1 / kT (1/eV).  dmax : maximum displacement (A).
    Atoms stay wrapped into [0, box).  Returns the number of accepted moves.
    """
    nsweep = steps.shape[0]
    n = pos.shape[0]
    accepted = 0
    for s in range(nsweep):
        for i in range(n):
            x = _wrap(pos[i, 0] + dmax * steps[s, i, 0], box[0])
            y = _wrap(pos[i, 1] + dmax * steps[s, i, 1], box[1])
            z = _wrap(pos[i, 2] + dmax * steps[s, i, 2], box[2])
            e_old = _atom_energy(pos, types, box, eps, sig, ucut, ducut, rc, i,
                                 pos[i, 0], pos[i, 1], pos[i, 2])
            e_new = _atom_energy(pos, types, box, eps, sig, ucut, ducut, rc, i, x, y, z)
            de = e_new - e_old
            if de <= 0.0 or uniforms[s, i] < math.exp(-beta * de):
                pos[i, 0] = x
                pos[i, 1] = y
                pos[i, 2] = z
                accepted += 1
    return accepted


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------
class LJMixture:
    """A shifted-force Lennard-Jones mixture with Lorentz-Berthelot mixing.

    Parameters
    ----------
    elements : element symbols, keys of ``parameters``.
    rc : cutoff of the potential (A).
    parameters : symbol -> (eps/k_B in K, sigma in A); default :data:`LJ_PARAMETERS`.

    Attributes
    ----------
    elements : tuple of the symbols, in the order given (the type indices).
    epsilon : float64 (E, E), pair well depths (eV).
    sigma : float64 (E, E), pair diameters (A).
    rc : cutoff (A).
    """

    def __init__(self, elements=DEFAULT_ELEMENTS, rc: float = DEFAULT_RC_LJ, parameters=None):
        parameters = LJ_PARAMETERS if parameters is None else parameters
        elements = tuple(str(e) for e in elements)
        if not elements:
            raise ValueError("LJMixture needs at least one element")
        if len(set(elements)) != len(elements):
            raise ValueError(f"LJMixture: repeated element in {elements}")
        for e in elements:
            if e not in ATOMIC_NUMBER:
                raise ValueError(f"LJMixture: '{e}' is not an element symbol")
            if e not in parameters:
                raise ValueError(f"LJMixture: no Lennard-Jones parameters for '{e}'; "
                                 f"known: {', '.join(parameters)}")
        rc = float(rc)
        if not (math.isfinite(rc) and rc > 0.0):
            raise ValueError(f"LJMixture: cutoff rc must be a positive number, got {rc!r}")
        eps1 = np.array([parameters[e][0] * KB_EV for e in elements], dtype=np.float64)
        sig1 = np.array([parameters[e][1] for e in elements], dtype=np.float64)
        self.elements = elements
        self.rc = rc
        self.epsilon = np.sqrt(np.outer(eps1, eps1))
        self.sigma = 0.5 * (sig1[:, None] + sig1[None, :])
        s6 = (self.sigma / rc) ** 6
        self._ucut = 4.0 * self.epsilon * (s6 * s6 - s6)
        self._ducut = -24.0 * self.epsilon * (2.0 * s6 * s6 - s6) / rc

    def __repr__(self) -> str:
        return f"LJMixture(elements={self.elements!r}, rc={self.rc!r})"

    def types(self, elements) -> np.ndarray:
        """int64 (n,) type indices of an array of element symbols."""
        lookup = {e: k for k, e in enumerate(self.elements)}
        try:
            return np.array([lookup[str(e)] for e in elements], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"element {exc.args[0]!r} is not in this LJ mixture "
                             f"{self.elements}") from None

    def check_box(self, box) -> np.ndarray:
        """The box as float64 (3,) edge lengths; error unless every edge >= 2 rc."""
        box = np.asarray(box, dtype=np.float64)
        if box.shape == (3, 3):
            if np.any(box[~np.eye(3, dtype=bool)] != 0.0):
                raise ValueError("LJMixture supports orthorhombic boxes only "
                                 f"(diagonal lattice), got\n{box}")
            box = np.diag(box).copy()
        if box.shape != (3,):
            raise ValueError(f"box must be 3 edge lengths or a diagonal (3, 3) lattice, "
                             f"got shape {box.shape}")
        if not np.all(box >= 2.0 * self.rc):
            raise ValueError(f"box edges {box.tolist()} A are shorter than 2 rc = "
                             f"{2.0 * self.rc} A; the minimum-image convention needs "
                             "box >= 2 rc (use more atoms or a smaller rc)")
        return box

    def energy_forces(self, positions, elements, box):
        """Energy and forces of one configuration.

        Parameters
        ----------
        positions : float (n, 3), Cartesian positions (A); any periodic image.
        elements : str (n,), element symbols (or int (n,) type indices).
        box : float (3,) edge lengths, or a diagonal (3, 3) lattice (A).

        Returns
        -------
        energy : float, total potential energy (eV).
        forces : float64 (n, 3), -d energy / d positions (eV/A).
        """
        pos = np.ascontiguousarray(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise ValueError(f"positions must have shape (n, 3), got {pos.shape}")
        elements = np.asarray(elements)
        types = (elements.astype(np.int64) if elements.dtype.kind in "iu"
                 else self.types(elements))
        if types.shape != (len(pos),):
            raise ValueError(f"elements must have shape ({len(pos)},), got {types.shape}")
        box = self.check_box(box)
        forces = np.empty_like(pos)
        energy = _energy_forces(pos, types, box, self.epsilon, self.sigma,
                                self._ucut, self._ducut, self.rc, forces)
        return float(energy), forces

    def _mc(self, pos, types, box, beta, dmax, steps, uniforms) -> int:
        return int(_mc_sweeps(pos, types, box, self.epsilon, self.sigma, self._ucut,
                              self._ducut, self.rc, beta, dmax, steps, uniforms))


# ----------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------
def _counts(n_atoms: int, fractions, n_el: int) -> list[int]:
    if fractions is None:
        fractions = [1.0 / n_el] * n_el
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.shape != (n_el,) or np.any(~np.isfinite(fractions)) or np.any(fractions < 0) \
            or fractions.sum() <= 0:
        raise ValueError(f"fractions must be {n_el} non-negative numbers, one per element, "
                         f"got {fractions.tolist()}")
    fractions = fractions / fractions.sum()
    counts = [int(round(f * n_atoms)) for f in fractions[:-1]]
    counts.append(n_atoms - sum(counts))
    if counts[-1] < 0:
        raise ValueError(f"fractions {fractions.tolist()} do not fit {n_atoms} atoms")
    return counts


def lattice_sites(n: int, length: float, rng, jitter: float) -> np.ndarray:
    """n of the sites of the smallest simple-cubic lattice with >= n sites in a
    cube of edge ``length``, chosen at random, each jittered uniformly by up to
    ``jitter`` x the spacing (sites in increasing order; the draws, in this
    order: the choice, then the jitter)."""
    m = int(math.ceil(n ** (1.0 / 3.0) - 1e-9))
    spacing = length / m
    grid = np.stack(np.meshgrid(np.arange(m), np.arange(m), np.arange(m), indexing="ij"),
                    axis=-1).reshape(-1, 3).astype(np.float64)
    sites = np.sort(rng.choice(len(grid), size=n, replace=False))
    return (grid[sites] + 0.5 + rng.uniform(-jitter, jitter, size=(n, 3))) * spacing


def output_paths(directory, overwrite: bool) -> dict:
    """``{"input.data": Path, "input.nn": Path}`` in ``directory``; refuses
    to replace existing files unless ``overwrite``."""
    directory = Path(os.fspath(directory))
    paths = {"input.data": directory / "input.data", "input.nn": directory / "input.nn"}
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise FileExistsError(f"{p} already exists (pass overwrite=True to replace it)")
    return paths


def box_length(n_atoms: int, density: float = DEFAULT_DENSITY) -> float:
    """Edge of the cubic box (A) holding n_atoms at ``density`` atoms/A^3."""
    return float((n_atoms / density) ** (1.0 / 3.0))


def generate_lj(n_structures: int = 20, n_atoms: int = 64, *, elements=DEFAULT_ELEMENTS,
                fractions=None, temperature: float = DEFAULT_TEMPERATURE,
                density: float = DEFAULT_DENSITY, rc_lj: float = DEFAULT_RC_LJ,
                seed: int = 0, equilibration_sweeps: int = 300, sweeps_between: int = 20,
                parameters=None) -> list[Structure]:
    """Sample periodic Lennard-Jones liquid configurations with exact forces.

    Parameters
    ----------
    n_structures : number of configurations returned (>= 1).
    n_atoms : atoms per configuration (>= 2); with the default density and
        rc_lj at least 51 atoms are needed (box >= 2 rc_lj).
    elements : element symbols (keys of ``parameters``), default Ar and Kr.
    fractions : mole fraction per element (normalised; default equal).
    temperature : Monte Carlo temperature (K).
    density : number density (atoms / A^3); sets the cubic box edge.
    rc_lj : cutoff of the shifted-force LJ potential (A).
    seed : seed of ``numpy.random.default_rng``; same seed, same output.
    equilibration_sweeps : MC sweeps (n_atoms trial moves each) before the
        first sample; the step size adapts to ~40 % acceptance meanwhile.
    sweeps_between : MC sweeps between consecutive samples (>= 1).
    parameters : symbol -> (eps/k_B in K, sigma in A); default :data:`LJ_PARAMETERS`.

    Returns
    -------
    list of :class:`~distatomenv.io.structure.Structure`, one per sample: cubic
    ``lattice`` (A), positions wrapped into the box (A), forces (eV/A),
    ``energy`` the total potential energy (eV), atom charges and energies 0,
    total charge 0, and a one-line comment naming the generator, its
    parameters, the seed and the sample.
    """
    n_structures = int(n_structures)
    n_atoms = int(n_atoms)
    if n_structures < 1:
        raise ValueError(f"n_structures must be >= 1, got {n_structures}")
    if n_atoms < 2:
        raise ValueError(f"n_atoms must be >= 2, got {n_atoms}")
    for name, value in (("temperature", temperature), ("density", density)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    equilibration_sweeps = int(equilibration_sweeps)
    sweeps_between = int(sweeps_between)
    if equilibration_sweeps < 0 or sweeps_between < 1:
        raise ValueError("equilibration_sweeps must be >= 0 and sweeps_between >= 1, got "
                         f"{equilibration_sweeps} and {sweeps_between}")
    model = LJMixture(elements, rc_lj, parameters)
    length = box_length(n_atoms, density)
    box = model.check_box(np.full(3, length))
    counts = _counts(n_atoms, fractions, len(model.elements))
    rng = np.random.default_rng(seed)

    # Start: a simple-cubic lattice with >= n_atoms sites, n_atoms of them
    # chosen at random, jittered by up to 5 % of the spacing; shuffled species.
    pos = lattice_sites(n_atoms, length, rng, 0.05)
    pos = pos - length * np.floor(pos / length)
    pos[(pos >= length) | (pos < 0.0)] = 0.0        # rounding at the upper edge
    pos = np.ascontiguousarray(pos)
    types = rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int64), counts))
    types = np.ascontiguousarray(types)

    beta = 1.0 / (KB_EV * temperature)
    dmax = 0.1 * float(model.sigma.min())

    def sweeps(k):
        steps = rng.uniform(-1.0, 1.0, size=(k, n_atoms, 3))
        uniforms = rng.random(size=(k, n_atoms))
        return model._mc(pos, types, box, beta, dmax, steps, uniforms)

    done = 0
    while done < equilibration_sweeps:
        k = min(10, equilibration_sweeps - done)
        ratio = sweeps(k) / (k * n_atoms)
        dmax = min(dmax * (1.1 if ratio > 0.4 else 0.9), 0.25 * length)
        done += k

    symbols = np.array(model.elements)[types]
    lattice = np.diag(box)
    params = LJ_PARAMETERS if parameters is None else parameters
    pairs = " ".join(f"{e}({params[e][0]}K,{params[e][1]}A)" for e in model.elements)
    structures = []
    for k in range(n_structures):
        sweeps(sweeps_between)
        energy, forces = model.energy_forces(pos, types, box)
        comment = (f"distatomenv.tools.synth.lj shifted-force LJ {pairs} Lorentz-Berthelot "
                   f"rc_lj={model.rc}A T={temperature}K rho={density}/A^3 seed={seed} "
                   f"sample={k + 1}/{n_structures} sweep={equilibration_sweeps + (k + 1) * sweeps_between} "
                   "units=A,eV")
        structures.append(Structure(
            index=k, line=0, comment=comment, lattice=lattice.copy(), positions=pos.copy(),
            elements=symbols.copy(), charges=np.zeros(n_atoms), atom_energies=np.zeros(n_atoms),
            forces=forces, energy=energy, charge=0.0, path=""))
    return structures


# ----------------------------------------------------------------------------
# input.nn
# ----------------------------------------------------------------------------
#: Radial SFs (type 2) per neighbour element: (eta in 1/A^2, rs in A).
RADIAL_SF = ((0.001, 0.0), (0.02, 0.0), (0.06, 0.0), (0.15, 0.0),
             (1.0, 3.5), (1.0, 4.25), (1.0, 5.0))
#: Angular SFs (type 9) per neighbour pair: (eta in 1/A^2, lambda, zeta).
ANGULAR_SF = ((0.01, 1.0, 1.0), (0.01, -1.0, 1.0), (0.01, 1.0, 4.0), (0.01, -1.0, 4.0))


def lj_settings_text(elements=DEFAULT_ELEMENTS, *, cutoff: float = DEFAULT_SF_CUTOFF,
                     description: str | None = None) -> str:
    """An n2p2 input.nn for the LJ data set.

    Parameters
    ----------
    elements : element symbols (written in atomic-number order).
    cutoff : cutoff radius of every symmetry function (A); keep it <= half
        the box edge of the data set.
    description : extra text for the comment header (one or more lines).

    Returns
    -------
    The file's text: element keywords, ``cutoff_type 2`` (tanh^3), scaling
    to [0, 1] with centring, ``use_short_forces``, the network keywords n2p2's
    tools require (unused by distatomenv), and for every central element
    :data:`RADIAL_SF` type-2 SFs for each neighbour element and
    :data:`ANGULAR_SF` type-9 SFs for each unordered neighbour pair.
    """
    elements = sort_by_atomic_number(list(dict.fromkeys(str(e) for e in elements)))
    return settings_text("Symmetry functions for the distatomenv Lennard-Jones data set",
                         "distatomenv.tools.synth.lj.lj_settings_text", elements, RADIAL_SF,
                         ANGULAR_SF, angular_type=9, cutoff=cutoff, description=description,
                         nodes="15 15")


def write_lj_dataset(directory, n_structures: int = 20, n_atoms: int = 64, seed: int = 0, *,
                     sf_cutoff: float = DEFAULT_SF_CUTOFF, overwrite: bool = False,
                     **kwargs) -> dict:
    """Write the LJ data set as ``input.data`` and ``input.nn`` into ``directory``.

    Parameters
    ----------
    directory : folder to write into (created if missing); nothing else is written.
    n_structures, n_atoms, seed : passed to :func:`generate_lj`.
    sf_cutoff : cutoff of the symmetry functions in input.nn (A); the box
        must be at least twice as wide.
    overwrite : replace existing input.data / input.nn; otherwise they are an error.
    **kwargs : further keyword arguments of :func:`generate_lj` (elements,
        temperature, density, rc_lj, ...).

    Returns
    -------
    dict ``{"input.data": Path, "input.nn": Path}``.
    """
    paths = output_paths(directory, overwrite)
    directory = Path(os.fspath(directory))
    elements = kwargs.get("elements", DEFAULT_ELEMENTS)
    length = box_length(int(n_atoms), kwargs.get("density", DEFAULT_DENSITY))
    if length < 2.0 * float(sf_cutoff):
        raise ValueError(f"box edge {length:.4f} A of {n_atoms} atoms is shorter than twice the "
                         f"symmetry-function cutoff {sf_cutoff} A; use more atoms or a "
                         "smaller sf_cutoff")
    structures = generate_lj(n_structures, n_atoms, seed=seed, **kwargs)
    rc_lj = kwargs.get("rc_lj", DEFAULT_RC_LJ)
    description = (f"Data set: {n_structures} structures of {n_atoms} atoms, "
                   f"shifted-force Lennard-Jones {'/'.join(str(e) for e in elements)}, "
                   f"rc_lj {rc_lj} A, box {length:.6f} A, seed {seed}.")
    text = lj_settings_text(elements, cutoff=sf_cutoff, description=description)
    directory.mkdir(parents=True, exist_ok=True)
    write_structures(paths["input.data"], structures)
    with open(paths["input.nn"], "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return paths
