"""A run's preparation: the inputs read, the data indexed, the plan made and
the provenance recorded, into one picklable :class:`Job`.

:func:`prepare` reads input.nn and scaling.data (or runs the scaling pass,
:mod:`.scaling`), indexes input.data (:func:`distatomenv.io.index.index_data`),
plans the work units (:mod:`.plan`) and builds the store's layout and
metadata; no store is touched.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..descriptors.environment import EnvironmentLayout, check_neighbor_budget
from ..descriptors.spec import parse_neighbor_spec
from ..errors import DistatomenvError, ScalingFileError
from ..io.files import beside
from ..io.index import INDEX_BLOCK_BYTES, check_readable, digest_name, index_data
from ..io.scaling import NO_ATOMS, read_scaling
from ..io.settings import read_settings
from ..parallel import positive_int_env
from ..store.schema import N2P2_KEEPBITS, PRECISIONS, StoreLayout
from .plan import choose_units, default_units, first_rows, make_plan
from .scaling import scaling_pass
from .worker import histogram_edges

#: Rows per store chunk (the ownership granule of the plan): the fewest the
#: default takes, and the value for rows as wide as H2O's ("6 2 4 4": 249 and
#: 258 columns).
DEFAULT_CHUNK_ROWS = 2048
#: The most rows per chunk the default takes (narrow rows, many atoms).
MAX_DEFAULT_CHUNK_ROWS = 16384
#: Bytes of one chunk of the widest array that the default aims at: narrower
#: rows get more rows per chunk, hence fewer, larger chunk files (each one a
#: file and a directory to create and an encoder call to pay).
CHUNK_TARGET_BYTES = 4 << 20
#: Chunks of the element with the most rows that the default keeps per worker,
#: so that the plan's units (whole chunks) still balance.
CHUNKS_PER_WORKER = 16
#: Bins of the scaled-SF histograms (n2p2's nnp-atomenv takes it as first argument).
DEFAULT_BINS = 100
#: Environment variable that changes the block size of the parallel index
#: (tuning and tests; a different block size changes the data's recorded
#: checksum, whose name says the size).
BLOCK_ENV = "DISTATOMENV_INDEX_BLOCK_BYTES"


@dataclass
class Job:
    """Everything a worker needs to run units; picklable (sent to ranks/workers)."""

    data: str
    settings: object
    scaling: object
    ncut: np.ndarray
    out: str
    layout: StoreLayout
    first_rows: np.ndarray
    index_offsets: object
    units: list = field(default_factory=list)
    edges: dict = field(default_factory=dict)   # element -> (n_sf, bins+1) histogram edges


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _force_matching_layout(mode, st) -> dict:
    """The StoreLayout fields of the force-matching features (none without derivatives)."""
    from ..descriptors.forcematch import FORCE_MATCHING, ForceMatchingLayout
    if mode not in FORCE_MATCHING:
        raise DistatomenvError(f"--force-matching must be one of {', '.join(FORCE_MATCHING)}, "
                               f"got {mode!r}")
    if not st.use_short_forces or mode == "none":
        return {"force_matching": "none"}
    fl = ForceMatchingLayout([st.sfset.n_sf(e) for e in st.elements])
    return {"force_matching": mode, "n_fm": fl.n_linear,
            "n_fmq": fl.n_quadratic if mode == "quadratic" else 0}


def check_precision(precision, dtype) -> None:
    """Refuse an unknown ``precision`` or ``precision="n2p2"`` with float32
    (before any input is read)."""
    if precision not in PRECISIONS:
        raise DistatomenvError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                               f"got {precision!r}")
    if precision == "n2p2" and dtype != "float64":
        raise DistatomenvError(
            f"--precision n2p2 rounds float64 values to {N2P2_KEEPBITS} mantissa bits (n2p2's 9 "
            f"printed digits) and cannot be combined with --dtype {dtype}: float32 keeps only 24 "
            "bits (about 7 digits), already fewer than n2p2's text; use --dtype float32 alone "
            "for the smallest store, or --precision n2p2 alone for n2p2's precision")


def default_chunk_rows(row_bytes: int, max_rows: int, n_workers: int = 1) -> int:
    """Rows per chunk when none are given: DEFAULT_CHUNK_ROWS, doubled (up to
    MAX_DEFAULT_CHUNK_ROWS) while a chunk of the widest array (``row_bytes``
    per row) stays within CHUNK_TARGET_BYTES and the element with the most
    rows (``max_rows``) keeps CHUNKS_PER_WORKER chunks per worker.  H2O
    ("6 2 4 4", float64) keeps 2048; CG water ("4", 60 columns) with 684,000
    beads gets 8192, a quarter of the chunk files."""
    rows = DEFAULT_CHUNK_ROWS
    while (2 * rows <= MAX_DEFAULT_CHUNK_ROWS
           and 2 * rows * max(int(row_bytes), 1) <= CHUNK_TARGET_BYTES
           and int(max_rows) // (2 * rows) >= CHUNKS_PER_WORKER * max(int(n_workers), 1)):
        rows *= 2
    return rows


def prepare(data, *, settings=None, scaling=None, neighbors, out, dtype="float64",
            chunk_rows=None, n_units=None, n_workers=1, command=None,
            bins=DEFAULT_BINS, mapper=None, threads=None, progress=None, force_matching="none",
            precision="full"):
    """Read the inputs, index the data (and run the scaling pass if there is no
    scaling.data), plan the units; no store is touched.

    mapper : runs the index blocks and scaling parts (see
        :func:`distatomenv.parallel.local_map`).
    chunk_rows : rows per store chunk; None: :func:`default_chunk_rows` for
        these rows and ``n_workers``.
    Returns (job, structures dict for the store, meta dict, timings dict).
    """
    check_precision(precision, dtype)
    t0 = time.perf_counter()
    check_readable(data, "input.data")
    settings_path = beside(data, settings, "input.nn")
    scaling_path = beside(data, scaling, "scaling.data")
    check_readable(settings_path, "input.nn" if settings is not None else
                   "input.nn (the default: beside the data; give another with --settings)")
    st = read_settings(settings_path)
    table = None
    if os.path.exists(scaling_path):
        table = read_scaling(scaling_path, st.sfset)
        scaling_info = {"path": os.path.abspath(scaling_path), "sha256": _sha256(scaling_path)}
    elif scaling is not None:
        raise ScalingFileError(scaling_path, None, "file not found (given with --scaling)")
    ncut = parse_neighbor_spec(neighbors, st.elements)
    bins = int(bins)
    if bins < 1:
        raise DistatomenvError(f"--bins must be a positive integer, got {bins}")
    t1 = time.perf_counter()
    block = positive_int_env(BLOCK_ENV, INDEX_BLOCK_BYTES)
    index = index_data(data, st.elements, mapper, block_bytes=block)
    # a cutoff whose neighbour lists cannot fit in memory is refused now, not
    # after hours of swapping (non-periodic structures are bounded when computed)
    check_neighbor_budget(index.natoms, index.lattice, index.periodic, st.sfset,
                          settings_path=settings_path, data_path=data)
    t2 = time.perf_counter()
    t_index = t2 - t1
    if table is None:
        # no scaling.data beside the data: compute it, as n2p2's nnp-scaling would
        table = scaling_pass(data, settings=st, index=index, mapper=mapper, threads=threads,
                             progress=progress)
        scaling_info = {"path": None, "computed": True}
    check_absent(table, index, scaling_path)
    t_scaling = time.perf_counter() - t2
    t2 = time.perf_counter()
    calc_layout = EnvironmentLayout.from_sfset(st.sfset, ncut, st.use_short_forces)
    layout = StoreLayout(
        elements=list(st.elements),
        n_rows={e: int(index.counts[:, a].sum()) for a, e in enumerate(st.elements)},
        nG={e: calc_layout.g_width(a) for a, e in enumerate(st.elements)},
        ndG={e: calc_layout.dg_width(a) for a, e in enumerate(st.elements)},
        nblocks={e: calc_layout.nblocks(a) for a, e in enumerate(st.elements)},
        derivatives=bool(st.use_short_forces), n_structures=index.n_structures,
        chunk_rows=DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows, dtype=dtype,
        hist_bins=bins, n_sf={e: st.sfset.n_sf(e) for e in st.elements}, precision=precision,
        **_force_matching_layout(force_matching, st))
    if chunk_rows is None:
        layout.chunk_rows = default_chunk_rows(layout.widest_row_bytes(),
                                               max(layout.n_rows.values()), n_workers)
    chunk_rows = layout.chunk_rows
    if n_units is None:
        n_units = choose_units(index.counts, chunk_rows,
                               default_units(index.n_atoms, n_workers, chunk_rows), n_workers)
    units = make_plan(index.counts, chunk_rows, n_units)
    t3 = time.perf_counter()
    fr = first_rows(index.counts)
    structures = {"natoms": index.natoms, "periodic": index.periodic, "lattice": index.lattice,
                  "energy": index.energy, "charge": index.charge, "first_row": fr,
                  "counts": index.counts}
    meta = {
        "tool": "distatomenv", "version": __version__,
        "command": command or " ".join(sys.argv),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "inputs": {
            "data": {"path": os.path.abspath(data), "checksum": index.digest,
                     "checksum_type": digest_name(block), "bytes": int(index.file_size)},
            "settings": {"path": os.path.abspath(settings_path), "sha256": st.sha256},
            "scaling": scaling_info,
        },
        "settings": st.to_dict(),
        "scaling": table.to_dict(),
        "environment": calc_layout.to_dict(),
        "neighbors": {"spec": str(neighbors), "ncut": ncut.tolist(),
                      "rc_max": float(st.sfset.max_cutoff())},
        "units": {
            "positions": "input.data length unit",
            "forces": "input.data force unit",
            "G": "scaled symmetry functions (dimensionless)",
            "dG": ("derivative of scaled SFs per normalised length (input length x "
                   f"conv_length, conv_length = {st.conv_length!r}), as n2p2 writes them"),
        },
        "plan": {"n_units": len(units), "chunk_rows": int(chunk_rows)},
        "histograms": {"bins": bins, "range": "scaled min .. scaled max of the scaling table",
                       "neighbors": "neighbours of each element within the largest cutoff"},
    }
    edges = histogram_edges(table, st, bins)
    job = Job(data=os.fspath(data), settings=st, scaling=table, ncut=ncut, out=os.fspath(out),
              layout=layout, first_rows=fr, index_offsets=index, units=units, edges=edges)
    timings = {"read settings": t1 - t0, "index": t_index, "scaling": t_scaling,
               "plan": t3 - t2}
    if scaling_info.get("computed") is None:
        timings.pop("scaling")
    return job, structures, meta, timings


def check_absent(table, index, path):
    """Refuse a scaling.data whose rows say "no atoms" for an element that
    input.data has (made from other data): n2p2 would scale that element's
    SFs with +-1.8e308 and NaN.  Rows of elements absent from both are fine."""
    for e in table.absent():
        n = int(index.counts[:, index.elements.index(e)].sum())
        if n:
            raise ScalingFileError(path, None, f"the rows of element {e} say it has no atoms "
                                               f"(min {NO_ATOMS[0]!r}, max {NO_ATOMS[1]!r}, as "
                                               f"nnp-scaling writes them), but the data has {n} "
                                               f"{e} atom(s); make scaling.data from this data")
