"""The Dask executor: the units of a run are tasks on a ``distributed`` cluster.

Start a local cluster of worker processes, or join a running one::

    distatomenv compute input.data --neighbors "6 2 4 4" -o store.zarr --workers 4
    distatomenv compute input.data --neighbors "6 2 4 4" -o store.zarr \\
        --scheduler tcp://HOST:8786

or from Python: ``distatomenv.compute(..., backend="dask", workers=4)`` (or
``scheduler="tcp://HOST:8786"``).  Exactly one of ``workers`` and ``scheduler``
must be given.  The workers must import the same distatomenv and see the
input files and the store at the same paths (a shared file system).

How a run goes:

1. The client process (the one calling :func:`compute`) starts the local
   cluster (``workers=N``) or connects to the scheduler (and waits up to a
   minute for a first worker), then prepares the run and creates (or resumes)
   the store with ``start`` (:func:`~distatomenv.engine.run.start_run`),
   planned for the number of workers.  The 16 MiB blocks of the data's index and the parts of
   the scaling pass run as tasks (:func:`_mapper`); the first error in the data
   comes back with its file and line.
2. The job is sent to the cluster once, as the result of a small task that is
   then replicated to every worker (like ``scatter(broadcast=True)``, but the
   scheduler can recompute it if every worker holding it dies, which it
   cannot do for scattered data), and every unit still to do becomes one task
   ``distatomenv-unit-<id>-<token>`` with ``retries=2`` that takes the job.
3. On a worker, :func:`_run_unit` keeps one unit worker (``make_worker(job)``,
   a :class:`~distatomenv.engine.worker.UnitRunner`) per worker thread and
   run, sets numba's thread count (``threads``, default 1 per Dask worker thread), runs
   the unit (its writes are drained before it returns) and returns its
   counters.
4. Units are idempotent: a unit writes only whole chunks it owns, so a unit
   that runs again (a retry, or a worker that died and whose tasks the
   scheduler reschedules) rewrites the same bytes.  A worker process that dies
   is restarted by its nanny; the run completes.
5. Progress: ``progress(structures, atoms)`` is called in the client as tasks
   complete.
6. Errors: when a unit fails for good (after its retries, or after its workers
   died ``distributed.scheduler.allowed-failures`` times), the other tasks are
   cancelled, the failure is recorded in the store
   (:func:`~distatomenv.store.writer.mark_failed`) and :class:`UnitFailedError`
   names the unit, the worker and the original error.  The store stays
   incomplete; ``--resume`` computes the missing units.
7. The client finalises the store with ``finish``
   (:func:`~distatomenv.engine.run.finish_run`), with per-phase seconds summed over units, ``"workers"`` and ``"load
   balance"`` (largest per-worker load in atoms / mean) in ``timings``, and
   closes the client and the local cluster it started (never an external one).

``distributed`` is imported inside the functions only, so that importing
distatomenv (and running it serially) never loads it.

Numba note: with more than one thread per Dask worker, units run concurrently
in one process; numba's ``omp`` and ``tbb`` threading layers allow that, its
``workqueue`` fallback does not (use one thread per worker there).
"""
from __future__ import annotations

import collections
import os
import pickle
import threading
import time
import uuid

from ..errors import DistatomenvError, UnitFailedError, is_input_error
from ..parallel import cores, optional_module, set_threads
from ..store.writer import mark_failed

#: Retries of a unit whose task raised (a worker that dies is handled by the scheduler).
RETRIES = 2
#: Seconds to wait for a first worker of an external cluster.
WAIT_FOR_WORKERS_S = 60


# ----------------------------------------------------------------------------- worker side
_LOCAL = threading.local()       # per Dask worker thread: {token: unit worker}
_KEEP_RUNNERS = 2                # runs whose runner a worker thread keeps open


def _load_job(blob):
    """``(make_worker, job)`` from its pickle (a task, so that the scheduler can
    recompute it)."""
    return pickle.loads(blob)


def _worker_address():
    try:
        from distributed import get_worker
        return get_worker().address
    except Exception:                    # not inside a worker (tests calling directly)
        return None


def _runner(make_worker, job, token):
    """This thread's unit worker of run ``token`` (``make_worker(job)`` on first
    use); returns (runner, seconds spent creating it)."""
    cache = getattr(_LOCAL, "runners", None)
    if cache is None:
        cache = _LOCAL.runners = collections.OrderedDict()
    runner = cache.get(token)
    if runner is not None:
        cache.move_to_end(token)
        return runner, 0.0
    t0 = time.perf_counter()
    runner = cache[token] = make_worker(job)
    while len(cache) > _KEEP_RUNNERS:    # only this thread uses them: safe to close
        _, old = cache.popitem(last=False)
        _close_quietly(old)
    return runner, time.perf_counter() - t0


def _drop_runner(token):
    cache = getattr(_LOCAL, "runners", None)
    if cache is not None and token in cache:
        _close_quietly(cache.pop(token))


def _close_quietly(runner):
    try:
        runner.close()
    except Exception:
        pass


def _run_unit(work, unit_id, token, threads):
    """Task body: run unit ``unit_id`` of the job on this worker; returns its counters.

    ``work`` is ``(make_worker, job)`` (:func:`_load_job`).  Any error is
    re-raised as a picklable :class:`UnitFailedError` naming the unit, the
    worker and the original error.
    """
    make_worker, job = work
    worker = _worker_address()
    try:
        # numba's thread count is per calling thread: set it on every task
        n_threads = set_threads(threads)
        runner, setup = _runner(make_worker, job, token)
        unit = next(u for u in job.units if u.id == unit_id)
        try:
            stats = runner.run(unit)     # drains its writes before it returns
        except BaseException:
            _drop_runner(token)          # a retry starts with a fresh runner
            raise
    except UnitFailedError:
        raise
    except Exception as exc:
        where = f"dask worker {worker}" if worker else f"process {os.getpid()}"
        raise UnitFailedError(
            f"unit {unit_id} failed on {where}: {type(exc).__name__}: {exc}",
            unit_id, type(exc).__name__, worker) from None
    stats.update(setup=setup, worker=worker or f"pid {os.getpid()}", pid=os.getpid(),
                 threads=n_threads)
    return stats


def _map_task(fn, shared, item):
    """Task body of :func:`_mapper`'s items (index blocks, scaling parts)."""
    return fn(shared, item)


def _default_threads(client) -> int:
    """Numba threads per Dask worker thread so that each host's cores are shared
    out, not oversubscribed: min over hosts of cores // worker threads there."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        worker_cores = client.run(cores)          # each worker's own CPU affinity
    except Exception:
        return 1
    per_host = collections.Counter()
    host_cores = {}
    for addr, w in workers.items():
        host = w.get("host") or addr.rsplit(":", 1)[0]
        per_host[host] += int(w.get("nthreads") or 1)
        host_cores[host] = max(host_cores.get(host, 1), int(worker_cores.get(addr, 1)))
    if not per_host:
        return 1
    return max(1, min(host_cores[h] // n for h, n in per_host.items()))


def _mapper(client):
    """A mapper (see :func:`distatomenv.parallel.local_map`) whose items are tasks
    on the cluster; ``shared`` goes to every worker once."""
    distributed = _distributed()

    def run(fn, items, shared, report=None):
        items = list(items)
        if not items:
            return []
        token = uuid.uuid4().hex[:12]
        [shared_future] = client.scatter([shared], broadcast=True, hash=False)
        futures = [client.submit(_map_task, fn, shared_future, item, pure=False, retries=RETRIES,
                                 key=f"distatomenv-{fn.__name__.strip('_')}-{k}-{token}")
                   for k, item in enumerate(items)]
        where = {f.key: k for k, f in enumerate(futures)}
        results = [None] * len(items)
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                if future.status != "finished":
                    future.result()          # raises the task's own error
                results[where[future.key]] = future.result()
                future.release()
                if report is not None:
                    report(results[where[future.key]])
        except BaseException:
            try:
                client.cancel(futures)
            except Exception:
                pass
            raise
        finally:
            shared_future.release()
        return results
    return run


# ----------------------------------------------------------------------------- client side
def _distributed():
    return optional_module("distributed", "dask.distributed", "the dask backend",
                           "pip install 'dask[distributed]'")


def _connect(address):
    """A client of the external cluster at ``address`` and its worker count."""
    distributed = _distributed()
    try:
        client = distributed.Client(address, set_as_default=False)
    except Exception as exc:
        raise DistatomenvError(f"cannot connect to the dask scheduler {address}: "
                               f"{type(exc).__name__}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
    except Exception:
        client.close()
        raise DistatomenvError(f"the dask scheduler {address} has no workers (waited "
                               f"{WAIT_FOR_WORKERS_S} s); start some with "
                               f"'dask worker {address}'") from None
    return client, len(client.scheduler_info(n_workers=-1)["workers"])


def _local_cluster(n_workers):
    distributed = _distributed()
    import logging
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    try:
        client = distributed.Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def _run(client, job, todo, make_worker, threads, progress, n_workers):
    """Submit one task per unit, collect their counters; returns the stats dict."""
    distributed = _distributed()
    token = uuid.uuid4().hex[:12]
    job_future = client.submit(_load_job, pickle.dumps((make_worker, job)),
                               key=f"distatomenv-job-{token}", pure=False)
    # a copy on every worker: the scheduler places a task only on workers that
    # hold its inputs (stealing rebalances later, slowly); should the job
    # task fail, the unit tasks fail with its error and are reported below
    try:
        client.replicate([job_future])
    except Exception:
        pass
    futures = {client.submit(_run_unit, job_future, unit.id, token, threads,
                             key=f"distatomenv-unit-{unit.id}-{token}", pure=False,
                             retries=RETRIES): unit.id
               for unit in todo}
    sums = {"setup": 0.0, "compute": 0.0, "write": 0.0}
    loads = collections.Counter()
    try:
        for future in distributed.as_completed(list(futures), loop=client.loop):
            unit_id = futures.pop(future)
            if future.status != "finished":
                raise _failure(future, unit_id)
            stats = future.result()
            future.release()
            sums["setup"] += stats["setup"]
            sums["write"] += stats["write"]
            sums["compute"] += max(0.0, stats["seconds"] - stats["write"])
            loads[stats["worker"]] += stats["atoms"]
            if progress is not None:
                progress(stats["structures"], stats["atoms"])
    except BaseException:
        if futures:
            try:
                client.cancel(list(futures))
            except Exception:
                pass
        raise
    finally:
        job_future.release()
    n = max(n_workers, len(loads), 1)
    mean = sum(loads.values()) / n
    sums["workers"] = n_workers
    sums["load balance"] = (max(loads.values()) / mean) if mean > 0 else 1.0
    return sums


def _failure(future, unit_id):
    """The UnitFailedError of a task that did not finish."""
    if future.status == "error":
        try:
            exc = future.exception()
        except Exception as err:         # the exception itself could not be rebuilt
            exc = err
        if isinstance(exc, UnitFailedError):
            return exc
        return UnitFailedError(f"unit {unit_id} failed on the dask cluster: "
                               f"{type(exc).__name__}: {exc}", unit_id, type(exc).__name__)
    return UnitFailedError(f"unit {unit_id} did not finish: its task was {future.status}",
                           unit_id, future.status)


class TaskRunner:
    """Runs the analysis's block tasks on a Dask cluster: a local one of
    ``workers`` processes, or the one at ``scheduler``.  Same interface as
    :class:`distatomenv.analysis.blocks.ThreadRunner` (context manager,
    ``local``, ``n_parallel``, ``share``, ``map`` in completion order)."""

    local = False

    def __init__(self, scheduler=None, workers=None):
        if (workers is None) == (scheduler is None):
            raise DistatomenvError("a Dask runner needs either workers=N or scheduler=ADDRESS")
        self.scheduler, self.workers = scheduler, workers
        self.client = self._cluster = None
        self.n_parallel = 1

    def __enter__(self):
        if self.scheduler is not None:
            self.client, _ = _connect(self.scheduler)
        else:
            self._cluster, self.client = _local_cluster(int(self.workers))
        self.n_parallel = max(1, sum(self.client.nthreads().values()))
        # the current client, so that dask collections (dask-ml's k-means||) run here too
        self._current = self.client.as_current()
        self._current.__enter__()
        return self

    def __exit__(self, *exc):
        if getattr(self, "_current", None) is not None:
            self._current.__exit__(None, None, None)
            self._current = None
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def share(self, obj):
        """Make a large object available to every task (scattered once)."""
        return self.client.scatter(obj, broadcast=True, hash=False)

    def map(self, fn, items, **kwargs):
        distributed = _distributed()
        futures = self.client.map(fn, list(items), pure=False, **kwargs)
        try:
            for future in distributed.as_completed(futures, loop=self.client.loop):
                yield future.result()
                future.release()
        finally:
            self.client.cancel(futures)


def coordinate(fn, *, threads=None, workers=None, scheduler=None):
    """Start a local cluster (``workers``) or join one (``scheduler``), run
    ``fn(mapper, threads)`` in this process with the cluster behind the mapper,
    close what was started.  Used by the scaling pass on its own."""
    if (workers is None) == (scheduler is None):
        raise DistatomenvError("the dask backend needs either workers=N or scheduler=ADDRESS")
    client = cluster = None
    try:
        if scheduler is not None:
            client, _ = _connect(scheduler)
        else:
            cluster, client = _local_cluster(workers)
        return fn(_mapper(client), _default_threads(client) if threads is None else threads)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def compute(start, make_worker, finish, *, threads=None, progress=None, workers=None,
            scheduler=None):
    """Run a compute with the units as tasks on a Dask cluster.

    Parameters
    ----------
    start, make_worker, finish : those of :class:`distatomenv.parallel.Executor`.
    workers : start a local cluster of this many worker processes (one thread each).
    scheduler : address of a running scheduler to join instead, e.g. ``tcp://HOST:8786``.
    threads : numba threads per Dask worker thread (default: each host's cores
        divided by the worker threads on that host, at least 1).
    progress : optional callable(structures, atoms), called as units finish.

    Returns what ``finish`` returns (the finished store's reader); its
    ``timings`` hold per-phase seconds summed over units, ``"workers"`` and
    ``"load balance"``.
    """
    if (workers is None) == (scheduler is None):
        raise DistatomenvError(
            "the dask backend needs either workers=N (--workers N: start a local cluster) "
            "or scheduler=ADDRESS (--scheduler tcp://HOST:PORT: join a running one)"
            + (", not both" if workers is not None else ""))
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise DistatomenvError(f"--workers must be a positive integer, got {workers!r}")
    if threads is not None and int(threads) < 1:
        raise DistatomenvError(f"--threads must be a positive integer, got {threads!r}")
    t_start = time.perf_counter()
    client = cluster = None
    try:
        t0 = time.perf_counter()
        if scheduler is not None:
            client, n_workers = _connect(scheduler)
        else:
            n_workers = workers
            cluster, client = _local_cluster(n_workers)
        t_cluster = time.perf_counter() - t0
        if threads is None:
            threads = _default_threads(client)
        # the workers index the data and run the scaling pass, then the units
        job, todo, timings = start(n_workers=n_workers, mapper=_mapper(client), threads=threads)
        timings["start cluster" if cluster is not None else "connect"] = t_cluster
        try:
            if not todo:                 # resuming a store whose units are all done
                stats = {"setup": 0.0, "compute": 0.0, "write": 0.0,
                         "workers": n_workers, "load balance": 1.0}
                return finish(job, timings, stats, t_start)
            stats = _run(client, job, todo, make_worker, threads, progress, n_workers)
        except BaseException as exc:
            message = str(exc) if isinstance(exc, UnitFailedError) else \
                f"{type(exc).__name__}: {exc}"
            try:
                mark_failed(job.out, message, input_error=is_input_error(
                    exc.error_type or "" if isinstance(exc, UnitFailedError) else exc))
            except Exception as err:     # keep the run's own error in front
                if hasattr(exc, "add_note"):
                    exc.add_note(f"(recording the failure in the store failed: {err})")
            if isinstance(exc, UnitFailedError) and hasattr(exc, "add_note"):
                exc.add_note("(the store is incomplete; re-run with --resume once the "
                             "cause is fixed)")
            raise
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
        if cluster is not None:
            try:
                cluster.close()
            except Exception:
                pass
    return finish(job, timings, stats, t_start)


class DaskExecutor:
    """:class:`distatomenv.parallel.Executor` on a local cluster of ``workers``
    processes or the cluster at ``scheduler`` (exactly one of them)."""

    def __init__(self, workers=None, scheduler=None):
        self.workers, self.scheduler = workers, scheduler

    def compute(self, start, make_worker, finish, *, threads=None, progress=None):
        return compute(start, make_worker, finish, threads=threads, progress=progress,
                       workers=self.workers, scheduler=self.scheduler)

    def coordinate(self, fn, *, threads=None):
        return coordinate(fn, threads=threads, workers=self.workers, scheduler=self.scheduler)
