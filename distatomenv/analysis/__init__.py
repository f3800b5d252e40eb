"""Analysis of a store: do the descriptors encode the forces?

n2p2's descriptor-analysis notebook (cluster the environments, t-test each
cluster's forces against the rest) at any scale, plus what it lacks:
multiple-testing corrections, effect sizes, explained variance, a
permutation null, stability over seeds and labels mapped back to atoms.

The passes read the store only (never the descriptor kernels or the
engine); where their block tasks run is a runner handed to
:meth:`Analyzer.fit` (threads here, or a Dask cluster from
:class:`distatomenv.executors.dask.TaskRunner`, which
:func:`distatomenv.analyze` sets up).

Modules: :mod:`.moments` (mergeable per-group moments, from
:mod:`distatomenv.stats.moments`), :mod:`.statistics` (tests from moments),
:mod:`.clustering` (out-of-core clustering), :mod:`.analyze` (the
:class:`Analyzer`, a scikit-learn estimator, and its passes over the store),
:mod:`.readout` and :mod:`.advice` (the force readout and the design advice),
:mod:`.report` (report.json, clusters.csv, report.html from ``templates/``),
:mod:`.plots` (what is written) and :mod:`.run` (:func:`distatomenv.analyze`:
the checks, the Dask runner, the report written).
"""
from __future__ import annotations

from .analyze import ALPHA_3SIGMA, DEFAULT_CLUSTERS, Analyzer
from .moments import GroupMoments
from .report import AnalysisResult, summary_table, write_report

__all__ = ["Analyzer", "AnalysisResult", "GroupMoments", "summary_table", "write_report",
           "DEFAULT_CLUSTERS", "ALPHA_3SIGMA"]
