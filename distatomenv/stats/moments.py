"""Count, mean and M2 (sum of squared deviations), mergeable in any grouping.

Rows are streamed block by block; each block's moments are computed exactly
(the block is in memory), and blocks, threads, ranks or workers are merged
with Chan et al.'s pairwise formula (Chan, Golub & LeVeque 1979),
:func:`chan_merge`::

    n = na + nb,  d = mean_b - mean_a
    mean = mean_a + d * nb / n
    M2   = M2_a + M2_b + d**2 * na * nb / n

Two accumulators use it:

* :class:`MomentAccumulator` -- count, min, max, mean and M2 of the SF
  columns (the scaling pass, n2p2's ``nnp-scaling``);
* :class:`GroupMoments` -- count, mean and M2 of each of ``g`` groups (the
  analysis: per-cluster force moments, feature moments), with the
  complement of each group ("all other rows", the same formula solved for
  the other part).

Units are those of the values (M2: their square).
"""
from __future__ import annotations

import numpy as np

__all__ = ["chan_merge", "MomentAccumulator", "GroupMoments"]


def chan_merge(na, mean_a, m2_a, nb, mean_b, m2_b):
    """(mean, M2) of the union of parts a and b (Chan's pairwise formula).

    ``na``, ``nb``: the parts' counts, Python numbers or arrays broadcasting
    against the means; the caller adds them for the union's count.  With
    arrays, where both parts are empty the result is mean_a and M2_a + M2_b
    (no division by zero).  Python integer counts stay integers until the
    division (exact products, one rounding).
    """
    n = na + nb
    safe = np.where(n > 0, n, 1.0) if np.ndim(n) else (n if n > 0 else 1)
    d = mean_b - mean_a
    mean = mean_a + d * (nb / safe)
    m2 = m2_a + m2_b + d * d * (na * nb / safe)
    return mean, m2


class MomentAccumulator:
    """Count, min, max, mean and M2 of ``n`` value columns (SF values),
    merged with :func:`chan_merge`.

    Numerically stable for any number of rows; partial accumulators (one per
    unit, rank or worker) merge in any grouping.
    """

    def __init__(self, n):
        self.count = 0
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)
        self.mean = np.zeros(n)
        self.m2 = np.zeros(n)

    def add(self, G):
        """Add rows G (rows, n)."""
        if len(G) == 0:
            return
        other = MomentAccumulator(G.shape[1])
        other.count = len(G)
        other.min, other.max = G.min(axis=0), G.max(axis=0)
        other.mean = G.mean(axis=0)
        other.m2 = ((G - other.mean) ** 2).sum(axis=0)
        self.merge(other)

    def merge(self, o):
        if o.count == 0:
            return
        self.mean, self.m2 = chan_merge(self.count, self.mean, self.m2, o.count, o.mean, o.m2)
        self.min = np.minimum(self.min, o.min)
        self.max = np.maximum(self.max, o.max)
        self.count = self.count + o.count

    @property
    def sigma(self):
        """Sample standard deviation (divides by count - 1, as n2p2's nnp-scaling)."""
        return np.sqrt(self.m2 / max(self.count - 1, 1))


class GroupMoments:
    """Count, mean and M2 of the values of each of ``g`` groups.

    * within a block, :meth:`from_values` computes each group's mean and M2
      exactly (two passes over the block, which is in memory);
    * across blocks, :meth:`merge` combines them group by group
      (:func:`chan_merge`);
    * :meth:`complement` gives each group's "all other rows": the total minus
      the group.

    Parameters
    ----------
    count : (g,) array
        float64, so that it can be summed and divided without casts.
    mean : (g, ...) array
        e.g. ``(k, 3)`` for k clusters and three force components.
    m2 : (g, ...) array, same shape as ``mean``

    Empty groups have count 0, mean 0 and M2 0.
    """

    __slots__ = ("count", "mean", "m2")

    def __init__(self, count, mean, m2):
        self.count = np.asarray(count, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.m2 = np.asarray(m2, dtype=np.float64)
        if self.mean.shape != self.m2.shape or self.mean.shape[:1] != self.count.shape:
            raise ValueError(
                f"GroupMoments: count {self.count.shape}, mean {self.mean.shape} and m2 "
                f"{self.m2.shape} do not fit (expected (g,), (g, ...), (g, ...))"
            )

    # -- construction ---------------------------------------------------------
    @classmethod
    def zeros(cls, n_groups: int, value_shape=()) -> "GroupMoments":
        shape = (int(n_groups),) + tuple(value_shape)
        return cls(np.zeros(n_groups), np.zeros(shape), np.zeros(shape))

    @classmethod
    def from_values(cls, values, labels=None, n_groups: int | None = None) -> "GroupMoments":
        """Moments of ``values`` (n,) or (n, c) grouped by ``labels`` (n,) ints in
        [0, n_groups); all rows in one group when ``labels`` is None."""
        values = np.asarray(values, dtype=np.float64)
        n = values.shape[0]
        if labels is None:
            labels = np.zeros(n, dtype=np.intp)
            n_groups = 1
        labels = np.asarray(labels, dtype=np.intp)
        if n_groups is None:
            n_groups = int(labels.max()) + 1 if n else 0
        count = np.bincount(labels, minlength=n_groups).astype(np.float64)
        flat = values.reshape(n, -1)
        c = flat.shape[1]
        mean = np.empty((n_groups, c))
        m2 = np.empty((n_groups, c))
        safe = np.where(count > 0, count, 1.0)
        for j in range(c):
            mean[:, j] = np.bincount(labels, weights=flat[:, j], minlength=n_groups) / safe
            dev = flat[:, j] - mean[labels, j]
            m2[:, j] = np.bincount(labels, weights=dev * dev, minlength=n_groups)
        shape = (n_groups,) + values.shape[1:]
        return cls(count, mean.reshape(shape), m2.reshape(shape))

    # -- algebra --------------------------------------------------------------
    def _c(self):
        """count broadcast against mean."""
        return self.count.reshape(self.count.shape + (1,) * (self.mean.ndim - 1))

    def merge(self, other: "GroupMoments") -> "GroupMoments":
        """Moments of the union of the rows of ``self`` and ``other``, group by
        group (:func:`chan_merge`)."""
        mean, m2 = chan_merge(self._c(), self.mean, self.m2, other._c(), other.mean, other.m2)
        return GroupMoments(self.count + other.count, mean, m2)

    __add__ = merge

    def total(self) -> "GroupMoments":
        """One group holding every row (merged over groups, pairwise)."""
        parts = [GroupMoments(self.count[i : i + 1], self.mean[i : i + 1], self.m2[i : i + 1])
                 for i in range(len(self.count))]
        if not parts:
            return GroupMoments.zeros(1, self.mean.shape[1:])
        while len(parts) > 1:
            nxt = [parts[i].merge(parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
            if len(parts) % 2:
                nxt.append(parts[-1])
            parts = nxt
        return parts[0]

    def complement(self, total: "GroupMoments | None" = None) -> "GroupMoments":
        """For each group, the moments of all *other* rows: the total minus the
        group (Chan's formula solved for the second part).  ``total`` defaults
        to :meth:`total`; pass it when the groups do not cover every row."""
        if total is None:
            total = self.total()
        N = total.count[0]
        nj = self._c()
        nr = N - nj
        safe = np.where(nr > 0, nr, 1.0)
        mean_r = (N * total.mean[0] - nj * self.mean) / safe
        d = mean_r - self.mean
        m2_r = total.m2[0] - self.m2 - d * d * (nj * nr / N if N > 0 else 0.0)
        m2_r = np.where(nr > 1, np.maximum(m2_r, 0.0), 0.0)
        mean_r = np.where(nr > 0, mean_r, 0.0)
        return GroupMoments(N - self.count, mean_r, m2_r)

    # -- derived --------------------------------------------------------------
    def variance(self, ddof: int = 1) -> np.ndarray:
        """Variance of each group (NaN where count <= ddof)."""
        c = self._c()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > ddof, self.m2 / np.where(c > ddof, c - ddof, 1.0), np.nan)

    def std(self, ddof: int = 1) -> np.ndarray:
        return np.sqrt(self.variance(ddof))

    def select(self, index) -> "GroupMoments":
        """The moments of some value columns: ``mean[:, index]`` etc."""
        return GroupMoments(self.count, self.mean[:, index], self.m2[:, index])

    def __len__(self):
        return len(self.count)

    def __repr__(self):
        return f"GroupMoments(groups={len(self.count)}, values={self.mean.shape[1:]}, rows={self.count.sum():g})"
