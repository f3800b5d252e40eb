"""Reduced moments and the tests computed from them, against scipy on raw arrays."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from distatomenv.analysis.moments import GroupMoments
from distatomenv.analysis.statistics import (
    PermutationNull,
    benjamini_hochberg,
    cluster_tests,
    eta_squared,
    hedges_g,
    holm,
    significant_share,
    welch_ttest,
)


def _data(seed=0, n=5000, k=7):
    rng = np.random.default_rng(seed)
    labels = rng.integers(k - 1, size=n)
    labels[[10, 20]] = k - 1                      # a tiny cluster of exactly two rows
    # forces: cluster-dependent mean and spread, a large offset, heavy tails
    F = (1e3 + 0.3 * labels[:, None] + (1 + labels[:, None]) * rng.standard_t(3, size=(n, 3)))
    return F, labels, k


def _merged(F, labels, k, cuts):
    parts = np.split(np.arange(len(F)), cuts)
    m = None
    for idx in parts[::-1]:                       # any order
        part = GroupMoments.from_values(F[idx], labels[idx], k)
        m = part if m is None else part.merge(m)
    return m


def test_merged_moments_equal_direct():
    F, labels, k = _data()
    m = _merged(F, labels, k, [7, 1000, 1001, 3333])
    for j in range(k):
        rows = F[labels == j]
        assert m.count[j] == len(rows)
        np.testing.assert_allclose(m.mean[j], rows.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(m.m2[j], ((rows - rows.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-10)
    tot = m.total()
    np.testing.assert_allclose(tot.mean[0], F.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(tot.m2[0], F.var(axis=0) * len(F), rtol=1e-10)


def test_complement_is_the_rest():
    F, labels, k = _data(1)
    m = _merged(F, labels, k, [100, 2500])
    rest = m.complement()
    for j in range(k):
        r = F[labels != j]
        assert rest.count[j] == len(r)
        np.testing.assert_allclose(rest.mean[j], r.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(rest.variance()[j], r.var(axis=0, ddof=1), rtol=1e-9)


def test_welch_per_cluster_equals_scipy_ttest_ind_on_raw_forces():
    """The notebook's method: ttest_ind(cluster, rest, equal_var=False) per cluster."""
    F, labels, k = _data(2)
    m = _merged(F, labels, k, [999, 1000, 4000])
    res = cluster_tests(m)
    for j in range(k):
        for c in range(3):
            ref = stats.ttest_ind(F[labels == j, c], F[labels != j, c], equal_var=False)
            assert res["t"][j, c] == pytest.approx(ref.statistic, rel=1e-10)
            assert res["p"][j, c] == pytest.approx(ref.pvalue, rel=1e-10)
    # tiny p-values too: a shifted cluster
    a = np.random.default_rng(3).normal(0, 1, 4000)
    lab = (np.arange(4000) < 300).astype(int)
    a[lab == 1] += 1.5
    res = cluster_tests(GroupMoments.from_values(a, lab, 2))
    ref = stats.ttest_ind(a[lab == 1], a[lab == 0], equal_var=False)
    assert ref.pvalue < 1e-50
    assert res["p"][1] == pytest.approx(ref.pvalue, rel=1e-10)


def test_welch_degenerate_cases_as_scipy():
    # one row on a side: NaN, not a crash
    t, df, p = welch_ttest(1, 0.0, np.nan, 10, 1.0, 1.0)
    assert np.isnan(t) and np.isnan(p)
    # both variances zero, different means: scipy gives inf/0, we too
    ref = stats.ttest_ind([1.0, 1.0], [2.0, 2.0, 2.0], equal_var=False)
    t, df, p = welch_ttest(2, 1.0, 0.0, 3, 2.0, 0.0)
    assert t == ref.statistic and p == ref.pvalue


def test_hedges_g_direct():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.4, 1.0, 37), rng.normal(0.0, 2.0, 91)
    n1, n2 = len(a), len(b)
    sp = np.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    ref = (a.mean() - b.mean()) / sp * (1 - 3 / (4 * (n1 + n2) - 9))
    got = hedges_g(n1, a.mean(), a.var(ddof=1), n2, b.mean(), b.var(ddof=1))
    assert got == pytest.approx(ref, rel=1e-12)


def test_holm_known_values_and_direct():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(5)
    for _ in range(20):
        q = rng.uniform(0, 0.2, size=rng.integers(1, 30))
        m = len(q)
        order = np.argsort(q)
        direct = np.empty(m)
        running = 0.0
        for rank, i in enumerate(order):             # textbook step-down
            running = max(running, min(1.0, (m - rank) * q[i]))
            direct[i] = running
        np.testing.assert_allclose(holm(q), direct, rtol=1e-14)
    # NaN (untestable clusters) stay NaN and are not in the family
    np.testing.assert_allclose(holm([0.01, np.nan, 0.02]), [0.02, np.nan, 0.02])


def test_benjamini_hochberg_equals_scipy():
    rng = np.random.default_rng(6)
    for _ in range(20):
        q = rng.uniform(0, 0.3, size=rng.integers(1, 40)) ** 2
        np.testing.assert_allclose(benjamini_hochberg(q), stats.false_discovery_control(q, method="bh"),
                                   rtol=1e-13)
    # known values: p = (0.01, 0.02, 0.03, 0.04, 0.05), m = 5 -> all 0.05
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]), [0.05] * 5)
    np.testing.assert_allclose(benjamini_hochberg([np.nan, 0.5]), [np.nan, 0.5])


def test_eta_squared_direct():
    F, labels, k = _data(7)
    m = _merged(F, labels, k, [50, 60])
    grand = F.mean(axis=0)
    ssb = sum((labels == j).sum() * (F[labels == j].mean(axis=0) - grand) ** 2 for j in range(k))
    sst = ((F - grand) ** 2).sum(axis=0)
    np.testing.assert_allclose(eta_squared(m), ssb / sst, rtol=1e-10)


def test_significant_share_counts_only_tested():
    assert significant_share([0.001, 0.5, np.nan, 0.002], 0.0027) == (2, 3, pytest.approx(2 / 3))


def test_permutation_null_is_an_exact_partition_and_at_chance():
    """Every round gives each cluster exactly its size (no row lost or
    doubled), and under the null the mean share is alpha."""
    rng = np.random.default_rng(8)
    F = rng.normal(size=(6000, 2))
    sizes = np.array([3000, 1500, 700, 500, 200, 60, 30, 10])
    null = PermutationNull(sizes, rounds=200, alpha=0.05, seed=1).start((2,), shift=F.mean(axis=0))
    for s in range(0, 6000, 777):
        null.add(F[s : s + 777])
    assert not null._remaining.any()
    np.testing.assert_allclose(null._s1.sum(axis=1), np.broadcast_to((F - F.mean(axis=0)).sum(axis=0),
                                                                     (200, 2)), atol=1e-8)
    null.finish()
    assert null.shares_.shape == (200, 2)
    assert abs(np.mean(null.shares_) - 0.05) < 0.015
    lo, hi, mean = null.band()
    assert (lo <= 0.05).all() and (hi >= 0.05).all()
    # too few rows added is an error, not a silent wrong band
    short = PermutationNull(sizes, rounds=2, alpha=0.05).start((2,))
    short.add(F[:100])
    with pytest.raises(ValueError, match="fewer rows"):
        short.finish()


def test_one_chan_merge_for_the_scaling_pass_and_the_analysis():
    """stats.moments.chan_merge is the merge of both accumulators: integer
    counts (the scaling pass) and float count arrays (GroupMoments) give the
    moments of the union; an empty part changes nothing."""
    from distatomenv.stats.moments import MomentAccumulator, chan_merge

    rng = np.random.default_rng(7)
    a, b = 1e3 + rng.standard_normal((700, 4)), 1e3 + 3 * rng.standard_normal((1300, 4))
    both = np.concatenate([a, b])
    m2 = lambda x: ((x - x.mean(axis=0)) ** 2).sum(axis=0)          # noqa: E731
    mean, s2 = chan_merge(len(a), a.mean(axis=0), m2(a), len(b), b.mean(axis=0), m2(b))
    np.testing.assert_allclose(mean, both.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(s2, m2(both), rtol=1e-10)
    acc = MomentAccumulator(4)
    for part in (a, b[:0], b):
        acc.add(part)
    assert acc.count == 2000 and np.array_equal(acc.mean, mean) and np.array_equal(acc.m2, s2)
    np.testing.assert_array_equal(acc.min, both.min(axis=0))
    np.testing.assert_allclose(acc.sigma, both.std(axis=0, ddof=1), rtol=1e-12)
    g = GroupMoments.from_values(a).merge(GroupMoments.from_values(b))
    np.testing.assert_allclose(g.mean[0], mean, rtol=1e-14)
    np.testing.assert_allclose(g.m2[0], s2, rtol=1e-10)
    # both parts empty: no division by zero, nothing changes
    z = GroupMoments.zeros(2, (4,)).merge(GroupMoments.zeros(2, (4,)))
    assert not np.any(z.count) and not np.any(z.mean) and not np.any(z.m2)
