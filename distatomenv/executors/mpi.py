"""The MPI executor: every rank of ``mpiexec -n N distatomenv compute ...`` runs units.

All ranks call :func:`compute` with the same arguments (the CLI picks this
executor itself when started by an MPI launcher with more than one rank)::

    mpiexec -n 4 distatomenv compute input.data --neighbors "6 2 4 4" -o store.zarr

or from Python, on every rank: ``distatomenv.compute(..., backend="mpi")``.

How a run goes:

1. Rank 0 prepares the run and creates (or resumes) the store with ``start``
   (:func:`~distatomenv.engine.run.start_run`); the plan has at least one
   unit per rank.  Meanwhile the other ranks serve its maps (:class:`_RankPool`): every
   rank indexes some 16 MiB blocks of the data and runs some parts of the
   scaling pass.  If preparing fails (bad input, store exists, ...) every rank
   raises the same error (rank 0 the original exception).  Otherwise the job
   and the units still to do are broadcast.
2. Each rank sets numba's thread count: ``threads`` if given, else the cores
   this process may use divided by the ranks on its node.
3. Unit ``k`` of the to-do list runs on rank ``k % size`` (static; the store
   is bit-identical whatever runs where, because the plan fixes which rows
   each unit writes).
4. Errors: a rank whose unit raises skips its remaining units, so nothing
   hangs; then all ranks exchange (failed?, message).  If any rank failed,
   rank 0 records the failure in the store (:func:`mark_failed`), the failing
   rank re-raises its original exception and every other rank raises
   :class:`RankFailedError` naming the failing rank, unit and message.  The
   store stays incomplete; ``--resume`` computes the missing units.  A rank
   that dies outright (signal, out of memory) is handled by the launcher,
   which ends the whole job.
5. Progress: after each unit the other ranks send rank 0 a small message
   (non-blocking send); rank 0 forwards them to ``progress(structures,
   atoms)`` between its own units and, once its own units are done, until
   every rank has said it is finished.
6. Rank 0 finalises the store with ``finish``
   (:func:`~distatomenv.engine.run.finish_run`), with per-phase seconds (maximum over ranks), ``"load balance"`` (largest rank
   load in atoms / mean rank load) and ``"ranks"`` in ``timings``; the other
   ranks then open the finished store.  Every rank returns its reader.

mpi4py is imported inside the functions only, so that importing distatomenv
(and running it serially) never needs an MPI library.
"""
from __future__ import annotations

import pickle
import time

from ..errors import DistatomenvError, RankFailedError, is_input_error
from ..parallel import cores, optional_module, set_threads
from ..store.reader import open_store
from ..store.writer import mark_failed

_TAG_PROGRESS = 71          # point-to-point messages rank > 0 -> rank 0
#: Seconds an idle rank sleeps between two tests of what it waits for.
_IDLE_POLL = 0.001


def _mpi():
    return optional_module("mpi4py.MPI", "mpi4py", "the MPI backend",
                           "pip install 'distatomenv[mpi]'")


# ----------------------------------------------------------------------------- waiting
def _idle_wait(request) -> None:
    """Wait for a non-blocking MPI request, sleeping between tests.

    A blocking MPI call (MPICH and Open MPI alike) polls at 100 % of a core.
    A rank that has finished its units, or that waits while rank 0 prepares
    the run, would take that core from the ranks still working whenever the
    ranks (and their writer threads) outnumber the cores."""
    while not request.Test():
        time.sleep(_IDLE_POLL)


def _quiet_barrier(comm) -> None:
    """A barrier that waits without spinning: called before every collective
    call that some rank may reach long before the others, so that the call
    itself then completes at once."""
    _idle_wait(comm.Ibarrier())


# ----------------------------------------------------------------------------- errors
def _pack_error(exc):
    """A picklable description of ``exc``: the exception itself when it pickles
    and unpickles cleanly, else (type, message)."""
    try:
        again = pickle.loads(pickle.dumps(exc))
        if type(again) is type(exc) and str(again) == str(exc):
            return ("exc", pickle.dumps(exc))
    except Exception:
        pass
    try:
        pickle.dumps(type(exc))
        return ("type", type(exc), str(exc))
    except Exception:
        return ("type", None, f"{type(exc).__name__}: {exc}")


class _RankPool:
    """Lets rank 0 spread work over every rank while it coordinates.

    Rank 0 calls :meth:`map` (the mapper signature of
    :func:`distatomenv.parallel.local_map`); meanwhile the other ranks sit in
    :meth:`serve`, which runs their share of each map (item k on rank
    k % size) until rank 0 broadcasts anything that is not a map.  Items fail
    independently: the first failed item (in item order) is re-raised on rank 0.
    """

    def __init__(self, comm):
        self.comm = comm

    def map(self, fn, items, shared, report=None):
        items = list(items)
        # pickled before the barrier: a map that cannot be sent fails here, on
        # rank 0 alone, and the others then receive that error (_root_then_bcast)
        blob = pickle.dumps(("map", fn, items, shared))
        _quiet_barrier(self.comm)
        self.comm.bcast(blob, root=0)
        return self._work(fn, items, shared, report)

    def _work(self, fn, items, shared, report):
        comm = self.comm
        rank, size = comm.Get_rank(), comm.Get_size()
        mine = []
        for k in range(rank, len(items), size):
            try:
                mine.append((k, "ok", fn(shared, items[k])))
            except Exception as exc:
                mine.append((k, "error", _pack_error(exc)))
                break
            if report is not None and rank == 0:
                report(mine[-1][2])
        _quiet_barrier(comm)
        gathered = comm.gather(mine, root=0)
        if rank != 0:
            return None
        results = [None] * len(items)
        errors = []
        for r, part in enumerate(gathered):
            for k, status, value in part:
                if status == "ok":
                    results[k] = value
                    if report is not None and r != 0:
                        report(value)
                else:
                    errors.append((k, value))
        if errors:
            raise _unpack_error(min(errors, key=lambda e: e[0])[1])
        return results

    def serve(self):
        """Ranks > 0: run shares of rank 0's maps; return the first other message."""
        while True:
            _quiet_barrier(self.comm)
            msg = self.comm.bcast(None, root=0)
            if isinstance(msg, bytes):
                msg = pickle.loads(msg)
            if msg is None or msg[0] != "map":
                return msg
            self._work(msg[1], msg[2], msg[3], None)


def _root_then_bcast(comm, fn, pool=None):
    """Run ``fn()`` on rank 0 and tell every rank how it went (collective).

    ``fn`` returns (local, shared).  Rank 0 gets (local, shared); the other ranks
    get (None, shared).  If ``fn`` raises, rank 0 re-raises it and every other
    rank raises the same error type and message, so no rank is left waiting.
    With a :class:`_RankPool`, the other ranks serve its maps while they wait.
    """
    outcome = None
    if comm.Get_rank() == 0:
        try:
            local, shared = fn()
        except Exception as exc:
            _quiet_barrier(comm)
            comm.bcast(("error", _pack_error(exc)), root=0)
            raise
        outcome = ("ok", shared)
        _quiet_barrier(comm)
        comm.bcast(outcome, root=0)
    elif pool is not None:
        outcome = pool.serve()
    else:
        _quiet_barrier(comm)
        outcome = comm.bcast(None, root=0)
    if outcome[0] == "error":
        raise _unpack_error(outcome[1])
    return (local if comm.Get_rank() == 0 else None), outcome[1]


def _unpack_error(packed):
    """Rebuild the exception described by :func:`_pack_error`."""
    if packed[0] == "exc":
        try:
            return pickle.loads(packed[1])
        except Exception as exc:        # pragma: no cover - checked on the sender
            return DistatomenvError(f"error on rank 0 (could not be rebuilt: {exc})")
    _, cls, message = packed
    if cls is not None and issubclass(cls, BaseException):
        try:                            # same type and message, without calling __init__
            err = cls.__new__(cls)
            BaseException.__init__(err, message)
            if str(err) == message:
                return err
        except Exception:
            pass
    return DistatomenvError(message)


def _describe(exc) -> str:
    return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- threads
def _ranks_on_node(comm) -> int:
    """Number of ranks of ``comm`` that share this node (collective)."""
    MPI = _mpi()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def _threads_for_rank(threads, n_local) -> int:
    """``threads``, or the cores this process may use divided by the ranks on its node."""
    if threads is not None:
        return threads
    return max(1, cores() // max(1, n_local))


# ----------------------------------------------------------------------------- progress
class _ProgressSink:
    """Rank 0's end of the progress messages; a callback that raises is
    remembered (and treated as rank 0's failure), never left to break the
    message exchange."""

    def __init__(self, comm, progress):
        self.comm = comm
        self.progress = progress
        self.error = None
        self.finished = 1 if comm.Get_rank() == 0 else 0   # rank 0 counts itself
        self.size = comm.Get_size()

    def report(self, structures, atoms):
        if self.progress is None or self.error is not None:
            return
        try:
            self.progress(structures, atoms)
        except Exception as exc:
            self.error = exc

    def _receive(self, status):
        msg = self.comm.recv(source=status.Get_source(), tag=_TAG_PROGRESS)
        if msg is None:
            self.finished += 1
        else:
            self.report(*msg)

    def poll(self):
        """Forward every message that has arrived (never blocks)."""
        MPI = _mpi()
        status = MPI.Status()
        while self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_PROGRESS, status=status):
            self._receive(status)

    def wait_all(self):
        """Forward messages until every other rank has said it is done."""
        MPI = _mpi()
        status = MPI.Status()
        while self.finished < self.size:
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_PROGRESS, status=status):
                self._receive(status)
            else:
                time.sleep(_IDLE_POLL)          # not Probe: it spins (see _idle_wait)


# ----------------------------------------------------------------------------- units
def _run_units(comm, job, units, make_worker, sink, threads, failure=None):
    """Set numba's threads and run ``units`` here with ``make_worker(job)``.
    Never raises (so no rank leaves the others waiting): returns (stats, atoms,
    failure) where failure is None or (unit id or None, exception); a failure
    given on entry skips the units."""
    rank = comm.Get_rank()
    requests = []
    t_setup = t_write = t_run = 0.0
    atoms = 0
    current = None
    runner = None
    try:
        if failure is not None:          # e.g. the job could not be unpickled here
            raise failure[1]
        set_threads(threads)
        t0 = time.perf_counter()
        runner = make_worker(job)
        t_setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        for unit in units:
            current = unit.id
            stats = runner.run(unit)
            t_write += stats["write"]
            atoms += stats["atoms"]
            if rank == 0:
                sink.report(stats["structures"], stats["atoms"])
                sink.poll()
            else:
                requests.append(comm.isend((stats["structures"], stats["atoms"]), dest=0,
                                           tag=_TAG_PROGRESS))
        current = None
        runner, r = None, runner
        r.close()
        t_run = time.perf_counter() - t1
    except Exception as exc:
        failure = failure or (current, exc)
        if runner is not None:
            try:
                runner.close()
            except Exception:
                pass
    # tell rank 0 we are done (it waits for this before any collective call)
    if rank == 0:
        sink.wait_all()
        if failure is None and sink.error is not None:
            failure = (None, sink.error)
    else:
        requests.append(comm.isend(None, dest=0, tag=_TAG_PROGRESS))
    for request in requests:
        _idle_wait(request)
    stats = {"setup": t_setup, "compute": max(0.0, t_run - t_write), "write": t_write}
    return stats, atoms, failure


# ----------------------------------------------------------------------------- coordinate
def coordinate(fn, *, threads=None, comm=None):
    """Run ``fn(mapper, threads)`` on rank 0 while every rank serves its maps
    (collective; call it on every rank).  Rank 0 returns ``fn``'s result, the
    others None; an error is raised on every rank.  ``threads``: numba threads
    per rank (default: the node's cores divided by its ranks).  Used by the
    scaling pass on its own (``mpiexec -n N distatomenv scaling ...``)."""
    MPI = _mpi()
    comm = (comm if comm is not None else MPI.COMM_WORLD).Dup()
    try:
        n_threads = _threads_for_rank(threads, _ranks_on_node(comm))
        pool = _RankPool(comm)
        local, _ = _root_then_bcast(comm, lambda: (fn(pool.map, n_threads), None), pool)
        return local
    finally:
        comm.Free()


# ----------------------------------------------------------------------------- compute
def compute(start, make_worker, finish, *, threads=None, progress=None, comm=None):
    """Run a compute on every rank of ``comm`` (default COMM_WORLD).

    Must be called by every rank with the same arguments (``distatomenv.compute(...,
    backend="mpi")`` does).  ``start``, ``make_worker`` and ``finish`` are those
    of :class:`distatomenv.parallel.Executor`; ``start`` and ``finish`` run on
    rank 0 only, and so does ``progress``.  Returns the finished store's reader
    on every rank.
    """
    MPI = _mpi()
    comm = (comm if comm is not None else MPI.COMM_WORLD).Dup()
    try:
        rank, size = comm.Get_rank(), comm.Get_size()
        t_start = time.perf_counter()

        # 1. rank 0 prepares and creates the store, with every rank indexing
        #    blocks of the data and running parts of the scaling pass
        n_threads = _threads_for_rank(threads, _ranks_on_node(comm))
        pool = _RankPool(comm)

        def started():
            job, todo, timings = start(n_workers=size, mapper=pool.map, threads=n_threads)
            return (job, todo, timings), pickle.dumps((job, todo))
        here, blob = _root_then_bcast(comm, started, pool)
        failure = None
        if rank == 0:
            job, todo, timings = here
        else:
            try:
                job, todo = pickle.loads(blob)
            except Exception as exc:        # must still join the collective calls
                job, todo, failure = None, [], (None, exc)

        # 2. threads (above); 3. static assignment
        mine = [u for k, u in enumerate(todo) if k % size == rank]
        sink = _ProgressSink(comm, progress) if rank == 0 else None
        stats, atoms, failure = _run_units(comm, job, mine, make_worker, sink, n_threads, failure)

        # 4. everybody learns whether anybody failed
        me = None if failure is None else (rank, failure[0], type(failure[1]).__name__,
                                           str(failure[1]))
        _quiet_barrier(comm)
        gathered = comm.allgather((me, stats, atoms))
        failures = [g[0] for g in gathered if g[0] is not None]
        if failures:
            message = "; ".join(
                f"MPI rank {r} failed" + (f" in unit {u}" if u is not None else "")
                + f": {t}: {m}" for r, u, t, m in failures)
            if rank == 0:
                try:
                    mark_failed(job.out, message,
                                input_error=all(is_input_error(t) for _, _, t, _ in failures))
                except Exception as exc:    # keep the run's own error in front
                    message += f" (and recording the failure in the store failed: {exc})"
            if failure is not None:
                exc = failure[1]
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(on MPI rank {rank} of {size}; the store is incomplete, "
                                 "re-run with --resume)")
                raise exc
            raise RankFailedError(message, failures)

        # 6. rank 0 finalises; the others open the finished store
        def finished():
            loads = [g[2] for g in gathered]
            mean = sum(loads) / len(loads)
            summary = {k: max(g[1][k] for g in gathered) for k in ("setup", "compute", "write")}
            summary["load balance"] = (max(loads) / mean) if mean > 0 else 1.0
            summary["ranks"] = size
            reader = finish(job, timings, summary, t_start)
            return reader, dict(reader.timings)
        reader, shared_timings = _root_then_bcast(comm, finished)
        if rank == 0:
            return reader
        reader = open_store(job.out)
        reader.timings = dict(shared_timings)
        return reader
    finally:
        comm.Free()


class MPIExecutor:
    """:class:`distatomenv.parallel.Executor` over the ranks of ``comm``
    (default COMM_WORLD); every rank calls the same methods."""

    def __init__(self, comm=None):
        self.comm = comm

    def compute(self, start, make_worker, finish, *, threads=None, progress=None):
        return compute(start, make_worker, finish, threads=threads, progress=progress,
                       comm=self.comm)

    def coordinate(self, fn, *, threads=None):
        return coordinate(fn, threads=threads, comm=self.comm)
