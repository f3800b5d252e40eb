"""The scaling pass (n2p2's ``nnp-scaling``): SF minimum, maximum, mean and
sigma over every atom, in fixed parts merged in order (Chan's formula,
:mod:`distatomenv.stats.moments`), so the table is the same bits whatever
ran the parts.
"""
from __future__ import annotations

import os

import numpy as np

from ..descriptors.environment import EnvironmentCalculator, check_neighbor_budget
from ..io.files import beside
from ..io.index import index_data
from ..io.inputdata import read_structure
from ..io.scaling import ScalingTable, write_scaling
from ..io.settings import Settings, read_settings
from ..parallel import local_map, positive_int_env, set_threads, start_phase
from ..stats.moments import MomentAccumulator

#: Atoms per part of the scaling pass.  Parts are fixed by the data alone (not by
#: the number of workers) and merged in order, so the scaling table, and with it
#: every G in the store, is bit-identical whatever ran the pass.
SCALING_PART_ATOMS = 20_000
#: Environment variable that changes the part size (tuning and tests).
PART_ENV = "DISTATOMENV_SCALING_PART_ATOMS"


def scaling_parts(natoms, part_atoms: int = SCALING_PART_ATOMS) -> list[tuple[int, int]]:
    """Contiguous structure ranges [first, last) of about ``part_atoms`` atoms
    each (whole structures), fixed by the data alone."""
    parts, first, acc = [], 0, 0
    for s, n in enumerate(np.asarray(natoms)):
        acc += int(n)
        if acc >= part_atoms:
            parts.append((first, s + 1))
            first, acc = s + 1, 0
    if first < len(natoms) or not parts:
        parts.append((first, len(natoms)))
    return parts


def _scaling_task(shared, part):
    """Moments of the unscaled SFs of the structures [first, last): one part of
    the scaling pass, run wherever the mapper puts it."""
    data, st, index, threads = shared
    set_threads(threads)
    ne = len(st.elements)
    ident = {e: (np.zeros(st.sfset.n_sf(e)), np.ones(st.sfset.n_sf(e)), np.zeros(st.sfset.n_sf(e)))
             for e in st.elements}
    calc = EnvironmentCalculator(st.sfset, np.zeros((ne, ne), dtype=np.int64), ident,
                                 st.conv_length, derivatives=False)
    acc = {e: MomentAccumulator(st.sfset.n_sf(e)) for e in st.elements}
    eindex = {e: a for a, e in enumerate(st.elements)}
    first, last = part
    for s in range(first, last):
        struct = read_structure(data, index, s)
        elem = np.fromiter((eindex[x] for x in struct.elements), dtype=np.int64,
                           count=struct.natoms)
        rows = calc.compute(elem, struct.remapped_positions(), struct.lattice, structure_index=s,
                            path=data, atom_lines=struct.atom_lines)
        for e, r in rows.items():
            acc[e].add(r["G"])
    return {"moments": acc, "structures": last - first,
            "atoms": int(index.natoms[first:last].sum())}


def scaling_pass(data, *, settings=None, threads=None, index=None, mapper=None, progress=None):
    """SF min, max, mean and sigma over every atom of input.data (``nnp-scaling``).

    settings : input.nn path (default: beside ``data``) or a Settings already read.
    index : the DataIndex of ``data`` if the caller has it (saves a pass).
    mapper : runs the parts (fixed groups of structures, :func:`scaling_parts`)
        where the executor wants (:func:`distatomenv.parallel.local_map` by
        default); their moments are merged in part order with Chan's formula,
        so the table is the same bits whatever ran the parts.
    progress : optional object with methods ``start(phase, structures, atoms)``
        and ``__call__(structures, atoms)`` (a plain callable is not called here).
    Returns a :class:`~distatomenv.io.scaling.ScalingTable`.
    """
    st = settings if isinstance(settings, Settings) else \
        read_settings(beside(data, settings, "input.nn"))
    if index is None:
        index = index_data(data, st.elements, mapper)
    check_neighbor_budget(index.natoms, index.lattice, index.periodic, st.sfset,
                          settings_path=getattr(st, "path", None), data_path=data)
    parts = scaling_parts(index.natoms, positive_int_env(PART_ENV, SCALING_PART_ATOMS))
    start_phase(progress, "scaling", index.n_structures, index.n_atoms)
    # a plain callable follows compute only; an object with start() every phase
    report = None if getattr(progress, "start", None) is None else \
        (lambda r: progress(r["structures"], r["atoms"]))
    results = (mapper or local_map)(_scaling_task, parts, (os.fspath(data), st, index, threads),
                                    report)
    acc = {e: MomentAccumulator(st.sfset.n_sf(e)) for e in st.elements}
    for r in results:
        for e in st.elements:
            acc[e].merge(r["moments"][e])
    # n2p2's degenerate rows: no atoms -> +-DBL_MAX and NaN, one atom -> sigma NaN
    return ScalingTable.from_moments(
        st.elements, **{k: {e: getattr(a, k) for e, a in acc.items()}
                        for k in ("count", "min", "max", "mean", "m2")})


def scaling(data, out, *, settings=None, backend="serial", threads=None, progress=None,
            **backend_options):
    """``distatomenv scaling``: run the scaling pass on a backend and write an
    n2p2 scaling.data to ``out`` (MPI: call on every rank; rank 0 writes).
    Returns the ScalingTable (None on MPI ranks > 0)."""
    st = read_settings(beside(data, settings, "input.nn"))

    def run(mapper, n_threads):
        table = scaling_pass(data, settings=st, threads=n_threads, mapper=mapper,
                             progress=progress)
        write_scaling(out, table, st.sfset)
        return table
    from ..executors import get_executor
    return get_executor(backend, **backend_options).coordinate(run, threads=threads)
