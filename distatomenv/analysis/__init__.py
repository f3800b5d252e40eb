"""Analysis of a store: do the descriptors encode the forces?

n2p2's descriptor-analysis notebook (cluster the environments, t-test each
cluster's forces against the rest) at any scale, plus what it lacks:
multiple-testing corrections, effect sizes, explained variance, a
permutation null, stability over seeds and labels mapped back to atoms.

This layer reads the store only (never the descriptor kernels or the
backends); Dask's distributed scheduler is imported lazily when asked for.

Modules: :mod:`.moments` (mergeable per-group moments), :mod:`.statistics`
(tests from moments), :mod:`.clustering` (out-of-core clustering),
:mod:`.analyze` (the passes over the store), :mod:`.report` and
:mod:`.plots` (what is written).
"""
from __future__ import annotations

from .analyze import ALPHA_3SIGMA, DEFAULT_CLUSTERS, Analyzer
from .moments import GroupMoments
from .report import AnalysisResult, summary_table, write_report

__all__ = ["analyze", "Analyzer", "AnalysisResult", "GroupMoments", "summary_table",
           "DEFAULT_CLUSTERS", "ALPHA_3SIGMA"]


def analyze(store, out_dir, *, command=None, **params) -> AnalysisResult:
    """Cluster the store's environments and test each cluster's forces; write
    the report into ``out_dir``.

    Parameters
    ----------
    store : str, os.PathLike or StoreReader
        A complete store (made by :func:`distatomenv.compute`).
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
        scheduler, workers, threads, block_rows, progress.

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
    import os

    analyzer = Analyzer(**params).fit(store)
    return write_report(analyzer, os.fspath(out_dir), command=command)
