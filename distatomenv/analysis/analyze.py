"""``distatomenv analyze``: do the descriptors encode the forces?

n2p2's descriptor-analysis notebook at any scale.  For each element, force
component and descriptor (the derivative matching the component, or G with
the force magnitude |F|: in an isotropic system, by symmetry, G cannot predict
a Cartesian component), the rows are clustered in descriptor space for every
k of a sweep, and each cluster's forces are compared with all other forces
(Welch's t-test).  The
share of clusters whose forces differ significantly tells how much force
information the descriptors carry.

The store is never loaded whole.  Per (element, descriptor) the rows are read
in blocks of whole chunks, in passes:

A. **scan** (parallel): feature moments (for ``standardize``), force moments,
   a uniform random sample of rows, non-finite check;
B. **fit**: mini-batch k-means of every k and seed in one sequential pass
   (full k-means in memory on elements below ``FULL_KMEANS_ROWS`` rows; or
   dask-ml k-means||, or HDBSCAN on the sample);
C. **label** (parallel): nearest centre / ``approximate_predict`` of every
   row, per-cluster force moments (Chan-merged) and histograms; labels
   optionally written back to the store;
D. **permutation null** (parallel over rounds): labels shuffled over all rows,
   streamed from the forces alone (:class:`~.statistics.PermutationNull`).

Memory: a few blocks of rows (``block_rows`` x features) plus the sample plus
O(k) statistics per model -- independent of the number of rows.

Parallelism: threads of this process by default; ``workers=N`` starts a
local Dask cluster of N processes, ``scheduler=ADDRESS`` joins one.  Pass B
(mini-batch) is sequential by nature; its reads are prefetched.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (Interval, InvalidParameterError, StrOptions,
                                             validate_parameter_constraints)

from distatomenv.errors import AnalysisError, StoreIncompleteError
from distatomenv.store.fs import location
from distatomenv.store.reader import StoreReader, open_store

from .blocks import ThreadRunner, chunk_blocks, store_elements
from .blocks import progress_bar as _progress_bar
from .blocks import read_rows as _read
from .advice import DEFAULT_TOLERANCE, compare_stores, design_advice
from .readout import DEFAULT_SAMPLE, G_WEIGHTED_MAX_FEATURES, Readout

from .clustering import (DaskKMeansSweep, FeatureScaler, InMemoryKMeans, SampleHDBSCAN,
                         StreamingKMeans, nearest_center, nearest_center_distance)
from .moments import GroupMoments
from .statistics import PermutationNull, cluster_tests, eta_squared, significant_share

__all__ = ["Analyzer", "DEFAULT_CLUSTERS", "ALPHA_3SIGMA", "DESCRIPTORS", "COMPONENTS", "METHODS"]

#: n2p2's notebook sweep.
DEFAULT_CLUSTERS = (3, 5, 10, 20, 50, 100, 150, 200)
#: Two-sided p of 3 sigma, the notebook's threshold (2 * norm.sf(3)).
ALPHA_3SIGMA = 0.0026997960632601866
DESCRIPTORS = ("G", "dGdx", "dGdy", "dGdz")
COMPONENTS = ("x", "y", "z")
#: The force magnitude |F|: what G (rotation-invariant) is tested on.  By
#: symmetry E[F_x | G] = 0 in an isotropic system, so a Cartesian component
#: cannot tell good G from bad.
NORM = "norm"
#: Force columns a Job can test: x, y, z and |F|.
FORCE_COLUMNS = COMPONENTS + (NORM,)
METHODS = ("minibatch", "kmeans", "hdbscan")
#: Mini-batch k-means steps at least (epochs=None).
MIN_STEPS = 100
#: ``method="minibatch"`` fits full k-means (scikit-learn ``KMeans``, Lloyd
#: to convergence) on elements with fewer rows than this, when their rows
#: fit in FULL_KMEANS_VALUES numbers (float64; 25 M = 200 MB).
FULL_KMEANS_ROWS = 20_000
FULL_KMEANS_VALUES = 25_000_000
#: Lloyd iterations at most of that full k-means (it stops when no row
#: changes cluster; ``fits`` reports ``n_iter`` and ``converged`` per k).
FULL_KMEANS_MAX_ITER = 300
#: HDBSCAN min_cluster_size when none is given (n2p2's notebook).
DEFAULT_MIN_CLUSTER_SIZE = 50
#: Histogram bins of the force plots.
N_BINS = 60


@dataclass
class Job:
    """One clustering: the rows of ``element`` in the space of ``descriptor``,
    tested on the force ``components``."""

    element: str
    descriptor: str
    components: list = field(default_factory=list)

    @property
    def comp_index(self):
        """Indices into :data:`FORCE_COLUMNS` (3: |F|), see :func:`_force_columns`."""
        return [FORCE_COLUMNS.index(c) for c in self.components]


def _force_columns(F, comps):
    """Columns ``comps`` (indices into x, y, z, |F|) of the (m, 3) forces ``F``."""
    F = np.asarray(F)
    if all(c < 3 for c in comps):
        return F[:, comps]
    F64 = F.astype(np.float64, copy=False)
    full = np.column_stack([F64, np.sqrt(np.einsum("ij,ij->i", F64, F64))])
    return full[:, comps]


# ----------------------------------------------------------------------------
# Block tasks (module-level so that Dask can pickle them)
# ----------------------------------------------------------------------------
def _scan_task(block, *, path, element, descriptor, sample_rows):
    start, stop = block
    X = _read(path, element, descriptor, start, stop).astype(np.float64, copy=False)
    F = _read(path, element, "forces", start, stop)
    lo, hi = np.searchsorted(sample_rows, [start, stop])
    take = sample_rows[lo:hi] - start
    return {
        "x": GroupMoments.from_values(X),
        "f": GroupMoments.from_values(F),
        "bad_x": int(np.count_nonzero(~np.isfinite(X))),
        "bad_f": int(np.count_nonzero(~np.isfinite(F))),
        "sample_rows": sample_rows[lo:hi],
        "sample_x": X[take],
        "sample_f": F[take],
    }


def _label_task(block, *, path, element, descriptor, comps, scaler, models, edges, write,
                single_thread=False):
    """models: list of (key, kind, payload, n_groups): kind "centers" (payload
    (k, p) array) or "hdbscan" (payload SampleHDBSCAN; noise -> last group)."""
    if single_thread:                       # a Dask worker: one BLAS thread per task
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return _label_task(block, path=path, element=element, descriptor=descriptor,
                               comps=comps, scaler=scaler, models=models, edges=edges, write=write)
    start, stop = block
    X = scaler.transform(_read(path, element, descriptor, start, stop))
    F = _force_columns(_read(path, element, "forces", start, stop), comps)
    nb = edges.shape[1] - 1
    bins = np.empty(F.shape, dtype=np.intp)
    for j in range(F.shape[1]):
        bins[:, j] = np.clip(np.searchsorted(edges[j], F[:, j], side="right") - 1, 0, nb - 1)
    out = {}
    for key, kind, payload, n_groups in models:
        wss = None
        if kind == "centers":
            labels, d2 = nearest_center_distance(X, payload)
            groups = labels
            # within-cluster sum of squares (its sum over clusters: the inertia)
            wss = (start, np.bincount(labels, weights=d2, minlength=n_groups))
        else:
            labels = payload.predict(X)
            groups = np.where(labels < 0, n_groups - 1, labels)
        mom = GroupMoments.from_values(F, groups, n_groups)
        hist = np.empty((n_groups, F.shape[1], nb), dtype=np.int64)
        for j in range(F.shape[1]):
            hist[:, j, :] = np.bincount(groups * nb + bins[:, j], minlength=n_groups * nb).reshape(n_groups, nb)
        out[key] = (mom, hist, wss)
        if write is not None:
            from distatomenv.store.labels import write_label_rows

            run, name_of = write
            write_label_rows(path, run, element, descriptor, name_of[key], start, labels)
    return out


def _null_task(seed, *, path, element, comps, blocks, sizes, rounds, alpha, counted, shift):
    nulls = {key: PermutationNull(sizes[key], rounds=rounds, alpha=alpha, counted=counted[key],
                                  seed=np.random.default_rng(seed).integers(2**63)).start(
                                      (len(comps),), shift)
             for key in sizes}
    for start, stop in blocks:
        F = _force_columns(_read(path, element, "forces", start, stop), comps)
        for null in nulls.values():
            null.add(F)
    return {key: null.finish().shares_ for key, null in nulls.items()}


def _force_edges(forces):
    """Histogram edges (components, N_BINS + 1) of the force columns ``forces``
    (the sample's): the 0.1-99.9 % range, padded by 2 %."""
    edges = np.empty((forces.shape[1], N_BINS + 1))
    for j in range(forces.shape[1]):
        lo, hi = np.quantile(forces[:, j], [0.001, 0.999])
        if not hi > lo:
            lo, hi = lo - 1.0, hi + 1.0
        pad = 0.02 * (hi - lo)
        edges[j] = np.linspace(lo - pad, hi + pad, N_BINS + 1)
    return edges


@dataclass
class _JobContext:
    """What the passes over the rows of one Job share."""

    reader: StoreReader
    job: Job
    seed_offset: int
    n: int
    blocks: list
    runner: object

    @property
    def path(self):
        return self.reader.path

    @property
    def element(self) -> str:
        return self.job.element

    @property
    def descriptor(self) -> str:
        return self.job.descriptor

    @property
    def key(self) -> tuple:
        """(element, descriptor): the key of ``fits_`` and ``maps_``."""
        return (self.job.element, self.job.descriptor)

    @property
    def label(self) -> str:
        return f"{self.job.element} {self.job.descriptor}"


@dataclass
class _Sample:
    """The random sample of a Job's rows, from the scan."""

    size: int
    n_features: int
    features: np.ndarray        # (size, n_features), standardized when asked
    forces: np.ndarray          # (size, 3)
    scaler: FeatureScaler


# ----------------------------------------------------------------------------
# Parameter validation
# ----------------------------------------------------------------------------
class _Count(Interval):
    """Integers from ``left`` on; a bool is not a count."""

    def __init__(self, left):
        super().__init__(Integral, left, None, closed="left")

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


#: The message of an invalid parameter, where it says more than the constraint.
_MESSAGES = {
    "method": "unknown method {value!r}; choose one of " + str(list(METHODS)),
    "component": "unknown force component {value!r}; choose x, y, z, all or norm",
    "descriptor": "unknown descriptor {value!r}; choose one of " + str(list(DESCRIPTORS)),
    "clusters": "each number of clusters must be an integer >= 2, got {value!r}",
    "alpha": "alpha must be a number strictly between 0 and 1, got {value!r}",
}


def _invalid_message(name, value, exc) -> str:
    """The AnalysisError message of parameter ``name`` = ``value`` that fails
    its constraints (``exc``: scikit-learn's InvalidParameterError)."""
    if name in _MESSAGES:
        return _MESSAGES[name].format(value=value)
    counts = [c for c in Analyzer._parameter_constraints[name] if isinstance(c, _Count)]
    if counts:
        return f"{name} must be an integer >= {counts[0].left}, got {value!r}"
    return str(exc)


# ----------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------
class Analyzer(BaseEstimator):
    """Cluster descriptor rows and test the forces of each cluster.

    A scikit-learn estimator: ``get_params``, ``set_params``, ``clone`` and
    the repr work as for any other; :meth:`fit` validates the parameters
    against the declared ``_parameter_constraints`` (an invalid one is an
    :class:`~distatomenv.errors.AnalysisError`) and takes a store instead of
    an array.

    Parameters
    ----------
    elements : list of str or None
        Elements to analyse, each separately (default: all of the store).
    descriptor : {"G", "dGdx", "dGdy", "dGdz"} or None
        Descriptor space.  None (default, as n2p2's notebook): the derivative
        matching each force component (x with dGdx, ...; G for "norm").  "G"
        clusters once and tests the force magnitude |F| (component "norm"),
        whatever ``component`` says: G is rotation-invariant, so in an
        isotropic system E[F_x | G] = 0 and a Welch test of F_x would find
        nothing however good G is.  An explicit derivative is used for every
        requested Cartesian component.
    component : {"x", "y", "z", "all", "norm"}
        Force component(s) tested (default "all": x, y and z).  "norm": the
        force magnitude |F|, in G space (not with a derivative descriptor).
    method : {"minibatch", "kmeans", "hdbscan"}
    clusters : sequence of int or None
        The k of the sweep (k-means methods; ignored by HDBSCAN); None:
        :data:`DEFAULT_CLUSTERS`, n2p2's 3, 5, 10, 20, 50, 100, 150, 200.
    alpha : float or None
        Significance threshold of each cluster's raw p-value (None: 3 sigma,
        0.0027).  The significant share counts raw p < alpha as the notebook
        does; the Holm and BH shares are reported beside it.
    seed : int
        Seed of everything random (sample, initial centres, shuffles).
    seeds : int
        Models per k with seeds seed, seed+1, ...; the first labels the data,
        the adjusted Rand index against the others (on the sample) measures
        stability.  1 turns stability off.
    standardize : bool
        Scale every descriptor column to zero mean and unit variance
        (moments of all rows) before clustering.
    permutations : int
        Rounds of the shuffled-label null (0: none).
    sample : int
        Rows of the random sample (k-means++ initial centres, HDBSCAN fit,
        stability, descriptor-space map).
    pca : int or None
        HDBSCAN: principal components fitted on the sample first.
    min_cluster_size, min_samples : HDBSCAN parameters (None:
        min_cluster_size 50, n2p2's notebook (:data:`DEFAULT_MIN_CLUSTER_SIZE`);
        min_samples = min_cluster_size, as the hdbscan package).
    batch_size : int
        Rows per mini-batch k-means step (at most; small elements use
        n_rows / 8, at least 256).
    epochs : int or None
        Passes of mini-batch k-means over the data; None (default): enough
        for at least 100 steps (small elements get several passes, at most
        100; from 100 x 4096 rows on, one).  Elements with fewer than
        :data:`FULL_KMEANS_ROWS` (20,000) rows whose rows fit in
        :data:`FULL_KMEANS_VALUES` numbers get full k-means instead
        (scikit-learn ``KMeans`` in memory, Lloyd to convergence), where a
        hundred mini-batch steps would stop short of it; ``epochs`` set
        explicitly keeps mini-batch.  The inertia of every k is reported.
    max_iter : dask-ml k-means Lloyd iterations (the full k-means of small
        elements iterates up to :data:`FULL_KMEANS_MAX_ITER`).
    map_k : int or None
        k shown in the descriptor map and the per-cluster histograms
        (default 10 when swept, else the middle k).
    tsne : bool
        Also a t-SNE map of (at most 3000 rows of) the sample.
    write_labels : bool, str or None
        Write the labels into the store under ``analysis/<run>/`` (a str
        names the run; True: "latest"; None or False: none).
    scheduler, workers, threads : where block tasks run (see module doc).
    block_rows : int or None
        Rows per task, rounded to whole chunks (default ~32k rows).
    progress : bool
        tqdm progress bars.
    readout : bool or None
        Run the cross-validated force readout (:mod:`.readout`; the headline).
        None (default): when the store has derivatives, which it needs; True
        refuses a store without them.
    folds : int or None
        Folds of the readout's cross-validation, grouped by structure (default
        5, or one structure per fold when there are fewer).
    tiers : sequence of str or None
        Readout tiers of ``linear``, ``g_weighted``, ``reference_knn``,
        ``potential_linear``, ``potential_quadratic`` (default: all the store
        allows; the potential tiers need force-matching features).
    readout_sample : int
        Atoms per element sampled for the k-NN reference and the parity plot.
    g_weighted_max_features : int
        The G-weighted tier is skipped (with the reason) beyond this many features.
    clusters_view : bool
        Run the n2p2 notebook's cluster view (default True; False for speed).
    advice : bool
        Design advice from the readout's statistics (:mod:`.advice`): SF
        importance, a suggested reduced SF set, neighbour saturation.
    advice_tolerance : float
        R² the suggested SF set and neighbour counts may lose (default 0.01).
    compare : sequence of stores
        Other stores of the same data whose readouts are compared with this
        one's, paired over the same folds.
    compare_different_data : bool
        Compare stores whose input data differ (marked, no paired difference)
        instead of refusing them.

    Attributes (after :meth:`fit`)
    ------------------------------
    results_ : list of dict
        One entry per element, component and k (the ``results`` of report.json).
    elements_ : dict element -> dict (rows, force moments and histograms)
    maps_ : dict (element, descriptor) -> dict (sample map coordinates and labels)
    hists_ : dict (element, descriptor, key) -> (edges, counts (groups, comps, bins))
    store_ : dict (path, elements, rows, layout, meta)
    timings_ : dict phase -> seconds
    jobs_ : list of Job
    """

    def __init__(self, elements=None, descriptor=None, component="all", method="minibatch",
                 clusters=DEFAULT_CLUSTERS, alpha=ALPHA_3SIGMA, seed=0, seeds=3, standardize=False,
                 permutations=100, sample=10000, pca=None, min_cluster_size=None, min_samples=None,
                 batch_size=4096, epochs=None, max_iter=100, map_k=None, tsne=False,
                 write_labels=False, scheduler=None, workers=None, threads=None, block_rows=None,
                 progress=False, readout=None, folds=None, tiers=None,
                 readout_sample=DEFAULT_SAMPLE, g_weighted_max_features=G_WEIGHTED_MAX_FEATURES,
                 clusters_view=True, advice=True, advice_tolerance=DEFAULT_TOLERANCE, compare=(),
                 compare_different_data=False):
        self.advice = advice
        self.advice_tolerance = advice_tolerance
        self.compare = compare
        self.compare_different_data = compare_different_data
        self.readout = readout
        self.folds = folds
        self.tiers = tiers
        self.readout_sample = readout_sample
        self.g_weighted_max_features = g_weighted_max_features
        self.clusters_view = clusters_view
        self.elements = elements
        self.descriptor = descriptor
        self.component = component
        self.method = method
        self.clusters = clusters
        self.alpha = alpha
        self.seed = seed
        self.seeds = seeds
        self.standardize = standardize
        self.permutations = permutations
        self.sample = sample
        self.pca = pca
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_iter = max_iter
        self.map_k = map_k
        self.tsne = tsne
        self.write_labels = write_labels
        self.scheduler = scheduler
        self.workers = workers
        self.threads = threads
        self.block_rows = block_rows
        self.progress = progress

    # -- parameters -------------------------------------------------------------
    #: The declared constraints of every parameter (scikit-learn's parameter
    #: validation), checked at :meth:`fit` in this order.  "no_validation":
    #: checked where the parameter is used (the readout's by the readout when
    #: it runs, the advice tolerance by the advice, ``scheduler`` by the Dask
    #: runner that connects to it), so that a switched-off part never refuses
    #: its parameters.
    _parameter_constraints: dict = {
        "method": [StrOptions(set(METHODS))],
        "component": [StrOptions(set(FORCE_COLUMNS + ("all",)))],
        "descriptor": [None, StrOptions(set(DESCRIPTORS))],
        "clusters": [None, _Count(2), Iterable],
        "alpha": [None, Interval(Real, 0, 1, closed="neither")],
        "seed": [_Count(0)],
        "seeds": [_Count(1)],
        "permutations": [_Count(0)],
        "sample": [_Count(2)],
        "pca": [None, _Count(1)],
        "min_cluster_size": [None, _Count(2)],
        "min_samples": [None, _Count(1)],
        "batch_size": [_Count(1)],
        "epochs": [None, _Count(1)],
        "max_iter": [_Count(1)],
        "workers": [None, _Count(1)],
        "threads": [None, _Count(1)],
        "block_rows": [None, _Count(1)],
        "elements": [None, str, Iterable],
        "standardize": ["boolean"],
        "map_k": [None, Integral],
        "tsne": ["boolean"],
        "write_labels": [None, "boolean", str],
        "scheduler": "no_validation",
        "progress": ["boolean"],
        "readout": [None, "boolean"],
        "folds": "no_validation",
        "tiers": "no_validation",
        "readout_sample": "no_validation",
        "g_weighted_max_features": "no_validation",
        "clusters_view": ["boolean"],
        "advice": ["boolean"],
        "advice_tolerance": "no_validation",
        "compare": [None, Iterable],
        "compare_different_data": ["boolean"],
    }

    #: The parameters recorded in report.json and in the store's label runs,
    #: in this order (``progress``, a display switch, is not recorded).
    RECORDED_PARAMS = (
        "elements", "descriptor", "component", "method", "clusters", "alpha", "seed", "seeds",
        "standardize", "permutations", "sample", "pca", "min_cluster_size", "min_samples",
        "batch_size", "epochs", "max_iter", "map_k", "tsne", "write_labels", "scheduler",
        "workers", "threads", "block_rows", "readout", "folds", "tiers", "readout_sample",
        "g_weighted_max_features", "clusters_view", "advice", "advice_tolerance", "compare",
        "compare_different_data")

    def recorded_params(self) -> dict:
        """The parameters report.json records (:data:`RECORDED_PARAMS`, in order)."""
        return {k: getattr(self, k) for k in self.RECORDED_PARAMS}

    def _validate(self, names):
        """Check parameters ``names`` against :attr:`_parameter_constraints`
        (scikit-learn's validation); a violation is an :class:`AnalysisError`
        saying what is allowed."""
        for name in names:
            value = getattr(self, name)
            try:
                validate_parameter_constraints(
                    {name: self._parameter_constraints[name]}, {name: value},
                    caller_name=type(self).__name__)
            except InvalidParameterError as exc:
                raise AnalysisError(_invalid_message(name, value, exc)) from None

    def _check_params(self):
        """Validate every parameter; sets the sorted k of the sweep and alpha."""
        self._validate(("method", "component", "descriptor"))
        if self.component == NORM and self.descriptor not in (None, "G"):
            raise AnalysisError(
                f"component 'norm' (the force magnitude |F|) is tested in G space; descriptor "
                f"{self.descriptor} goes with a Cartesian component (x, y, z or all)")
        self._validate(("clusters",))
        ks = DEFAULT_CLUSTERS if self.clusters is None else self.clusters
        if isinstance(ks, Integral):
            ks = [ks]
        ks = list(ks)
        for k in ks:
            if not _Count(2).is_satisfied_by(k):
                raise AnalysisError(f"each number of clusters must be an integer >= 2, got {k!r}")
        if not ks and self.method != "hdbscan":
            raise AnalysisError("clusters is empty: give at least one number of clusters (k >= 2)")
        self._ks = sorted({int(k) for k in ks})
        rest = [k for k in self._parameter_constraints
                if k not in ("method", "component", "descriptor", "clusters")]
        self._validate(rest)
        self._alpha = ALPHA_3SIGMA if self.alpha is None else self.alpha
        if self.scheduler and self.workers:
            raise AnalysisError("scheduler and workers exclude each other: join a cluster or start one")

    def _plan(self, reader: StoreReader) -> list[Job]:
        elements = store_elements(reader, self.elements)
        comps = list(COMPONENTS) if self.component == "all" else [self.component]
        jobs = []
        for e in dict.fromkeys(elements):
            if self.descriptor == "G" or self.component == NORM:
                # G is rotation-invariant: E[F_x | G] = 0 by symmetry, so G is
                # tested on |F| whatever the component (see the class doc)
                jobs.append(Job(e, "G", [NORM]))
            elif self.descriptor is None:
                jobs.extend(Job(e, f"dGd{c}", [c]) for c in comps)
            else:
                jobs.append(Job(e, self.descriptor, comps))
        lay = reader.layout
        for job in jobs:
            if job.descriptor != "G" and not lay.derivatives:
                raise AnalysisError(
                    f"{reader.path}: descriptor {job.descriptor} needs derivatives, but this store "
                    f"has none (it was computed without them); use descriptor G (--descriptor G)")
            n = lay.n_rows[job.element]
            ncols = lay.columns(job.element, job.descriptor)
            if n < 2:
                raise AnalysisError(f"{reader.path}: element {job.element} has {n} row(s); "
                                    f"at least 2 are needed to test anything")
            if not ncols:
                raise AnalysisError(f"{reader.path}: element {job.element} has no {job.descriptor} "
                                    f"columns to cluster")
            if self.method != "hdbscan" and self._ks[-1] > n:
                too_many = [k for k in self._ks if k > n]
                raise AnalysisError(
                    f"{reader.path}: k = {too_many} cluster(s) requested, but element {job.element} "
                    f"has only {n} rows; choose k <= {n} (--clusters)")
        return jobs

    def _blocks(self, reader, element):
        n = reader.layout.n_rows[element]
        c = reader.layout.chunk_rows
        target = self.block_rows or 32768
        if self.block_rows is None:       # keep every worker busy on small stores
            target = min(target, max(c, math.ceil(n / (4 * self._runner.n_parallel))))
        return chunk_blocks(n, c, target)

    # -- fit --------------------------------------------------------------------
    def fit(self, store, runner=None):
        """Run the analysis on ``store`` (a path or a :class:`StoreReader`).

        runner : where the block tasks run (see :class:`ThreadRunner`); default
            threads of this process.  With ``scheduler``/``workers`` set, pass a
            Dask runner, as :func:`distatomenv.analyze` does
            (:class:`distatomenv.executors.dask.TaskRunner`): the analysis layer
            does not start clusters itself.
        """
        t_all = time.perf_counter()
        self._check_params()
        if runner is None:
            if self.scheduler or self.workers:
                raise AnalysisError(
                    "scheduler/workers need a Dask runner: call distatomenv.analyze(...), or "
                    "fit(store, runner=distatomenv.executors.dask.TaskRunner(...))")
            runner = ThreadRunner(self.threads)
        if isinstance(store, StoreReader):
            reader = store
            if reader.status != "complete":
                raise StoreIncompleteError(reader._incomplete_message())
        else:
            reader = open_store(store)
        jobs = self._plan(reader) if self.clusters_view else []
        self.jobs_ = jobs
        do_readout = self.readout if self.readout is not None else reader.layout.derivatives
        self.readout_, self.readout_samples_, self.readout_weights_ = [], {}, {}
        self.advice_, self.comparison_ = None, None
        self.readout_potential_ = {}
        if self.compare and not do_readout:
            raise AnalysisError("comparing stores (compare / several stores) needs the readout, "
                                "which is off or impossible for this store")
        self.readout_note_ = None if do_readout else (
            "the force readout was switched off" if self.readout is False else
            "the force readout needs derivatives (dG rows), and this store has none")
        self.results_, self.elements_, self.maps_, self.hists_ = [], {}, {}, {}
        self.timings_ = {"scan": 0.0, "fit": 0.0, "label": 0.0, "null": 0.0, "stability": 0.0}
        self.fits_ = {}
        self.run_name_ = None
        if self.write_labels:
            self.run_name_ = self.write_labels if isinstance(self.write_labels, str) else "latest"
        self.store_ = {
            "path": location(reader.path).absolute(),
            "elements": list(reader.elements),
            "n_rows": dict(reader.layout.n_rows),
            "n_structures": reader.layout.n_structures,
            "derivatives": reader.layout.derivatives,
            "dtype": reader.layout.dtype,
            "chunk_rows": reader.layout.chunk_rows,
            "meta": reader.meta,
        }
        from threadpoolctl import threadpool_limits

        with runner:
            self._runner = runner
            # block tasks run side by side: one BLAS/OpenMP thread each (local
            # threads here; Dask workers limit themselves in the task)
            limit = threadpool_limits(limits=1) if runner.local else None
            try:
                if do_readout:
                    t0 = time.perf_counter()
                    ro = Readout(elements=self.elements, folds=self.folds, tiers=self.tiers,
                                 seed=self.seed, sample=self.readout_sample,
                                 g_weighted_max_features=self.g_weighted_max_features,
                                 progress=self.progress).fit(reader, runner)
                    self.readout_, self.readout_samples_ = ro.results_, ro.samples_
                    self.readout_weights_ = ro.weights_
                    self.readout_potential_ = ro.potential_
                    for e, forces in ro.force_moments_.items():
                        self.elements_.setdefault(e, {"n_rows": reader.layout.n_rows[e], "forces": forces})
                    self.timings_["readout"] = time.perf_counter() - t0
                    if self.advice:
                        t0 = time.perf_counter()
                        self.advice_ = design_advice(reader, ro, self.advice_tolerance)
                        self.timings_["advice"] = time.perf_counter() - t0
                    if self.compare:
                        t0 = time.perf_counter()
                        self.comparison_ = compare_stores(
                            reader, ro, self.compare, runner, allow_different_data=self.compare_different_data,
                            progress=self.progress)
                        self.timings_["compare"] = time.perf_counter() - t0
                for i, job in enumerate(jobs):
                    self._fit_job(reader, job, seed_offset=i)
            finally:
                self._runner = None
                if limit is not None:
                    limit.restore_original_limits()
        self.timings_["total"] = time.perf_counter() - t_all
        return self

    def _fit_job(self, reader, job: Job, seed_offset: int):
        """One Job: the passes of the module doc, then its results entries."""
        ctx = _JobContext(reader=reader, job=job, seed_offset=seed_offset,
                          n=reader.layout.n_rows[job.element],
                          blocks=self._blocks(reader, job.element), runner=self._runner)
        sample = self._scan(ctx)
        models, stability_models = self._fit_models(ctx, sample)
        stability = self._sample_labels(ctx, sample, models, stability_models)
        edges, acc = self._label(ctx, sample, models)
        counted, shares = self._permutation_null(ctx, models, acc)
        self._collect(ctx, models, acc, edges, counted, shares, stability)

    # A: scan -------------------------------------------------------------------
    def _scan(self, ctx) -> "_Sample":
        """Feature and force moments, the non-finite check and the random
        sample of rows (standardized when asked); records the element's force
        moments unless the readout did."""
        t0 = time.perf_counter()
        e, d, n, path = ctx.element, ctx.descriptor, ctx.n, ctx.path
        rng = np.random.default_rng([self.seed, ctx.seed_offset])
        n_sample = min(n, max(int(self.sample), 3 * (self._ks[-1] if self._ks else 2)))
        sample_rows = np.sort(rng.choice(n, size=n_sample, replace=False))
        xm = fm = None
        bad_x = bad_f = 0
        parts = []
        bar = _progress_bar(self.progress, n, f"scan {ctx.label}")
        for r in ctx.runner.map(_scan_task, ctx.blocks, path=path, element=e, descriptor=d,
                                sample_rows=sample_rows):
            xm = r["x"] if xm is None else xm.merge(r["x"])
            fm = r["f"] if fm is None else fm.merge(r["f"])
            bad_x += r["bad_x"]
            bad_f += r["bad_f"]
            parts.append((r["sample_rows"], r["sample_x"], r["sample_f"]))
            if bar is not None:
                bar.update(int(r["x"].count[0]))
        if bar is not None:
            bar.close()
        if bad_f:
            raise AnalysisError(f"{path}: element {e}: {bad_f} force value(s) are NaN or infinite; "
                                f"the t-tests need finite forces")
        if bad_x:
            raise AnalysisError(f"{path}: element {e}: {bad_x} {d} value(s) are NaN or infinite")
        parts.sort(key=lambda p: p[0][0] if len(p[0]) else -1)
        s_x = np.concatenate([p[1] for p in parts]).astype(np.float64)
        s_f = np.concatenate([p[2] for p in parts])
        scaler = FeatureScaler(self.standardize).fit_moments(xm)
        if e not in self.elements_:
            std = fm.std()[0]
            self.elements_[e] = {"n_rows": n, "forces": {
                c: {"mean": float(fm.mean[0][i]), "std": float(std[i])} for i, c in enumerate(COMPONENTS)}}
        sample = _Sample(size=n_sample, n_features=s_x.shape[1], features=scaler.transform(s_x),
                         forces=s_f, scaler=scaler)
        self.timings_["scan"] += time.perf_counter() - t0
        return sample

    # B: fit --------------------------------------------------------------------
    def _fit_models(self, ctx, sample):
        """The clusterings of every k and seed.  Returns ``models``, a list of
        (key, kind, payload, n_groups) -- kind "centers" (payload the (k, p)
        centres of the first seed) or "hdbscan" (payload the fitted
        SampleHDBSCAN; its noise is the last group) -- and, per key, the
        payloads of the other seeds (stability)."""
        t0 = time.perf_counter()
        seeds = [self.seed + i for i in range(self.seeds)]
        if self.method == "hdbscan":
            models, stability_models = self._fit_hdbscan(ctx, sample, seeds)
        else:
            if self._full_kmeans(ctx, sample):
                fitter = self._fit_full_kmeans(ctx, sample, seeds)
            elif self.method == "minibatch":
                fitter = self._fit_minibatch(ctx, sample, seeds)
            else:
                fitter = self._fit_dask_kmeans(ctx, sample, seeds)
            models = [(k, "centers", fitter.centers_[(k, seeds[0])], k) for k in self._ks]
            stability_models = {k: [fitter.centers_[(k, s)] for s in seeds[1:]] for k in self._ks}
        self.timings_["fit"] += time.perf_counter() - t0
        return models, stability_models

    def _fit_hdbscan(self, ctx, sample, seeds):
        """HDBSCAN on the sample; the other seeds on 80 % subsamples of it."""
        mcs = self.min_cluster_size or DEFAULT_MIN_CLUSTER_SIZE
        n_sample = sample.size
        n_fit = n_sample if len(seeds) == 1 else min(n_sample, max(2, int(0.8 * n_sample)))
        ms = self.min_samples or mcs
        if ms > n_fit:
            raise AnalysisError(
                f"{ctx.path}: element {ctx.element}: HDBSCAN min_samples = {ms}"
                f"{'' if self.min_samples else ' (= min_cluster_size)'} is more than the "
                f"{n_fit} sampled rows it is fitted on; lower min_samples / min_cluster_size "
                f"(--min-samples, --min-cluster-size)")
        s_t = sample.features
        hd = SampleHDBSCAN(mcs, self.min_samples, self.pca, self.seed).fit(s_t)
        others = []
        for s in seeds[1:]:
            sub = np.random.default_rng([s, ctx.seed_offset]).choice(
                n_sample, size=max(2, int(0.8 * n_sample)), replace=False)
            others.append(SampleHDBSCAN(mcs, self.min_samples, self.pca, s).fit(s_t[sub]))
        self.fits_[ctx.key] = {"algorithm": "hdbscan", "n_clusters": hd.n_clusters_,
                               "min_cluster_size": mcs, "min_samples": self.min_samples,
                               "sample_noise": int(np.count_nonzero(hd.sample_labels_ < 0))}
        return [("hdbscan", "hdbscan", hd, hd.n_clusters_ + 1)], {"hdbscan": others}

    def _full_kmeans(self, ctx, sample) -> bool:
        """Whether ``method="minibatch"`` fits full k-means in memory instead:
        a small element, where a hundred mini-batch steps would stop short of
        convergence (``epochs`` set explicitly keeps mini-batch)."""
        return (self.method == "minibatch" and self.epochs is None and ctx.n < FULL_KMEANS_ROWS
                and ctx.n * sample.n_features <= FULL_KMEANS_VALUES)

    def _fit_threads(self, runner) -> int:
        """Threads of an in-process fit: the runner's, or this process's."""
        return runner.n_parallel if runner.local else (self.threads or os.cpu_count() or 1)

    def _fit_full_kmeans(self, ctx, sample, seeds):
        """scikit-learn KMeans (Lloyd to convergence) on every row, in memory."""
        e, d, path = ctx.element, ctx.descriptor, ctx.path
        X_all = np.concatenate([sample.scaler.transform(_read(path, e, d, s, t)) for s, t in ctx.blocks])
        bar = _progress_bar(self.progress, len(self._ks) * len(seeds), f"fit {ctx.label}", unit="fit")
        fitter = InMemoryKMeans(self._ks, seeds, FULL_KMEANS_MAX_ITER,
                                n_threads=self._fit_threads(ctx.runner)).fit(
            X_all, sample.features, progress=bar.update if bar is not None else None)
        del X_all
        if bar is not None:
            bar.close()
        self.fits_[ctx.key] = {"algorithm": "kmeans (full, in memory)",
                               "n_iter": {str(k): fitter.n_iter_[(k, seeds[0])] for k in self._ks},
                               "converged": {str(k): fitter.converged_[(k, seeds[0])]
                                             for k in self._ks}}
        return fitter

    def _fit_minibatch(self, ctx, sample, seeds):
        """Mini-batch k-means of every k and seed in one sequential pass per
        epoch, the blocks in a seeded order each epoch."""
        e, d, n, path, scaler = ctx.element, ctx.descriptor, ctx.n, ctx.path, sample.scaler
        batch = min(int(self.batch_size), max(256, n // 8))
        epochs = self.epochs or min(100, math.ceil(MIN_STEPS * batch / n))
        self.fits_[ctx.key] = {"algorithm": "minibatch", "epochs": epochs, "batch_size": batch}
        bar = _progress_bar(self.progress, n * epochs,
                            f"fit {ctx.label} (k={len(self._ks)}x{len(seeds)})")

        def epoch_blocks(epoch):
            order = np.random.default_rng([self.seed, ctx.seed_offset, epoch]).permutation(len(ctx.blocks))
            for b in order:
                s, t = ctx.blocks[b]
                yield scaler.transform(_read(path, e, d, s, t))

        fitter = StreamingKMeans(self._ks, seeds, batch, epochs, self._fit_threads(ctx.runner)).fit(
            epoch_blocks, sample.features, progress=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
        self.fits_[ctx.key]["batches"] = fitter.n_batches_
        return fitter

    def _fit_dask_kmeans(self, ctx, sample, seeds):
        """dask-ml k-means|| on the store's dask array."""
        Xd = ctx.reader.dask(ctx.element, ctx.descriptor).astype(np.float64)
        if self.standardize:
            Xd = (Xd - sample.scaler.mean_) / sample.scaler.scale_
        bar = _progress_bar(self.progress, len(self._ks) * len(seeds), f"fit {ctx.label}", unit="fit")
        fitter = DaskKMeansSweep(self._ks, seeds, self.max_iter).fit(
            Xd, progress=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
        self.fits_[ctx.key] = {"algorithm": "kmeans (dask-ml k-means||)",
                               "n_iter": {str(k): fitter.n_iter_[(k, seeds[0])] for k in self._ks}}
        return fitter

    # sample labels: stability and the map ---------------------------------------
    def _sample_labels(self, ctx, sample, models, stability_models) -> dict:
        """Labels of the sample under every model; the adjusted Rand index
        against the other seeds' (key -> list of ARIs); the descriptor map."""
        t0 = time.perf_counter()
        from sklearn.metrics import adjusted_rand_score

        s_t = sample.features
        sample_labels, stability = {}, {}
        for key, kind, payload, _ in models:
            lab = nearest_center(s_t, payload) if kind == "centers" else payload.predict(s_t)
            sample_labels[key] = lab
            aris = []
            for other in stability_models.get(key, []):
                olab = nearest_center(s_t, other) if kind == "centers" else other.predict(s_t)
                aris.append(adjusted_rand_score(lab, olab))
            stability[key] = aris
        self.maps_[ctx.key] = self._map(s_t, sample_labels)
        self.timings_["stability"] += time.perf_counter() - t0
        return stability

    # C: label ------------------------------------------------------------------
    def _label(self, ctx, sample, models):
        """Every row's cluster under every model: per-cluster force moments
        (merged), force histograms and within-cluster sums of squares, the
        labels written to the store when asked.  Returns the histogram edges
        (components, bins + 1) and key -> (GroupMoments, histograms, [(start,
        wss)] of the blocks)."""
        t0 = time.perf_counter()
        comps = ctx.job.comp_index
        edges = _force_edges(_force_columns(sample.forces, comps))
        write = self._label_writer(ctx, sample, models)
        shared = ctx.runner.share([(k, kind, p, g) for k, kind, p, g in models])
        acc = {}
        bar = _progress_bar(self.progress, ctx.n, f"label {ctx.label}")
        for r in ctx.runner.map(_label_task, ctx.blocks, path=ctx.path, element=ctx.element,
                                descriptor=ctx.descriptor, comps=comps, scaler=sample.scaler,
                                models=shared, edges=edges, write=write,
                                single_thread=not ctx.runner.local):
            for key, (mom, hist, wss) in r.items():
                if key in acc:
                    acc[key] = (acc[key][0].merge(mom), acc[key][1] + hist, acc[key][2] + [wss])
                else:
                    acc[key] = (mom, hist, [wss])
            if bar is not None:
                bar.update(int(next(iter(r.values()))[0].count.sum()))
        if bar is not None:
            bar.close()
        self.timings_["label"] += time.perf_counter() - t0
        return edges, acc

    def _label_writer(self, ctx, sample, models):
        """With ``write_labels``: the store's label group of this Job (and the
        k-means centres); returns what :func:`_label_task` writes with, or None."""
        if not self.run_name_:
            return None
        from distatomenv.store.labels import create_label_group, write_centers

        name_of = {key: (f"labels_k{key}" if kind == "centers" else "labels_hdbscan")
                   for key, kind, _, _ in models}
        scaler = sample.scaler
        create_label_group(
            ctx.path, self.run_name_, ctx.element, ctx.descriptor, list(name_of.values()),
            run_attrs={"parameters": _jsonable(self.recorded_params()),
                       "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            attrs={"method": self.method, "clusters": self._ks, "seed": self.seed,
                   "standardize": bool(self.standardize),
                   "feature_mean": scaler.mean_.tolist(), "feature_scale": scaler.scale_.tolist()})
        for key, kind, payload, _ in models:
            if kind == "centers":
                write_centers(ctx.path, self.run_name_, ctx.element, ctx.descriptor, key, payload)
        return (self.run_name_, name_of)

    # D: permutation null -----------------------------------------------------------
    def _permutation_null(self, ctx, models, acc):
        """The shuffled-label null of every model, its rounds spread over the
        runner.  Returns key -> the groups counted in the share (HDBSCAN's
        noise is not) and key -> list of (rounds, components) shares."""
        t0 = time.perf_counter()
        runner = ctx.runner
        sizes, counted = {}, {}
        for key, kind, _, g in models:
            sizes[key] = acc[key][0].count.astype(np.int64)
            cnt = np.ones(g, bool)
            if kind == "hdbscan":
                cnt[-1] = False
            counted[key] = cnt
        shares = {key: [] for key in sizes}
        R = int(self.permutations)
        if R:
            n_tasks = max(1, min(R, runner.n_parallel))
            per = [R // n_tasks + (1 if i < R % n_tasks else 0) for i in range(n_tasks)]
            seeds_null = [int(s) for s in np.random.SeedSequence(
                [self.seed, ctx.seed_offset, 99]).generate_state(n_tasks)]
            total_mom = acc[models[0][0]][0].total()
            bar = _progress_bar(self.progress, R, f"null {ctx.label}", unit="round")
            tasks = [s for s, r in zip(seeds_null, per) if r]
            rounds_of = {s: r for s, r in zip(seeds_null, per)}
            for key_shares in runner.map(
                    _null_task_rounds, [(s, rounds_of[s]) for s in tasks], path=ctx.path,
                    element=ctx.element, comps=ctx.job.comp_index, blocks=ctx.blocks, sizes=sizes,
                    alpha=self._alpha, counted=counted, shift=total_mom.mean[0]):
                for key, sh in key_shares.items():
                    shares[key].append(sh)
                if bar is not None:
                    bar.update(len(next(iter(key_shares.values()))))
            if bar is not None:
                bar.close()
        self.timings_["null"] += time.perf_counter() - t0
        return counted, shares

    # results ---------------------------------------------------------------------
    def _collect(self, ctx, models, acc, edges, counted, shares, stability):
        """The tests of every model's clusters, as results entries (one per
        force component); the inertia and the histograms of every model."""
        job = ctx.job
        for key, kind, payload, g in models:
            mom, hist, wss_parts = acc[key]
            wss = None
            if kind == "centers":         # summed in row order: the same for any scheduling
                wss = np.zeros(g)
                for _, part in sorted(wss_parts, key=lambda w: w[0]):
                    wss += part
                self.fits_[ctx.key].setdefault("inertia", {})[str(key)] = float(wss.sum())
            self.hists_[(ctx.element, ctx.descriptor, key)] = (edges, hist, list(job.components))
            fam = counted[key]
            total = mom.total()
            tests = cluster_tests(mom, total, family=fam)
            eta = eta_squared(mom, total)
            sh = np.concatenate(shares[key]) if shares[key] else None
            aris = stability[key]
            for j, comp in enumerate(job.components):
                entry = self._entry(job, comp, j, key, kind, g, tests, eta, sh, aris, ctx.n, wss)
                self.results_.append(entry)

    def _entry(self, job, comp, j, key, kind, g, tests, eta, shares, aris, n, wss=None):
        counted = np.arange(g) if kind == "centers" else np.arange(g - 1)
        p = tests["p"][counted, j]
        n_sig, n_tested, share = significant_share(p, self._alpha)
        _, _, share_holm = significant_share(tests["p_holm"][counted, j], self._alpha)
        _, _, share_bh = significant_share(tests["p_bh"][counted, j], self._alpha)
        if shares is not None:
            col = shares[:, j]
            null_low, null_high = np.nanpercentile(col, [2.5, 97.5])
            null_mean = float(np.nanmean(col))
        else:
            null_low = null_high = null_mean = float("nan")

        def cluster(i, cid):
            return {
                "id": int(cid),
                "size": int(tests["size"][i]),
                "mean": _f(tests["mean"][i, j]),
                "std": _f(tests["std"][i, j]),
                "t": _f(tests["t"][i, j]),
                "df": _f(tests["df"][i, j]),
                "p": _f(tests["p"][i, j]),
                "p_holm": _f(tests["p_holm"][i, j]),
                "p_bh": _f(tests["p_bh"][i, j]),
                "hedges_g": _f(tests["hedges_g"][i, j]),
                "significant": bool(tests["p"][i, j] < self._alpha),
                "inertia": None if wss is None else _f(wss[i]),
            }

        # eta2 of a labelling with no link to the forces (a uniform shuffle
        # of the labels, sizes kept) has expectation (g - 1) / (N - 1), g the
        # non-empty groups (HDBSCAN's noise is one): it grows with k
        g_used = int(np.count_nonzero(tests["size"] > 0))
        eta2_null = (g_used - 1) / (n - 1) if n > 1 else float("nan")

        entry = {
            "element": job.element,
            "component": comp,
            "descriptor": job.descriptor,
            "method": self.method,
            "k": int(key) if kind == "centers" else int(g - 1),
            "n_rows": int(n),
            "significant_share": _f(share),
            "n_significant": n_sig,
            "n_tested": n_tested,
            "significant_share_holm": _f(share_holm),
            "significant_share_bh": _f(share_bh),
            "null_low": _f(null_low),
            "null_high": _f(null_high),
            "null_mean": _f(null_mean),
            "null_rounds": 0 if shares is None else int(len(shares)),
            "eta2": _f(eta[j]),
            "eta2_null": _f(eta2_null),
            "inertia": None if wss is None else _f(wss.sum()),
            "noise_fraction": _f(tests["size"][g - 1] / n) if kind == "hdbscan" else None,
            "stability_ari": _f(np.mean(aris)) if aris else None,
            "stability_ari_min": _f(np.min(aris)) if aris else None,
            "clusters": [cluster(i, i) for i in counted],
            "noise": cluster(g - 1, -1) if kind == "hdbscan" else None,
        }
        if kind == "hdbscan":
            entry["noise"]["significant"] = None
        return entry

    def _map(self, s_t, sample_labels):
        """2-D PCA (and optional t-SNE) coordinates of the sample."""
        from sklearn.decomposition import PCA

        out = {"labels": sample_labels}
        if s_t.shape[1] >= 2 and len(s_t) >= 3:
            pca = PCA(n_components=2, random_state=int(self.seed)).fit(s_t)
            out["pca"] = pca.transform(s_t)
            out["pca_explained"] = pca.explained_variance_ratio_.tolist()
        else:
            out["pca"] = np.column_stack([s_t[:, 0], np.zeros(len(s_t))])
            out["pca_explained"] = [1.0, 0.0]
        if self.tsne and len(s_t) >= 10:
            from sklearn.manifold import TSNE

            m = min(3000, len(s_t))
            idx = np.random.default_rng(self.seed).choice(len(s_t), size=m, replace=False)
            perplexity = float(min(30, max(2, (m - 1) // 3)))
            out["tsne"] = TSNE(n_components=2, random_state=int(self.seed), init="pca",
                               perplexity=perplexity).fit_transform(s_t[idx])
            out["tsne_index"] = idx
        return out

    def map_key(self):
        """Key (k or "hdbscan") of the clustering shown in maps and histograms."""
        if self.method == "hdbscan":
            return "hdbscan"
        if self.map_k is not None and self.map_k in self._ks:
            return int(self.map_k)
        if 10 in self._ks:
            return 10
        return self._ks[len(self._ks) // 2]


def _null_task_rounds(item, **kw):
    seed, rounds = item
    return _null_task(seed, rounds=rounds, **kw)


def _f(x):
    """JSON-safe float (NaN and inf -> None)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return _f(v)
    if isinstance(v, float):
        return _f(v)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    return str(v)
