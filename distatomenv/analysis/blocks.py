"""Where the analysis's block tasks run and how they read the store.

Every pass of the analysis (the cluster view's scan, label and null passes,
the readout's one statistics pass) is a map of a module-level task over
blocks of rows.  A *runner* runs the tasks: :class:`ThreadRunner` here, or
the Dask one from :class:`distatomenv.executors.dask.TaskRunner`, which
:func:`distatomenv.analyze` injects (the analysis layer never starts
clusters itself).
"""
from __future__ import annotations

import functools
import os

import numpy as np

from distatomenv.errors import AnalysisError
from distatomenv.store.reader import StoreReader, open_store

__all__ = ["ThreadRunner", "read_rows", "progress_bar", "chunk_blocks", "store_elements"]


class ThreadRunner:
    """Runs block tasks on threads of this process.

    The runner interface of the analysis: context manager; ``local`` (tasks
    share this process); ``n_parallel``; ``share(obj)``; ``map(fn, items,
    **kwargs)`` yielding results in completion order.
    """

    local = True

    def __init__(self, threads=None):
        self.n_parallel = int(threads or os.cpu_count() or 1)
        self._pool = None

    def __enter__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=self.n_parallel)
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(wait=True)

    def share(self, obj):
        return obj

    def map(self, fn, items, **kwargs):
        from concurrent.futures import as_completed

        futures = [self._pool.submit(fn, it, **kwargs) for it in items]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            for f in futures:
                f.cancel()


@functools.lru_cache(maxsize=8)
def _reader(path) -> StoreReader:
    return open_store(path, allow_incomplete=True)


def read_rows(path, element, name, start, stop, columns=None) -> np.ndarray:
    """Rows [start, stop) of ``elements/<element>/<name>`` (optionally some columns)."""
    a = _reader(path).read(element, name, slice(start, stop))
    if columns is not None:
        a = a[:, columns]
    return np.asarray(a)


def chunk_blocks(n_rows: int, chunk_rows: int, target_rows: int) -> list[tuple[int, int]]:
    """[start, stop) blocks of whole chunks, about ``target_rows`` rows each."""
    step = max(1, round(target_rows / chunk_rows)) * chunk_rows
    return [(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]


def progress_bar(enabled, total, desc, unit="row"):
    """A tqdm bar, or None when progress is off."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True, leave=False)


def store_elements(reader, elements) -> list:
    """The elements to analyse: all of the store's (None), one, or a list,
    each checked to be in the store; duplicates dropped, order kept."""
    if elements is None:
        elements = list(reader.elements)
    elif isinstance(elements, str):
        elements = [elements]
    for e in elements:
        if e not in reader.elements:
            raise AnalysisError(f"{reader.path}: element {e!r} is not in the store "
                                f"(elements: {reader.elements})")
    return list(dict.fromkeys(elements))
