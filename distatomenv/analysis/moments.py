"""Per-group count, mean and M2, mergeable: the analysis's moments.

Every statistic of the analysis is computed from these reduced moments, so
that rows can be streamed chunk by chunk and partial results from threads or
Dask workers merged in any order.  The implementation, and its pairwise
merge shared with the scaling pass, is :mod:`distatomenv.stats.moments`.
"""
from __future__ import annotations

from distatomenv.stats.moments import GroupMoments

__all__ = ["GroupMoments"]
