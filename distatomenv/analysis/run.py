"""``distatomenv.analyze``: the analysis of a store, end to end, with its
report written; on a Dask cluster when asked (``scheduler`` or ``workers``).
"""
from __future__ import annotations

import os

from ..errors import DistatomenvError, os_error
from ..io.files import check_folder_target
from ..store.integrity import damage_named
from ..store.reader import open_store


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
    from . import Analyzer, write_report
    if isinstance(store, (list, tuple)):          # several stores: the first, compared with the rest
        if not store:
            raise DistatomenvError("analyze: no store given")
        store, others = store[0], list(store[1:])
        if others:
            params["compare"] = list(params.get("compare") or []) + others
    out_dir = os.fspath(out_dir)
    check_folder_target(out_dir, "the report folder")
    stores = [store] + list(params.get("compare") or [])
    for s in stores:                # a damaged store is refused before any work
        if isinstance(s, (str, os.PathLike)):
            open_store(s).check_chunks()
        elif hasattr(s, "check_chunks"):
            s.check_chunks()
    runner = None
    if params.get("scheduler") or params.get("workers"):
        from ..executors.dask import TaskRunner
        Analyzer(**params)._check_params()          # bad options fail before a cluster starts
        runner = TaskRunner(scheduler=params.get("scheduler"), workers=params.get("workers"))
    created = not os.path.exists(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)       # an unwritable folder fails now, not at the end
        with damage_named(stores, "analyze"):
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
