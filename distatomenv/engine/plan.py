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
