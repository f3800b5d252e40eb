"""Orchestration of compute, analyze, export and info: the public Python API.

    import distatomenv
    store = distatomenv.compute("input.data", neighbors="6 2 4 4", out="run.zarr")
    distatomenv.export(store.path, "out/")          # n2p2's nnp-atomenv files
    print(distatomenv.info("run.zarr"))

``compute`` indexes input.data, plans work units (:mod:`distatomenv.plan`),
creates the store and runs the units on a backend; each unit reads only its
own structures and writes only the store chunks the plan gives it.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .descriptors.environment import (EnvironmentCalculator, EnvironmentLayout,
                                      parse_neighbor_spec)
from .descriptors.neighbors import neighbor_list
from .descriptors.rdf import count_histograms
from .descriptors.environment import check_neighbor_budget
from .errors import (DataFileError, DistatomenvError, FileAccessError, ScalingFileError, StoreError,
                     is_input_error, os_error)
from .io.data import (INDEX_BLOCK_BYTES, check_readable, digest_name, index_data, read_structure,
                      remap_positions)
from .io.scaling import NO_ATOMS, read_scaling
from .io.settings import read_settings
from .plan import WorkUnit, default_units, first_rows, make_plan
from .stats.moments import MomentAccumulator
from .store import lock as store_lock
from .store.reader import open_store
from .store.schema import StoreLayout
from .store.writer import (StoreWriter, create_store, finalize_store, mark_failed,
                           write_statistics)

#: Rows per store chunk (the ownership granule of the plan).
DEFAULT_CHUNK_ROWS = 2048
#: Bins of the scaled-SF histograms (n2p2's nnp-atomenv takes it as first argument).
DEFAULT_BINS = 100
#: Atoms per part of the scaling pass.  Parts are fixed by the data alone (not by
#: the number of workers) and merged in order, so the scaling table, and with it
#: every G in the store, is bit-identical whatever ran the pass.
SCALING_PART_ATOMS = 20_000
#: Environment variables that change the granularity of the parallel index and
#: scaling pass (tuning and tests; a different block size changes the data's
#: recorded checksum, whose name says the size).
BLOCK_ENV = "DISTATOMENV_INDEX_BLOCK_BYTES"
PART_ENV = "DISTATOMENV_SCALING_PART_ATOMS"


def _env_int(name, default) -> int:
    v = os.environ.get(name, "").strip()
    if not v:
        return default
    if not v.isdigit() or int(v) < 1:
        raise DistatomenvError(f"environment variable {name}={v!r}: expected a positive integer")
    return int(v)


def local_map(fn, items, shared, report=None):
    """The mapper of this process: ``[fn(shared, item) for item in items]``.

    Backends provide mappers with the same signature that spread the items over
    MPI ranks or Dask workers; ``report(result)`` is called as items finish.
    """
    out = []
    for item in items:
        out.append(fn(shared, item))
        if report is not None:
            report(out[-1])
    return out


def _progress_start(progress, phase, structures, atoms):
    """Tell a progress object (if it wants to know) what the next phase's totals are."""
    start = getattr(progress, "start", None)
    if start is not None:
        start(phase, structures, atoms)


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
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _beside(data, given, name):
    if given is not None:
        return os.fspath(given)
    return os.fspath(Path(data).resolve().parent / name)


def _force_matching_layout(mode, st) -> dict:
    """The StoreLayout fields of the force-matching features (none without derivatives)."""
    from .descriptors.forcematch import FORCE_MATCHING, ForceMatchingLayout
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
    from .store.schema import N2P2_KEEPBITS, PRECISIONS
    if precision not in PRECISIONS:
        raise DistatomenvError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                               f"got {precision!r}")
    if precision == "n2p2" and dtype != "float64":
        raise DistatomenvError(
            f"--precision n2p2 rounds float64 values to {N2P2_KEEPBITS} mantissa bits (n2p2's 9 "
            f"printed digits) and cannot be combined with --dtype {dtype}: float32 keeps only 24 "
            "bits (about 7 digits), already fewer than n2p2's text; use --dtype float32 alone "
            "for the smallest store, or --precision n2p2 alone for n2p2's precision")


def prepare(data, *, settings=None, scaling=None, neighbors, out, dtype="float64",
            chunk_rows=DEFAULT_CHUNK_ROWS, n_units=None, n_workers=1, command=None,
            bins=DEFAULT_BINS, mapper=None, threads=None, progress=None, force_matching="none",
            precision="full"):
    """Read the inputs, index the data (and run the scaling pass if there is no
    scaling.data), plan the units; no store is touched.

    mapper : runs the index blocks and scaling parts (see :func:`local_map`).
    Returns (job, structures dict for the store, meta dict, timings dict).
    """
    check_precision(precision, dtype)
    t0 = time.perf_counter()
    check_readable(data, "input.data")
    settings_path = _beside(data, settings, "input.nn")
    scaling_path = _beside(data, scaling, "scaling.data")
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
    block = _env_int(BLOCK_ENV, INDEX_BLOCK_BYTES)
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
        chunk_rows=int(chunk_rows), dtype=dtype, hist_bins=bins,
        n_sf={e: st.sfset.n_sf(e) for e in st.elements}, precision=precision,
        **_force_matching_layout(force_matching, st))
    if n_units is None:
        n_units = default_units(index.n_atoms, n_workers, chunk_rows)
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


def histogram_edges(table, settings, bins) -> dict:
    """Bin edges of the scaled-SF histograms: per element float64 (n_sf, bins+1),
    each SF's scaled range (its scaling-table min and max, scaled) split evenly;
    a constant SF gets the range value +- 0.5."""
    st = settings
    edges = {}
    for e in st.elements:
        shift, factor, offset = table.coefficients(e, st.scaling, st.scale_min, st.scale_max)
        lo = (np.asarray(table.min[e]) - shift) * factor + offset
        hi = (np.asarray(table.max[e]) - shift) * factor + offset
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        # rows of an element without atoms (min +1.8e308 > max -1.8e308, NaN mean):
        # any finite range will do, there is nothing to count
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.isfinite(hi - lo) & (np.asarray(table.min[e]) <= np.asarray(table.max[e]))
        lo, hi = (np.where(ok, v, 0.0) for v in (lo, hi))
        # flat: a range too narrow for bins + 1 distinct edges (min and max a few
        # ulp apart, as n2p2's differential tests found) counts as constant
        flat = ~(hi - lo > 4 * bins * np.spacing(np.maximum(np.abs(lo), np.abs(hi))))
        lo = np.where(flat, lo - 0.5, lo)
        hi = np.where(flat, hi + 0.5, hi)
        edges[e] = lo[:, None] + (hi - lo)[:, None] * (np.arange(bins + 1) / bins)[None, :]
    return edges


#: Relative tolerance (of each SF's range) at the outer histogram edges.
EDGE_TOLERANCE = 1e-9


def sf_histogram(G, edges) -> np.ndarray:
    """Counts int64 (n_sf, bins+2) of the rows G (rows, n_sf) in the bins of
    ``edges`` (n_sf, bins+1): column 0 counts values below the first edge,
    column bins+1 values above the last, a value on the last edge goes in the
    last bin.  Each value's bin depends on the value alone, so sums over any
    partition of the rows are identical.  Values within EDGE_TOLERANCE of the
    range of the first or last edge count in the first or last bin: the scaled
    extremes of the scaling table and the same SF recomputed for a row may
    differ in the last bit."""
    n_sf, nb1 = edges.shape
    bins = nb1 - 1
    if G.shape[0] == 0 or n_sf == 0:
        return np.zeros((n_sf, bins + 2), dtype=np.int64)
    lo, hi = edges[:, 0], edges[:, -1]
    tol = EDGE_TOLERANCE * (hi - lo)
    x = (G - lo) * (bins / (hi - lo))
    idx = np.clip(np.floor(x).astype(np.int64) + 1, 1, bins)
    idx = np.where(G < lo - tol, 0, np.where(G > hi + tol, bins + 1, idx))
    flat = idx + (bins + 2) * np.arange(n_sf)[None, :]
    return np.bincount(flat.ravel(), minlength=n_sf * (bins + 2)).reshape(n_sf, bins + 2)


class UnitRunner:
    """Computes and writes work units; one per process (rank or worker)."""

    def __init__(self, job: Job):
        self.job = job
        st = job.settings
        coeffs = {e: job.scaling.coefficients(e, st.scaling, st.scale_min, st.scale_max)
                  for e in st.elements}
        self.calc = EnvironmentCalculator(st.sfset, job.ncut, coeffs, st.conv_length,
                                          st.use_short_forces, job.layout.force_matching)
        self.writer = StoreWriter(job.out)
        self.dtype = np.dtype(job.layout.dtype)
        # one background thread writes (compression releases the GIL) while the
        # next rows are computed; at most two chunks wait, bounding memory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distatomenv-write")
        self._pending = []

    def run(self, unit: WorkUnit) -> dict:
        """Compute one unit and write its rows; returns counters for progress."""
        t0 = time.perf_counter()
        job = self.job
        els = job.layout.elements
        chunk = job.layout.chunk_rows
        buffers = {e: _RowBuffer(unit.rows[a][0], unit.rows[a][1], chunk) for a, e in
                   enumerate(els)}
        eindex = {e: a for a, e in enumerate(els)}
        hist = {e: None for e in els}
        nbh = None                  # (central, neighbour) element index -> count histogram
        t_write = 0.0
        for s in range(unit.first, unit.last):
            st = read_structure(job.data, job.index_offsets, s)
            elem = np.fromiter((eindex[x] for x in st.elements), dtype=np.int64,
                               count=st.natoms)
            owned = unit.owned_atoms(job.first_rows[s], None, elem)
            if not owned.any():
                continue
            pos = st.remapped_positions()
            rows = self.calc.compute(elem, pos, st.lattice, owned, structure_index=s,
                                     path=job.data, atom_lines=st.atom_lines)
            for a, e in enumerate(els):
                if e not in rows or rows[e]["atom"].size == 0:
                    continue
                r = rows[e]
                at = r["atom"]
                _check_finite(r, e, st, job.data)
                r["structure"] = np.full(at.size, s, dtype=np.int64)
                r["forces"] = st.forces[at]
                r["positions"] = st.positions[at]
                if job.edges:
                    h = sf_histogram(r["G"][:, :job.layout.n_sf[e]], job.edges[e])
                    hist[e] = h if hist[e] is None else hist[e] + h
                nbh = count_histograms(r["nb_count"], np.full(at.size, a), len(els), nbh)
                first = int(job.first_rows[s, a] + np.flatnonzero(elem == a).searchsorted(at[0]))
                tw = time.perf_counter()
                for start, arrays in buffers[e].add(first, r):
                    self._write(e, start, arrays)
                t_write += time.perf_counter() - tw
        tw = time.perf_counter()
        for e in els:
            for start, arrays in buffers[e].flush():
                self._write(e, start, arrays)
        self._drain(0)
        for e, h in hist.items():
            if h is not None and job.layout.hist_bins:
                self.writer.write_unit_histogram(unit.id, e, h)
        t_write += time.perf_counter() - tw
        seconds = time.perf_counter() - t0
        nb_info = {e: {b: nbh[(a, k)].tolist() for k, b in enumerate(els) if nbh[(a, k)].size}
                   for a, e in enumerate(els)} if nbh is not None else {}
        # the rows (whole chunks) this unit wrote, per element: verify names the
        # unit of a damaged or missing chunk from them
        wrote = {e: [int(unit.rows[a][0]), int(unit.rows[a][1])] for a, e in enumerate(els)
                 if unit.rows[a][1] > unit.rows[a][0]}
        self.writer.mark_unit_done(unit.id, {"atoms": unit.atoms, "seconds": seconds,
                                             "host": platform.node(), "pid": os.getpid(),
                                             "nb_hist": nb_info, "rows": wrote})
        return {"unit": unit.id, "atoms": unit.atoms,
                "structures": unit.last - unit.first, "seconds": seconds, "write": t_write}

    def _write(self, element, start, arrays):
        """Queue rows for the writer thread (waits while two writes are pending)."""
        out = {}
        for k, v in arrays.items():
            if k in ("G", "dGdx", "dGdy", "dGdz") or k.startswith("fm"):
                v = v.astype(self.dtype, copy=False)
            out[k] = v
        self._drain(1)
        self._pending.append(self._pool.submit(self.writer.write_rows, element, start, out))

    def _drain(self, keep):
        """Wait until at most ``keep`` writes are pending; re-raise their errors."""
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    def close(self):
        self._drain(0)
        self._pool.shutdown()


def _check_finite(rows, element, struct, path):
    """Refuse non-finite environment values before they reach the store (a
    store marked complete never holds NaN); names the structure and atom."""
    for name in ("G", "dGdx", "dGdy", "dGdz", "fm_dx", "fm_dy", "fm_dz", "fmq_dx", "fmq_dy", "fmq_dz"):
        v = rows.get(name)
        if v is None or v.size == 0:
            continue
        ok = np.isfinite(v).all(axis=1)
        if not ok.all():
            i = int(rows["atom"][np.argmin(ok)])
            line = int(struct.atom_lines[i]) if struct.atom_lines is not None else struct.line
            raise DataFileError(path, line, f"structure {struct.index + 1} (1-based), atom {i + 1} "
                                            f"({element}): its {name} row holds non-finite "
                                            "values; check this atom's coordinates and cell")


class _RowBuffer:
    """Collects rows of one element and releases them in whole chunks.

    The unit owns rows [start, stop); rows arrive in order.  Whenever the
    buffer holds complete chunks they are released, so memory stays bounded
    by about one chunk per element whatever the unit's size.
    """

    def __init__(self, start, stop, chunk):
        self.start, self.stop, self.chunk = start, stop, chunk
        self.next = start            # row number of the first buffered row
        self.parts: list[dict] = []
        self.n = 0

    def add(self, first_row, arrays):
        if first_row != self.next + self.n:
            raise StoreError(f"internal: rows out of order ({first_row} != {self.next + self.n})")
        self.parts.append(arrays)
        self.n += len(arrays["atom"])
        if self.n >= self.chunk:
            yield from self._release(self.n - self.n % self.chunk)

    def flush(self):
        if self.n:
            if self.next + self.n != self.stop:
                raise StoreError(f"internal: unit ended at row {self.next + self.n}, "
                                 f"expected {self.stop}")
            yield from self._release(self.n)

    def _release(self, n):
        cat = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        out = {k: v[:n] for k, v in cat.items()}
        rest = {k: v[n:] for k, v in cat.items()}
        start = self.next
        self.next += n
        self.n -= n
        self.parts = [rest] if self.n else []
        yield start, out


def start_run(data, *, settings=None, scaling=None, neighbors, out, dtype="float64",
              chunk_rows=DEFAULT_CHUNK_ROWS, n_units=None, n_workers=1, overwrite=False,
              resume=False, command=None, bins=DEFAULT_BINS, mapper=None, threads=None,
              progress=None, force_matching=None, precision="full"):
    """Coordinator's first half of a run: prepare, then create (or resume) the store.

    Returns ``(job, todo, timings)``: the job for the workers, the units still to
    compute (all of them, or the missing ones on resume), and seconds per phase.
    Only one process (the serial process, MPI rank 0, the Dask client) calls this;
    ``mapper`` spreads the index and the scaling pass over the backend's
    processes (:func:`local_map` by default).  ``progress`` may have a method
    ``start(phase, structures, atoms)``, called with the totals of each phase.
    """
    # one writer per store: the lock is held until compute() returns or fails
    # (store.lock.release), or this process exits
    store_lock.acquire(out, command)
    try:
        if resume and n_units is None:
            # the default unit count depends on the number of workers: resume with
            # the store's own plan, whatever runs it now (serial, MPI, Dask)
            from .store.schema import read_root_attrs
            stored = (read_root_attrs(out) or {}).get("n_units")
            if isinstance(stored, int) and stored > 0:
                n_units = stored
        if force_matching is None:
            # default linear; a resumed store keeps the features it was started with
            force_matching = "linear"
            if resume:
                from .store.schema import read_root_attrs
                layout = (read_root_attrs(out) or {}).get("layout")
                if isinstance(layout, dict) and isinstance(layout.get("force_matching"), str):
                    force_matching = layout["force_matching"]
        job, structures, meta, timings = prepare(
            data, settings=settings, scaling=scaling, neighbors=neighbors, out=out, dtype=dtype,
            chunk_rows=chunk_rows, n_units=n_units, n_workers=n_workers, command=command,
            bins=bins, mapper=mapper, threads=threads, progress=progress,
            force_matching=force_matching, precision=precision)
        t0 = time.perf_counter()
        try:
            create_store(out, job.layout, structures, meta, overwrite=overwrite, resume=resume,
                         n_units=len(job.units))
        except OSError as exc:
            raise os_error(exc, out, "cannot create the store") from None
    except BaseException:
        store_lock.release(out)
        raise
    timings["create store"] = time.perf_counter() - t0
    done = StoreWriter(out).done_units()
    todo = [u for u in job.units if u.id not in done and not u.empty]
    for u in job.units:                       # empty units have nothing to write
        if u.empty and u.id not in done:
            StoreWriter(out).mark_unit_done(u.id, {"atoms": 0})
    _progress_start(progress, "compute", sum(u.last - u.first for u in todo),
                    sum(u.atoms for u in todo))
    return job, todo, timings


def finish_run(job, timings, stats, t_start):
    """Coordinator's second half: mark the store complete, return its reader."""
    t0 = time.perf_counter()
    write_statistics(job.out, len(job.units), job.edges)
    finalize_store(job.out, len(job.units))
    timings["finalize"] = time.perf_counter() - t0
    timings.update(stats)
    timings["total"] = time.perf_counter() - t_start
    reader = open_store(job.out)
    reader.timings = timings
    return reader


def compute(data, *, settings=None, scaling=None, neighbors, out, dtype="float64",
            chunk_rows=DEFAULT_CHUNK_ROWS, n_units=None, overwrite=False, resume=False,
            backend="serial", threads=None, progress=None, command=None, bins=DEFAULT_BINS,
            force_matching=None, precision="full", **backend_options):
    """Compute every atom's environment vectors into a Zarr store.

    Parameters
    ----------
    data : path of an n2p2 input.data file, or frames in memory: an iterable
        of :class:`ase.Atoms` with forces (a list, a generator, the result of
        ``ase.io.read(..., index=":")``; one Atoms too).  Frames are written,
        one at a time, to ``STORE.input.data`` beside the store
        (:func:`distatomenv.io.ase.write_for_store`; energies, charges and
        ``info["comment"]`` carried where present), which is then the data:
        the same indexing, units and store as from a file.  A frame without
        forces or with a partly periodic or singular cell is a ConversionError
        naming its 0-based index.  To put the file elsewhere, write it with
        :func:`distatomenv.io.ase.write` and pass its path.  Not with
        ``backend="mpi"`` (every rank would hold the frames).
    settings, scaling : input.nn and scaling.data (default: beside ``data``,
        for frames in memory beside the store).
    neighbors : neighbour counts, ``"6 2 4 4"`` or ``"H-H=6,H-O=2,O-H=4,O-O=4"``.
    out : store path.
    dtype : "float64" (default) or "float32" for G and dG.
    precision : "full" (default, lossless) or "n2p2": **lossy**, G, dG and the
        force-matching features rounded to 33 mantissa bits (relative error
        <= 5.8e-11, below the 9 digits of n2p2's text: the n2p2 export matches
        n2p2 within +-1 in the last digit) for a store about 1/5 of n2p2's
        text; float64 only (``dtype="float32"`` is refused).  Recorded in the
        store's ``layout`` attribute.
    chunk_rows : rows per chunk.  overwrite/resume: see ``distatomenv compute --help``.
    bins : bins of the scaled-SF histograms kept in the store.
    force_matching : "linear" (the default; on resume: what the store has),
        "quadratic" or "none": the force-matching features D_i = Σ_j ∂G_j/∂r_i
        over every neighbour (``fm_d*`` arrays; quadratic adds
        Σ_j ∂(G_j,s G_j,t)/∂r_i, ``fmq_d*``) for the readout's potential tiers;
        ignored without forces.  The kernel evaluates every ∂G_j/∂r_i anyway
        (for the neighbour blocks), so the linear features cost little compute
        time; they add 3 x Σ_e nSF(e) floats per atom to the store (see the
        README).
    backend : "serial"; the distributed backends plug in through
        ``distatomenv.backends.<name>.compute`` with ``backend_options``.
    threads : numba threads (default: all cores of this process).

    Returns the :class:`~distatomenv.store.reader.StoreReader` of the finished store.
    """
    check_precision(precision, dtype)
    if not isinstance(data, (str, bytes, os.PathLike)):      # ase.Atoms in memory
        if backend == "mpi":
            raise DistatomenvError("compute from ase.Atoms in memory cannot run under MPI "
                                   "(every rank would hold the frames): write them to input.data "
                                   "first (distatomenv.io.ase.write), then compute from the file")
        from .io.ase import write_for_store
        data = write_for_store(data, out)
    options = dict(settings=settings, scaling=scaling, neighbors=neighbors, out=out, dtype=dtype,
                   chunk_rows=chunk_rows, n_units=n_units, overwrite=overwrite, resume=resume,
                   command=command, bins=bins, force_matching=force_matching,
                   precision=precision)
    try:
        if backend != "serial":
            import importlib
            try:
                mod = importlib.import_module(f".backends.{backend}", __package__)
            except ModuleNotFoundError:
                raise DistatomenvError(f"unknown backend {backend!r}") from None
            return mod.compute(data, threads=threads, progress=progress, **options,
                               **backend_options)
        from .backends import serial
        t_start = time.perf_counter()
        job, todo, timings = start_run(data, threads=threads, progress=progress, **options)
        try:
            stats = serial.run(job, todo, threads=threads, progress=progress)
        except BaseException as exc:
            record_failure(out, exc)
            raise
        return finish_run(job, timings, stats, t_start)
    except OSError as exc:       # the OS refused (disk full, read-only, ...): one clear error
        raise os_error(exc, out, "writing the store") from None
    finally:
        store_lock.release(out)


def record_failure(out, exc) -> None:
    """Mark the store failed with ``exc``'s message (input errors let the next
    run replace the store); a failure to record it (a full disk) is noted on
    ``exc`` and never hides it."""
    try:
        mark_failed(out, f"{type(exc).__name__}: {exc}", input_error=is_input_error(exc))
    except Exception as err:
        if hasattr(exc, "add_note"):
            exc.add_note(f"(recording the failure in the store failed too: {err})")


# ----------------------------------------------------------------------------- scaling
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
    from .backends.serial import set_threads
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
        where the backend wants (:func:`local_map` by default); their moments are
        merged in part order with Chan's formula, so the table is the same bits
        whatever ran the parts.
    progress : optional object with methods ``start(phase, structures, atoms)``
        and ``__call__(structures, atoms)`` (a plain callable is not called here).
    Returns a :class:`~distatomenv.io.scaling.ScalingTable`.
    """
    from .io.scaling import ScalingTable
    from .io.settings import Settings
    st = settings if isinstance(settings, Settings) else \
        read_settings(_beside(data, settings, "input.nn"))
    if index is None:
        index = index_data(data, st.elements, mapper)
    check_neighbor_budget(index.natoms, index.lattice, index.periodic, st.sfset,
                          settings_path=getattr(st, "path", None), data_path=data)
    parts = scaling_parts(index.natoms, _env_int(PART_ENV, SCALING_PART_ATOMS))
    _progress_start(progress, "scaling", index.n_structures, index.n_atoms)
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
    from .io.scaling import write_scaling
    st = read_settings(_beside(data, settings, "input.nn"))

    def run(mapper, n_threads):
        table = scaling_pass(data, settings=st, threads=n_threads, mapper=mapper,
                             progress=progress)
        write_scaling(out, table, st.sfset)
        return table
    if backend == "serial":
        return run(None, threads)
    import importlib
    try:
        mod = importlib.import_module(f".backends.{backend}", __package__)
    except ModuleNotFoundError:
        raise DistatomenvError(f"unknown backend {backend!r}") from None
    return mod.coordinate(run, threads=threads, **backend_options)


def analyze(store, out_dir, *, command=None, **params):
    """How much of the force do the store's descriptors determine?  The
    cross-validated force readout, then n2p2's cluster view (clusters in
    descriptor space, each cluster's forces tested); the report goes into
    ``out_dir``.

    Parameters
    ----------
    store : str, os.PathLike, StoreReader, or a list of them
        A complete store (made by :func:`distatomenv.compute`).  Several
        stores of the same data: the first is analysed, and the readouts of
        all are compared side by side, paired over the same folds
        (``report.json``'s ``comparison``).
    out_dir : str or os.PathLike
        Report directory (created): report.json, clusters.csv, PNG plots,
        report.html.
    command : str, optional
        The command line, recorded in report.json.
    **params
        The parameters of :class:`~distatomenv.analysis.Analyzer`: elements,
        descriptor, component, method, clusters, alpha, seed, seeds,
        standardize, permutations, sample, pca, min_cluster_size,
        min_samples, batch_size, epochs, max_iter, map_k, tsne, write_labels,
        scheduler, workers, threads, block_rows, progress; and of the force
        readout (the headline): readout, folds, tiers, readout_sample,
        g_weighted_max_features; clusters_view=False skips the cluster view;
        the design advice: advice, advice_tolerance, compare,
        compare_different_data.
        The result's ``readout`` holds the readout entries (report.json's
        ``readout``).

    Returns
    -------
    AnalysisResult

    Raises
    ------
    StoreError
        The store is missing or not a store.
    StoreIncompleteError
        The store is incomplete.
    AnalysisError
        Options that do not fit the store (unknown element, derivative
        descriptor without derivatives, k larger than the rows, ...).
    """
    from .analysis import Analyzer, write_report
    if isinstance(store, (list, tuple)):          # several stores: the first, compared with the rest
        if not store:
            raise DistatomenvError("analyze: no store given")
        store, others = store[0], list(store[1:])
        if others:
            params["compare"] = list(params.get("compare") or []) + others
    out_dir = os.fspath(out_dir)
    _check_folder_target(out_dir, "the report folder")
    stores = [store] + list(params.get("compare") or [])
    for s in stores:                # a damaged store is refused before any work
        if isinstance(s, (str, os.PathLike)):
            open_store(s).check_chunks()
        elif hasattr(s, "check_chunks"):
            s.check_chunks()
    runner = None
    if params.get("scheduler") or params.get("workers"):
        from .backends.dask import TaskRunner
        Analyzer(**params)._check_params()          # bad options fail before a cluster starts
        runner = TaskRunner(scheduler=params.get("scheduler"), workers=params.get("workers"))
    created = not os.path.exists(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)       # an unwritable folder fails now, not at the end
        with _damage_named(stores, "analyze"):
            analyzer = Analyzer(**params).fit(store, runner=runner)
            return write_report(analyzer, out_dir, command=command)
    except BaseException as exc:
        if created:
            try:
                os.rmdir(out_dir)                 # only if nothing was written into it
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise os_error(exc, out_dir, "writing the report") from None
        raise


def _check_folder_target(path, what) -> None:
    """Refuse an output folder that exists as something else (a file)."""
    if os.path.lexists(path) and not os.path.isdir(path):
        import errno
        raise FileAccessError(f"{path}: {what} exists and is not a folder (a file?); choose "
                              "another path or remove it", errno.ENOTDIR, path)


@contextlib.contextmanager
def _damage_named(stores, doing):
    """Turn a failure while reading stores into StoreDamagedError naming the
    damaged chunks, when a check of every chunk finds any (a checksum that
    fails deep inside the analysis or export); else let it through."""
    try:
        yield
    except (DistatomenvError, KeyboardInterrupt, OSError, MemoryError):
        raise
    except Exception as exc:
        from .store.integrity import damaged_error, verify
        for s in stores:
            path = getattr(s, "path", s)
            if not isinstance(path, (str, os.PathLike)):
                continue
            try:
                report = verify(path)
            except Exception:
                continue
            if report.damaged:
                raise damaged_error(os.fspath(path), report.damaged, doing) from exc
        raise


# ----------------------------------------------------------------------------- export
def export(store, out_dir, *, format="n2p2", overwrite=False, progress=None):
    """Write n2p2's nnp-atomenv files from a store.

    ``atomic-env.G``, ``atomic-env.dGdx/dGdy/dGdz`` (when the store has
    derivatives) and ``neighbor-list.data``, token for token as nnp-atomenv.
    Returns the list of written paths.

    Files are written under temporary names (a hidden folder inside
    ``out_dir``) and renamed into place only when all are complete; a failed
    export leaves nothing behind.  A non-empty ``out_dir`` is refused unless
    ``overwrite`` (which replaces the files of the same names, nothing else).

    Raises
    ------
    StoreIncompleteError, StoreDamagedError
        The store is not complete, or a chunk is missing or fails its checksum.
    StoreExistsError
        ``out_dir`` holds files and ``overwrite`` is False.
    FileAccessError
        ``out_dir`` is a file, or the OS refused a write (disk full, read-only).
    """
    if format != "n2p2":
        raise DistatomenvError(f"unknown export format {format!r}; available: n2p2")
    rd = open_store(store) if isinstance(store, (str, os.PathLike)) else store
    rd.check_chunks()
    out_dir = os.fspath(out_dir)
    _check_folder_target(out_dir, "the export folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        from .errors import StoreExistsError
        raise StoreExistsError(f"{out_dir}: the folder is not empty; use --overwrite "
                               "(overwrite=True) to replace its files, or choose an empty or new "
                               "folder")
    created = not os.path.exists(out_dir)
    stage = None
    try:
        os.makedirs(out_dir, exist_ok=True)
        stage = os.path.join(out_dir, f".distatomenv-export-{os.getpid()}.partial")
        if os.path.exists(stage):
            shutil.rmtree(stage)
        os.mkdir(stage)
        with _damage_named([rd], "export"):
            staged = _export_files(rd, stage, progress)
        final = []
        for p in staged:
            target = os.path.join(out_dir, os.path.basename(p))
            os.replace(p, target)
            final.append(target)
        os.rmdir(stage)
        return final
    except BaseException as exc:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if created:
            try:
                os.rmdir(out_dir)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise os_error(exc, out_dir, "writing the export") from None
        raise


def _export_files(rd, out_dir, progress=None) -> list[str]:
    """Write the export's files into ``out_dir``; returns their paths."""
    from .io.n2p2 import AtomEnvWriter
    meta = rd.meta
    lay = EnvironmentLayout.from_dict(meta["environment"])
    conv_length = float(meta["settings"]["conv_length"])
    rc_max = float(meta["neighbors"]["rc_max"])
    els = rd.elements
    from .elements import atomic_number
    zs = [atomic_number(e) for e in els]
    os.makedirs(out_dir, exist_ok=True)
    fr = rd.structures("first_row")
    counts = rd.structures("counts")
    lattice = rd.structures("lattice")
    periodic = rd.structures("periodic")
    names = ["G"] + (["dGdx", "dGdy", "dGdz"] if rd.layout.derivatives else [])
    columns = {}
    for a, e in enumerate(els):
        g = lay.g_block_columns(a)
        d = lay.dg_block_columns(a)
        own = int(lay.nsf[a])

        def spec(cols):
            return (own, np.array([c.start for c in cols], dtype=np.int64),
                    np.array([c.stop - c.start for c in cols], dtype=np.int64))
        columns[e] = {"G": spec(g), "dGdx": spec(d), "dGdy": spec(d), "dGdz": spec(d)}
    writer = AtomEnvWriter(out_dir, names, columns, els, zs)
    if meta["inputs"]["scaling"].get("computed"):
        from .io.scaling import ScalingTable, write_scaling
        from .io.settings import Settings
        path = os.path.join(out_dir, "scaling.data")
        write_scaling(path, ScalingTable.from_dict(meta["scaling"]),
                      Settings.from_dict(meta["settings"]).sfset)
        writer.paths.append(path)
    S = len(counts)
    # read structures in blocks of about one chunk of rows
    block = max(1, int(rd.layout.chunk_rows // max(1, counts.sum(axis=1).mean())))
    try:
        for s0 in range(0, S, block):
            s1 = min(S, s0 + block)
            rows = {}
            for a, e in enumerate(els):
                r0 = int(fr[s0, a])
                r1 = int(fr[s1 - 1, a] + counts[s1 - 1, a])
                sl = slice(r0, r1)
                rows[e] = {k: rd.read(e, k, sl) for k in
                           names + ["structure", "atom", "nb_order", "positions"]}
            nls = []
            for s in range(s0, s1):
                pos, elem = _structure_positions(rows, els, s, int(counts[s].sum()))
                lat = lattice[s] if periodic[s] else None
                if lat is not None:
                    pos = remap_positions(pos, lat)
                nl = neighbor_list(pos * conv_length,
                                   None if lat is None else lat * conv_length, rc_max * conv_length)
                nls.append((elem, nl))
            writer.write_block(rows, nls)
            if progress:
                progress(s1 - s0)
    finally:
        writer.close()
    return writer.paths + _export_histograms(rd, out_dir)


def _export_histograms(rd, out_dir) -> list[str]:
    """``sf-scaled.ZZZ.SSSS.histo`` per element and SF, and ``neighbors.histo``
    (formats: :mod:`distatomenv.io.histo`), from the store's ``stats/``."""
    from .descriptors.symfuncs import SymmetryFunction
    from .io.histo import sf_histo_name, write_neighbors_histo, write_sf_histo
    paths = []
    els = rd.elements
    funcs = [SymmetryFunction.from_dict(f) for f in rd.meta["settings"]["sfset"]["functions"]]
    for e in els:
        hist, edges = rd.stats(e, "sf_hist"), rd.stats(e, "sf_edges")
        if hist is None or edges is None:
            continue
        mine = [f for f in funcs if f.element == e]
        for j in range(hist.shape[0]):
            path = os.path.join(out_dir, sf_histo_name(e, j + 1))
            write_sf_histo(path, edges[j], hist[j, 1:-1], element=e, index=j + 1,
                           description=mine[j].describe() if j < len(mine) else "",
                           underflow=int(hist[j, 0]), overflow=int(hist[j, -1]))
            paths.append(path)
    counts = {}
    for e in els:
        nb = rd.stats(e, "nb_hist")
        if nb is not None:
            for k, b in enumerate(els):
                counts[(e, b)] = nb[k]
    if counts:
        path = os.path.join(out_dir, "neighbors.histo")
        write_neighbors_histo(path, els, counts, cutoff=float(rd.meta["neighbors"]["rc_max"]))
        paths.append(path)
    return paths


def _structure_positions(rows, els, s, natoms):
    pos = np.empty((natoms, 3))
    elem = np.empty(natoms, dtype=np.int64)
    for a, e in enumerate(els):
        r = rows[e]
        m = r["structure"] == s
        at = r["atom"][m]
        pos[at] = r["positions"][m]
        elem[at] = a
    return pos, elem



# ----------------------------------------------------------------------------- verify
def verify(store, *, progress=None):
    """Read and check every chunk of a store (``distatomenv verify``).

    Returns a :class:`~distatomenv.store.integrity.VerifyReport`: ``ok``,
    ``damaged`` (each chunk's key and reason: checksum mismatch, undecodable,
    missing), ``chunks`` checked, ``text()``.  Raises StoreError when ``store``
    is not a store; OS errors become FileAccessError.
    """
    from .store.integrity import verify as _verify
    path = getattr(store, "path", store)
    try:
        return _verify(os.fspath(path), progress=progress)
    except OSError as exc:
        raise os_error(exc, path, "reading the store") from None


# ----------------------------------------------------------------------------- info
def suggested_neighbors(statistics, elements) -> str | None:
    """The ``--neighbors`` string that every atom of the data allows: per pair
    the smallest neighbour count within the cutoff (None without statistics)."""
    from .store.info import suggested_neighbors as suggested
    return suggested(statistics, elements)


def info(store):
    """What a store holds (also an incomplete one), as data: elements, atom
    counts, arrays with shapes and chunks, settings, neighbour counts and
    provenance; a :class:`~distatomenv.store.info.StoreInfo`, whose ``str()``
    is ``distatomenv info``'s text (``print(distatomenv.info(path))``) and
    ``to_dict()`` a JSON-able dict."""
    from .store.info import store_info
    return store_info(store)
