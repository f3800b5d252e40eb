"""The public Python API of a run: compute, export, verify, info.

    import distatomenv
    store = distatomenv.compute("input.data", neighbors="6 2 4 4", out="run.zarr")
    distatomenv.export(store.path, "out/")          # n2p2's nnp-atomenv files
    print(distatomenv.info("run.zarr"))

``compute`` prepares the run (:mod:`.job`: index input.data, plan work units
with :mod:`.plan`), creates the store and hands the units to an executor
(:mod:`distatomenv.executors`), whose workers (:mod:`.worker`) each read only
their own structures and write only the store chunks the plan gives them.
"""
from __future__ import annotations

import functools
import os
import shutil
import time

import numpy as np

from ..descriptors.environment import EnvironmentLayout
from ..descriptors.neighbors import neighbor_list
from ..errors import DistatomenvError, StoreExistsError, os_error
from ..executors import get_executor
from ..io.files import check_folder_target
from ..io.structure import remap_positions
from ..parallel import start_phase
from ..store import lock as store_lock
from ..store import trash
from ..store.integrity import damage_named
from ..store.reader import open_store
from ..store.schema import read_root_attrs
from ..store.writer import StoreWriter, create_store, finalize_store, write_statistics
from .job import DEFAULT_BINS, check_precision, prepare
from .worker import UnitRunner


def start_run(data, *, settings=None, scaling=None, neighbors, out, dtype="float64",
              chunk_rows=None, n_units=None, n_workers=1, overwrite=False,
              resume=False, command=None, bins=DEFAULT_BINS, mapper=None, threads=None,
              progress=None, force_matching=None, precision="full"):
    """Coordinator's first half of a run: prepare, then create (or resume) the store.

    Returns ``(job, todo, timings)``: the job for the workers, the units still to
    compute (all of them, or the missing ones on resume), and seconds per phase.
    Only one process (the serial process, MPI rank 0, the Dask client) calls this;
    ``mapper`` spreads the index and the scaling pass over the executor's
    processes (:func:`distatomenv.parallel.local_map` by default).  ``progress``
    may have a method ``start(phase, structures, atoms)``, called with the
    totals of each phase.
    """
    # one writer per store: the lock is held until compute() returns or fails
    # (store.lock.release), or this process exits
    store_lock.acquire(out, command)
    try:
        attrs = (read_root_attrs(out) or {}) if resume else {}
        stored = attrs.get("layout") if isinstance(attrs.get("layout"), dict) else {}
        if n_units is None and isinstance(attrs.get("n_units"), int) and attrs["n_units"] > 0:
            # the default unit count depends on the number of workers: resume with
            # the store's own plan, whatever runs it now (serial, MPI, Dask)
            n_units = attrs["n_units"]
        if force_matching is None:
            # default linear; a resumed store keeps the features it was started with
            force_matching = stored.get("force_matching")
            if not isinstance(force_matching, str):
                force_matching = "linear"
        if chunk_rows is None and isinstance(stored.get("chunk_rows"), int):
            # the default depends on the number of workers: keep the store's
            chunk_rows = stored["chunk_rows"]
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
    start_phase(progress, "compute", sum(u.last - u.first for u in todo),
                    sum(u.atoms for u in todo))
    return job, todo, timings


def finish_run(job, timings, stats, t_start):
    """Coordinator's second half: mark the store complete, return its reader."""
    t0 = time.perf_counter()
    write_statistics(job.out, len(job.units), job.edges)
    finalize_store(job.out, len(job.units))
    trash.wait()                  # the store --overwrite replaced, deleted meanwhile
    timings["finalize"] = time.perf_counter() - t0
    timings.update(stats)
    timings["total"] = time.perf_counter() - t_start
    reader = open_store(job.out)
    reader.timings = timings
    return reader


def compute(data, *, settings=None, scaling=None, neighbors, out, dtype="float64",
            chunk_rows=None, n_units=None, overwrite=False, resume=False,
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
    chunk_rows : rows per chunk; default (None) 2048, more for narrow rows and
        many atoms (:func:`distatomenv.engine.job.default_chunk_rows`; on
        resume: the store's).  overwrite/resume: see ``distatomenv compute --help``.
    bins : bins of the scaled-SF histograms kept in the store.
    force_matching : "linear" (the default; on resume: what the store has),
        "quadratic" or "none": the force-matching features D_i = Σ_j ∂G_j/∂r_i
        over every neighbour (``fm_d*`` arrays; quadratic adds
        Σ_j ∂(G_j,s G_j,t)/∂r_i, ``fmq_d*``) for the readout's potential tiers;
        ignored without forces.  The kernel evaluates every ∂G_j/∂r_i anyway
        (for the neighbour blocks), so the linear features cost little compute
        time; they add 3 x Σ_e nSF(e) floats per atom to the store (see the
        README).
    backend : "serial" (default), "mpi" or "dask": the executor
        (:func:`distatomenv.executors.get_executor`, built with
        ``backend_options``: mpi ``comm``, dask ``workers`` or ``scheduler``).
    threads : numba threads (default: all cores of this process).

    Returns the :class:`~distatomenv.store.reader.StoreReader` of the finished store.
    """
    check_precision(precision, dtype)
    if not isinstance(data, (str, bytes, os.PathLike)):      # ase.Atoms in memory
        if backend == "mpi":
            raise DistatomenvError("compute from ase.Atoms in memory cannot run under MPI "
                                   "(every rank would hold the frames): write them to input.data "
                                   "first (distatomenv.io.ase.write), then compute from the file")
        from ..io.ase import write_for_store
        data = write_for_store(data, out)
    options = dict(settings=settings, scaling=scaling, neighbors=neighbors, out=out, dtype=dtype,
                   chunk_rows=chunk_rows, n_units=n_units, overwrite=overwrite, resume=resume,
                   command=command, bins=bins, force_matching=force_matching,
                   precision=precision)
    try:
        executor = get_executor(backend, **backend_options)
        start = functools.partial(start_run, data, progress=progress, **options)
        return executor.compute(start, UnitRunner, finish_run, threads=threads,
                                progress=progress)
    except OSError as exc:       # the OS refused (disk full, read-only, ...): one clear error
        raise os_error(exc, out, "writing the store") from None
    finally:
        store_lock.release(out)


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
    check_folder_target(out_dir, "the export folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
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
        with damage_named([rd], "export"):
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
    from ..io.n2p2 import AtomEnvWriter
    meta = rd.meta
    lay = EnvironmentLayout.from_dict(meta["environment"])
    conv_length = float(meta["settings"]["conv_length"])
    rc_max = float(meta["neighbors"]["rc_max"])
    els = rd.elements
    from ..elements import atomic_number
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
        from ..io.scaling import ScalingTable, write_scaling
        from ..io.settings import Settings
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
    from ..descriptors.symfuncs import SymmetryFunction
    from ..io.histo import sf_histo_name, write_neighbors_histo, write_sf_histo
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
    from ..store.integrity import verify as _verify
    path = getattr(store, "path", store)
    try:
        return _verify(os.fspath(path), progress=progress)
    except OSError as exc:
        raise os_error(exc, path, "reading the store") from None


# ----------------------------------------------------------------------------- info
def suggested_neighbors(statistics, elements) -> str | None:
    """The ``--neighbors`` string that every atom of the data allows: per pair
    the smallest neighbour count within the cutoff (None without statistics)."""
    from ..store.info import suggested_neighbors as suggested
    return suggested(statistics, elements)


def info(store):
    """What a store holds (also an incomplete one), as data: elements, atom
    counts, arrays with shapes and chunks, settings, neighbour counts and
    provenance; a :class:`~distatomenv.store.info.StoreInfo`, whose ``str()``
    is ``distatomenv info``'s text (``print(distatomenv.info(path))``) and
    ``to_dict()`` a JSON-able dict."""
    from ..store.info import store_info
    return store_info(store)
