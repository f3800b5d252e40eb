"""Clustering descriptor rows out of core.

Three methods, all estimator-style (parameters in ``__init__``, fitted
attributes with a trailing underscore):

* :class:`StreamingKMeans` (``--method minibatch``, the default): scikit-learn
  ``MiniBatchKMeans.partial_fit`` over the store's row blocks, **every k of
  the sweep (and every stability seed) fitted in the same pass**, so the
  store is read once per epoch however many k there are.  Centres start
  from k-means++ on a random sample of all rows (not on the first block,
  which would hold only the first structures).  Labels come afterwards from
  a separate, parallel labelling pass (:func:`nearest_center`).  This is the
  scheme dask-ml's ``Incremental(MiniBatchKMeans)`` implements for one
  estimator; doing all estimators per block reads the data once instead of
  once per k (see benchmarks/README.md for the measurement).  Elements small
  enough to hold in memory get :class:`InMemoryKMeans` instead (full
  k-means, Lloyd to convergence).
* :class:`DaskKMeansSweep` (``--method kmeans``): dask-ml's ``KMeans`` with
  ``init="k-means||"`` (Lloyd iterations, one pass over the dask array per
  iteration).  Only ``cluster_centers_`` is used; labels are the nearest
  centre, as for the other k-means.
* :class:`SampleHDBSCAN` (``--method hdbscan``): HDBSCAN fitted on a random
  sample (optionally after PCA) with ``prediction_data=True``; every row is
  then labelled with ``hdbscan.approximate_predict``.  Label -1 is noise.

Arrays: descriptor rows ``X`` are (n, p) in the store's units (scaled SFs or
their derivatives, optionally standardised by :class:`FeatureScaler`).
"""
from __future__ import annotations

import queue
import threading

import numpy as np

__all__ = [
    "FeatureScaler",
    "nearest_center",
    "nearest_center_distance",
    "StreamingKMeans",
    "InMemoryKMeans",
    "DaskKMeansSweep",
    "SampleHDBSCAN",
    "prefetch",
]


class FeatureScaler:
    """Standardise columns: ``(X - mean_) / scale_``; identity when
    ``standardize`` is False.  Columns of zero spread keep scale 1.

    Parameters
    ----------
    standardize : bool
    """

    def __init__(self, standardize: bool = False):
        self.standardize = standardize

    def fit_moments(self, moments):
        """Fit from the :class:`GroupMoments` (one group, p columns) of all rows."""
        p = moments.mean.shape[-1]
        if self.standardize:
            self.mean_ = moments.mean[0].copy()
            sd = moments.std(ddof=0)[0]
            self.scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        else:
            self.mean_ = np.zeros(p)
            self.scale_ = np.ones(p)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        if not self.standardize:
            return X
        return (X - self.mean_) / self.scale_


def nearest_center(X, centers, centers_sq=None, block: int = 8192) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean distance) of each row.

    X : (n, p); centers : (k, p).  Returns (n,) int32.  Works in blocks of
    rows so that the (block, k) distance matrix stays small.
    """
    return nearest_center_distance(X, centers, centers_sq, block)[0]


def nearest_center_distance(X, centers, centers_sq=None, block: int = 8192):
    """As :func:`nearest_center`, and the squared distance of each row to
    its centre: ``(labels (n,) int32, d2 (n,) float64)``.  The sum of ``d2``
    is the k-means inertia of the rows."""
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    if centers_sq is None:
        centers_sq = np.einsum("ij,ij->i", centers, centers)
    out = np.empty(len(X), dtype=np.int32)
    d2 = np.empty(len(X), dtype=np.float64)
    for s in range(0, len(X), block):
        xb = X[s : s + block]
        d = centers_sq[None, :] - 2.0 * (xb @ centers.T)
        lab = np.argmin(d, axis=1)
        out[s : s + block] = lab
        # |x - c|^2 of the chosen centre from the differences, not from the
        # product above: BLAS rounds that product differently with the number
        # of threads it happens to take (OpenBLAS runs a call single-threaded
        # while another thread holds its pool), so the inertia would change
        # in the last bit from run to run and between threads and Dask workers
        diff = xb - centers[lab]
        d2[s : s + block] = np.einsum("ij,ij->i", diff, diff)
    return out, d2


def prefetch(iterable, depth: int = 2):
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead
    (reading and decompressing the next block while this one is fitted)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    failure = []

    def run():
        try:
            for item in iterable:
                q.put(item)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
        finally:
            q.put(done)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    while True:
        item = q.get()
        if item is done:
            break
        yield item
    t.join()
    if failure:
        raise failure[0]


def _rebatch(blocks, batch_size: int, first_min: int):
    """Regroup arrays into batches of about ``batch_size`` rows; the first
    batch has at least ``first_min`` rows (MiniBatchKMeans' first call)."""
    buf, n = [], 0
    need = max(batch_size, first_min)
    for b in blocks:
        start = 0
        while start < len(b):
            take = min(len(b) - start, need - n)
            buf.append(b[start : start + take])
            n += take
            start += take
            if n >= need:
                yield np.concatenate(buf) if len(buf) > 1 else buf[0]
                buf, n, need = [], 0, batch_size
    if n:
        yield np.concatenate(buf) if len(buf) > 1 else buf[0]


class StreamingKMeans:
    """Mini-batch k-means for several k and seeds, fitted in one pass per epoch.

    Parameters
    ----------
    n_clusters : sequence of int
        The k of the sweep.
    seeds : sequence of int
        One model per (k, seed); the first seed's models label the data, the
        others measure stability.
    batch_size : int
        Rows per ``partial_fit`` call.
    epochs : int
        Passes over the data.
    n_threads : int
        Models are split into this many groups fitted side by side on each
        batch, each single-threaded (OpenMP/BLAS limited to 1 thread: on a
        busy machine their spin-waiting made a fit up to 10x slower).

    Attributes
    ----------
    centers_ : dict (k, seed) -> (k, p) ndarray
    n_batches_ : int
        ``partial_fit`` calls per model.
    """

    def __init__(self, n_clusters=(3, 5, 10), seeds=(0,), batch_size: int = 4096, epochs: int = 1,
                 n_threads: int = 1):
        self.n_clusters = n_clusters
        self.seeds = seeds
        self.batch_size = batch_size
        self.epochs = epochs
        self.n_threads = n_threads

    def fit(self, blocks_factory, init_sample, progress=None):
        """Fit every model.

        Parameters
        ----------
        blocks_factory : callable(epoch) -> iterable of (m, p) arrays
            The (transformed) row blocks of one epoch, in any order.
        init_sample : (s, p) array
            Random rows of all the data; k-means++ on it gives the initial centres.
        progress : callable(n_rows) or None
        """
        from sklearn.cluster import MiniBatchKMeans, kmeans_plusplus

        ks = [int(k) for k in self.n_clusters]
        models = {}
        for seed in self.seeds:
            for k in ks:
                init, _ = kmeans_plusplus(init_sample, k, random_state=int(seed) * 7919 + k)
                models[(k, int(seed))] = MiniBatchKMeans(
                    n_clusters=k, init=init, n_init=1, batch_size=self.batch_size,
                    random_state=int(seed), compute_labels=False)
        # balance the groups by cost (~ k + a constant per call)
        groups = [[] for _ in range(max(1, min(int(self.n_threads), len(models))))]
        load = [0.0] * len(groups)
        for key in sorted(models, key=lambda key: -key[0]):
            i = load.index(min(load))
            groups[i].append(models[key])
            load[i] += key[0] + 20

        def fit_group(group, batch):
            for model in group:
                model.partial_fit(batch)

        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        n_batches = 0
        with threadpool_limits(limits=1), ThreadPoolExecutor(len(groups)) as pool:
            for epoch in range(int(self.epochs)):
                for batch in _rebatch(prefetch(blocks_factory(epoch)), self.batch_size, max(ks)):
                    for f in [pool.submit(fit_group, g, batch) for g in groups]:
                        f.result()
                    n_batches += 1
                    if progress is not None:
                        progress(len(batch))
        self.centers_ = {key: m.cluster_centers_.copy() for key, m in models.items()}
        self.n_batches_ = n_batches
        return self


class InMemoryKMeans:
    """Full k-means (scikit-learn ``KMeans``, Lloyd to convergence) of rows
    held in memory, for every (k, seed): what ``--method minibatch`` does on
    elements small enough to hold (see ``FULL_KMEANS_ROWS`` in
    :mod:`.analyze`), where a few hundred mini-batch steps would stop short
    of convergence.

    Parameters
    ----------
    n_clusters, seeds : as :class:`StreamingKMeans`
    max_iter : int
        Lloyd iterations at most.
    tol : float
        scikit-learn's relative tolerance on the centre shift; 0 (default):
        iterate until no row changes cluster (a Lloyd fixed point: every
        centre is the mean of its rows) or ``max_iter``.
    n_threads : int
        Models fitted side by side, each single-threaded.

    Attributes
    ----------
    centers_ : dict (k, seed) -> (k, p) ndarray
    n_iter_ : dict (k, seed) -> int
    converged_ : dict (k, seed) -> bool
        Whether the fit stopped before ``max_iter``.
    inertia_ : dict (k, seed) -> float
        Sum of squared distances of the rows to their centre.
    """

    def __init__(self, n_clusters=(3, 5, 10), seeds=(0,), max_iter: int = 300, tol: float = 0.0,
                 n_threads: int = 1):
        self.n_clusters = n_clusters
        self.seeds = seeds
        self.max_iter = max_iter
        self.tol = tol
        self.n_threads = n_threads

    def fit(self, X, init_sample, progress=None):
        """X : (n, p) rows; init_sample : (s, p) random rows (k-means++ on it
        gives the initial centres, as :class:`StreamingKMeans`)."""
        from concurrent.futures import ThreadPoolExecutor

        from sklearn.cluster import KMeans, kmeans_plusplus
        from threadpoolctl import threadpool_limits

        X = np.asarray(X, dtype=np.float64)
        keys = [(int(k), int(s)) for s in self.seeds for k in self.n_clusters]

        def one(key):
            k, seed = key
            init, _ = kmeans_plusplus(init_sample, k, random_state=seed * 7919 + k)
            km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=int(self.max_iter),
                        tol=self.tol, random_state=seed).fit(X)
            if progress is not None:
                progress(1)
            return key, km

        self.centers_, self.n_iter_, self.inertia_, self.converged_ = {}, {}, {}, {}
        with threadpool_limits(limits=1), ThreadPoolExecutor(max(1, int(self.n_threads))) as pool:
            for key, km in pool.map(one, sorted(keys, key=lambda key: -key[0])):
                self.centers_[key] = np.asarray(km.cluster_centers_, dtype=np.float64)
                self.n_iter_[key] = int(km.n_iter_)
                self.inertia_[key] = float(km.inertia_)
                self.converged_[key] = bool(km.n_iter_ < int(self.max_iter))
        return self


class DaskKMeansSweep:
    """dask-ml ``KMeans(init="k-means||")`` for every (k, seed).

    Parameters
    ----------
    n_clusters, seeds : as :class:`StreamingKMeans`
    max_iter : int
        Lloyd iterations (each one pass over the data).
    tol : float

    Attributes
    ----------
    centers_ : dict (k, seed) -> (k, p) ndarray
    n_iter_ : dict (k, seed) -> int
    """

    def __init__(self, n_clusters=(3, 5, 10), seeds=(0,), max_iter: int = 100, tol: float = 1e-4):
        self.n_clusters = n_clusters
        self.seeds = seeds
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, progress=None):
        """X : dask array (n, p), chunked along rows only."""
        from dask_ml.cluster import KMeans

        self.centers_, self.n_iter_ = {}, {}
        for seed in self.seeds:
            for k in self.n_clusters:
                km = KMeans(n_clusters=int(k), init="k-means||", random_state=int(seed),
                            max_iter=self.max_iter, tol=self.tol)
                km.fit(X)
                self.centers_[(int(k), int(seed))] = np.asarray(km.cluster_centers_, dtype=np.float64)
                self.n_iter_[(int(k), int(seed))] = int(km.n_iter_)
                if progress is not None:
                    progress(1)
        return self


class SampleHDBSCAN:
    """HDBSCAN on a sample, ``approximate_predict`` for every other row.

    Parameters
    ----------
    min_cluster_size : int
    min_samples : int or None
    pca_components : int or None
        Reduce to this many principal components (fitted on the sample) first.
    seed : int
        Only used by the PCA solver.

    Attributes
    ----------
    pca_ : sklearn PCA or None
    clusterer_ : hdbscan.HDBSCAN, fitted with ``prediction_data=True``
    n_clusters_ : int
        Clusters found (noise, label -1, not counted).
    sample_labels_ : (s,) int
    """

    def __init__(self, min_cluster_size: int = 50, min_samples=None, pca_components=None, seed: int = 0):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.pca_components = pca_components
        self.seed = seed

    def fit(self, sample):
        import hdbscan

        Z = np.asarray(sample, dtype=np.float64)
        self.pca_ = None
        if self.pca_components:
            from sklearn.decomposition import PCA

            n = min(int(self.pca_components), Z.shape[1], Z.shape[0])
            self.pca_ = PCA(n_components=n, random_state=int(self.seed)).fit(Z)
            Z = self.pca_.transform(Z)
        self.clusterer_ = hdbscan.HDBSCAN(
            min_cluster_size=int(self.min_cluster_size),
            min_samples=None if self.min_samples is None else int(self.min_samples),
            prediction_data=True,
        ).fit(Z)
        self.sample_labels_ = np.asarray(self.clusterer_.labels_, dtype=np.int32)
        self.n_clusters_ = int(self.sample_labels_.max()) + 1 if len(self.sample_labels_) else 0
        return self

    def predict(self, X) -> np.ndarray:
        """Cluster of each row (-1: noise), (n,) int32."""
        import warnings

        import hdbscan

        Z = np.asarray(X, dtype=np.float64)
        if self.pca_ is not None:
            Z = self.pca_.transform(Z)
        if self.n_clusters_ == 0:
            return np.full(len(Z), -1, dtype=np.int32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels, _ = hdbscan.approximate_predict(self.clusterer_, Z)
        return np.asarray(labels, dtype=np.int32)
