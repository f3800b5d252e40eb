"""An interactive map of the readout's sampled atoms for chemiscope.

``report/chemiscope.json.gz`` holds, for the atoms the readout sampled
(``Analyzer.readout_samples_``), their structures (rebuilt from the store's
``positions``, ``structure`` and ``atom`` arrays, with the lattice of periodic
ones) and per-atom properties: the reference force, the held-out predicted
force, the residual (components and norms), the element, the structure and
atom indices and, when the labels were written to the store, the cluster.
Each point of the map is one atom; clicking it shows the atom in its
structure.  Open the file on https://chemiscope.org (drag and drop) or in
Jupyter with ``chemiscope.show_input("chemiscope.json.gz")``.

Needs the optional packages ``chemiscope`` and ``ase`` (the ``report``
extra); :func:`available` says whether they are importable.  The map is
capped (``max_structures``, ``max_atoms``, ``max_frame_atoms``) so the file
stays small enough for a browser whatever the size of the store.

This module reads the store only (layers: analysis -> store).
"""
from __future__ import annotations

import os

import numpy as np

from distatomenv.store.reader import StoreReader, open_store

__all__ = ["available", "write_chemiscope", "cluster_labels", "MAP_FILE",
           "MAX_STRUCTURES", "MAX_ATOMS", "MAX_FRAME_ATOMS"]

#: File name of the map in the report folder.
MAP_FILE = "chemiscope.json.gz"
#: At most this many structures are shown ...
MAX_STRUCTURES = 50
#: ... with at most this many sampled atoms (points of the map) ...
MAX_ATOMS = 5000
#: ... and at most this many atoms in all the structures together.
MAX_FRAME_ATOMS = 200_000
#: Cutoff (input length unit) of the highlighted environment when the store
#: does not record its symmetry functions' largest cutoff.
DEFAULT_CUTOFF = 3.5


def available() -> tuple[bool, str]:
    """(True, "") when chemiscope and ase can be imported, else (False, why)."""
    missing = []
    for name in ("chemiscope", "ase"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        return False, (f"{' and '.join(missing)} not installed "
                       "(pip install 'distatomenv[report]')")
    return True, ""


def _symbol(element: str) -> str:
    from ase.data import chemical_symbols

    return element if element in chemical_symbols else "X"


def _select(samples, max_structures, max_atoms, max_frame_atoms, natoms):
    """Which structures and which sampled atoms go into the map.

    Returns (structures (s,) int64 store indices, list of (element, index
    array into the element's sample)).  Structures: those holding sampled
    atoms, spread evenly over their index range when there are more than
    ``max_structures``, then cut where their atoms exceed ``max_frame_atoms``
    (at least one is kept).  Atoms: those of the chosen structures, thinned
    evenly (in structure, atom order) to ``max_atoms``.
    """
    all_s = np.unique(np.concatenate(
        [np.asarray(s["structure"], dtype=np.int64) for s in samples.values()]))
    if len(all_s) > max_structures:
        all_s = all_s[np.unique(np.linspace(0, len(all_s) - 1, max_structures).astype(np.intp))]
    keep = np.cumsum(natoms[all_s]) <= max_frame_atoms
    keep[0] = True
    chosen = all_s[keep]
    picks = []                              # (structure, atom, element, sample index)
    for e, s in samples.items():
        st = np.asarray(s["structure"], dtype=np.int64)
        idx = np.flatnonzero(np.isin(st, chosen))
        picks.extend((int(st[i]), int(s["atom"][i]), e, int(i)) for i in idx)
    picks.sort(key=lambda t: (t[0], t[1], t[2]))
    if len(picks) > max_atoms:
        picks = [picks[i] for i in np.unique(np.linspace(0, len(picks) - 1, max_atoms).astype(np.intp))]
    used = np.array(sorted({p[0] for p in picks}), dtype=np.int64)
    return used, picks


def _frame(reader: StoreReader, s: int):
    """The structure ``s`` as ase.Atoms (input positions, lattice when
    periodic) and its reference forces (natoms, 3)."""
    import ase

    n = int(reader.structures("natoms")[s])
    symbols = ["X"] * n
    pos = np.zeros((n, 3))
    forces = np.full((n, 3), np.nan)
    for e, rows in reader.rows_of_structure(s).items():
        if rows.stop <= rows.start:
            continue
        atom = np.asarray(reader.read(e, "atom", rows), dtype=np.int64)
        ok = (atom >= 0) & (atom < n)
        pos[atom[ok]] = np.asarray(reader.read(e, "positions", rows))[ok]
        forces[atom[ok]] = np.asarray(reader.read(e, "forces", rows))[ok]
        sym = _symbol(e)
        for a in atom[ok]:
            symbols[a] = sym
    periodic = bool(reader.structures("periodic")[s])
    cell = np.asarray(reader.structures("lattice")[s], dtype=np.float64)
    if periodic and np.isfinite(cell).all():
        atoms = ase.Atoms(symbols, positions=pos, cell=cell, pbc=True)
    else:
        atoms = ase.Atoms(symbols, positions=pos)
    return atoms, forces


def cluster_labels(analyzer, samples) -> dict:
    """Cluster of each sampled atom, from the labels the analysis wrote to
    the store (``--write-labels``) for the clustering shown in the report's
    maps (``analyzer.map_key()``).  Returns element -> (name, (m,) int array);
    empty when no labels were written or the cluster view is off."""
    run = getattr(analyzer, "run_name_", None)
    if not run or getattr(analyzer, "clusters_view", True) is False:
        return {}
    import zarr

    from distatomenv.store.labels import label_path

    try:
        key = analyzer.map_key()
    except Exception:                       # noqa: BLE001 -- no sweep: no labels
        return {}
    name = "labels_hdbscan" if key == "hdbscan" else f"labels_k{key}"
    out = {}
    try:
        root = zarr.open_group(analyzer.store_["path"], mode="r")
    except Exception:                       # noqa: BLE001 -- the map goes without
        return {}
    for job in getattr(analyzer, "jobs_", []):
        e, d = job.element, job.descriptor
        if e in out or e not in samples or not len(samples[e].get("row", ())):
            continue
        try:
            arr = root[label_path(run, e, d, name)]
            out[e] = (f"cluster ({d}, {'HDBSCAN' if key == 'hdbscan' else f'k={key}'})",
                      np.asarray(arr.oindex[np.asarray(samples[e]["row"], dtype=np.int64)]))
        except Exception:                   # noqa: BLE001 -- label missing: skip
            continue
    return out


def write_chemiscope(store, samples, filename, *, labels=None, r2=None,
                     max_structures: int = MAX_STRUCTURES, max_atoms: int = MAX_ATOMS,
                     max_frame_atoms: int = MAX_FRAME_ATOMS, name=None) -> dict:
    """Write the chemiscope file of the sampled atoms.

    Parameters
    ----------
    store : path or :class:`StoreReader`
    samples : dict element -> dict of arrays (``Analyzer.readout_samples_``):
        ``structure`` (m,) int, ``atom`` (m,) int, ``forces`` (m, 3),
        ``predicted`` (m, 3) and optionally ``residual`` (m, 3) (force units)
    filename : str ending in .json or .json.gz
    labels : dict element -> (property name, (m,) int cluster labels), optional
    r2 : dict element -> float, optional, for the description

    Returns
    -------
    dict: ``file``, ``n_structures``, ``n_environments``, ``properties``
    (names), ``capped`` (True when atoms or structures were left out).

    Raises
    ------
    ImportError : chemiscope or ase is not installed.
    ValueError : no sampled atoms.
    """
    ok, why = available()
    if not ok:
        raise ImportError(why)
    import chemiscope

    reader = store if isinstance(store, StoreReader) else open_store(store, allow_incomplete=True)
    samples = {e: s for e, s in (samples or {}).items()
               if s is not None and len(np.asarray(s.get("structure", ())))}
    if not samples:
        raise ValueError("no sampled atoms to map")
    natoms = np.asarray(reader.structures("natoms"), dtype=np.int64)
    used, picks = _select(samples, max_structures, max_atoms, max_frame_atoms, natoms)
    n_sampled = sum(len(s["structure"]) for s in samples.values())
    frames, frame_forces = [], []
    for s in used:
        atoms, forces = _frame(reader, int(s))
        frames.append(atoms)
        frame_forces.append(forces)
    where = {int(s): i for i, s in enumerate(used)}

    cutoff = DEFAULT_CUTOFF
    try:
        cutoff = float(reader.meta["neighbors"]["rc_max"]) or DEFAULT_CUTOFF
    except (KeyError, TypeError, ValueError):
        pass
    environments = [(where[st], at, cutoff) for st, at, _, _ in picks]

    def gather(key):
        rows = []
        for _, _, e, i in picks:
            v = samples[e].get(key)
            rows.append(np.full(3, np.nan) if v is None else np.asarray(v[i], dtype=np.float64))
        return np.array(rows, dtype=np.float64).reshape(len(picks), 3)

    F = gather("forces")
    P = gather("predicted")
    R = gather("residual") if all("residual" in samples[e] for e in samples) else F - P
    props = {
        "element": {"target": "atom", "values": [e for _, _, e, _ in picks],
                    "description": "element (store group) of the atom"},
        "structure": {"target": "atom", "values": np.array([p[0] for p in picks], dtype=np.float64),
                      "description": "0-based structure index in the store / input.data"},
        "atom": {"target": "atom", "values": np.array([p[1] for p in picks], dtype=np.float64),
                 "description": "0-based atom index within its structure"},
    }
    for label, arr, what in (("F", F, "reference force"),
                             ("predicted F", P, "held-out predicted force (linear readout, "
                                                "x, y, z pooled; the atom's structure was not "
                                                "in the training folds)"),
                             ("residual F", R, "reference minus predicted force")):
        for j, c in enumerate("xyz"):
            props[f"{label}{c}"] = {"target": "atom", "values": arr[:, j],
                                    "description": f"{what}, {c} component"}
        props[f"|{label}|"] = {"target": "atom", "values": np.linalg.norm(arr, axis=1),
                               "description": f"norm of the {what}"}
    for e, (pname, lab) in (labels or {}).items():
        if pname not in props:
            props[pname] = {"target": "atom", "values": np.full(len(picks), -2.0),
                            "description": "cluster of the atom in the report's map clustering "
                                           "of its element (-1: HDBSCAN noise; -2: no label)"}
        vals = props[pname]["values"]
        for n, (_, _, pe, i) in enumerate(picks):
            if pe == e:
                vals[n] = float(lab[i])
    for p in props.values():              # chemiscope wants finite numbers or strings
        if isinstance(p["values"], np.ndarray):
            p["values"] = np.nan_to_num(p["values"], nan=0.0, posinf=0.0, neginf=0.0)

    # force arrows for every atom of the shown structures, the 95th percentile
    # of |F| drawn one length unit long
    allf = np.concatenate(frame_forces) if frame_forces else np.zeros((0, 3))
    fin = np.isfinite(allf).all(axis=1)
    norms = np.linalg.norm(allf[fin], axis=1)
    scale = 1.0 / float(np.percentile(norms, 95)) if len(norms) and np.percentile(norms, 95) > 0 else 1.0
    for atoms, forces in zip(frames, frame_forces):
        atoms.set_array("reference_force", np.nan_to_num(forces))
    shapes = {"force": chemiscope.ase_vectors_to_arrows(frames, "reference_force", target="atom",
                                                         scale=scale, radius=0.05)}
    for atoms in frames:
        del atoms.arrays["reference_force"]

    periodic = any(a.pbc.any() for a in frames)
    settings = chemiscope.quick_settings(
        x="Fx", y="predicted Fx", map_color="|residual F|", target="atom", periodic=periodic,
        structure_settings={"supercell": [1, 1, 1], "shape": "force", "unitCell": periodic})
    capped = len(picks) < n_sampled
    r2_text = ""
    if r2:
        r2_text = " Cross-validated R² (linear, pooled): " + ", ".join(
            f"{e} {v:.3f}" for e, v in r2.items() if v is not None) + "."
    description = (
        f"distatomenv force readout: {len(picks)} sampled atoms "
        f"({', '.join(samples)}) in {len(frames)} structures"
        f"{' (capped from ' + str(n_sampled) + ' sampled atoms)' if capped else ''}. "
        "Each point is one atom: its reference force against the force predicted for it by "
        "the linear readout trained on the other structures (held out by structure). "
        f"Arrows: reference forces (scale {scale:.3g} length units per force unit).{r2_text}")
    meta = {"name": name or "distatomenv readout map", "description": description,
            "authors": ["distatomenv"], "references": [os.fspath(reader.path)]}
    chemiscope.write_input(os.fspath(filename), structures=frames, properties=props,
                           environments=environments, shapes=shapes, settings=settings,
                           metadata=meta)
    return {"file": os.fspath(filename), "n_structures": len(frames),
            "n_environments": len(picks), "properties": list(props), "capped": capped}
