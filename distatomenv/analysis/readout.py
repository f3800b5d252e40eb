"""The cross-validated force readout: how much of the force do the descriptors determine?

A neural network force is F_α = −Σ_c (∂E/∂G_c)(∂G_c/∂r_α): linear in the atom's
dG environment vector (its own SF derivatives and those of its neighbours,
the store's ``dGdx``/``dGdy``/``dGdz`` rows), with weights that depend on G.
So the honest measure of "do these descriptors encode the forces" is how much
of the force a model of that form recovers on structures it has not seen.

Tiers (per element)
-------------------
``linear``
    Ridge regression F_{i,α} ≈ w · X_i^{(α)}, X^{(α)} the dG row of component
    α, with **one weight vector shared by α = x, y, z** (pooled rows: the same
    linear map in every direction, as the network's).  The per-component
    variant (one w per α) is reported beside it (``components`` ["x"], ...).
``g_weighted``
    Features X^{(α)} ⊗ [1, G_own]: the network force linearised in ∂E/∂G
    around a G-dependent weight, pooled over α.  Computed when its number of
    features p·(1 + nSF_own) is at most ``g_weighted_max_features``;
    otherwise skipped with the reason in the report.
``reference_knn``
    k-nearest-neighbour regression (k = 30) on a sample of atoms, pooled
    over α, held out by the same folds: a nonlinear reference, not the
    headline (in many dimensions with few atoms it can fall far below the
    linear tier, which knows that a force is linear in dG).

No intercept: a constant force would break rotational equivariance.  Every
column is scaled by its root mean square over the training rows, so the
ridge penalty λ is relative: the solve is (XᵀX/n + λ·diag(s²)) w = Xᵀy/n,
which is scikit-learn's ``Ridge(alpha=λ·n, fit_intercept=False)`` on X/s.

Cross-validation
----------------
Structures, not atoms, are held out.  Each structure gets a *group* (one of
``folds`` × 4) from a fixed hash of its index and the seed (ranked, so the
groups are balanced), its fold is ``group mod folds``, and its *level* of the
learning curve (fractions 0.1, 0.3, 1.0, nested) from a second hash.
Everything is a function of the structure index: every backend and worker
count gives the same folds.

One streaming pass
------------------
Per block of rows, and per cell (group, level) and component, the pass
accumulates XᵀX, Xᵀy, yᵀy, Σy and the row count, and the same for a
shuffled-force null (forces permuted inside each store chunk by a fixed
hash).  Blocks are fixed by the store's chunks and merged in block order, so
the statistics, and every number derived from them, are bit-identical for any
number of threads or workers.  Memory: O(cells · p²), independent of the
number of rows.  On the client, per outer fold, λ is chosen on a log grid by
inner cross-validation over the other folds (one eigendecomposition per
training set serves every λ), the held-out SSE of each group comes from its
statistics (SSE = yᵀy − 2wᵀXᵀy + wᵀXᵀXw), and R² = 1 − ΣSSE / ΣSST with SST
about the mean force of all rows: exactly ``r2_score`` of the out-of-fold
predictions.  The 95 % interval resamples the groups of structures
(bootstrap); the learning curve refits with the structures of levels ≤ ℓ.
"""
from __future__ import annotations

import math

import numpy as np

from distatomenv.errors import AnalysisError

from .blocks import chunk_blocks, progress_bar, read_rows, store_elements

__all__ = ["Readout", "ReadoutStats", "TIERS", "DEFAULT_FOLDS", "LAMBDAS", "LEARNING_FRACTIONS",
           "structure_groups", "solve_readout", "COMPONENTS"]

TIERS = ("linear", "g_weighted", "reference_knn", "potential_linear", "potential_quadratic")
COMPONENTS = ("x", "y", "z")
DEFAULT_FOLDS = 5
#: Groups of structures per fold (resampled by the bootstrap interval).
GROUPS_PER_FOLD = 4
#: Relative ridge penalties tried (on RMS-scaled columns).
LAMBDAS = tuple(float(x) for x in np.logspace(-8, 2, 11))
#: Nested fractions of the structures of the learning curve.
LEARNING_FRACTIONS = (0.1, 0.3, 1.0)
#: The G-weighted tier's largest number of features (its statistics take
#: folds x 4 x features^2 x 8 bytes: 1536 -> 377 MB at 5 folds).
G_WEIGHTED_MAX_FEATURES = 1536
#: Largest structures x features of the per-structure energy features (float64).
ENERGY_FEATURE_BUDGET = 50_000_000
#: Atoms sampled for the k-NN reference, the parity plot and the map.
DEFAULT_SAMPLE = 5000
KNN_NEIGHBORS = 30
BOOTSTRAP_ROUNDS = 2000
#: Rows per block task (rounded to whole chunks; fixed by the data, never by
#: the number of workers, so that the merge order is too).
BLOCK_ROWS = 32768

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _hash(values, seed: int, salt: int) -> np.ndarray:
    """splitmix64 of (value, seed, salt): a fixed pseudo-random uint64 per value."""
    z = np.asarray(values, dtype=np.uint64) + np.uint64((seed * 1_000_003 + salt * 7919) % 2**63)
    with np.errstate(over="ignore"):
        z = z * _GOLDEN + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def structure_groups(n_structures: int, folds: int, seed: int = 0,
                     fractions=LEARNING_FRACTIONS) -> tuple[np.ndarray, np.ndarray, int]:
    """Group and learning-curve level of every structure.

    Returns ``group`` (S,) in [0, n_groups), ``level`` (S,) in
    [0, len(fractions)), and n_groups; the fold of a structure is
    ``group % folds``.  Ranked hashes: groups differ in size by at most one
    structure, and level ℓ holds the first ``fractions[ℓ]`` of a second
    hash order (nested).
    """
    s = np.arange(n_structures, dtype=np.uint64)
    n_groups = min(folds * GROUPS_PER_FOLD, n_structures)
    n_groups -= n_groups % folds if n_groups >= folds else 0
    rank = np.empty(n_structures, dtype=np.int64)
    rank[np.argsort(_hash(s, seed, 1), kind="stable")] = np.arange(n_structures)
    group = rank % n_groups
    rank2 = np.empty(n_structures, dtype=np.int64)
    rank2[np.argsort(_hash(s, seed, 2), kind="stable")] = np.arange(n_structures)
    u = (rank2 + 0.5) / n_structures
    level = np.minimum(np.searchsorted(np.asarray(fractions), u, side="right"), len(fractions) - 1)
    return group.astype(np.int64), level.astype(np.int64), int(n_groups)


def null_permutation(start: int, stop: int, chunk_rows: int, seed: int) -> np.ndarray:
    """Index (into rows [start, stop)) of the null's force for each row: a
    fixed permutation inside every store chunk."""
    idx = np.arange(start, stop)
    out = np.empty(stop - start, dtype=np.int64)
    for c0 in range(start, stop, chunk_rows):
        c1 = min(c0 + chunk_rows, stop)
        order = np.argsort(_hash(idx[c0 - start:c1 - start], seed, 3), kind="stable")
        out[c0 - start:c1 - start] = c0 - start + order
    return out


# ----------------------------------------------------------------------------
# Sufficient statistics
# ----------------------------------------------------------------------------
class ReadoutStats:
    """Mergeable per-cell statistics of one tier.

    Cells are (group, level).  Arrays (``k`` = statistics sets: 3 components
    for the linear tier, 1 pooled set for the G-weighted tier):
    ``A`` (k, cells, p, p) XᵀX; ``b``/``bn`` (k, cells, p) Xᵀy of the forces
    and of the null; ``yy``/``yyn``/``sy``/``syn``/``n`` (k, cells).
    """

    NAMES = ("A", "b", "bn", "yy", "yyn", "sy", "syn", "n")

    def __init__(self, n_sets: int, n_cells: int, p: int):
        self.p = p
        self.A = np.zeros((n_sets, n_cells, p, p))
        self.b = np.zeros((n_sets, n_cells, p))
        self.bn = np.zeros((n_sets, n_cells, p))
        for name in ("yy", "yyn", "sy", "syn", "n"):
            setattr(self, name, np.zeros((n_sets, n_cells)))

    def add(self, k: int, X: np.ndarray, y: np.ndarray, yn: np.ndarray, cell: np.ndarray) -> None:
        """Add rows X (m, p) with forces y (m,), null forces yn (m,) and cells (m,) to set k."""
        order = np.argsort(cell, kind="stable")
        cs = cell[order]
        bounds = np.flatnonzero(np.diff(cs)) + 1
        starts = np.concatenate([[0], bounds])
        stops = np.concatenate([bounds, [len(cs)]])
        X, y, yn = X[order], y[order], yn[order]
        for a, z in zip(starts, stops):
            if z <= a:
                continue
            c = cs[a]
            Xs, ys, yns = X[a:z], y[a:z], yn[a:z]
            self.A[k, c] += Xs.T @ Xs
            self.b[k, c] += Xs.T @ ys
            self.bn[k, c] += Xs.T @ yns
            self.yy[k, c] += ys @ ys
            self.yyn[k, c] += yns @ yns
            self.sy[k, c] += ys.sum()
            self.syn[k, c] += yns.sum()
            self.n[k, c] += z - a

    def merge(self, other: "ReadoutStats") -> "ReadoutStats":
        for name in self.NAMES:
            getattr(self, name).__iadd__(getattr(other, name))
        return self

    def pooled(self) -> "ReadoutStats":
        """One set: the sum over the sets (x, y and z rows pooled)."""
        out = ReadoutStats.__new__(ReadoutStats)
        out.p = self.p
        for name in self.NAMES:
            setattr(out, name, getattr(self, name).sum(axis=0, keepdims=True))
        return out

    def columns(self, idx) -> "ReadoutStats":
        """The statistics of the features ``idx`` only."""
        idx = np.asarray(idx)
        out = ReadoutStats.__new__(ReadoutStats)
        out.p = len(idx)
        out.A = self.A[:, :, idx[:, None], idx[None, :]]
        out.b, out.bn = self.b[:, :, idx], self.bn[:, :, idx]
        for name in ("yy", "yyn", "sy", "syn", "n"):
            setattr(out, name, getattr(self, name))
        return out

    @staticmethod
    def total(parts) -> "ReadoutStats":
        """The sum of several statistics of the same shape (e.g. over elements)."""
        out = ReadoutStats.__new__(ReadoutStats)
        out.p = parts[0].p
        for name in ReadoutStats.NAMES:
            setattr(out, name, sum(getattr(x, name) for x in parts))
        return out

    def select(self, k: int) -> "ReadoutStats":
        out = ReadoutStats.__new__(ReadoutStats)
        out.p = self.p
        for name in self.NAMES:
            setattr(out, name, getattr(self, name)[k:k + 1])
        return out

    def collapse_levels(self, n_levels: int) -> "ReadoutStats":
        """Cells (group, level) summed over the levels -> cells = groups."""
        out = ReadoutStats.__new__(ReadoutStats)
        out.p = self.p
        for name in self.NAMES:
            a = getattr(self, name)
            shape = a.shape
            setattr(out, name, a.reshape(shape[0], shape[1] // n_levels, n_levels, *shape[2:]).sum(axis=2))
        return out


# ----------------------------------------------------------------------------
# Solving from the statistics
# ----------------------------------------------------------------------------
class _TrainingSet:
    """Ridge solutions of one training Gram for every λ (one eigendecomposition)."""

    def __init__(self, A, n):
        self.n = float(n)
        d = np.diag(A) / max(self.n, 1.0)
        s = np.sqrt(np.where(d > 0, d, 1.0))
        self.s = s
        M = A / max(self.n, 1.0) / np.outer(s, s)
        self.evals, self.evecs = np.linalg.eigh(M)
        self.evals = np.clip(self.evals, 0.0, None)

    def weights(self, b, lam):
        """w for right-hand side b (Xᵀy of the training rows) and relative λ."""
        c = self.evecs.T @ (b / max(self.n, 1.0) / self.s)
        return (self.evecs @ (c / (self.evals + lam))) / self.s


def _sse(A, b, yy, w):
    return float(yy - 2.0 * (w @ b) + w @ (A @ w))


def group_sst(yy, sy, n):
    """Per group Σ(y − ȳ)² about the mean ȳ of all rows, from the groups' Σy², Σy, counts."""
    ybar = sy.sum() / n.sum()
    return yy - 2 * ybar * sy + n * ybar ** 2


def bootstrap_interval(sse, sst, key, rounds=BOOTSTRAP_ROUNDS):
    """95 % interval of R² = 1 − ΣSSE/ΣSST when the groups are resampled;
    ``key`` seeds the draws (so every number is reproducible)."""
    n = len(sse)
    draws = np.random.default_rng(key).integers(n, size=(rounds, n))
    den = sst[draws].sum(axis=1)
    boot = 1.0 - sse[draws].sum(axis=1)[den > 0] / den[den > 0]
    return tuple(np.percentile(boot, [2.5, 97.5])) if len(boot) else (np.nan, np.nan)


def solve_readout(stats: ReadoutStats, n_groups: int, n_levels: int, folds: int,
                  lambdas=LAMBDAS, bootstrap=BOOTSTRAP_ROUNDS, seed=0, learning=True) -> dict:
    """Cross-validated R² of one statistics set (stats.A has one set).

    Cells are (group, level), group-major; the fold of group g is g % folds.
    Returns a dict: r2, r2_low, r2_high, r2_null, rmse, force_std, lambda
    (chosen by the K-fold CV over all structures: the λ of a final model),
    lambda_folds (the nested choice of each outer fold), learning_curve,
    weights_folds, n_rows.
    """
    A = stats.A[0].reshape(n_groups, n_levels, stats.p, stats.p)
    b = stats.b[0].reshape(n_groups, n_levels, stats.p)
    bn = stats.bn[0].reshape(n_groups, n_levels, stats.p)
    sc = {name: getattr(stats, name)[0].reshape(n_groups, n_levels) for name in ("yy", "yyn", "sy", "syn", "n")}
    g_fold = np.arange(n_groups) % folds
    # test statistics per group: all levels
    At, bt, bnt = A.sum(axis=1), b.sum(axis=1), bn.sum(axis=1)
    t = {name: v.sum(axis=1) for name, v in sc.items()}
    n_all = t["n"].sum()
    if n_all < 2:
        raise AnalysisError("the readout needs at least 2 rows")
    sst = group_sst(t["yy"], t["sy"], t["n"])
    sstn = group_sst(t["yyn"], t["syn"], t["n"])
    lambdas = list(lambdas)

    def train(folds_out, max_level):
        keep = ~np.isin(g_fold, folds_out)
        return (A[keep, :max_level + 1].sum(axis=(0, 1)), b[keep, :max_level + 1].sum(axis=(0, 1)),
                bn[keep, :max_level + 1].sum(axis=(0, 1)), sc["n"][keep, :max_level + 1].sum())

    def group_sse(ts, bb, lam, groups, null=False):
        w = ts.weights(bb, lam)
        return w, [_sse(At[g], (bnt if null else bt)[g], (t["yyn"] if null else t["yy"])[g], w)
                   for g in groups]

    def choose_lambda(outer, max_level):
        """λ minimising the inner-CV SSE over the folds other than ``outer``
        (outer None: plain K-fold CV over all folds)."""
        inner = [k for k in range(folds) if k != outer]
        total = np.zeros(len(lambdas))
        for k in inner:
            out = [k] if outer is None else [k, outer]
            Atr, btr, _, ntr = train(out, max_level)
            if ntr == 0:
                continue
            ts = _TrainingSet(Atr, ntr)
            gs = np.flatnonzero(g_fold == k)
            for i, lam in enumerate(lambdas):
                total[i] += sum(group_sse(ts, btr, lam, gs)[1])
        return lambdas[int(np.argmin(total))]

    def evaluate(max_level):
        sse = np.full(n_groups, np.nan)
        ssen = np.full(n_groups, np.nan)
        lam_folds, w_folds = [], []
        for k in range(folds):
            Atr, btr, bntr, ntr = train([k], max_level)
            if ntr == 0:
                return None
            lam = choose_lambda(k, max_level)
            ts = _TrainingSet(Atr, ntr)
            gs = np.flatnonzero(g_fold == k)
            w, e = group_sse(ts, btr, lam, gs)
            wn, en = group_sse(ts, bntr, lam, gs, null=True)
            sse[gs], ssen[gs] = e, en
            lam_folds.append(lam)
            w_folds.append(w)
            wn_folds.append(wn)
        return sse, ssen, lam_folds, w_folds

    top = n_levels - 1
    wn_folds = []
    res = evaluate(top)
    sse, ssen, lam_folds, w_folds = res
    null_folds = list(wn_folds)
    r2 = 1.0 - sse.sum() / sst.sum()
    r2n = 1.0 - ssen.sum() / sstn.sum()
    lo, hi = bootstrap_interval(sse, sst, [seed, 17], bootstrap)
    curve = []
    if learning:
        for lev in range(n_levels):
            if lev == top:
                curve.append({"fraction": LEARNING_FRACTIONS[lev], "r2": float(r2)})
                continue
            r = evaluate(lev)
            curve.append({"fraction": LEARNING_FRACTIONS[lev],
                          "r2": None if r is None else float(1.0 - r[0].sum() / sst.sum())})
    return {
        "r2": float(r2), "r2_low": float(lo), "r2_high": float(hi), "r2_null": float(r2n),
        "rmse": math.sqrt(max(sse.sum(), 0.0) / n_all), "force_std": math.sqrt(sst.sum() / n_all),
        "lambda": choose_lambda(None, top), "lambda_folds": lam_folds, "learning_curve": curve,
        "weights_folds": w_folds, "null_weights_folds": null_folds, "n_rows": int(n_all),
        "sse_groups": sse, "sst_groups": sst,
    }


# ----------------------------------------------------------------------------
# The pass over the store
# ----------------------------------------------------------------------------
def _g_weighted(X, Gown):
    """Features X ⊗ [1, G_own]: (m, p·(1 + q))."""
    m, p = X.shape
    return np.concatenate([X, (X[:, None, :] * Gown[:, :, None]).reshape(m, -1)], axis=1)


def _potential_part(path, element, start, stop, potential, cell, F, Fn, s_idx, n_cells, own,
                    offsets):
    """Statistics of the force-matching features (pooled over x, y, z) and
    the block's partial per-structure energy features (Σ_j G_j, Σ_j G_j,s G_j,t
    of this element's atoms, in their columns)."""
    names = [("fm", "d")] + ([("fmq", "d")] if potential == "quadratic" else [])
    X = [np.concatenate([read_rows(path, element, f"{pre}_{d}{c}", start, stop).astype(np.float64, copy=False)
                         for pre, d in names], axis=1) for c in COMPONENTS]
    st = ReadoutStats(1, n_cells, X[0].shape[1])
    bad = int(sum(np.count_nonzero(~np.isfinite(x)) for x in X))
    if bad:
        return None, None, bad
    for k in range(3):
        st.add(0, X[k], F[:, k], Fn[:, k], cell)
    G = read_rows(path, element, "G", start, stop)[:, :own].astype(np.float64, copy=False)
    d0, q0, n_feat = offsets
    feats = np.zeros((stop - start, n_feat))
    feats[:, d0:d0 + own] = G
    if potential == "quadratic":
        iu = np.triu_indices(own)
        feats[:, q0:q0 + len(iu[0])] = G[:, iu[0]] * G[:, iu[1]]
    us, inv = np.unique(s_idx, return_inverse=True)
    phi = np.zeros((len(us), n_feat))
    np.add.at(phi, inv, feats)
    return st, (us, phi), 0


def _readout_task(block, *, path, element, chunk_rows, group, level, n_levels, n_cells, own,
                  g_weighted, seed, sample_threshold, potential=None, offsets=None,
                  single_thread=False):
    if single_thread:                       # a Dask worker: one BLAS thread per task
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return _readout_task(block, path=path, element=element, chunk_rows=chunk_rows,
                                 group=group, level=level, n_levels=n_levels, n_cells=n_cells,
                                 own=own, g_weighted=g_weighted, seed=seed,
                                 sample_threshold=sample_threshold, potential=potential,
                                 offsets=offsets)
    start, stop = block
    F = read_rows(path, element, "forces", start, stop)
    s_idx = read_rows(path, element, "structure", start, stop).astype(np.int64)
    cell = group[s_idx] * n_levels + level[s_idx]
    perm = null_permutation(start, stop, chunk_rows, seed)
    Fn = F[perm]
    dG = [read_rows(path, element, f"dGd{c}", start, stop).astype(np.float64, copy=False)
          for c in COMPONENTS]
    p = dG[0].shape[1]
    finite = np.isfinite(F).all(axis=1) & np.logical_and.reduce([np.isfinite(d).all(axis=1) for d in dG])
    bad = (int(np.count_nonzero(~np.isfinite(F))), int(sum(np.count_nonzero(~np.isfinite(d)) for d in dG)))
    if any(bad):
        first = int(np.flatnonzero(~finite)[0])
        bad = bad + (start + first, int(s_idx[first]))                      # the client names them; no statistics of NaN rows
        return start, None, None, None, bad
    lin = ReadoutStats(3, n_cells, p)
    for k in range(3):
        lin.add(k, dG[k], F[:, k], Fn[:, k], cell)
    gw = None
    if g_weighted:
        Gown = read_rows(path, element, "G", start, stop)[:, :own].astype(np.float64, copy=False)
        gw = ReadoutStats(1, n_cells // n_levels, p * (1 + own))
        gcell = group[s_idx]
        for a in range(0, stop - start, 2048):        # bounded feature blocks
            z = min(a + 2048, stop - start)
            for k in range(3):
                gw.add(0, _g_weighted(dG[k][a:z], Gown[a:z]), F[a:z, k], Fn[a:z, k], gcell[a:z])
    pot = None
    if potential:
        pst, phi, nbad = _potential_part(path, element, start, stop, potential, cell, F, Fn, s_idx,
                                         n_cells, own, offsets)
        if nbad:
            return start, None, None, None, (0, nbad, start, int(s_idx[0]))
        pot = (pst, phi)
    take = np.flatnonzero(_hash(np.arange(start, stop), seed, 4) < np.uint64(sample_threshold))
    sample = {"row": start + take, "structure": s_idx[take], "forces": F[take],
              "X": np.stack([d[take] for d in dG], axis=1), "pot": pot}
    if len(take):
        sample["atom"] = read_rows(path, element, "atom", start, stop)[take].astype(np.int64)
    else:
        sample["atom"] = np.zeros(0, np.int64)
    return start, lin, gw, sample, bad


class Readout:
    """The cross-validated force readout of a store (see the module doc).

    Parameters
    ----------
    elements : list of str or None
        Elements (default: all of the store).
    folds : int or None
        K of the K-fold cross-validation grouped by structure (default None:
        5, or the number of structures when there are fewer; an explicit K
        larger than the structures is an error).
    tiers : sequence of str or None
        Of :data:`TIERS` (default: all).
    seed : int
        Seed of the fold hash, the null permutation, the sample and the bootstrap.
    sample : int
        Atoms per element sampled for the k-NN reference and the parity plot.
    g_weighted_max_features : int
        The G-weighted tier is skipped beyond this many features.
    lambdas : sequence of float
        Relative ridge penalties tried.
    progress : bool

    Attributes (after :meth:`fit`)
    ------------------------------
    results_ : list of dict
        One entry per (element, tier, components): the ``readout`` of report.json.
    samples_ : dict element -> dict of arrays (row, structure, atom, forces,
        predicted, residual; (m,) or (m, 3)), held-out predictions of the pooled
        linear tier on the sampled atoms.
    force_moments_ : dict element -> {component: {mean, std}} of the forces
    weights_ : dict element -> (p,) pooled linear weights at the chosen λ fitted on all
        structures (the readout's final model, in the store's dG units).
    folds_ : int, the folds used
    stats_ : dict element -> {"linear": pooled ReadoutStats, "n_groups", "n_levels",
        "folds", "result": the pooled linear tier's solve (with per-group SSE/SST)}:
        what the design advice (:mod:`.advice`) works from
    timings_ : dict phase -> seconds
    """

    def __init__(self, elements=None, folds=None, tiers=None, seed=0, sample=DEFAULT_SAMPLE,
                 g_weighted_max_features=G_WEIGHTED_MAX_FEATURES, lambdas=LAMBDAS, progress=False):
        self.elements = elements
        self.folds = folds
        self.tiers = tiers
        self.seed = seed
        self.sample = sample
        self.g_weighted_max_features = g_weighted_max_features
        self.lambdas = lambdas
        self.progress = progress

    def _check(self, reader):
        def integer(name, v, lo):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise AnalysisError(f"{name} must be an integer >= {lo}, got {v!r}")
        if self.folds is not None:
            integer("folds", self.folds, 2)
        integer("readout sample", self.sample, 0)
        integer("g_weighted_max_features", self.g_weighted_max_features, 1)
        tiers = TIERS if self.tiers is None else ([self.tiers] if isinstance(self.tiers, str) else list(self.tiers))
        for t in tiers:
            if t not in TIERS:
                raise AnalysisError(f"unknown readout tier {t!r}; choose from {list(TIERS)}")
        if not tiers:
            raise AnalysisError(f"no readout tier given; choose from {list(TIERS)}")
        self._tiers = [t for t in TIERS if t in tiers]
        lay = reader.layout
        if not lay.derivatives:
            raise AnalysisError(
                f"{reader.path}: the force readout regresses the forces on the dG rows, but this "
                f"store has no derivatives (it was computed without them); compute it again with "
                f"derivatives, or turn the readout off (--no-readout)")
        S = lay.n_structures
        # default: 5 folds, or one structure per fold when there are fewer
        self.folds_ = self.folds if self.folds is not None else max(2, min(DEFAULT_FOLDS, S))
        if S < self.folds_:
            raise AnalysisError(
                f"{reader.path}: {S} structure(s) cannot be split into {self.folds_} folds grouped by "
                f"structure; give --folds {max(2, S)} or fewer (at least 2 structures are needed)"
                if S >= 2 else
                f"{reader.path}: {S} structure: the readout holds out whole structures and needs "
                f"at least 2")
        return store_elements(reader, self.elements)

    def _own_columns(self, reader, element):
        env = (reader.meta or {}).get("environment")
        if env and "nsf" in env:
            return int(env["nsf"][list(reader.elements).index(element)])
        return int(reader.layout.columns(element, "G"))

    def fit(self, reader, runner):
        """Run the pass on ``reader`` (a complete StoreReader) with ``runner``
        (entered by the caller; see :mod:`.blocks`).  Local block tasks run
        with one BLAS thread each, as Dask workers' do, so that the
        statistics are the same bits on every runner."""
        from threadpoolctl import threadpool_limits

        if runner.local:
            with threadpool_limits(limits=1):
                return self._fit(reader, runner)
        return self._fit(reader, runner)

    def _fit(self, reader, runner):
        import time

        t0 = time.perf_counter()
        elements = self._check(reader)
        lay = reader.layout
        group, level, n_groups = structure_groups(lay.n_structures, self.folds_, self.seed)
        n_levels = len(LEARNING_FRACTIONS)
        sgroup, slevel = runner.share(group), runner.share(level)
        self.results_, self.samples_, self.weights_, self.force_moments_ = [], {}, {}, {}
        self.stats_, self.potential_ = {}, {}
        self.timings_ = {"pass": 0.0, "solve": 0.0, "knn": 0.0}
        potential = self._potential_mode(reader)
        pot_st = {}
        phi = None
        if potential:
            n_feat = self._energy_offsets(reader, elements[0], potential)[2]
            energy = reader.structures("energy")
            if (lay.n_structures * n_feat <= ENERGY_FEATURE_BUDGET and np.isfinite(energy).all()
                    and np.any(energy != 0)):
                phi = np.zeros((lay.n_structures, n_feat))
        for e in elements:
            n = lay.n_rows[e]
            p = lay.columns(e, "dGdx")
            own = self._own_columns(reader, e)
            n_struct = int(np.count_nonzero(reader.structures("counts")[:, list(reader.elements).index(e)]))
            if n < 2 or not p:
                raise AnalysisError(f"{reader.path}: element {e} has {n} row(s) and {p} dG column(s); "
                                    f"the readout needs rows and derivative columns")
            pg = p * (1 + own)
            do_gw = "g_weighted" in self._tiers and pg <= self.g_weighted_max_features
            blocks = chunk_blocks(n, lay.chunk_rows, BLOCK_ROWS)
            threshold = min(2**64 - 1, int(2**64 * min(1.0, self.sample / n))) if self.sample else 0
            t1 = time.perf_counter()
            pending, nxt = {}, 0
            lin = gw = None
            parts = []
            bar = progress_bar(self.progress, n, f"readout {e}")
            for start, l_st, g_st, smp, bad in runner.map(
                    _readout_task, blocks, path=reader.path, element=e, chunk_rows=lay.chunk_rows,
                    group=sgroup, level=slevel, n_levels=n_levels, n_cells=n_groups * n_levels,
                    own=own, g_weighted=do_gw, seed=self.seed, sample_threshold=threshold,
                    potential=potential, offsets=self._energy_offsets(reader, e, potential),
                    single_thread=not runner.local):
                if any(bad):
                    raise AnalysisError(
                        f"{reader.path}: element {e}: {bad[0]} force value(s) and {bad[1]} dG value(s) "
                        f"are NaN or infinite, the first in row {bad[2]} (structure {bad[3]}, 0-based); the "
                        f"readout needs finite forces and derivatives (was the input without forces, "
                        f"or is the store damaged?)")
                pending[start] = (l_st, g_st, smp)
                if bar is not None:
                    bar.update(int(l_st.n[0].sum()))
                while nxt < len(blocks) and blocks[nxt][0] in pending:      # merge in block order
                    l_st, g_st, smp = pending.pop(blocks[nxt][0])
                    lin = l_st if lin is None else lin.merge(l_st)
                    if g_st is not None:
                        gw = g_st if gw is None else gw.merge(g_st)
                    pot = smp.pop("pot")
                    if pot is not None:
                        pot_st[e] = pot[0] if e not in pot_st else pot_st[e].merge(pot[0])
                        if phi is not None:
                            phi[pot[1][0]] += pot[1][1]
                    parts.append(smp)
                    nxt += 1
            if bar is not None:
                bar.close()
            self.timings_["pass"] += time.perf_counter() - t1
            t1 = time.perf_counter()
            nk = lin.n.sum(axis=1)
            mean = lin.sy.sum(axis=1) / nk
            var = (lin.yy.sum(axis=1) - nk * mean ** 2) / np.maximum(nk - 1, 1)
            self.force_moments_[e] = {c: {"mean": float(mean[k]), "std": float(np.sqrt(max(var[k], 0.0)))}
                                      for k, c in enumerate(COMPONENTS)}
            if not lin.yy.sum() > 0:
                raise AnalysisError(f"{reader.path}: element {e}: every force is zero; the store holds "
                                    f"no reference forces to read out")
            self._check_rows(reader, e, lin, n_groups, p)
            base = {"element": e, "n_structures": n_struct, "folds": int(self.folds_)}
            lin_pooled = lin.pooled()
            pooled = solve_readout(lin_pooled, n_groups, n_levels, self.folds_, self.lambdas,
                                   seed=self.seed)
            if not pooled["force_std"] > 0:
                raise AnalysisError(f"{reader.path}: element {e}: the forces do not vary; R² is "
                                    f"undefined")
            self.results_.append(self._entry(base, "linear", list(COMPONENTS), pooled, p))
            self.stats_[e] = {"linear": lin_pooled, "n_groups": n_groups, "n_levels": n_levels,
                              "folds": self.folds_, "result": pooled}
            for k, c in enumerate(COMPONENTS):
                r = solve_readout(lin.select(k), n_groups, n_levels, self.folds_, self.lambdas,
                                  seed=self.seed)
                self.results_.append(self._entry(base, "linear", [c], r, p))
            if "g_weighted" in self._tiers:
                if do_gw:
                    r = solve_readout(gw, n_groups, 1, self.folds_, self.lambdas, seed=self.seed,
                                      learning=False)
                    self.results_.append(self._entry(base, "g_weighted", list(COMPONENTS), r, pg))
                else:
                    self.results_.append(self._skipped(
                        base, "g_weighted", pg,
                        f"{pg} features (dG columns {p} x (1 + {own} own SFs)) exceed the budget of "
                        f"{self.g_weighted_max_features} (g_weighted_max_features)"))
            # final model and held-out predictions of the sample
            full = _TrainingSet(lin_pooled.A[0].sum(axis=0), lin_pooled.n[0].sum())
            self.weights_[e] = full.weights(lin_pooled.b[0].sum(axis=0), pooled["lambda"])
            smp = {k: np.concatenate([s[k] for s in parts]) for k in parts[0]}
            fold = group[smp["structure"]] % self.folds_
            W = np.stack(pooled["weights_folds"])          # (folds, p)
            pred = np.einsum("mcp,mp->mc", smp["X"], W[fold])
            self.samples_[e] = {"row": smp["row"], "structure": smp["structure"], "atom": smp["atom"],
                                "forces": smp["forces"], "predicted": pred,
                                "residual": smp["forces"] - pred, "X": smp["X"]}
            self.timings_["solve"] += time.perf_counter() - t1
            if "reference_knn" in self._tiers:
                t1 = time.perf_counter()
                self.results_.append(self._knn(base, smp, group, n_groups, p))
                self.timings_["knn"] += time.perf_counter() - t1
        if potential:
            t1 = time.perf_counter()
            self._potentials(reader, potential, pot_st, phi, group, n_groups, n_levels)
            self.timings_["potential"] = time.perf_counter() - t1
        self.timings_["total"] = time.perf_counter() - t0
        return self

    # -- potential tiers ----------------------------------------------------------
    def _potential_mode(self, reader):
        """"quadratic", "linear" or None: the largest potential tier to fit."""
        want = [t for t in self._tiers if t.startswith("potential_")]
        have = reader.layout.force_matching
        if not want or have == "none":
            if want and self.tiers is not None:
                raise AnalysisError(
                    f"{reader.path}: tiers {want} need the force-matching features, which this store "
                    f"does not hold; compute it with --force-matching "
                    f"{'quadratic' if 'potential_quadratic' in want else 'linear'}")
            return None
        if "potential_quadratic" in want and have != "quadratic":
            if self.tiers is not None:
                raise AnalysisError(
                    f"{reader.path}: tier potential_quadratic needs the quadratic force-matching "
                    f"features; this store holds the linear ones only (compute it with "
                    f"--force-matching quadratic)")
            return "linear"
        return "quadratic" if "potential_quadratic" in want else "linear"

    @staticmethod
    def _energy_offsets(reader, element, potential):
        """(linear column, quadratic column, features) of ``element``'s own
        SFs in the per-structure energy features."""
        if not potential:
            return None
        els = list(reader.elements)
        nsf = [reader.layout.n_sf[x] if reader.layout.n_sf else 0 for x in els]
        a = els.index(element)
        d0 = int(sum(nsf[:a]))
        n_lin = int(sum(nsf))
        tri = [n * (n + 1) // 2 for n in nsf]
        q0 = n_lin + int(sum(tri[:a]))
        return d0, q0, n_lin + (int(sum(tri)) if potential == "quadratic" else 0)

    def _potentials(self, reader, potential, pot_st, phi, group, n_groups, n_levels):
        """The potential tiers: one joint ridge over the rows of every element
        (an element's weights act on every neighbour's force); R² per element
        of the central atom and overall; energies of held-out structures."""
        lay = reader.layout
        tiers = [t for t in ("potential_linear", "potential_quadratic") if t in self._tiers]
        if potential == "linear":
            tiers = [t for t in tiers if t == "potential_linear"]
        els = list(pot_st)
        for tier in tiers:
            cols = np.arange(lay.n_fm) if tier == "potential_linear" else np.arange(lay.n_fm + lay.n_fmq)
            per = {e: pot_st[e].columns(cols) if len(cols) < pot_st[e].p else pot_st[e] for e in els}
            joint = ReadoutStats.total(list(per.values()))
            rows = int(joint.n.sum())
            g_fold = np.arange(n_groups) % self.folds_
            base = {"n_structures": int(lay.n_structures), "folds": int(self.folds_)}
            r = solve_readout(joint, n_groups, n_levels, self.folds_, self.lambdas, seed=self.seed,
                              learning=False)       # features can be many: no learning curve
            entry = self._entry({**base, "element": "all"}, tier, list(COMPONENTS), r, len(cols))
            entry.update(self._energy_r2(reader, phi, r, cols, group, n_groups, tier))
            out = [entry]
            for e in els:
                out.append(self._element_entry(base, e, tier, per[e], r, g_fold, n_groups, len(cols)))
            self.results_ += out
            full = _TrainingSet(joint.A[0].sum(axis=0), joint.n[0].sum())
            v = full.weights(joint.b[0].sum(axis=0), r["lambda"])
            self.potential_[tier] = {"force_weights": v, "lambda": r["lambda"], "n_features": len(cols),
                                     "rows": rows}

    def _element_entry(self, base, e, tier, st, r, g_fold, n_groups, p):
        """R² of element e's rows under the joint fit (the same fold weights)."""
        A = st.A[0].reshape(n_groups, -1, p, p).sum(axis=1)
        b = st.b[0].reshape(n_groups, -1, p).sum(axis=1)
        bn = st.bn[0].reshape(n_groups, -1, p).sum(axis=1)
        sc = {k: getattr(st, k)[0].reshape(n_groups, -1).sum(axis=1) for k in ("yy", "yyn", "sy", "syn", "n")}
        n_all = sc["n"].sum()
        sse, ssen = np.zeros(n_groups), np.zeros(n_groups)
        for g in range(n_groups):
            w, wn = r["weights_folds"][g_fold[g]], r["null_weights_folds"][g_fold[g]]
            sse[g] = _sse(A[g], b[g], sc["yy"][g], w)
            ssen[g] = _sse(A[g], bn[g], sc["yyn"][g], wn)
        sst = group_sst(sc["yy"], sc["sy"], sc["n"])
        sstn = group_sst(sc["yyn"], sc["syn"], sc["n"])
        lo, hi = bootstrap_interval(sse, sst, [self.seed, 37])
        return {**base, "element": e, "tier": tier, "components": list(COMPONENTS),
                "r2": float(1 - sse.sum() / sst.sum()), "r2_low": float(lo), "r2_high": float(hi),
                "r2_null": float(1 - ssen.sum() / sstn.sum()),
                "rmse": float(np.sqrt(max(sse.sum(), 0) / n_all)), "force_std": float(np.sqrt(sst.sum() / n_all)),
                "n_rows": int(n_all), "lambda": r["lambda"], "lambda_folds": r["lambda_folds"],
                "learning_curve": [], "n_features": int(p), "skipped": None}

    def _energy_r2(self, reader, phi, r, cols, group, n_groups, tier):
        """Held-out R² of structure energies predicted by the fitted potential
        (E = −v·Φ + a constant per element, fitted on the training structures),
        against the composition alone (a constant per element): the share of the
        energy variance beyond the per-element constants that the potential
        predicts (the usual R² when every structure has the same composition)."""
        if phi is None:
            return {"energy_r2": None, "energy_rmse": None,
                    "energy_note": "no energies in the data (or too many features x structures)"}
        E = reader.structures("energy")
        N = reader.structures("counts").astype(np.float64)
        X = phi[:, cols]
        fold = group % self.folds_
        pred = np.empty_like(E)
        base = np.empty_like(E)          # composition alone: a constant per element
        for k in range(self.folds_):
            tr, te = fold != k, fold == k
            v = r["weights_folds"][k]
            c, *_ = np.linalg.lstsq(N[tr], E[tr] + X[tr] @ v, rcond=None)
            pred[te] = -X[te] @ v + N[te] @ c
            c0, *_ = np.linalg.lstsq(N[tr], E[tr], rcond=None)
            base[te] = N[te] @ c0
        sse = float(((E - pred) ** 2).sum())
        sst = float(((E - base) ** 2).sum())
        return {"energy_r2": 1 - sse / sst if sst > 0 else None,
                "energy_rmse": float(np.sqrt(sse / len(E))),
                "energy_note": None if sst > 0 else "the energies are a function of the composition alone"}

    def _check_rows(self, reader, e, lin, n_groups, p):
        """Refuse folds whose training rows are fewer than the features."""
        g_fold = np.arange(n_groups) % self.folds_
        rows = lin.n.sum(axis=0).reshape(n_groups, -1).sum(axis=1)
        worst = None
        for k in range(self.folds_):
            ntr = int(rows[g_fold != k].sum())
            if worst is None or ntr < worst[1]:
                worst = (k, ntr)
        if worst[1] < p:
            raise AnalysisError(
                f"{reader.path}: element {e}: fold {worst[0]} trains on {worst[1]} rows (x, y, z "
                f"pooled) but the linear readout has {p} features; the fit would be "
                f"underdetermined: use fewer neighbours (--neighbors), more structures, or fewer "
                f"folds (--folds)")
        return worst[1]

    @staticmethod
    def _entry(base, tier, comps, r, p):
        return {**base, "tier": tier, "components": comps, "r2": r["r2"], "r2_low": r["r2_low"],
                "r2_high": r["r2_high"], "r2_null": r["r2_null"], "rmse": r["rmse"],
                "force_std": r["force_std"], "n_rows": r["n_rows"], "lambda": r["lambda"],
                "lambda_folds": r.get("lambda_folds"), "learning_curve": r["learning_curve"],
                "n_features": int(p), "skipped": None}

    @staticmethod
    def _skipped(base, tier, p, why):
        return {**base, "tier": tier, "components": list(COMPONENTS), "r2": None, "r2_low": None,
                "r2_high": None, "r2_null": None, "rmse": None, "force_std": None, "n_rows": None,
                "lambda": None, "lambda_folds": None, "learning_curve": [], "n_features": int(p),
                "skipped": why}

    def _knn(self, base, smp, group, n_groups, p):
        """k-NN regression on the sampled atoms, x, y, z pooled, held out by fold."""
        from sklearn.neighbors import KNeighborsRegressor

        X = smp["X"].reshape(-1, p)
        y = smp["forces"].reshape(-1)
        g = np.repeat(group[smp["structure"]], 3)
        fold = g % self.folds_
        m_atoms = len(smp["row"])
        if m_atoms < 2 * KNN_NEIGHBORS or len(np.unique(fold)) < self.folds_:
            return self._skipped(base, "reference_knn", p,
                                 f"the sample has {m_atoms} atoms, too few for {self.folds_}-fold "
                                 f"k-NN with k = {KNN_NEIGHBORS}")
        rng = np.random.default_rng([self.seed, 23])
        yn = y[rng.permutation(len(y))]
        pred, predn = np.empty_like(y), np.empty_like(y)
        for k in range(self.folds_):
            tr, te = fold != k, fold == k
            s = np.sqrt((X[tr] ** 2).mean(axis=0))
            s[s == 0] = 1.0
            nn = min(KNN_NEIGHBORS, int(tr.sum()))
            model = KNeighborsRegressor(n_neighbors=nn).fit(X[tr] / s, y[tr])
            pred[te] = model.predict(X[te] / s)
            predn[te] = KNeighborsRegressor(n_neighbors=nn).fit(X[tr] / s, yn[tr]).predict(X[te] / s)
        sse_g = np.bincount(g, (y - pred) ** 2, minlength=n_groups)
        sst_g = np.bincount(g, (y - y.mean()) ** 2, minlength=n_groups)
        r2 = 1.0 - sse_g.sum() / sst_g.sum()
        r2n = 1.0 - ((yn - predn) ** 2).sum() / ((yn - yn.mean()) ** 2).sum()
        lo, hi = bootstrap_interval(sse_g, sst_g, [self.seed, 29])
        return {**base, "tier": "reference_knn", "components": list(COMPONENTS), "r2": float(r2),
                "r2_low": float(lo), "r2_high": float(hi), "r2_null": float(r2n),
                "rmse": float(math.sqrt(sse_g.sum() / len(y))),
                "force_std": float(math.sqrt(sst_g.sum() / len(y))), "n_rows": int(len(y)),
                "lambda": None, "lambda_folds": None, "learning_curve": [], "n_features": int(p),
                "skipped": None, "k_neighbors": KNN_NEIGHBORS, "sample_atoms": int(m_atoms)}
