"""The worker side of a run: :class:`UnitRunner` computes and writes work
units, :class:`_RowBuffer` releases rows in whole chunks, and the scaled-SF
histograms (:func:`histogram_edges`, :func:`sf_histogram`) are counted per unit.

One UnitRunner per process (or Dask worker thread); executors make it with
the job they were handed (:class:`distatomenv.parallel.Executor`).
"""
from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from ..descriptors.environment import EnvironmentCalculator
from ..descriptors.rdf import count_histograms
from ..errors import DataFileError, StoreError
from ..io.inputdata import read_structure
from ..store.writer import StoreWriter
from .plan import WorkUnit


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


#: Structures of at most this many atoms are computed whole, one per numba
#: thread (see UnitRunner._structures); larger ones are split by atoms, so
#: that one structure at a time is in memory.  Each thread holds one
#: structure's rows while it computes, and with the quadratic force-matching
#: features also its entry derivatives: about 40 MB at 512 atoms of water with
#: a 12 bohr cutoff (106 entries x 30 SFs x 3 x 8 bytes per atom), so up to
#: threads x 40 MB beside the rows waiting to be written.
STRUCTURE_THREADS_MAX_ATOMS = 512

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

    def __init__(self, job):
        """``job``: the :class:`~distatomenv.engine.job.Job` of the run."""
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
        self._compute_pool = None
        self._eindex = {e: a for a, e in enumerate(job.layout.elements)}

    def run(self, unit: WorkUnit) -> dict:
        """Compute one unit and write its rows; returns counters for progress."""
        t0 = time.perf_counter()
        job = self.job
        els = job.layout.elements
        chunk = job.layout.chunk_rows
        buffers = {e: _RowBuffer(unit.rows[a][0], unit.rows[a][1], chunk) for a, e in
                   enumerate(els)}
        hist = {e: None for e in els}
        nbh = None                  # (central, neighbour) element index -> count histogram
        t_write = 0.0
        for s, st, elem, rows in self._structures(unit):
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

    def _structure(self, unit, s, threads):
        """Read structure ``s`` and compute the environment rows of the atoms
        ``unit`` owns: (s, structure, element indices, rows), or None when it
        owns none."""
        job = self.job
        st = read_structure(job.data, job.index_offsets, s)
        elem = np.fromiter((self._eindex[x] for x in st.elements), dtype=np.int64,
                           count=st.natoms)
        owned = unit.owned_atoms(job.first_rows[s], None, elem)
        if not owned.any():
            return None
        rows = self.calc.compute(elem, st.remapped_positions(), st.lattice, owned,
                                 structure_index=s, path=job.data, atom_lines=st.atom_lines,
                                 threads=threads)
        return s, st, elem, rows

    def _structures(self, unit):
        """The computed structures of ``unit``, in order.

        With several numba threads and many small structures, each thread
        computes whole structures (neighbour list, kernel, rows), a few
        structures ahead of the one being written: the Python between the
        kernels then overlaps with them instead of leaving the other threads
        idle.  Otherwise structures come one at a time, each split over the
        threads by atoms.  Each structure's rows are the same either way."""
        threads = nb.get_num_threads()
        natoms = self.job.index_offsets.natoms[unit.first:unit.last]
        if threads < 2 or natoms.size < 2 * threads or natoms.max() > STRUCTURE_THREADS_MAX_ATOMS:
            for s in range(unit.first, unit.last):
                out = self._structure(unit, s, None)
                if out is not None:
                    yield out
            return
        if self._compute_pool is None:
            self._compute_pool = ThreadPoolExecutor(max_workers=threads,
                                                    thread_name_prefix="distatomenv-structure")
        ahead = 2 * threads
        pending = []
        nxt = unit.first
        try:
            while pending or nxt < unit.last:
                while nxt < unit.last and len(pending) < ahead:
                    pending.append(self._compute_pool.submit(self._structure, unit, nxt, 1))
                    nxt += 1
                out = pending.pop(0).result()
                if out is not None:
                    yield out
        finally:
            for f in pending:
                f.cancel()
            for f in pending:          # let running ones end before the caller goes on
                if not f.cancelled():
                    f.exception()

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
        if self._compute_pool is not None:
            self._compute_pool.shutdown()


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
