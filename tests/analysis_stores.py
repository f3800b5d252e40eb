"""Small stores with chosen descriptors and forces, for the analysis tests."""
from __future__ import annotations

import numpy as np

from distatomenv.store.schema import StoreLayout
from distatomenv.store.writer import StoreWriter, create_store, finalize_store


def write_store(path, X, F, *, element="H", chunk_rows=256, derivatives=False, dX=None,
                atoms_per_structure=50, finalize=True, overwrite=False):
    """A one-element store whose G rows are ``X`` (n, p) and forces ``F`` (n, 3).

    With ``derivatives``, dGdx/dGdy/dGdz are ``dX[0..2]`` (default: X, 2X, 3X).
    Rows are grouped into structures of ``atoms_per_structure`` atoms.
    ``finalize=False`` leaves the store incomplete (no unit marker).
    """
    X = np.asarray(X, dtype=np.float64)
    F = np.asarray(F, dtype=np.float64)
    n, p = X.shape
    S = int(np.ceil(n / atoms_per_structure))
    counts = np.full(S, atoms_per_structure, dtype=np.int64)
    counts[-1] = n - atoms_per_structure * (S - 1)
    layout = StoreLayout(elements=[element], n_rows={element: n}, nG={element: p},
                         ndG={element: p if derivatives else 0}, nblocks={element: 0},
                         derivatives=derivatives, n_structures=S, chunk_rows=chunk_rows)
    structures = {
        "natoms": counts,
        "periodic": np.zeros(S, bool),
        "lattice": np.full((S, 3, 3), np.nan),
        "energy": np.zeros(S),
        "charge": np.zeros(S),
        "counts": counts[:, None],
    }
    create_store(path, layout, structures, {"command": "tests/analysis_stores.py",
                                            "inputs": {"synthetic": True}}, n_units=1,
                 overwrite=overwrite)
    w = StoreWriter(path)
    structure = np.repeat(np.arange(S), counts)
    atom = np.concatenate([np.arange(c) for c in counts]).astype(np.int32)
    arrays = {"G": X, "forces": F, "positions": np.zeros((n, 3)), "structure": structure,
              "atom": atom}
    if derivatives:
        dX = [X, 2 * X, 3 * X] if dX is None else dX
        arrays.update({"dGdx": dX[0], "dGdy": dX[1], "dGdz": dX[2]})
    w.write_rows(element, 0, arrays)
    if finalize:
        w.mark_unit_done(0)
        finalize_store(path, 1)
    return path


def blobs(n, n_centers=8, dim=6, spread=0.25, seed=0):
    """Rows around ``n_centers`` well-separated centres; returns (X, centre index)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-4, 4, size=(n_centers, dim))
    which = rng.integers(n_centers, size=n)
    X = centers[which] + spread * rng.standard_normal((n, dim))
    return X, which
