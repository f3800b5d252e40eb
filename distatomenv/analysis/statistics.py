"""Tests and effect sizes from reduced moments (see :mod:`.moments`).

* :func:`welch_ttest` -- Welch's unequal-variance t-test from (n, mean, var):
  ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``, the same test
  as ``scipy.stats.ttest_ind(a, b, equal_var=False)`` on the raw values, with
  the Welch-Satterthwaite degrees of freedom beside it.
* :func:`cluster_tests` -- each cluster against all other rows (the rest is
  the total minus the cluster), as in n2p2's descriptor-analysis notebook,
  with Hedges' g and the corrected p-values.
* :func:`holm`, :func:`benjamini_hochberg` -- multiple-testing corrections.
* :func:`eta_squared` -- share of the force variance explained by the
  clusters: between-cluster SS / total SS.
* :class:`PermutationNull` -- the chance level of the significant share:
  cluster labels shuffled over all rows, streamed block by block.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from .moments import GroupMoments

__all__ = [
    "welch_ttest",
    "hedges_g",
    "holm",
    "benjamini_hochberg",
    "eta_squared",
    "cluster_tests",
    "significant_share",
    "PermutationNull",
]


def welch_ttest(n1, mean1, var1, n2, mean2, var2):
    """Welch's two-sided t-test from summary statistics (broadcasting arrays).

    Parameters
    ----------
    n1, n2 : sample sizes
    mean1, mean2 : sample means
    var1, var2 : sample variances with ddof=1

    Returns
    -------
    t, df, p : arrays; NaN where a side has fewer than 2 rows (as scipy).
        t and p are ``scipy.stats.ttest_ind_from_stats`` (equal_var=False);
        df, which it does not return, is the Welch-Satterthwaite df of the
        same test (1 where both variances are zero, as scipy takes it).
    """
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = np.asarray(n2, dtype=np.float64)
    var1 = np.asarray(var1, dtype=np.float64)
    var2 = np.asarray(var2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        t, p = stats.ttest_ind_from_stats(np.asarray(mean1), np.sqrt(var1), n1,
                                          np.asarray(mean2), np.sqrt(var2), n2, equal_var=False)
        vn1 = var1 / n1
        vn2 = var2 / n2
        df = (vn1 + vn2) ** 2 / (vn1 ** 2 / (n1 - 1) + vn2 ** 2 / (n2 - 1))
        df = np.where(np.isnan(df), 1.0, df)          # zero variances: as scipy
    bad = (n1 < 2) | (n2 < 2)
    t = np.where(bad, np.nan, t)
    p = np.where(bad | np.isnan(t), np.nan, p)
    df = np.where(bad, np.nan, df)
    return t, df, p


def hedges_g(n1, mean1, var1, n2, mean2, var2):
    """Hedges' g of sample 1 against sample 2: Cohen's d with the pooled sd,
    times the small-sample correction J = 1 - 3 / (4 (n1 + n2) - 9)."""
    n1 = np.asarray(n1, dtype=np.float64)
    n2 = np.asarray(n2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = np.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2))
        d = (np.asarray(mean1) - np.asarray(mean2)) / pooled
        j = 1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0)
        g = d * j
    return np.where((n1 < 2) | (n2 < 2), np.nan, g)


def _adjusted(p, adjust):
    """Apply ``adjust(sorted p-values, m)`` to the non-NaN entries of ``p`` (the
    family) and put the adjusted values back in place; NaN stays NaN."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    res = np.empty(m)
    res[order] = adjust(q[order], m)
    out[ok] = res
    return out


def holm(p):
    """Holm's step-down adjusted p-values (family-wise error).  NaN entries
    are left out of the family and stay NaN."""
    return _adjusted(p, lambda q, m: np.maximum.accumulate(
        np.minimum(1.0, (m - np.arange(m)) * q)))


def benjamini_hochberg(p):
    """Benjamini-Hochberg adjusted p-values (false discovery rate), as
    ``scipy.stats.false_discovery_control(p, method="bh")``.  NaN entries are
    left out of the family and stay NaN."""
    return _adjusted(p, lambda q, m: np.minimum(
        np.minimum.accumulate((q * m / np.arange(1, m + 1))[::-1])[::-1], 1.0))


def eta_squared(groups: GroupMoments, total: GroupMoments | None = None) -> np.ndarray:
    """Between-group sum of squares / total sum of squares, per value column
    (0 where the total has no variance).  ``groups`` must cover every row."""
    if total is None:
        total = groups.total()
    c = groups._c()
    ss_between = (c * (groups.mean - total.mean[0]) ** 2).sum(axis=0)
    ss_total = total.m2[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_total > 0, ss_between / np.where(ss_total > 0, ss_total, 1.0), 0.0)


def significant_share(p, alpha: float):
    """(number significant, number tested, share) of p-values below ``alpha``;
    NaN p-values (clusters too small to test) are not counted as tested."""
    p = np.asarray(p, dtype=np.float64)
    tested = int(np.count_nonzero(~np.isnan(p)))
    sig = int(np.count_nonzero(p < alpha))
    return sig, tested, (sig / tested if tested else float("nan"))


def cluster_tests(groups: GroupMoments, total: GroupMoments | None = None,
                  family=None) -> dict:
    """Each group's values against all other rows, column by column.

    Parameters
    ----------
    groups : GroupMoments with g groups and values (g,) or (g, c)
    total : moments of all rows (default: the merge of ``groups``)
    family : boolean (g,) mask of the groups that form the multiple-testing
        family (default all); others (HDBSCAN's noise) get NaN corrected p.

    Returns
    -------
    dict of arrays shaped like ``groups.mean``: ``size`` (g,), ``mean``,
    ``std`` (ddof 1), ``rest_mean``, ``rest_std``, ``t``, ``df``, ``p``,
    ``p_holm``, ``p_bh``, ``hedges_g``.
    """
    if total is None:
        total = groups.total()
    rest = groups.complement(total)
    c = groups._c()
    n1 = np.broadcast_to(c, groups.mean.shape)
    n2 = np.broadcast_to(rest._c(), groups.mean.shape)
    v1, v2 = groups.variance(), rest.variance()
    t, df, p = welch_ttest(n1, groups.mean, v1, n2, rest.mean, v2)
    g = hedges_g(n1, groups.mean, v1, n2, rest.mean, v2)
    fam = np.ones(len(groups), bool) if family is None else np.asarray(family, bool)
    p_holm = np.full(p.shape, np.nan)
    p_bh = np.full(p.shape, np.nan)
    pf = p.reshape(len(groups), -1)
    ph = p_holm.reshape(len(groups), -1)
    pb = p_bh.reshape(len(groups), -1)
    for j in range(pf.shape[1]):
        ph[fam, j] = holm(pf[fam, j])
        pb[fam, j] = benjamini_hochberg(pf[fam, j])
    return {
        "size": groups.count.copy(),
        "mean": groups.mean.copy(),
        "std": groups.std(),
        "rest_mean": rest.mean,
        "rest_std": rest.std(),
        "t": t,
        "df": df,
        "p": p,
        "p_holm": p_holm,
        "p_bh": p_bh,
        "hedges_g": g,
    }


class PermutationNull:
    """Chance level of the significant share: labels shuffled over all rows.

    A uniformly random permutation of the cluster labels over the N rows
    gives cluster j a uniformly random subset of n_j rows.  It is drawn block
    by block without ever holding the labels: for each block of m rows, the
    number of its rows that each cluster receives is a multivariate
    hypergeometric draw from the clusters' remaining sizes, and those labels
    are shuffled within the block.  The result is exactly a uniform random
    permutation, with memory ``rounds x k`` instead of N, and only the
    forces are read.

    Parameters
    ----------
    sizes : (g,) int
        Cluster sizes (the real labelling's, noise included as a group).
    rounds : int
        Number of shuffles.
    alpha : float
        Significance threshold of the raw p-values.
    counted : (g,) bool, optional
        Groups that count in the share (default all; HDBSCAN's noise is not).
    seed : int or numpy Generator

    Attributes (after :meth:`finish`)
    ----------------------------------
    shares_ : (rounds, c) significant share of each round and value column
    """

    def __init__(self, sizes, rounds: int = 100, alpha: float = 0.0027, counted=None, seed=0):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.rounds = int(rounds)
        self.alpha = float(alpha)
        self.counted = None if counted is None else np.asarray(counted, bool)
        self.seed = seed

    def start(self, value_shape=(), shift=None):
        """Begin streaming; ``shift`` (per column) is subtracted from the
        values before summing (use the overall mean: better conditioning)."""
        g = len(self.sizes)
        c = int(np.prod(value_shape)) if value_shape else 1
        self._c = c
        self._value_shape = tuple(value_shape)
        self._shift = np.zeros(c) if shift is None else np.asarray(shift, float).reshape(c)
        self._rng = np.random.default_rng(self.seed)
        self._remaining = np.tile(self.sizes, (self.rounds, 1))
        self._s1 = np.zeros((self.rounds, g, c))
        self._s2 = np.zeros((self.rounds, g, c))
        return self

    def add(self, values):
        """Add the next block of values (m,) or (m, c), in row order."""
        v = np.asarray(values, np.float64).reshape(len(values), -1) - self._shift
        m = v.shape[0]
        if m == 0:
            return
        g = len(self.sizes)
        v2 = v * v
        rng = self._rng
        ar = np.arange(g)
        for r in range(self.rounds):
            counts = rng.multivariate_hypergeometric(self._remaining[r], m)
            self._remaining[r] -= counts
            lab = np.repeat(ar, counts)
            rng.shuffle(lab)
            for j in range(self._c):
                self._s1[r, :, j] += np.bincount(lab, weights=v[:, j], minlength=g)
                self._s2[r, :, j] += np.bincount(lab, weights=v2[:, j], minlength=g)

    def finish(self):
        """Welch tests of every round's clusters; sets ``shares_``."""
        if np.any(self._remaining):
            raise ValueError("PermutationNull: fewer rows were added than the cluster sizes sum to")
        n = self.sizes.astype(np.float64)[None, :, None]
        N = n.sum(axis=1, keepdims=True)
        s1, s2 = self._s1, self._s2
        S1, S2 = s1.sum(axis=1, keepdims=True), s2.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean1 = s1 / n
            var1 = (s2 - s1 * mean1) / (n - 1)
            nr = N - n
            mean2 = (S1 - s1) / nr
            var2 = ((S2 - s2) - (S1 - s1) * mean2) / (nr - 1)
        var1 = np.maximum(var1, 0.0)
        var2 = np.maximum(var2, 0.0)
        _, _, p = welch_ttest(np.broadcast_to(n, s1.shape), mean1, var1,
                              np.broadcast_to(nr, s1.shape), mean2, var2)
        if self.counted is not None:
            p = p[:, self.counted, :]
        tested = np.count_nonzero(~np.isnan(p), axis=1)
        sig = np.count_nonzero(p < self.alpha, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.shares_ = np.where(tested > 0, sig / np.maximum(tested, 1), np.nan)
        return self

    def band(self, low: float = 2.5, high: float = 97.5):
        """(low, high, mean) of the shares over rounds, per value column."""
        s = self.shares_
        return (np.nanpercentile(s, low, axis=0), np.nanpercentile(s, high, axis=0),
                np.nanmean(s, axis=0))
