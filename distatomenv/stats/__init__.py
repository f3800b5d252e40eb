"""Statistics shared by the compute side and the analysis: numpy only.

:mod:`.moments` holds the one pairwise merge of count, mean and M2 (Chan,
Golub & LeVeque 1979) that the scaling pass (:class:`~.moments.MomentAccumulator`)
and the analysis (:class:`~.moments.GroupMoments`) both stream through.
"""
from __future__ import annotations

from .moments import GroupMoments, MomentAccumulator, chan_merge

__all__ = ["GroupMoments", "MomentAccumulator", "chan_merge"]
