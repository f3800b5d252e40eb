"""The structure model of n2p2's input.data: one record (:class:`Structure`)
and where every record of a file is (:class:`DataIndex`), in the units of the
file; :func:`remap_positions` wraps positions into the cell as n2p2 does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataFileError

__all__ = ["Structure", "DataIndex", "remap_positions", "SINGULAR_CELL_TOL",
           "PERIODIC_CHARGE_TOL", "WRAP_LIMIT"]

#: A cell is singular when |det| <= this times the product of the vector lengths.
SINGULAR_CELL_TOL = 1e-10
#: Largest |total charge| accepted for a periodic structure (n2p2 refuses others).
PERIODIC_CHARGE_TOL = 1e-8
#: Largest |fractional coordinate| accepted in a periodic structure: wrapping
#: f into [0, 1) keeps about 16 - log10|f| digits, so beyond 2**20 (~1e6 cells
#: away) the wrapped position would be off by more than 1e-10 of the cell.
WRAP_LIMIT = 2.0 ** 20


@dataclass(eq=False)
class Structure:
    """One record of input.data, in the units of the file.

    Arrays are compared by identity (``eq=False``); compare fields explicitly.

    Attributes
    ----------
    index : 0-based position of the structure in its file.
    line : 1-based line number of the record's ``begin`` line.
    comment : text of the ``comment`` line(s), joined with newlines ("" if none).
    lattice : float64 (3, 3) or None; the ROWS are the lattice vectors (length).
    positions : float64 (n, 3), Cartesian positions as written in the file (length).
    elements : str (n,), element symbols.
    charges : float64 (n,), atomic charges.
    atom_energies : float64 (n,), atomic energies (the 6th field of ``atom``).
    forces : float64 (n, 3), forces (energy / length).
    energy : total energy, NaN when the record has no ``energy`` line.
    charge : total charge, 0.0 when the record has no ``charge`` line.
    path : the file the structure was read from ("" if built in memory).
    atom_lines : int64 (n,) 1-based line of each atom in ``path``, or None.
    """

    index: int
    line: int
    comment: str
    lattice: np.ndarray | None
    positions: np.ndarray
    elements: np.ndarray
    charges: np.ndarray
    atom_energies: np.ndarray
    forces: np.ndarray
    energy: float = math.nan
    charge: float = 0.0
    path: str = ""
    atom_lines: np.ndarray | None = None

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64)
        n = len(self.positions)
        if self.positions.shape != (n, 3):
            raise ValueError(f"positions must have shape (n, 3), got {self.positions.shape}")
        self.elements = np.asarray(self.elements, dtype=str)
        self.charges = np.asarray(self.charges, dtype=np.float64)
        self.atom_energies = np.asarray(self.atom_energies, dtype=np.float64)
        self.forces = np.asarray(self.forces, dtype=np.float64)
        for name, want in (("elements", (n,)), ("charges", (n,)),
                           ("atom_energies", (n,)), ("forces", (n, 3))):
            got = getattr(self, name).shape
            if got != want:
                raise ValueError(f"{name} must have shape {want} to match positions, got {got}")
        if self.lattice is not None:
            self.lattice = np.asarray(self.lattice, dtype=np.float64)
            if self.lattice.shape != (3, 3):
                raise ValueError(f"lattice must have shape (3, 3) or be None, got {self.lattice.shape}")
        self.energy = float(self.energy)
        self.charge = float(self.charge)

    @property
    def periodic(self) -> bool:
        """Whether the structure has a cell (three ``lattice`` lines)."""
        return self.lattice is not None

    @property
    def natoms(self) -> int:
        return len(self.positions)

    def remapped_positions(self) -> np.ndarray:
        """Positions wrapped into the cell as n2p2 does (see :func:`remap_positions`).

        Returns
        -------
        float64 array (n, 3), a new array (length).

        Raises
        ------
        DataFileError
            An atom so far outside the cell (more than :data:`WRAP_LIMIT` cells)
            that wrapping it would lose its position, naming the file and line.
        """
        if self.lattice is not None and self.natoms:
            frac = self.positions @ np.linalg.inv(self.lattice)
            far = np.abs(frac) > WRAP_LIMIT
            if far.any():
                i, a = (int(v) for v in np.argwhere(far)[0])
                line = int(self.atom_lines[i]) if self.atom_lines is not None else self.line
                where = "" if self.atom_lines is not None else f", atom {i + 1}"
                raise DataFileError(
                    self.path or "<input>", line,
                    f"structure {self.index + 1}{where}: position "
                    f"({', '.join(f'{v:.6g}' for v in self.positions[i])}) lies "
                    f"{abs(frac[i, a]):.3g} cells outside the cell along lattice vector {a + 1}; "
                    f"wrapping it into the cell would lose its precision (more than "
                    f"{WRAP_LIMIT:.0f} cells away); fix the coordinate")
        return remap_positions(self.positions, self.lattice)


def remap_positions(positions, lattice) -> np.ndarray:
    """Wrap positions into the cell as n2p2 does when it reads input.data.

    The fractional coordinates f solve ``r = f @ lattice`` (rows are the
    lattice vectors); ``f -= floor(f)`` puts them in [0, 1), and the result is
    ``f @ lattice``.  With ``lattice`` None (non-periodic) a copy is returned.
    positions: float64 (n, 3); lattice: float64 (3, 3) or None; same length unit.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if lattice is None:
        return positions.copy()
    frac = positions @ np.linalg.inv(lattice)
    frac -= np.floor(frac)
    return frac @ lattice


@dataclass(eq=False)
class DataIndex:
    """Where each structure of an input.data file is, and what it holds.

    One entry per structure, in file order (S structures, E elements).

    Attributes
    ----------
    offset : int64 (S,), byte offset of the first byte of the ``begin`` line.
    nbytes : int64 (S,), bytes from ``offset`` up to and including the ``end`` line.
    line : int64 (S,), 1-based line number of the ``begin`` line.
    natoms : int64 (S,), number of atoms.
    counts : int64 (S, E), atoms per element, columns in the order of ``elements``.
    periodic : bool (S,), whether the record has a cell.
    lattice : float64 (S, 3, 3), rows are the lattice vectors; NaN if not periodic.
    energy : float64 (S,), total energy, NaN where absent.
    charge : float64 (S,), total charge, 0.0 where absent.
    path : the indexed file.
    elements : element symbols, the columns of ``counts``.
    file_size : size of the file in bytes when it was indexed.
    sha256 : hex digest of the whole file, or None for an index of a byte range.
    digest : :func:`~distatomenv.io.index.file_digest` of the file, set by
        :func:`~distatomenv.io.index.index_data`.
    """

    offset: np.ndarray
    nbytes: np.ndarray
    line: np.ndarray
    natoms: np.ndarray
    counts: np.ndarray
    periodic: np.ndarray
    lattice: np.ndarray
    energy: np.ndarray
    charge: np.ndarray
    path: str
    elements: list[str] = field(default_factory=list)
    file_size: int = 0
    sha256: str | None = None
    digest: str | None = None

    @property
    def n_structures(self) -> int:
        return len(self.offset)

    @property
    def n_atoms(self) -> int:
        return int(self.natoms.sum())

    @classmethod
    def merge(cls, parts) -> "DataIndex":
        """Concatenate the indices of consecutive byte ranges of one file.

        Parameters
        ----------
        parts : sequence of DataIndex, in file order, as returned by
            ``inputdata.index_file(path, elements, start=..., stop=...)`` for ranges
            that together cover the file.

        The result has ``sha256`` None unless there is a single part (compute
        the checksum separately if needed).  A merged index without any
        structure means the file holds none, which is an error.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("DataIndex.merge needs at least one part")
        first = parts[0]
        for p in parts[1:]:
            if (p.path, list(p.elements), p.file_size) != (first.path, list(first.elements), first.file_size):
                raise ValueError(
                    "DataIndex.merge: parts come from different files or element lists: "
                    f"{(first.path, first.elements, first.file_size)} vs {(p.path, p.elements, p.file_size)}")
        if len(parts) == 1:
            merged = first
        else:
            def cat(name):
                return np.concatenate([getattr(p, name) for p in parts])
            merged = cls(offset=cat("offset"), nbytes=cat("nbytes"), line=cat("line"),
                         natoms=cat("natoms"), counts=cat("counts"), periodic=cat("periodic"),
                         lattice=cat("lattice"), energy=cat("energy"), charge=cat("charge"),
                         path=first.path, elements=list(first.elements),
                         file_size=first.file_size, sha256=None)
        if np.any(np.diff(merged.offset) <= 0):
            raise ValueError("DataIndex.merge: parts overlap or are not in file order")
        if merged.n_structures == 0:
            raise DataFileError(first.path, None, "no structures found (no 'begin' ... 'end' record)")
        return merged
