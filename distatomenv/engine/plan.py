"""The plan: who computes what and who writes which rows of the store.

A pure, deterministic function of the index (per-structure element counts),
the chunk size and the number of work units.  Every backend (serial, MPI,
Dask) executes the same plan, so the store is bit-identical whatever ran it.

Ownership rule (no two writers ever write the same chunk, see
:mod:`distatomenv.store.schema`): rows of element E are written in whole
chunks, and each chunk belongs to exactly one unit.  Units split the data at
structure boundaries balanced by atom count; for each element the split
point is moved to the nearest chunk boundary, so a structure whose rows
straddle a boundary is *read* by both neighbouring units, but each of its
atoms is *written* by exactly one (``WorkUnit.owned_atoms``).  Neighbour
atoms that a unit needs but does not own are recomputed, never written.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WorkUnit:
    """One unit of work.

    Attributes
    ----------
    id : 0-based unit number.
    rows : per element index, the owned row range (start, stop) of that
        element's arrays; start is a multiple of the chunk size, stop is one
        or the element's total row count.
    first, last : the structures to read, ``first <= s < last``.
    atoms : number of owned atoms (the unit's load).
    """

    id: int
    rows: tuple
    first: int
    last: int
    atoms: int

    @property
    def empty(self) -> bool:
        return self.atoms == 0

    def owned_atoms(self, first_row, counts_row, elem):
        """Boolean mask of the atoms of one structure that this unit writes.

        first_row : int (n_elements,) first row of the structure per element;
        counts_row : its atom counts per element (unused, for checks);
        elem : int (n_atoms,) element index of each atom, input order.
        """
        mask = np.zeros(elem.shape[0], dtype=bool)
        for e, (a, b) in enumerate(self.rows):
            sel = np.flatnonzero(elem == e)
            rows = first_row[e] + np.arange(sel.size)
            mask[sel[(rows >= a) & (rows < b)]] = True
        return mask

    def to_dict(self):
        return {"id": self.id, "rows": [list(r) for r in self.rows], "first": self.first,
                "last": self.last, "atoms": self.atoms}


def first_rows(counts: np.ndarray) -> np.ndarray:
    """Row of each structure's first atom per element: int64 (S, n_elements)."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros_like(counts)
    if counts.shape[0]:
        np.cumsum(counts[:-1], axis=0, out=out[1:])
    return out


def make_plan(counts, chunk_rows: int, n_units: int) -> list[WorkUnit]:
    """Split the structures into ``n_units`` work units (some may be empty).

    Parameters
    ----------
    counts : int (S, n_elements) atoms per structure and element.
    chunk_rows : rows per store chunk (the ownership granule).
    n_units : wanted number of units, >= 1.
    """
    counts = np.asarray(counts, dtype=np.int64)
    S, ne = counts.shape
    n_units = max(1, int(n_units))
    total = counts.sum(axis=0)                     # rows per element
    fr = first_rows(counts)
    natoms = counts.sum(axis=1)
    cum = np.concatenate([[0], np.cumsum(natoms)])
    # structure split points balanced by atoms
    targets = cum[-1] * np.arange(1, n_units) / n_units
    splits = np.concatenate([[0], np.searchsorted(cum, targets, side="left"), [S]])
    splits = np.clip(splits, 0, S)
    bounds = np.zeros((n_units + 1, ne), dtype=np.int64)
    for e in range(ne):
        row_at = np.append(fr[:, e], total[e])    # first row of structure s (s <= S)
        b = np.rint(row_at[splits] / chunk_rows).astype(np.int64) * chunk_rows
        b = np.minimum(b, total[e])
        b[0], b[-1] = 0, total[e]
        bounds[:, e] = np.maximum.accumulate(b)
    units = []
    for k in range(n_units):
        rows = tuple((int(bounds[k, e]), int(bounds[k + 1, e])) for e in range(ne))
        first, last, atoms = S, 0, 0
        for e, (a, b) in enumerate(rows):
            if b > a:
                # structures holding rows a .. b-1 of element e
                s_a = int(np.searchsorted(fr[:, e], a, side="right") - 1)
                s_b = int(np.searchsorted(fr[:, e], b - 1, side="right") - 1)
                first, last = min(first, s_a), max(last, s_b + 1)
                atoms += b - a
        if atoms == 0:
            first = last = 0
        units.append(WorkUnit(k, rows, first, last, atoms))
    return units


def default_units(n_atoms: int, n_workers: int, chunk_rows: int,
                  atoms_per_unit: int = 50_000, units_per_worker: int = 8) -> int:
    """A sensible unit count: units of about ``atoms_per_unit`` atoms (resume
    granularity), and in parallel at least ``units_per_worker`` units per
    worker so that the static assignment balances (one unit more or less is
    1/8 of a worker's load), but not many more units than chunks, nor more
    than 64 per worker."""
    by_size = -(-n_atoms // max(atoms_per_unit, chunk_rows))
    if n_workers <= 1:
        return max(1, by_size)
    n_chunks = -(-n_atoms // chunk_rows)
    want = max(by_size, units_per_worker * n_workers)
    return max(1, n_workers, min(want, n_chunks, 64 * n_workers))


def read_atoms(units, counts) -> int:
    """Atoms of the structures the units read, summed over units: a structure
    read by two units (it straddles their rows) counts twice.  Its neighbours
    are recomputed by both, so this is the work the plan costs."""
    cum = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64).sum(axis=1))])
    return int(sum(cum[u.last] - cum[u.first] for u in units))


def choose_units(counts, chunk_rows: int, wanted: int, n_workers: int = 1,
                 max_extra: float = 0.10) -> int:
    """The unit count to plan with: ``wanted`` (see :func:`default_units`),
    or fewer where its boundaries would make units read many structures twice.

    Unit boundaries fall on each element's chunk boundaries, and an element
    with few rows has chunks spanning many structures: with many units, a
    unit may own one element's rows of twice the structures it owns of
    another, and must compute every atom of them (its neighbours, its
    force-matching sums).  Halving the count, down to one unit per worker,
    the first count whose structures read exceed the atoms by at most
    ``max_extra`` wins; otherwise the count that reads least.
    """
    counts = np.asarray(counts, dtype=np.int64)
    natoms = max(1, int(counts.sum()))
    floor = max(1, int(n_workers))
    n = max(int(wanted), floor)
    best, best_read = n, None
    while True:
        read = read_atoms(make_plan(counts, chunk_rows, n), counts)
        if read <= (1.0 + max_extra) * natoms:
            return n
        if best_read is None or read < best_read:
            best, best_read = n, read
        if n == floor:
            return best
        n = max(floor, n // 2)
