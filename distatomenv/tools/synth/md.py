"""Molecular dynamics of a flexible water-like liquid, with exact forces.

A fast numba generator of atomistic *and* coarse-grained data: a periodic
cubic box of flexible triatomic molecules (one O, two H), integrated with
velocity Verlet under a Langevin thermostat; configurations are sampled every
few steps with their exact energies and forces, written as n2p2
``input.data`` with a matching ``input.nn``, and coarse-grained (one ``Cm``
site per molecule, :mod:`distatomenv.tools.cg`) with a CG ``input.nn``.

Physics
-------
Units: Angstrom, eV, eV/A, u (atomic mass), fs, K (k_B = :data:`KB_EV`).

Atoms are stored molecule by molecule: O, H, H (atom 3k is the O of molecule
k).  The potential energy is

* bonds: ``k_b/2 (r_OH - r0)^2`` for both O-H bonds of every molecule;
* angle: ``k_a/2 (theta_HOH - theta0)^2`` for every molecule;
* Lennard-Jones between atoms of *different* molecules (intramolecular pairs
  are excluded), per element pair with Lorentz-Berthelot mixing, in the
  shifted-force form truncated at ``rc`` (energy and force continuous at rc,
  see :mod:`distatomenv.tools.synth.lj`), minimum image (box >= 2 rc), cell lists
  when the box holds at least 3 cells per edge.

There are no charges: this is a water-*like* molecular liquid (geometry of
TIP3P/SPC-like water, a dense LJ fluid at the default state point), good for
descriptor studies, not a water model.  The forces are the exact negative
gradient of the energy (``tests/test_synth_md.py`` checks them by central
differences).

Default state point: 0.030 molecules/A^3 (0.90 g/cm^3), 300 K; eps_OO =
0.020 eV, sigma_OO = 3.10 A (reduced T* = 1.29, rho* = 0.89: a dense liquid
above the LJ critical temperature); eps_HH = 0.002 eV, sigma_HH = 2.0 A;
r0 = 0.9572 A, theta0 = 104.52 deg, k_b = 45 eV/A^2, k_a = 3.3 eV/rad^2
(bond stretch period ~ 9 fs, so dt = 0.5 fs).

Integrator: BAOAB Langevin splitting (velocity Verlet's B-A-A-B with an
Ornstein-Uhlenbeck velocity update O in the middle); with ``gamma = 0`` it is
plain velocity Verlet (NVE).  All random numbers come from
``numpy.random.default_rng(seed)`` and are passed into the kernels, so the
same seed gives bit-identical output on a given platform.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from ...descriptors.neighbors import HALF_SHELL, cell_sort, half_pairs, min_image
from ...elements import ATOMIC_MASS
from ...io.inputdata import write_structures
from ...io.structure import Structure
from .fast import FIXED_DECIMALS, FIXED_WIDTH, format_atoms_fixed, write_replicas
from .lj import KB_EV, lattice_sites, lj_add
from .settings import settings_text

__all__ = [
    "ACCEL",
    "WaterModel",
    "WaterMD",
    "water_box_length",
    "generate_water",
    "water_settings_text",
    "cg_settings_text",
    "water_molecules",
    "coarse_grain_water",
    "write_water_dataset",
    "write_water_fast",
    "format_atoms_fixed",
    "FIXED_WIDTH",
    "FIXED_DECIMALS",
    "DEFAULT_DENSITY",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_SF_CUTOFF",
]

#: Acceleration in A/fs^2 of a force of 1 eV/A on a mass of 1 u.
ACCEL = 1.602176634e-19 / 1.66053906660e-27 * 1e-10      # = 9.6485332e-3
#: Number density of the default liquid (molecules / A^3).
DEFAULT_DENSITY = 0.030
#: Default temperature (K).
DEFAULT_TEMPERATURE = 300.0
#: Default cutoff of the symmetry functions (A), capped at half the box edge.
DEFAULT_SF_CUTOFF = 6.0


# ----------------------------------------------------------------------------
# Kernels (numpy + numba only; arrays preallocated by the caller)
# ----------------------------------------------------------------------------
@numba.njit(cache=True)
def _intra(pos, forces, r0, kb, theta0, ka):
    """Bond and angle energy of every molecule (O, H, H); adds to forces."""
    nmol = pos.shape[0] // 3
    energy = 0.0
    for k in range(nmol):
        o = 3 * k
        ax = pos[o + 1, 0] - pos[o, 0]
        ay = pos[o + 1, 1] - pos[o, 1]
        az = pos[o + 1, 2] - pos[o, 2]
        bx = pos[o + 2, 0] - pos[o, 0]
        by = pos[o + 2, 1] - pos[o, 1]
        bz = pos[o + 2, 2] - pos[o, 2]
        ra = math.sqrt(ax * ax + ay * ay + az * az)
        rb = math.sqrt(bx * bx + by * by + bz * bz)
        # bonds: F_H = -k (r - r0) d / r
        ga = kb * (ra - r0)
        gb = kb * (rb - r0)
        energy += 0.5 * (ga * (ra - r0) + gb * (rb - r0))
        fax = -ga * ax / ra
        fay = -ga * ay / ra
        faz = -ga * az / ra
        fbx = -gb * bx / rb
        fby = -gb * by / rb
        fbz = -gb * bz / rb
        # angle: U = ka/2 (theta - theta0)^2, dtheta/dcos = -1/sin
        c = (ax * bx + ay * by + az * bz) / (ra * rb)
        c = min(1.0, max(-1.0, c))
        theta = math.acos(c)
        sn = math.sqrt(max(1.0 - c * c, 1e-300))
        energy += 0.5 * ka * (theta - theta0) ** 2
        g = ka * (theta - theta0) / sn          # F_H1 = g * dcos/da
        inv = 1.0 / (ra * rb)
        fax += g * (bx * inv - c * ax / (ra * ra))
        fay += g * (by * inv - c * ay / (ra * ra))
        faz += g * (bz * inv - c * az / (ra * ra))
        fbx += g * (ax * inv - c * bx / (rb * rb))
        fby += g * (ay * inv - c * by / (rb * rb))
        fbz += g * (az * inv - c * bz / (rb * rb))
        forces[o + 1, 0] += fax
        forces[o + 1, 1] += fay
        forces[o + 1, 2] += faz
        forces[o + 2, 0] += fbx
        forces[o + 2, 1] += fby
        forces[o + 2, 2] += fbz
        forces[o, 0] -= fax + fbx
        forces[o, 1] -= fay + fby
        forces[o, 2] -= faz + fbz
    return energy


@numba.njit(cache=True)
def _inter(pos, types, box, eps, sig, ucut, ducut, rc, forces):
    """Shifted-force LJ energy between atoms of different molecules (atom i is
    in molecule i // 3); adds to forces.  Cubic box of edge ``box`` >= 2 rc;
    cell lists when at least 3 cells fit along the edge."""
    n = pos.shape[0]
    rc2 = rc * rc
    energy = 0.0
    m = int(box / rc)
    if m < 3:
        for i in range(n - 1):
            mi = i // 3
            for j in range(i + 1, n):
                if j // 3 == mi:
                    continue
                dx = min_image(pos[i, 0] - pos[j, 0], box)
                dy = min_image(pos[i, 1] - pos[j, 1], box)
                dz = min_image(pos[i, 2] - pos[j, 2], box)
                energy += lj_add(i, j, dx, dy, dz, types, eps, sig, ucut, ducut, rc, rc2,
                                 forces)
        return energy
    # cell lists: every pair once, cell by cell (positions wrapped into the
    # box); each atom's forces summed in the order its pairs come
    w = np.empty((n, 3))
    frac = np.empty((n, 3))
    for i in range(n):
        for d in range(3):
            x = pos[i, d] - box * math.floor(pos[i, d] / box)
            if x >= box or x < 0.0:
                x = 0.0
            w[i, d] = x
            frac[i, d] = x / box
    nbin = np.full(3, m, dtype=np.int64)
    lattice = np.zeros((3, 3))
    for d in range(3):
        lattice[d, d] = box
    bins, cstart, catoms = cell_sort(frac, nbin)
    most = 0
    for c in range(m * m * m):
        most = max(most, cstart[c + 1] - cstart[c])
    room = HALF_SHELL.shape[0] * most * most        # the pairs of any one cell
    pi = np.empty(room, dtype=np.int32)
    pj = np.empty(room, dtype=np.int32)
    px = np.empty(room)
    py = np.empty(room)
    pz = np.empty(room)
    p2 = np.empty(room)
    sf = np.zeros((n, 3))
    for c in range(m * m * m):
        npair = half_pairs(c, w, lattice, cstart, catoms, nbin, rc2, pi, pj, px, py, pz, p2)
        for k in range(npair):
            i = pi[k]
            j = pj[k]
            if i // 3 == j // 3:
                continue
            # (px, py, pz) is r_j + T - r_i; lj_add takes r_i - (r_j + T)
            energy += lj_add(i, j, -px[k], -py[k], -pz[k], types, eps, sig, ucut, ducut, rc, rc2,
                             sf)
    for i in range(n):
        forces[i, 0] += sf[i, 0]
        forces[i, 1] += sf[i, 1]
        forces[i, 2] += sf[i, 2]
    return energy


@numba.njit(cache=True)
def _insert_molecules(n, box, body, dmin, seed, max_tries, pos):
    """Random sequential insertion of n rigid molecules (body: (3, 3) atom
    offsets) with uniform random orientations into a cubic box; atom a of a
    trial must be at least dmin[a] from every atom placed (minimum image).
    Fills pos (3 n, 3); returns the number of molecules placed (< n when
    max_tries trials in a row failed).  Uses numba's generator seeded with seed."""
    np.random.seed(seed)
    dcell = 0.0
    for a in range(3):
        dcell = max(dcell, dmin[a])
    m = max(1, int(box / dcell))
    head = -np.ones(m * m * m, dtype=np.int64)
    nxt = -np.ones(3 * n, dtype=np.int64)
    trial = np.empty((3, 3))
    placed = 0
    fails = 0
    while placed < n and fails < max_tries:
        w = np.random.normal()
        x = np.random.normal()
        y = np.random.normal()
        z = np.random.normal()
        q = math.sqrt(w * w + x * x + y * y + z * z)
        w /= q
        x /= q
        y /= q
        z /= q
        cx = np.random.random() * box
        cy = np.random.random() * box
        cz = np.random.random() * box
        for a in range(3):
            bx = body[a, 0]
            by = body[a, 1]
            bz = body[a, 2]
            trial[a, 0] = cx + (1 - 2 * (y * y + z * z)) * bx + 2 * (x * y - z * w) * by \
                + 2 * (x * z + y * w) * bz
            trial[a, 1] = cy + 2 * (x * y + z * w) * bx + (1 - 2 * (x * x + z * z)) * by \
                + 2 * (y * z - x * w) * bz
            trial[a, 2] = cz + 2 * (x * z - y * w) * bx + 2 * (y * z + x * w) * by \
                + (1 - 2 * (x * x + y * y)) * bz
        ok = True
        for a in range(3):
            if not ok:
                break
            c0 = int((trial[a, 0] / box - math.floor(trial[a, 0] / box)) * m) % m
            c1 = int((trial[a, 1] / box - math.floor(trial[a, 1] / box)) * m) % m
            c2 = int((trial[a, 2] / box - math.floor(trial[a, 2] / box)) * m) % m
            lo = -1 if m >= 3 else 0
            hi = 2 if m >= 3 else m
            for d0 in range(lo, hi):
                for d1 in range(lo, hi):
                    for d2 in range(lo, hi):
                        if m >= 3:
                            t = (((c0 + d0) % m) * m + (c1 + d1) % m) * m + (c2 + d2) % m
                        else:
                            t = (d0 * m + d1) * m + d2
                        j = head[t]
                        while j >= 0:
                            dx = min_image(trial[a, 0] - pos[j, 0], box)
                            dy = min_image(trial[a, 1] - pos[j, 1], box)
                            dz = min_image(trial[a, 2] - pos[j, 2], box)
                            if dx * dx + dy * dy + dz * dz < dmin[a] * dmin[a]:
                                ok = False
                            j = nxt[j]
        if not ok:
            fails += 1
            continue
        fails = 0
        for a in range(3):
            k = 3 * placed + a
            pos[k, 0] = trial[a, 0]
            pos[k, 1] = trial[a, 1]
            pos[k, 2] = trial[a, 2]
            c0 = int((trial[a, 0] / box - math.floor(trial[a, 0] / box)) * m) % m
            c1 = int((trial[a, 1] / box - math.floor(trial[a, 1] / box)) * m) % m
            c2 = int((trial[a, 2] / box - math.floor(trial[a, 2] / box)) * m) % m
            t = (c0 * m + c1) * m + c2
            nxt[k] = head[t]
            head[t] = k
        placed += 1
    return placed


@numba.njit(cache=True)
def _energy_forces(pos, types, box, eps, sig, ucut, ducut, rc, r0, kb, theta0, ka, forces):
    """Total potential energy (eV); fills forces (eV/A) with -dE/dpos."""
    forces[:, :] = 0.0
    e = _intra(pos, forces, r0, kb, theta0, ka)
    return e + _inter(pos, types, box, eps, sig, ucut, ducut, rc, forces)


@numba.njit(cache=True)
def _baoab(pos, vel, forces, inv_mass, sqrt_kt_m, types, box, eps, sig, ucut, ducut, rc,
           r0, kb, theta0, ka, dt, c1, c2, noise):
    """len(noise) BAOAB Langevin steps; pos, vel, forces updated in place.

    inv_mass : float64 (n,), ACCEL / m (A/fs^2 per eV/A).
    sqrt_kt_m : float64 (n,), sqrt(kT / m) in A/fs.
    c1, c2 : exp(-gamma dt) and sqrt(1 - c1^2); c1 = 1, c2 = 0 is velocity Verlet.
    noise : float64 (steps, n, 3), standard normal numbers.
    Returns the potential energy after the last step (eV).
    """
    n = pos.shape[0]
    h = 0.5 * dt
    energy = 0.0
    for step in range(noise.shape[0]):
        for i in range(n):
            for d in range(3):
                vel[i, d] += h * inv_mass[i] * forces[i, d]
                pos[i, d] += h * vel[i, d]
                vel[i, d] = c1 * vel[i, d] + c2 * sqrt_kt_m[i] * noise[step, i, d]
                pos[i, d] += h * vel[i, d]
        energy = _energy_forces(pos, types, box, eps, sig, ucut, ducut, rc, r0, kb, theta0, ka,
                                forces)
        for i in range(n):
            for d in range(3):
                vel[i, d] += h * inv_mass[i] * forces[i, d]
    return energy


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WaterModel:
    """Parameters of the flexible water-like molecule (see the module docstring).

    lj : {element: (epsilon in eV, sigma in A)} for O and H.
    rc : cutoff of the shifted-force LJ (A).
    r0, k_bond : O-H bond length (A) and force constant (eV/A^2).
    theta0, k_angle : H-O-H angle (degrees) and force constant (eV/rad^2).
    """

    lj: tuple = (("O", (0.020, 3.10)), ("H", (0.002, 2.00)))
    rc: float = 6.0
    r0: float = 0.9572
    k_bond: float = 45.0
    theta0: float = 104.52
    k_angle: float = 3.3

    def __post_init__(self):
        for name in ("rc", "r0", "k_bond", "theta0", "k_angle"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"WaterModel: {name} must be a positive number, got {v!r}")
        if not 0 < self.theta0 < 180:
            raise ValueError(f"WaterModel: theta0 must be in (0, 180) degrees, got {self.theta0}")
        lj = dict(self.lj)
        if set(lj) != {"O", "H"}:
            raise ValueError(f"WaterModel: lj needs parameters for O and H, got {sorted(lj)}")
        eps1 = np.array([lj["O"][0], lj["H"][0]], dtype=np.float64)
        sig1 = np.array([lj["O"][1], lj["H"][1]], dtype=np.float64)
        eps = np.sqrt(np.outer(eps1, eps1))
        sig = 0.5 * (sig1[:, None] + sig1[None, :])
        s6 = (sig / self.rc) ** 6
        object.__setattr__(self, "_eps", eps)
        object.__setattr__(self, "_sig", sig)
        object.__setattr__(self, "_ucut", 4.0 * eps * (s6 * s6 - s6))
        object.__setattr__(self, "_ducut", -24.0 * eps * (2.0 * s6 * s6 - s6) / self.rc)

    @staticmethod
    def types(n_molecules: int) -> np.ndarray:
        """int64 (3 M,), 0 for O and 1 for H, in the order O H H per molecule."""
        return np.tile(np.array([0, 1, 1], dtype=np.int64), int(n_molecules))

    @staticmethod
    def symbols(n_molecules: int) -> np.ndarray:
        return np.tile(np.array(["O", "H", "H"]), int(n_molecules))

    @staticmethod
    def masses(n_molecules: int) -> np.ndarray:
        return np.tile(np.array([ATOMIC_MASS["O"], ATOMIC_MASS["H"], ATOMIC_MASS["H"]]),
                       int(n_molecules))

    def check_box(self, box) -> float:
        box = float(np.asarray(box, dtype=np.float64).reshape(-1)[0]) if np.ndim(box) else float(box)
        if not box >= 2.0 * self.rc:
            raise ValueError(f"box edge {box:.4f} A is shorter than 2 rc = {2 * self.rc} A; the "
                             "minimum-image convention needs box >= 2 rc (use more molecules or "
                             "a smaller rc)")
        return box

    def energy_forces(self, positions, box):
        """Energy (eV) and forces (float64 (n, 3), eV/A) of one configuration.

        positions : float (3 M, 3), O H H per molecule (A); each molecule must
            be whole (not wrapped atom by atom); any periodic image otherwise.
        box : edge of the cubic box (A), a number or a diagonal (3, 3) lattice.
        """
        pos = np.ascontiguousarray(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) % 3:
            raise ValueError(f"positions must have shape (3 M, 3), got {pos.shape}")
        if np.ndim(box) == 2:
            box = np.asarray(box)[0, 0]
        box = self.check_box(box)
        forces = np.empty_like(pos)
        e = _energy_forces(pos, self.types(len(pos) // 3), box, *self._kernel_args(), forces)
        return float(e), forces

    def _kernel_args(self):
        return (self._eps, self._sig, self._ucut, self._ducut, float(self.rc), float(self.r0),
                float(self.k_bond), math.radians(self.theta0), float(self.k_angle))


def water_box_length(n_molecules: int, density: float = DEFAULT_DENSITY) -> float:
    """Edge of the cubic box (A) holding n_molecules at ``density`` molecules/A^3."""
    return float((n_molecules / density) ** (1.0 / 3.0))


class WaterMD:
    """A running Langevin (or NVE) simulation of the water-like liquid.

    Parameters
    ----------
    n_molecules : molecules in the box (>= 1).
    density : molecules / A^3, sets the cubic box edge.
    temperature : thermostat and initial-velocity temperature (K).
    dt : time step (fs).  gamma : Langevin friction (1/fs); 0 gives NVE.
    seed : seed of ``numpy.random.default_rng``.
    model : :class:`WaterModel`.

    Attributes
    ----------
    positions : float64 (3 M, 3) unwrapped positions (A), O H H per molecule.
    velocities : float64 (3 M, 3) (A/fs).  forces : float64 (3 M, 3) (eV/A).
    energy : potential energy (eV).  box : edge (A).  steps : steps done.
    """

    def __init__(self, n_molecules: int, *, density: float = DEFAULT_DENSITY,
                 temperature: float = DEFAULT_TEMPERATURE, dt: float = 0.5, gamma: float = 0.01,
                 seed: int = 0, model: WaterModel | None = None):
        n_molecules = int(n_molecules)
        if n_molecules < 1:
            raise ValueError(f"n_molecules must be >= 1, got {n_molecules}")
        for name, v in (("density", density), ("temperature", temperature), ("dt", dt)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        self.model = model or WaterModel()
        self.n_molecules = n_molecules
        self.box = self.model.check_box(water_box_length(n_molecules, density))
        self.temperature = float(temperature)
        self.dt = float(dt)
        self.gamma = float(gamma)
        self.rng = np.random.default_rng(seed)
        self.types = WaterModel.types(n_molecules)
        self.masses = WaterModel.masses(n_molecules)
        self.positions = self._initial_positions()
        kt = KB_EV * self.temperature
        v = self.rng.normal(size=(3 * n_molecules, 3)) * np.sqrt(kt * ACCEL / self.masses)[:, None]
        v -= (self.masses[:, None] * v).sum(axis=0) / self.masses.sum()
        self.velocities = np.ascontiguousarray(v)
        self.forces = np.empty_like(self.positions)
        self.energy = float(_energy_forces(self.positions, self.types, self.box,
                                           *self.model._kernel_args(), self.forces))
        self.steps = 0

    def _initial_positions(self) -> np.ndarray:
        """Random sequential insertion: each molecule at a uniform random
        position with a uniform random orientation, retried until its O is at
        least 2.3 A and its H at least 1.6 A from every atom already placed
        (minimum image); a jittered simple-cubic lattice of equally oriented
        molecules when the box is too dense for that."""
        n, box, rng = self.n_molecules, self.box, self.rng
        half = math.radians(self.model.theta0) / 2
        r0 = self.model.r0
        body = np.array([[0.0, 0.0, 0.0],
                         [r0 * math.sin(half), 0.0, r0 * math.cos(half)],
                         [-r0 * math.sin(half), 0.0, r0 * math.cos(half)]])
        dmin = np.array([2.3, 1.6, 1.6])
        pos = np.empty((3 * n, 3))
        placed = _insert_molecules(n, box, body, dmin, int(rng.integers(2 ** 31)), 100000, pos)
        if placed == n:
            return np.ascontiguousarray(pos)
        o = lattice_sites(n, box, rng, 0.02)
        for k in range(3):
            pos[k::3] = o + body[k]
        return np.ascontiguousarray(pos)

    def kinetic_energy(self) -> float:
        """(eV)"""
        return float(0.5 * (self.masses[:, None] * self.velocities ** 2).sum() / ACCEL)

    def instantaneous_temperature(self) -> float:
        """(K), from 3 n - 3 degrees of freedom."""
        dof = 3 * len(self.masses) - 3
        return 2.0 * self.kinetic_energy() / (dof * KB_EV)

    def run(self, steps: int, *, gamma: float | None = None, block: int = 50) -> float:
        """Advance ``steps`` steps (friction ``gamma`` if given); returns the energy."""
        gamma = self.gamma if gamma is None else float(gamma)
        c1 = math.exp(-gamma * self.dt)
        c2 = math.sqrt(max(0.0, 1.0 - c1 * c1))
        kt = KB_EV * self.temperature
        sq = np.sqrt(kt * ACCEL / self.masses)
        inv_m = ACCEL / self.masses
        args = self.model._kernel_args()
        done = 0
        steps = int(steps)
        while done < steps:
            k = min(block, steps - done)
            shape = (k, len(self.masses), 3)
            noise = self.rng.standard_normal(size=shape) if c2 > 0 else np.zeros(shape)
            self.energy = float(_baoab(self.positions, self.velocities, self.forces, inv_m, sq,
                                       self.types, self.box, *args, self.dt, c1, c2, noise))
            if not math.isfinite(self.energy):
                raise FloatingPointError(f"the simulation blew up after {self.steps + done} steps "
                                         "(non-finite energy); use a smaller dt")
            done += k
        self.steps += steps
        return self.energy

    def structure(self, index: int = 0, comment: str = "") -> Structure:
        """The current configuration as a Structure: positions wrapped into
        the box atom by atom, exact forces and energy."""
        pos = self.positions - self.box * np.floor(self.positions / self.box)
        pos[(pos >= self.box) | (pos < 0)] = 0.0
        n = len(pos)
        return Structure(index=index, line=0, comment=comment,
                         lattice=np.diag(np.full(3, self.box)), positions=pos,
                         elements=WaterModel.symbols(self.n_molecules), charges=np.zeros(n),
                         atom_energies=np.zeros(n), forces=self.forces.copy(),
                         energy=self.energy, charge=0.0, path="")


def generate_water(n_structures: int = 10, n_molecules: int = 64, *, seed: int = 0,
                   temperature: float = DEFAULT_TEMPERATURE, density: float = DEFAULT_DENSITY,
                   dt: float = 0.5, gamma: float = 0.01, equilibration_steps: int = 2000,
                   stride: int = 40, model: WaterModel | None = None) -> list[Structure]:
    """Sample configurations of the water-like liquid with exact forces.

    Parameters
    ----------
    n_structures : configurations returned (>= 1).
    n_molecules : molecules per configuration (3 atoms each).
    seed, temperature, density, dt, gamma, model : see :class:`WaterMD`.
    equilibration_steps : steps before the first sample (the first 20 % with
        10x friction to remove the lattice start quickly).
    stride : steps between samples (>= 1).

    Returns a list of Structures (cubic lattice, positions wrapped atom by
    atom, O H H per molecule, energy = potential energy in eV, forces eV/A).
    """
    n_structures, stride = int(n_structures), int(stride)
    if n_structures < 1 or stride < 1 or equilibration_steps < 0:
        raise ValueError("n_structures and stride must be >= 1 and equilibration_steps >= 0, got "
                         f"{n_structures}, {stride}, {equilibration_steps}")
    md = WaterMD(n_molecules, density=density, temperature=temperature, dt=dt, gamma=gamma,
                 seed=seed, model=model)
    hot = int(equilibration_steps) // 5
    md.run(hot, gamma=max(10 * md.gamma, 0.05))
    md.run(int(equilibration_steps) - hot)
    out = []
    for k in range(n_structures):
        md.run(stride)
        comment = (f"distatomenv.tools.synth.md water-like liquid: {n_molecules} O-H-H molecules, "
                   f"T={temperature}K rho={density}/A^3 box={md.box:.6f}A dt={dt}fs "
                   f"gamma={gamma}/fs seed={seed} sample={k + 1}/{n_structures} step={md.steps} "
                   "units=A,eV")
        out.append(md.structure(k, comment))
    return out


# ----------------------------------------------------------------------------
# input.nn
# ----------------------------------------------------------------------------
#: Radial SFs (type 2) of the atomistic description per neighbour element: (eta 1/A^2, rs A).
ATOM_RADIAL_SF = ((0.001, 0.0), (0.01, 0.0), (0.05, 0.0), (0.1, 0.0), (0.3, 0.0),
                  (1.0, 2.0), (1.0, 3.0), (1.0, 4.0))
#: Angular SFs (type 3) of the atomistic description per neighbour pair: (eta, lambda, zeta).
ATOM_ANGULAR_SF = ((0.01, 1.0, 1.0), (0.01, -1.0, 1.0), (0.01, 1.0, 4.0), (0.01, -1.0, 4.0))
#: Radial SFs (type 2) of the CG sites (after n2p2's coarse-graining example, rs at the first shell).
CG_RADIAL_SF = ((0.001, 0.0), (0.01, 0.0), (0.03, 0.0), (0.06, 0.0),
                (0.15, 3.2), (0.3, 3.2), (0.6, 3.2), (1.5, 3.2))
#: Angular SFs (type 3) of the CG sites.
CG_ANGULAR_SF = ((0.03, 1.0, 1.0), (0.03, -1.0, 1.0), (0.001, 1.0, 4.0), (0.001, -1.0, 4.0))


def _settings_text(title, elements, radial, angular, cutoff, description):
    return settings_text(title, "distatomenv.tools.synth.md", elements, radial, angular,
                         angular_type=3, cutoff=cutoff, description=description,
                         notes=("Scaling: min/max to [0, 1] with centring; without a "
                                "scaling.data beside",
                                "input.data, 'distatomenv compute' computes the table itself."))


def water_settings_text(*, cutoff: float = DEFAULT_SF_CUTOFF, description: str | None = None) -> str:
    """input.nn of the atomistic description (elements H, O): per central
    element :data:`ATOM_RADIAL_SF` for each neighbour element and
    :data:`ATOM_ANGULAR_SF` for each neighbour pair."""
    return _settings_text("Symmetry functions for the distatomenv water-like liquid (atomistic)",
                          ["H", "O"], ATOM_RADIAL_SF, ATOM_ANGULAR_SF, cutoff, description)


def cg_settings_text(*, element: str = "Cm", cutoff: float = DEFAULT_SF_CUTOFF,
                     description: str | None = None) -> str:
    """input.nn of the coarse-grained description (one element, default Cm)."""
    return _settings_text("Symmetry functions for the distatomenv water-like liquid "
                          f"(coarse-grained, one {element} site per molecule)",
                          [element], CG_RADIAL_SF, CG_ANGULAR_SF, cutoff, description)


# ----------------------------------------------------------------------------
# Coarse-graining and data sets
# ----------------------------------------------------------------------------
def water_molecules(n_molecules: int):
    """The molecules of the O H H layout as :class:`distatomenv.tools.cg.Molecules`
    (without positions): molecule k is atoms 3k, 3k+1, 3k+2."""
    from ..cg import Molecules
    n = int(n_molecules)
    return Molecules(np.arange(3 * n, dtype=np.int64), np.arange(0, 3 * n + 1, 3, dtype=np.int64))


def coarse_grain_water(s: Structure, cg_element: str = "Cm") -> Structure:
    """CG structure of a generated configuration (O H H layout), with
    :func:`distatomenv.tools.cg.explicit_molecules` and
    :func:`~distatomenv.tools.cg.coarse_grain_structure`."""
    from ..cg import coarse_grain_structure, explicit_molecules
    mol = explicit_molecules(s, water_molecules(s.natoms // 3))
    return coarse_grain_structure(s, mol, cg_element=cg_element)


def _dataset_paths(directory, overwrite) -> dict:
    """Paths of the atomistic and CG input.data/input.nn under ``directory``;
    existing files are an error unless ``overwrite``."""
    directory = Path(os.fspath(directory))
    paths = {"atomistic_data": directory / "atomistic" / "input.data",
             "atomistic_nn": directory / "atomistic" / "input.nn",
             "cg_data": directory / "cg" / "input.data",
             "cg_nn": directory / "cg" / "input.nn"}
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise FileExistsError(f"{p} already exists (pass overwrite=True to replace it)")
    return paths


def _sf_cutoff(sf_cutoff, box):
    return float(min(float(sf_cutoff), math.floor(50.0 * box) / 100.0))


def write_water_dataset(directory, n_structures: int = 10, n_molecules: int = 64, seed: int = 0,
                        *, sf_cutoff: float = DEFAULT_SF_CUTOFF, cg_element: str = "Cm",
                        overwrite: bool = False, **kwargs) -> dict:
    """Generate the liquid and write both descriptions into ``directory``.

    Writes ``atomistic/input.data`` + ``atomistic/input.nn`` (elements H, O)
    and ``cg/input.data`` + ``cg/input.nn`` (one ``cg_element`` site per
    molecule at its centre of mass, summed forces), the CG data made from the
    atomistic file by :func:`distatomenv.coarse_grain` with an O-H bond
    cutoff of 1.3 A.  Neither description has a scaling.data:
    ``distatomenv compute`` computes the scaling itself.

    Parameters
    ----------
    n_structures, n_molecules, seed, **kwargs : see :func:`generate_water`.
    sf_cutoff : SF cutoff (A), capped at half the box edge.
    overwrite : replace existing files; otherwise they are an error.

    Returns dict with Paths ``atomistic_data``, ``atomistic_nn``, ``cg_data``, ``cg_nn``
    and the numbers ``box`` (A), ``sf_cutoff`` (A), ``seconds``.
    """
    from ..cg import coarse_grain
    t0 = time.perf_counter()
    paths = _dataset_paths(directory, overwrite)
    structures = generate_water(n_structures, n_molecules, seed=seed, **kwargs)
    box = float(structures[0].lattice[0, 0])
    rc = _sf_cutoff(sf_cutoff, box)
    desc = (f"Data set: {n_structures} structures of {n_molecules} molecules "
            f"({3 * n_molecules} atoms), box {box:.6f} A, seed {seed}.")
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    write_structures(paths["atomistic_data"], structures)
    paths["atomistic_nn"].write_text(water_settings_text(cutoff=rc, description=desc))
    coarse_grain(paths["atomistic_data"], paths["cg_data"], bond_cutoff="H-O=1.3",
                 cg_element=cg_element, composition="H2O")
    paths["cg_nn"].write_text(cg_settings_text(element=cg_element, cutoff=rc, description=desc))
    return {**paths, "box": box, "sf_cutoff": rc, "seconds": time.perf_counter() - t0}


def write_water_fast(directory, n_atoms: int, n_molecules: int = 1000, seed: int = 0, *,
                     base_samples: int = 20, jitter: float = 0.01, sf_cutoff: float = DEFAULT_SF_CUTOFF,
                     cg_element: str = "Cm", overwrite: bool = False, progress=None,
                     **kwargs) -> dict:
    """Write a large data set (for benchmarks) quickly: at least ``n_atoms`` atoms.

    One simulation of ``n_molecules`` molecules is equilibrated and sampled
    ``base_samples`` times (:func:`generate_water`, ``**kwargs``).  Every
    structure written is one of these samples under a random symmetry of the
    cube (axis permutation and flips), a random translation and a Gaussian
    displacement of every atom (standard deviation ``jitter`` A); its energy
    and forces are recomputed exactly for the displaced positions, so every
    structure is distinct and its forces are exact.  Atom lines are written
    fixed-point with 10 decimals (:func:`format_atoms_fixed`), so positions
    and forces in the file are rounded to 5e-11.  The CG file is made from the
    same arrays (:func:`coarse_grain_water`).

    Returns dict like :func:`write_water_dataset`, plus ``n_structures``,
    ``n_atoms`` and ``seconds``.
    """
    t0 = time.perf_counter()
    paths = _dataset_paths(directory, overwrite)
    n_molecules = int(n_molecules)
    per = 3 * n_molecules
    n_structures = max(1, -(-int(n_atoms) // per))
    model = kwargs.pop("model", None) or WaterModel()
    base = generate_water(int(base_samples), n_molecules, seed=seed, model=model, **kwargs)
    box = float(base[0].lattice[0, 0])
    rc = _sf_cutoff(sf_cutoff, box)
    symbols = WaterModel.symbols(n_molecules)
    types = WaterModel.types(n_molecules)
    args = model._kernel_args()
    desc = (f"Data set: {n_structures} structures of {n_molecules} molecules ({per} atoms), "
            f"box {box:.6f} A, seed {seed}, {base_samples} MD samples under cube symmetries, "
            f"translations and {jitter} A jitter.")
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    # unwrapped base samples: molecules made whole again (O H H layout)
    whole = []
    for s in base:
        p = s.positions.copy()
        for h in (1, 2):
            d = p[h::3] - p[0::3]
            p[h::3] -= box * np.round(d / box)
        whole.append(p)

    def energy_forces(p):
        forces = np.empty_like(p)
        return float(_energy_forces(p, types, box, *args, forces)), forces

    def cg(s):
        c = coarse_grain_water(s, cg_element)
        return c.positions, c.elements, c.forces
    with open(paths["atomistic_data"], "wb") as fa, open(paths["cg_data"], "wb") as fc:
        write_replicas(fa, whole, box, symbols, energy_forces, n_structures,
                       np.random.default_rng([seed, 1]), jitter=jitter,
                       comment=f"distatomenv.tools.synth.md fast water-like liquid (seed {seed})",
                       derived=(fc, cg), progress=progress)
    paths["atomistic_nn"].write_text(water_settings_text(cutoff=rc, description=desc))
    paths["cg_nn"].write_text(cg_settings_text(element=cg_element, cutoff=rc, description=desc))
    return {**paths, "box": box, "sf_cutoff": rc, "n_structures": n_structures,
            "n_atoms": n_structures * per, "seconds": time.perf_counter() - t0}
