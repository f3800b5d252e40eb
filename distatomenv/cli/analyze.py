"""``distatomenv analyze``: do the descriptors encode the forces?"""
from __future__ import annotations

import argparse

from .common import add_parser, api_option, command_line, given
from .progress import show_progress

API = "distatomenv.analysis.analyze:Analyzer"

#: The Analyzer parameters the command line passes when given.
PARAMETERS = ("descriptor", "component", "method", "clusters", "alpha", "seed", "seeds",
              "permutations", "sample", "pca", "min_cluster_size", "min_samples", "map_k",
              "readout", "folds", "tiers", "readout_sample", "clusters_view", "advice",
              "advice_tolerance", "compare_different_data")


def _k_list(text):
    """argparse type of --clusters: "3,5,10" -> [3, 5, 10]."""
    try:
        ks = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,5,10, got {text!r}")
    if not ks:
        raise argparse.ArgumentTypeError("expected at least one number of clusters")
    return ks


def _tier_list(text):
    tiers = [t.strip() for t in text.split(",") if t.strip()]
    if not tiers:
        raise argparse.ArgumentTypeError("expected at least one readout tier")
    return tiers


def add(sub):
    a = add_parser(sub, "analyze", help="cluster the environments and test the forces per cluster",
                   description="Do the descriptors encode the forces?  Clusters each element's "
                               "rows in descriptor space (k-means sweep or HDBSCAN) and tests "
                               "each cluster's forces against the rest (Welch's t-test), as "
                               "n2p2's descriptor-analysis notebook, with corrected p-values, "
                               "effect sizes, a permutation null and stability over seeds.")
    a.add_argument("store", nargs="+",
                   help="the store; several stores of the same data: the first is analysed and "
                        "the readouts of all are compared, paired over the same folds")
    a.add_argument("-o", "--output", required=True, metavar="REPORT_DIR",
                   help="folder for report.json, clusters.csv, plots and report.html")
    a.add_argument("--element", action="append", metavar="E",
                   help="element to analyse (repeatable; default: every element, each separately)")
    a.add_argument("--descriptor", choices=["G", "dGdx", "dGdy", "dGdz"], default=None,
                   help="descriptor space (default: the derivative matching each force "
                        "component, dGdx for x ...; G: the symmetry functions, tested on the force "
                        "magnitude |F|, since by symmetry a Cartesian component is blind to G)")
    api_option(a, "--component", choices=["x", "y", "z", "all", "norm"],
               source=f"{API}.component",
               help="force component(s) to test (default {default}: x, y, z; norm: |F|, in G space)")
    api_option(a, "--method", choices=["minibatch", "kmeans", "hdbscan"], source=f"{API}.method",
               help="minibatch: mini-batch k-means over the store's chunks (default {default}); "
                    "kmeans: dask-ml k-means||; hdbscan: HDBSCAN on a sample")
    api_option(a, "--clusters", type=_k_list, metavar="K,K,...",
               source="distatomenv.analysis.analyze:DEFAULT_CLUSTERS", unset=None,
               help="numbers of clusters to sweep (default {default})")
    api_option(a, "--alpha", type=float, source="distatomenv.analysis.analyze:ALPHA_3SIGMA",
               fmt="{:.2g}", unset=None, help="significance threshold per cluster (default {default}, 3 sigma)")
    api_option(a, "--seed", type=int, source=f"{API}.seed", help="random seed (default {default})")
    api_option(a, "--seeds", type=int, source=f"{API}.seeds",
               help="models per k for the stability (adjusted Rand index); 1 = off "
                    "(default {default})")
    a.add_argument("--standardize", action="store_true",
                   help="scale descriptor columns to zero mean, unit variance before clustering")
    api_option(a, "--permutations", type=int, metavar="N", source=f"{API}.permutations",
               help="rounds of the shuffled-label null (default {default}; 0 = none)")
    api_option(a, "--sample", type=int, metavar="N", source=f"{API}.sample",
               help="rows of the random sample: initial centres, HDBSCAN fit, stability, "
                    "map (default {default})")
    a.add_argument("--pca", type=int, metavar="N", help="hdbscan: reduce to N principal components first")
    api_option(a, "--min-cluster-size", type=int, metavar="N",
               source="distatomenv.analysis.analyze:DEFAULT_MIN_CLUSTER_SIZE", unset=None,
               help="hdbscan: min_cluster_size (default {default}, n2p2's notebook)")
    a.add_argument("--min-samples", type=int, metavar="N",
                   help="hdbscan: min_samples, the neighbours that make a core point "
                        "(default: min_cluster_size, as the hdbscan package)")
    a.add_argument("--map-k", type=int, metavar="K",
                   help="k shown in the map and the per-cluster histograms (default 10)")
    a.add_argument("--tsne", action="store_true", help="also a t-SNE map of the sample")
    a.add_argument("--write-labels", nargs="?", const="latest", default=None, metavar="RUN",
                   help="write the cluster labels into the store under analysis/RUN/ "
                        "(default RUN: latest)")
    r = a.add_argument_group("force readout (the headline: cross-validated R² of the forces "
                             "from the dG rows)")
    r.add_argument("--readout", dest="readout", action="store_true", default=argparse.SUPPRESS,
                   help="run the readout (default: when the store has derivatives)")
    r.add_argument("--no-readout", dest="readout", action="store_false", default=argparse.SUPPRESS,
                   help="skip the readout")
    api_option(r, "--folds", type=int, metavar="K", source="distatomenv.analysis.readout:DEFAULT_FOLDS",
               help="folds of the cross-validation, grouped by structure (default {default}, or "
                    "one structure per fold when there are fewer)")
    r.add_argument("--tiers", type=_tier_list, default=argparse.SUPPRESS, metavar="T,T,...",
                   help="readout tiers: linear, g_weighted, reference_knn, potential_linear, "
                        "potential_quadratic (default: all the store allows; the potential tiers "
                        "need a store computed with --force-matching)")
    api_option(r, "--readout-sample", type=int, metavar="N", source=f"{API}.readout_sample",
               help="atoms per element sampled for the k-NN reference and the parity plot "
                    "(default {default})")
    r.add_argument("--no-advice", dest="advice", action="store_false", default=argparse.SUPPRESS,
                   help="skip the design advice (SF importance, suggested SF set, neighbour "
                        "saturation)")
    api_option(r, "--advice-tolerance", type=float, metavar="DR2",
               source=f"{API}.advice_tolerance",
               help="R² the suggested SF set and --neighbors may lose against the full set "
                    "(default {default})")
    r.add_argument("--compare-different-data", action="store_true", default=argparse.SUPPRESS,
                   help="compare stores made from different data (side by side, unpaired, "
                        "marked) instead of refusing")
    a.add_argument("--no-clusters", dest="clusters_view", action="store_false",
                   default=argparse.SUPPRESS,
                   help="skip the n2p2 notebook's cluster view (faster: the readout only)")
    a.add_argument("--workers", type=int, help="start a local Dask cluster of N worker processes")
    a.add_argument("--scheduler", metavar="ADDRESS", help="join a Dask cluster, e.g. tcp://HOST:8786")
    a.add_argument("--threads", type=int, help="threads of this process (default: all cores)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    a.set_defaults(func=run)


def run(args):
    from ..analysis.run import analyze
    result = analyze(args.store if len(args.store) > 1 else args.store[0], args.output,
                     command=command_line(), elements=args.element,
                     standardize=args.standardize, tsne=args.tsne,
                     write_labels=args.write_labels, scheduler=args.scheduler,
                     workers=args.workers, threads=args.threads, progress=show_progress(args),
                     # only the options given: the API holds the defaults
                     **given(args, *PARAMETERS))
    if not args.quiet:
        print(result.summary())
        print(f"distatomenv: report in {result.files['report.html']} "
              f"({result.timings['total']:.1f} s)")
    return 0
