"""Per-group count, mean and M2 (sum of squared deviations), mergeable.

Every statistic of the analysis is computed from these reduced moments, so
that rows can be streamed chunk by chunk and partial results from threads or
Dask workers merged in any order:

* within a block, :meth:`GroupMoments.from_values` computes each group's mean
  and M2 exactly (two passes over the block, which is in memory);
* across blocks, :meth:`GroupMoments.merge` combines them with Chan et al.'s
  pairwise formula (Chan, Golub & LeVeque 1979)::

      n = na + nb,  d = mean_b - mean_a
      mean = mean_a + d * nb / n
      M2   = M2_a + M2_b + d**2 * na * nb / n

* the complement of each group ("all other rows") is the total minus the
  group, :meth:`GroupMoments.complement`, the same formula solved for the
  other part.

Shapes: ``count`` is ``(g,)`` (float64, so that it can be summed and divided
without casts), ``mean`` and ``m2`` are ``(g,) + value_shape``, e.g.
``(k, 3)`` for k clusters and three force components.  Units are those of the
values (forces: the input's force unit; M2: its square).
"""
from __future__ import annotations

import numpy as np

__all__ = ["GroupMoments"]


class GroupMoments:
    """Count, mean and M2 of the values of each of ``g`` groups.

    Parameters
    ----------
    count : (g,) array
    mean : (g, ...) array
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
        group (Chan's formula)."""
        na, nb = self._c(), other._c()
        n = na + nb
        safe = np.where(n > 0, n, 1.0)
        d = other.mean - self.mean
        mean = self.mean + d * (nb / safe)
        m2 = self.m2 + other.m2 + d * d * (na * nb / safe)
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
