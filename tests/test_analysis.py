"""`distatomenv analyze` end to end: controls, the notebook's method, HDBSCAN,
labels in the store, bad input, the CLI (threads and a 2-worker Dask cluster)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import zarr
from scipy import stats

import distatomenv
from distatomenv.analysis import ALPHA_3SIGMA, Analyzer
from distatomenv.analysis.report import cluster_table
from distatomenv.cli import main
from distatomenv.errors import AnalysisError, StoreError, StoreIncompleteError
from distatomenv.store.labels import label_runs, read_labels

from analysis_stores import blobs, write_store

FAST = dict(seeds=1, permutations=0, sample=2000)


# ----------------------------------------------------------------------------
# Stores
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def positive_store(tmp_path_factory):
    """Forces are a function of the descriptors (plus a little noise)."""
    X, _ = blobs(6000, n_centers=8, dim=6, seed=1)
    rng = np.random.default_rng(2)
    F = np.column_stack([2.0 * X[:, 0] + 0.5 * np.sin(X[:, 1]), X[:, 2] - X[:, 3], X[:, 4] ** 2])
    F += 0.1 * rng.standard_normal(F.shape)
    path = tmp_path_factory.mktemp("pos") / "pos.zarr"
    return write_store(path, X, F, chunk_rows=512, derivatives=True)


@pytest.fixture(scope="module")
def negative_store(tmp_path_factory):
    """Forces independent of the descriptors."""
    X, _ = blobs(6000, n_centers=8, dim=6, seed=3)
    F = np.random.default_rng(4).standard_normal((6000, 3))
    path = tmp_path_factory.mktemp("neg") / "neg.zarr"
    return write_store(path, X, F, chunk_rows=512)


@pytest.fixture(scope="module")
def lj_store(tmp_path_factory):
    """A small store made by the compute path from generated LJ data."""
    from distatomenv.tools.synth import write_lj_dataset

    d = tmp_path_factory.mktemp("lj")
    paths = write_lj_dataset(d, n_structures=6, n_atoms=64, seed=5)
    store = distatomenv.compute(paths["input.data"], neighbors="2 2 2 2", out=d / "lj.zarr")
    return store.path


# ----------------------------------------------------------------------------
# Controls
# ----------------------------------------------------------------------------
def test_positive_control_nearly_all_clusters_significant(positive_store, tmp_path):
    # G is tested on |F| (here a function of the descriptors: sqrt of a sum of
    # squares of functions of X), not on F_x
    res = distatomenv.analyze(positive_store, tmp_path / "rep", descriptor="G", clusters=[5, 10, 20],
                              seeds=2, permutations=30)
    assert {(r["component"], r["k"]) for r in res.results} == {("norm", k) for k in (5, 10, 20)}
    # nearly all: a cluster whose mean force happens to equal the rest's is
    # rightly not significant (k=5 merges blobs), so >= 0.8 each, >= 0.9 overall
    assert np.mean([r["significant_share"] for r in res.results]) >= 0.9
    for r in res.results:
        assert r["significant_share"] >= 0.8, r
        assert r["significant_share"] > r["null_high"]
        assert r["eta2"] > 0.3 > 50 * r["eta2_null"]
        assert r["eta2_null"] == pytest.approx((r["k"] - 1) / (6000 - 1), rel=1e-12)
        assert r["n_tested"] == r["k"]
        assert sum(c["size"] for c in r["clusters"]) == 6000
    # the stability of well-separated blobs is high for k below their number
    assert res.select(component="norm", k=5)[0]["stability_ari"] > 0.5


def test_negative_control_share_at_chance_and_inside_the_permutation_band(negative_store, tmp_path):
    alpha = 0.05          # a threshold with enough expected hits to see the chance level
    res = distatomenv.analyze(negative_store, tmp_path / "rep", descriptor="G", clusters=[20, 50, 100],
                              alpha=alpha, seeds=1, permutations=100, map_k=20)
    assert [(r["component"], r["k"]) for r in res.results] == [("norm", 20), ("norm", 50), ("norm", 100)]
    inside = [r["null_low"] <= r["significant_share"] <= r["null_high"] for r in res.results]
    # each band covers 95 % of chance outcomes: one of three outside is ordinary
    assert sum(inside) >= 2, res.summary()
    for r in res.results:
        assert abs(r["null_mean"] - alpha) < 0.02          # the null is at chance level
        assert r["null_high"] < 0.25
        # eta2 at its null expectation (k-1)/(N-1), within 4 sd (sd ~ sqrt(2(k-1))/N)
        assert r["eta2_null"] == pytest.approx((r["k"] - 1) / (6000 - 1), rel=1e-12)
        assert abs(r["eta2"] - r["eta2_null"]) < 4 * np.sqrt(2 * (r["k"] - 1)) / 6000, r
    pooled = sum(r["n_significant"] for r in res.results) / sum(r["n_tested"] for r in res.results)
    assert abs(pooled - alpha) < 0.04, res.summary()


# ----------------------------------------------------------------------------
# The notebook's method on the raw arrays, via the labels written to the store
# ----------------------------------------------------------------------------
def test_p_values_equal_scipy_ttest_per_cluster_vs_rest(positive_store, tmp_path):
    res = distatomenv.analyze(positive_store, tmp_path / "rep", clusters=[3, 7], component="all",
                              write_labels="nb", **FAST)
    reader = distatomenv.open_store(positive_store)           # still complete after labels
    F = reader.read("H", "forces")
    assert label_runs(positive_store) == ["nb"]
    checked = 0
    for r in res.results:
        desc = r["descriptor"]
        assert desc == f"dGd{r['component']}"                 # matched derivative by default
        labels = read_labels(positive_store, "nb", "H", desc, f"labels_k{r['k']}")
        assert labels.shape == (6000,) and labels.min() >= 0 and labels.max() < r["k"]
        f = F[:, "xyz".index(r["component"])]
        for c in r["clusters"]:
            inside = labels == c["id"]
            assert c["size"] == int(inside.sum())
            if c["size"] < 2:
                continue
            ref = stats.ttest_ind(f[inside], f[~inside], equal_var=False)
            assert c["t"] == pytest.approx(ref.statistic, rel=1e-10)
            assert c["p"] == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)
            assert c["mean"] == pytest.approx(f[inside].mean(), rel=1e-12, abs=1e-12)
            assert c["std"] == pytest.approx(f[inside].std(ddof=1), rel=1e-9)
            checked += 1
    assert checked >= 25


def test_labels_map_to_structures_and_atoms(positive_store, tmp_path):
    distatomenv.analyze(positive_store, tmp_path / "rep", descriptor="G", clusters=[4],
                        component="x", write_labels=True, **FAST)
    lab = read_labels(positive_store, "latest", "H", "G", "labels_k4", rows=slice(0, 600))
    reader = distatomenv.open_store(positive_store)
    s = reader.read("H", "structure", slice(0, 600))
    a = reader.read("H", "atom", slice(0, 600))
    assert lab.shape == s.shape == a.shape
    assert set(np.unique(lab)) <= {0, 1, 2, 3}
    with pytest.raises(StoreError, match="no label array"):
        read_labels(positive_store, "latest", "H", "G", "labels_k99")


def test_a_store_with_labels_can_still_be_overwritten(tmp_path):
    X, _ = blobs(200, seed=0)
    path = write_store(tmp_path / "s.zarr", X, np.zeros((200, 3)), chunk_rows=64)
    distatomenv.analyze(path, tmp_path / "rep", descriptor="G", clusters=[3], component="x",
                        write_labels="r1", **FAST)
    assert (path / "analysis" / "r1" / "H" / "G" / "labels_k3").is_dir()
    write_store(path, X, np.ones((200, 3)), chunk_rows=64, overwrite=True)   # not "foreign"
    assert label_runs(path) == []


def test_minibatch_and_dask_kmeans_find_the_blobs(positive_store):
    _, which = blobs(6000, n_centers=8, dim=6, seed=1)
    from sklearn.metrics import adjusted_rand_score

    for method in ("minibatch", "kmeans"):
        an = Analyzer(descriptor="G", component="x", clusters=[8], method=method, **FAST)
        an.fit(positive_store)
        lab = an.maps_[("H", "G")]["labels"][8]
        rows = np.sort(np.random.default_rng([0, 0]).choice(6000, size=2000, replace=False))
        assert adjusted_rand_score(which[rows], lab) > 0.8, method


def test_standardize_keeps_a_wide_noise_column_from_dominating(tmp_path):
    from sklearn.metrics import adjusted_rand_score

    X, which = blobs(3000, n_centers=6, dim=6, seed=9)
    X = np.column_stack([X, 1000.0 * np.random.default_rng(10).standard_normal(3000)])
    path = write_store(tmp_path / "wide.zarr", X, np.zeros((3000, 3)) + X[:, :3], chunk_rows=256)
    rows = np.sort(np.random.default_rng([0, 0]).choice(3000, size=2000, replace=False))
    ari = {}
    for standardize in (False, True):
        an = Analyzer(descriptor="G", component="x", clusters=[6], standardize=standardize,
                      **FAST).fit(path)
        ari[standardize] = adjusted_rand_score(which[rows], an.maps_[("H", "G")]["labels"][6])
    assert ari[True] > 0.8 > 0.2 > ari[False], ari


def test_tsne_map(negative_store, tmp_path):
    res = distatomenv.analyze(negative_store, tmp_path / "rep", descriptor="G", component="x",
                              clusters=[3], seeds=1, permutations=0, sample=300, tsne=True)
    mp = res.analyzer.maps_[("H", "G")]
    assert mp["tsne"].shape == (300, 2) and mp["pca"].shape == (300, 2)
    assert (tmp_path / "rep" / "map_H_G.png").stat().st_size > 1000


# ----------------------------------------------------------------------------
# HDBSCAN
# ----------------------------------------------------------------------------
def test_hdbscan_end_to_end(positive_store, tmp_path):
    res = distatomenv.analyze(positive_store, tmp_path / "rep", method="hdbscan", descriptor="G",
                              component="x", sample=1500, pca=3, seeds=2, permutations=20,
                              write_labels="hd")
    (r,) = res.results
    assert r["method"] == "hdbscan"
    assert r["k"] >= 4 and len(r["clusters"]) == r["k"]
    assert r["noise"] is not None and r["noise"]["id"] == -1
    assert sum(c["size"] for c in r["clusters"]) + r["noise"]["size"] == 6000
    assert r["n_tested"] <= r["k"]                  # noise is not a cluster
    assert r["significant_share"] >= 0.8
    assert r["stability_ari"] is not None
    labels = read_labels(positive_store, "hd", "H", "G", "labels_hdbscan")
    np.testing.assert_array_equal(read_labels(positive_store, "hd", k="hdbscan"), labels)
    assert labels.min() >= -1 and labels.max() == r["k"] - 1
    assert int((labels == -1).sum()) == r["noise"]["size"]
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert "noise" in report["noise_handling"]
    assert (tmp_path / "rep" / "clusters_H_Fnorm_G_k{}.png".format(r["k"])).exists()
    # the notebook's min_cluster_size, and the noise fraction everywhere
    assert res.report["fits"]["H/G"]["min_cluster_size"] == 50
    assert r["noise_fraction"] == pytest.approx(r["noise"]["size"] / 6000, rel=1e-12)
    groups = r["k"] + (r["noise"]["size"] > 0)               # noise is one group in eta2
    assert r["inertia"] is None and r["eta2_null"] == pytest.approx((groups - 1) / 5999, rel=1e-12)
    with open(tmp_path / "rep" / "clusters.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == r["k"] + 1
    assert {float(row["noise_fraction"]) for row in rows} == {r["noise_fraction"]}
    assert "noise" in cluster_table(res.report).splitlines()[0]
    assert f"{100 * r['noise_fraction']:.1f}%" in cluster_table(res.report) in res.summary()
    assert f"<td>{100 * r['noise_fraction']:.1f}%</td>" in (tmp_path / "rep" / "report.html").read_text()


# ----------------------------------------------------------------------------
# The cluster view, fixed: |F| for G, converged k-means, HDBSCAN options,
# eta2 against its null, read_labels as a user writes it, the share plot
# ----------------------------------------------------------------------------
def test_G_is_tested_on_the_force_magnitude_which_a_cartesian_component_misses(tmp_path):
    """An isotropic toy: |F| is set by the descriptors, its direction is random.
    E[F_x | X] = 0, so F_x clusters are at chance; |F| clusters are not."""
    X, which = blobs(4000, n_centers=6, dim=5, seed=21)
    rng = np.random.default_rng(22)
    u = rng.standard_normal((4000, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    F = (1.0 + 0.5 * which)[:, None] * u                      # magnitude by blob, random direction
    path = write_store(tmp_path / "iso.zarr", X, F, chunk_rows=256, derivatives=True,
                       dX=[X, X, X])                          # dGdx = G: the same clusters
    kw = dict(clusters=[6, 12], seeds=1, permutations=40)
    g = distatomenv.analyze(path, tmp_path / "g", descriptor="G", component="x", **kw)
    assert {r["component"] for r in g.results} == {"norm"}   # x asked, |F| tested
    for r in g.results:
        assert r["significant_share"] >= 0.8 and r["significant_share"] > r["null_high"], r
    cart = distatomenv.analyze(path, tmp_path / "x", descriptor="dGdx", component="x", **kw)
    for r in cart.results:                                   # derivative + matching component kept
        assert r["component"] == "x" and r["descriptor"] == "dGdx"
        assert r["significant_share"] <= r["null_high"] + 0.1, r
    # |F| asked for directly: G space
    (r,) = distatomenv.analyze(path, tmp_path / "n", component="norm", clusters=[6], seeds=1,
                               permutations=0).results
    assert (r["descriptor"], r["component"]) == ("G", "norm")
    report = json.loads((tmp_path / "n" / "report.json").read_text())
    assert "forces_H.png" in report["plots"] and "clusters_H_Fnorm_G_k6.png" in report["plots"]
    with pytest.raises(AnalysisError, match="component 'norm' .* is tested in G space; descriptor dGdy"):
        distatomenv.analyze(path, tmp_path / "bad", component="norm", descriptor="dGdy")


def _inertia(X, centers):
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    return d2.min(axis=1).sum(), d2.argmin(axis=1)


def test_small_elements_get_full_kmeans_converged_with_inertia(tmp_path, monkeypatch):
    from distatomenv.analysis import analyze as analyze_mod

    X, _ = blobs(3000, n_centers=10, dim=4, spread=0.8, seed=31)
    path = write_store(tmp_path / "small.zarr", X, X[:, :3], chunk_rows=128)
    res = distatomenv.analyze(path, tmp_path / "rep", descriptor="G", clusters=[4, 15],
                              write_labels="full", **FAST)
    fit = res.report["fits"]["H/G"]
    assert fit["algorithm"].startswith("kmeans (full")
    assert fit["converged"] == {"4": True, "15": True}
    for k in (4, 15):
        centers = zarr.open_array(str(path), path=f"analysis/full/H/G/centers_k{k}", mode="r")[...]
        labels = read_labels(path, k=k)
        inertia, nearest = _inertia(X, centers)
        np.testing.assert_array_equal(labels, nearest)
        # converged: every centre is the mean of its rows (a Lloyd fixed point)
        for c in range(k):
            np.testing.assert_allclose(centers[c], X[labels == c].mean(axis=0), rtol=1e-9, atol=1e-9)
        (r,) = res.select(k=k)
        assert r["inertia"] == pytest.approx(inertia, rel=1e-9)
        assert fit["inertia"][str(k)] == r["inertia"]
        assert sum(c["inertia"] for c in r["clusters"]) == pytest.approx(inertia, rel=1e-9)
    with open(tmp_path / "rep" / "clusters.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(float(row["inertia"]) for row in rows if row["k"] == "4") == pytest.approx(
        res.select(k=4)[0]["inertia"], rel=1e-9)
    assert all(row["noise_fraction"] == "" for row in rows)
    head = cluster_table(res.report).splitlines()[0]
    assert "inertia" in head and "noise" not in head and "eta2 (null)" in head
    assert cluster_table(res.report) in res.summary()
    # above the threshold: mini-batch, its inertia reported from the labelling pass
    monkeypatch.setattr(analyze_mod, "FULL_KMEANS_ROWS", 1000)
    res = distatomenv.analyze(path, tmp_path / "rep2", descriptor="G", clusters=[4],
                              write_labels="mb", **FAST)
    fit = res.report["fits"]["H/G"]
    assert fit["algorithm"] == "minibatch" and fit["epochs"] > 1
    centers = zarr.open_array(str(path), path="analysis/mb/H/G/centers_k4", mode="r")[...]
    assert res.results[0]["inertia"] == pytest.approx(_inertia(X, centers)[0], rel=1e-9)


def test_hdbscan_min_samples_from_the_cli_and_the_noise_fraction(positive_store, tmp_path, capsys):
    noise = {}
    for ms in (2, 60):
        out = tmp_path / f"ms{ms}"
        assert main(["analyze", str(positive_store), "-o", str(out), "--method", "hdbscan",
                     "--descriptor", "G", "--sample", "1200", "--pca", "3", "--seeds", "1",
                     "--permutations", "0", "--min-samples", str(ms)]) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["parameters"]["min_samples"] == ms
        assert report["parameters"]["min_cluster_size"] is None             # the API's default
        assert report["fits"]["H/G"]["min_samples"] == ms
        assert report["fits"]["H/G"]["min_cluster_size"] == 50
        (r,) = report["results"]
        noise[ms] = r["noise_fraction"]
        printed = capsys.readouterr().out
        assert cluster_table(report) in printed and "noise" in cluster_table(report).splitlines()[0]
    assert noise[60] > noise[2]          # more neighbours for a core point: more noise
    with pytest.raises(AnalysisError, match=r"min_samples = 5000 is more than the \d+ sampled rows"):
        distatomenv.analyze(positive_store, tmp_path / "bad", method="hdbscan", descriptor="G",
                            sample=300, seeds=1, permutations=0, min_samples=5000)
    X, _ = blobs(40, seed=0)
    small = write_store(tmp_path / "tiny.zarr", X, np.zeros((40, 3)), chunk_rows=16)
    with pytest.raises(AnalysisError, match=r"min_samples = 50 \(= min_cluster_size\) is more than "
                                            r"the 40 sampled rows"):
        distatomenv.analyze(small, tmp_path / "bad2", method="hdbscan", descriptor="G", seeds=1)


def test_read_labels_as_a_user_writes_it(tmp_path):
    X, _ = blobs(600, seed=41)
    path = write_store(tmp_path / "l.zarr", X, X[:, :3], chunk_rows=64, derivatives=True)
    with pytest.raises(StoreError, match="holds no cluster labels .*--write-labels"):
        read_labels(path, k=3)
    distatomenv.analyze(path, tmp_path / "r1", descriptor="G", clusters=[3, 4], write_labels="mine",
                        **FAST)
    full = read_labels(path, "mine", "H", "G", "labels_k4")           # the explicit call
    np.testing.assert_array_equal(read_labels(path, k=4), full)      # the only run, element, descr.
    np.testing.assert_array_equal(read_labels(distatomenv.open_store(path), k=4), full)  # a reader
    np.testing.assert_array_equal(read_labels(path, k=4, rows=[5, 1]), full[[5, 1]])
    with pytest.raises(StoreError, match=r"2 label arrays that fit .*pass k= one of \[3, 4\]"):
        read_labels(path)
    with pytest.raises(StoreError, match=r"no label array in analysis run 'mine' fits name='labels_k7' "
                                         r"\(labels in that run: H/G/labels_k3, H/G/labels_k4\)"):
        read_labels(path, k=7)
    with pytest.raises(StoreError, match="give k or name, not both"):
        read_labels(path, k=4, name="labels_k4")
    with pytest.raises(StoreError, match="k must be a number of clusters"):
        read_labels(path, k=0)
    with pytest.raises(StoreError, match=r"no analysis run 'other' in the store \(runs: \['mine'\]\)"):
        read_labels(path, "other", k=4)
    # a second run, neither named "latest": say which
    distatomenv.analyze(path, tmp_path / "r2", component="x", clusters=[3], write_labels="dg", **FAST)
    with pytest.raises(StoreError, match=r"several analysis runs \(\['dg', 'mine'\]\) and none is "
                                         r"named 'latest'; pass run="):
        read_labels(path, k=3)
    assert read_labels(path, "dg", k=3).shape == (600,)
    # "latest" wins; several descriptors there: say which argument tells them apart
    distatomenv.analyze(path, tmp_path / "r3", component="all", clusters=[3], write_labels=True,
                        **FAST)
    with pytest.raises(StoreError, match=r"run 'latest' has 3 label arrays .*pass descriptor= one of "
                                         r"\['dGdx', 'dGdy', 'dGdz'\]"):
        read_labels(path, k=3)
    np.testing.assert_array_equal(read_labels(path, k=3, descriptor="dGdy"),
                                  read_labels(path, "latest", "H", "dGdy", "labels_k3"))


def test_share_plot_shows_the_k_values_as_plain_non_overlapping_ticks(tmp_path, monkeypatch):
    import matplotlib.figure

    from distatomenv.analysis import plots

    figs = []
    save = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda self, *a, **kw: (figs.append(self), save(self, *a, **kw))[1])
    ks = [3, 5, 10, 20, 50, 100, 150, 200]
    entries = [{"component": c, "descriptor": d, "k": k, "significant_share": 0.5,
                "significant_share_holm": 0.4, "null_low": 0.0, "null_high": 0.1}
               for c, d in (("x", "dGdx"), ("norm", "G")) for k in ks]
    plots.plot_share("O", entries, 0.0027, tmp_path / "share.png")
    (fig,) = figs
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()                              # the figure as saved, drawn again
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        assert [t.get_text() for t in labels] == [str(k) for k in ks]
        assert not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in labels]
        for a, b in zip(boxes, boxes[1:]):
            assert a.x1 < b.x0, (a, b)                       # no two labels overlap
    assert {ax.get_title() for ax in fig.axes} == {"O: Fx vs dGdx", "O: |F| vs G"}


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------
def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        distatomenv.analyze(tmp_path / "absent.zarr", tmp_path / "rep")


def test_incomplete_store(tmp_path):
    X, _ = blobs(300, seed=0)
    path = write_store(tmp_path / "inc.zarr", X, np.zeros((300, 3)), finalize=False)
    with pytest.raises(StoreIncompleteError, match="incomplete"):
        distatomenv.analyze(path, tmp_path / "rep")
    reader = distatomenv.open_store(path, allow_incomplete=True)
    with pytest.raises(StoreIncompleteError, match="incomplete"):
        distatomenv.analyze(reader, tmp_path / "rep")


def test_unknown_element(negative_store, tmp_path):
    with pytest.raises(AnalysisError, match=r"element 'Xx' is not in the store \(elements: \['H'\]\)"):
        distatomenv.analyze(negative_store, tmp_path / "rep", elements=["Xx"])


def test_derivative_descriptor_without_derivatives(negative_store, tmp_path):
    with pytest.raises(AnalysisError, match="descriptor dGdy needs derivatives.*--descriptor G"):
        distatomenv.analyze(negative_store, tmp_path / "rep", descriptor="dGdy")
    # the default (the matching derivative) too
    with pytest.raises(AnalysisError, match="descriptor dGdx needs derivatives"):
        distatomenv.analyze(negative_store, tmp_path / "rep")


def test_more_clusters_than_rows(tmp_path):
    X, _ = blobs(120, seed=0)
    path = write_store(tmp_path / "small.zarr", X, np.zeros((120, 3)), chunk_rows=64)
    with pytest.raises(AnalysisError, match=r"k = \[150, 200\] cluster\(s\) requested, but element H "
                                            r"has only 120 rows"):
        distatomenv.analyze(path, tmp_path / "rep", descriptor="G")


def test_non_finite_forces(tmp_path):
    X, _ = blobs(100, seed=0)
    F = np.zeros((100, 3))
    F[7, 1] = np.nan
    path = write_store(tmp_path / "nan.zarr", X, F, chunk_rows=64)
    with pytest.raises(AnalysisError, match="1 force value\\(s\\) are NaN or infinite"):
        distatomenv.analyze(path, tmp_path / "rep", descriptor="G", clusters=[3])


@pytest.mark.parametrize("params, message", [
    ({"method": "dbscan"}, "unknown method 'dbscan'"),
    ({"component": "w"}, "unknown force component 'w'; choose x, y, z, all or norm"),
    ({"component": "norm", "descriptor": "dGdx"}, "component 'norm' .* descriptor dGdx goes with a "
                                                  "Cartesian component"),
    ({"descriptor": "dGdw"}, "unknown descriptor 'dGdw'"),
    ({"clusters": [1, 3]}, "each number of clusters must be an integer >= 2, got 1"),
    ({"alpha": 1.5}, "alpha must be a number strictly between 0 and 1, got 1.5"),
    ({"permutations": -1}, "permutations must be an integer >= 0"),
    ({"workers": 2, "scheduler": "tcp://x:1"}, "scheduler and workers exclude each other"),
])
def test_bad_options(negative_store, tmp_path, params, message):
    with pytest.raises(AnalysisError, match=message):
        distatomenv.analyze(negative_store, tmp_path / "rep", **params)


def test_analyzer_is_a_scikit_learn_estimator():
    """get_params/set_params/clone/repr as any scikit-learn estimator; every
    parameter has a declared constraint; report.json records all but progress."""
    from sklearn.base import BaseEstimator, clone

    a = Analyzer(clusters=[3, 5], method="kmeans", standardize=True)
    assert isinstance(a, BaseEstimator)
    params = a.get_params()
    assert params["clusters"] == [3, 5] and params["method"] == "kmeans" and params["seeds"] == 3
    assert set(params) == set(Analyzer._parameter_constraints)
    assert set(params) - set(Analyzer.RECORDED_PARAMS) == {"progress"}
    assert list(a.recorded_params()) == list(Analyzer.RECORDED_PARAMS)
    assert repr(a) == "Analyzer(clusters=[3, 5], method='kmeans', standardize=True)"
    b = clone(a).set_params(seeds=1, alpha=0.01)
    assert b is not a and b.seeds == 1 and b.alpha == 0.01 and b.clusters == [3, 5]
    assert a.seeds == 3 and repr(Analyzer()) == "Analyzer()"
    with pytest.raises(ValueError, match="Invalid parameter 'colour'"):
        a.set_params(colour="red")


@pytest.mark.parametrize("params, message", [
    ({"seeds": True}, r"seeds must be an integer >= 1, got True"),
    ({"threads": 2.0}, r"threads must be an integer >= 1, got 2.0"),
    ({"clusters": 3.5}, r"each number of clusters must be an integer >= 2, got 3.5"),
    ({"clusters": []}, r"clusters is empty"),
    ({"standardize": "yes"}, r"The 'standardize' parameter of Analyzer must be an instance of 'bool'"),
    ({"write_labels": 3}, r"The 'write_labels' parameter of Analyzer must be None, .* 'str'"),
])
def test_parameter_constraints_are_checked_before_any_work(params, message):
    with pytest.raises(AnalysisError, match=message):
        Analyzer(**params)._check_params()
    a = Analyzer(clusters=7, alpha=None, elements="H")
    a._check_params()
    assert a._ks == [7] and a._alpha == ALPHA_3SIGMA


def test_cli_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "absent.zarr"), "-o", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("distatomenv: error: ") and "no such store" in err
    with pytest.raises(SystemExit):
        main(["analyze", "x.zarr", "-o", "r", "--clusters", "3,a"])
    assert "expected comma-separated integers" in capsys.readouterr().err


# ----------------------------------------------------------------------------
# CLI end to end on a store from the compute path
# ----------------------------------------------------------------------------
def _run_cli(store, out, *extra):
    return main(["analyze", str(store), "-o", str(out), "--clusters", "3,5", "--permutations", "20",
                 "--seeds", "2", "--component", "x", *extra])


def test_cli_end_to_end(lj_store, tmp_path, capsys):
    out = tmp_path / "report"
    assert _run_cli(lj_store, out, "--write-labels") == 0
    printed = capsys.readouterr().out
    assert "share" in printed and "chance 95%" in printed and "report.html" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "distatomenv-analysis"
    assert report["parameters"]["clusters"] == [3, 5]
    assert report["store"]["provenance"]["command"]
    assert set(report["elements"]) == {"Ar", "Kr"}
    assert len(report["results"]) == 4                       # 2 elements x 1 component x 2 k
    for r in report["results"]:
        for key in ("element", "component", "descriptor", "k", "significant_share", "null_low",
                    "null_high", "eta2", "clusters"):
            assert key in r
        assert r["descriptor"] == "dGdx" and r["component"] == "x"
        assert len(r["clusters"]) == r["k"]
        for c in r["clusters"]:
            assert set(c) >= {"id", "size", "mean", "std", "t", "p", "p_holm", "p_bh", "hedges_g"}
        assert sum(c["size"] for c in r["clusters"]) == report["elements"][r["element"]]["n_rows"]
    with open(out / "clusters.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * (3 + 5)
    html = (out / "report.html").read_text()
    for name in report["plots"]:
        assert (out / name).stat().st_size > 1000
        assert f"src='{name}'" in html
    # per-cluster histograms for the map k (10 when swept, else the middle k: 5 here)
    assert {"clusters_Ar_Fx_dGdx_k5.png", "share_Ar.png", "forces_Kr.png",
            "map_Kr_dGdx.png"} <= set(report["plots"])
    assert "How to read the readout" in html and "How to read the notebook's view" in html
    # eta2 beside its null expectation, and each k's inertia, in the table, the page and the JSON
    assert "eta2 (null)" in printed and "inertia" in printed
    assert "<th>&eta;&sup2; null</th>" in html and "<th>inertia</th>" in html
    for r in report["results"]:
        n = report["elements"][r["element"]]["n_rows"]
        assert r["eta2_null"] == pytest.approx((r["k"] - 1) / (n - 1), rel=1e-12)
        assert f"<td>{r['eta2_null']:.3f}</td>" in html
        assert r["inertia"] == report["fits"][f"{r['element']}/dGdx"]["inertia"][str(r["k"])] > 0
    assert label_runs(lj_store) == ["latest"]
    assert distatomenv.open_store(lj_store).status == "complete"


def test_cli_with_two_dask_workers_gives_the_same_numbers(lj_store, tmp_path, capsys):
    assert _run_cli(lj_store, tmp_path / "threads", "-q") == 0
    assert _run_cli(lj_store, tmp_path / "dask", "-q", "--workers", "2") == 0
    assert capsys.readouterr().out == ""                      # -q: nothing printed
    a = json.loads((tmp_path / "threads" / "report.json").read_text())["results"]
    b = json.loads((tmp_path / "dask" / "report.json").read_text())["results"]
    assert a == b


def test_dask_runs_come_from_the_backend_not_the_analysis_layer(lj_store, tmp_path):
    """The analysis layer never starts a cluster: Analyzer(workers=...) needs the
    runner that distatomenv.analyze takes from the Dask backend."""
    with pytest.raises(AnalysisError, match="need a Dask runner: call distatomenv.analyze"):
        Analyzer(workers=2, clusters=[3]).fit(lj_store)
    # dask-ml's k-means|| through the backend's runner (a local cluster of 2)
    res = distatomenv.analyze(lj_store, tmp_path / "r", method="kmeans", clusters=[3],
                              elements=["Ar"], component="x", permutations=5, seeds=1,
                              workers=2)
    assert res.results and res.results[0]["k"] == 3
