"""The ``distatomenv`` command line: argument parsing only.

Every subcommand delegates to the public Python API (:mod:`distatomenv.pipeline`);
no logic lives here.  Errors of type DistatomenvError are printed as one line
(``distatomenv: error: FILE:LINE: ...``) with exit status 2.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from . import __version__
from .errors import DistatomenvError


def detect_backend() -> str:
    """"mpi" when this process was started by an MPI launcher with more than one
    rank (MPICH/Hydra, Open MPI, Slurm PMI), else "serial"."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        v = os.environ.get(var)
        if v and v.isdigit() and int(v) > 1:
            return "mpi"
    return "serial"


def launcher_rank() -> int:
    """This process's rank as set by an MPI launcher (0 when not under MPI)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    return 0


_LAUNCHERS = ("mpiexec", "mpirun", "mpiexec.hydra", "orterun", "prterun", "srun")


def _launcher_on_terminal() -> bool:
    """Whether the MPI launcher that started this process (an ancestor process on
    this host) writes its stderr to a terminal: the ranks' own stderr is a pipe
    to the launcher, which copies it to its own.  Linux /proc only."""
    pid = os.getpid()
    for _ in range(8):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
        if name in _LAUNCHERS:
            try:
                return os.readlink(f"/proc/{pid}/fd/2").startswith(("/dev/pts/", "/dev/tty"))
            except OSError:
                return False
    return False


def show_progress(args) -> bool:
    """Progress bars: with --progress; never with --quiet or on MPI ranks > 0;
    else when stderr is a terminal (under MPI: the launcher's stderr)."""
    if getattr(args, "quiet", False) or launcher_rank() > 0:
        return False
    if getattr(args, "progress", False):
        return True
    if sys.stderr.isatty():
        return True
    return detect_backend() == "mpi" and _launcher_on_terminal()


def cmd_compute(args):
    from .pipeline import compute
    command = "distatomenv " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    quiet = args.quiet or launcher_rank() > 0        # under MPI only rank 0 reports
    bar = None
    if show_progress(args):
        from .progress import ProgressBar
        bar = ProgressBar()
    progress = bar
    backend = args.backend
    options = {}
    if backend is None:
        backend = "dask" if (args.workers or args.scheduler) else detect_backend()
    if backend == "dask":
        options = {"workers": args.workers, "scheduler": args.scheduler}
    try:
        store = compute(args.data, settings=args.settings, scaling=args.scaling,
                        neighbors=args.neighbors, out=args.output, dtype=args.dtype,
                        chunk_rows=args.chunk_rows, overwrite=args.overwrite, resume=args.resume,
                        threads=args.threads, progress=progress, command=command,
                        backend=backend, bins=args.bins, **options)
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        t = store.timings
        atoms = sum(store.n_rows(e) for e in store.elements)
        phases = ", ".join(f"{k} {v:.2f} s" if k not in ("ranks", "workers", "load balance")
                           else f"{k} {v:g}" for k, v in t.items() if k != "total")
        print(f"distatomenv: {atoms} atoms in {store.layout.n_structures} structures -> "
              f"{store.path} ({t['total']:.2f} s, {atoms / max(t['total'], 1e-9):.0f} atoms/s; "
              f"{phases})")
    return 0


def cmd_export(args):
    from .pipeline import export
    paths = export(args.store, args.output, format=args.format)
    if not args.quiet:
        for p in paths:
            print(p)
    return 0


def cmd_info(args):
    from .pipeline import info
    print(info(args.store))
    return 0


def cmd_scaling(args):
    from .io.scaling import write_scaling
    from .io.settings import read_settings
    from .pipeline import _beside, scaling_pass
    st = read_settings(_beside(args.data, args.settings, "input.nn"))
    table = scaling_pass(args.data, settings=st, threads=args.threads)
    write_scaling(args.output, table, st.sfset)
    if not args.quiet:
        print(args.output)
    return 0


def cmd_neighbors(args):
    from .survey import survey_neighbors
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm
        bar = tqdm(unit="structure", desc="neighbors", dynamic_ncols=True)
    progress = (lambda structures, atoms: bar.update(structures - bar.n)) if bar else None
    try:
        survey = survey_neighbors(args.data, settings=args.settings, bins=args.bins,
                                  rmax=args.rmax, structures=args.structures,
                                  threads=args.threads, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    paths = survey.write(args.output)
    if not args.quiet:
        print(survey.table())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    else:
        print(survey.suggested)
    return 0


def cmd_demo(args):
    from .pipeline import compute, export, info
    from .synth import write_lj_dataset
    t0 = time.perf_counter()
    d = args.directory
    os.makedirs(d, exist_ok=True)
    paths = write_lj_dataset(d, n_structures=args.structures, n_atoms=args.atoms, seed=args.seed,
                             overwrite=True)
    print(f"demo: generated {args.structures} Lennard-Jones configurations of {args.atoms} "
          f"atoms with exact forces: {paths['input.data']}, {paths['input.nn']}")
    store_path = os.path.join(d, "store.zarr")
    store = compute(paths["input.data"], neighbors=args.neighbors, out=store_path,
                    overwrite=True, threads=args.threads,
                    command="distatomenv demo")
    print(f"demo: computed environments of {sum(store.n_rows(e) for e in store.elements)} "
          f"atoms into {store_path} ({store.timings['total']:.1f} s)")
    out = os.path.join(d, "n2p2")
    written = export(store_path, out)
    print(f"demo: exported n2p2 nnp-atomenv files: {', '.join(os.path.basename(p) for p in written)}"
          f" in {out}")
    print(info(store_path))
    print(f"demo: done in {time.perf_counter() - t0:.1f} s")
    return 0


def _k_list(text):
    """argparse type of --clusters: "3,5,10" -> [3, 5, 10]."""
    try:
        ks = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,5,10, got {text!r}")
    if not ks:
        raise argparse.ArgumentTypeError("expected at least one number of clusters")
    return ks


def cmd_analyze(args):
    from .analysis import analyze
    command = "distatomenv " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = analyze(args.store, args.output, command=command, elements=args.element,
                     descriptor=args.descriptor, component=args.component, method=args.method,
                     clusters=args.clusters, alpha=args.alpha, seed=args.seed, seeds=args.seeds,
                     standardize=args.standardize, permutations=args.permutations,
                     sample=args.sample, pca=args.pca, min_cluster_size=args.min_cluster_size,
                     map_k=args.map_k, tsne=args.tsne, write_labels=args.write_labels,
                     scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                     progress=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        print(result.summary())
        print(f"distatomenv: report in {result.files['report.html']} "
              f"({result.timings['total']:.1f} s)")
    return 0


def _add_analyze_parser(sub):
    a = sub.add_parser("analyze", help="cluster the environments and test the forces per cluster",
                       description="Do the descriptors encode the forces?  Clusters each element's "
                                   "rows in descriptor space (k-means sweep or HDBSCAN) and tests "
                                   "each cluster's forces against the rest (Welch's t-test), as "
                                   "n2p2's descriptor-analysis notebook, with corrected p-values, "
                                   "effect sizes, a permutation null and stability over seeds.")
    a.add_argument("store")
    a.add_argument("-o", "--output", required=True, metavar="REPORT_DIR",
                   help="folder for report.json, clusters.csv, plots and report.html")
    a.add_argument("--element", action="append", metavar="E",
                   help="element to analyse (repeatable; default: every element, each separately)")
    a.add_argument("--descriptor", choices=["G", "dGdx", "dGdy", "dGdz"], default=None,
                   help="descriptor space (default: the derivative matching each force "
                        "component, dGdx for x ...; G: the symmetry functions for every component)")
    a.add_argument("--component", choices=["x", "y", "z", "all"], default="all",
                   help="force component(s) to test (default all)")
    a.add_argument("--method", choices=["minibatch", "kmeans", "hdbscan"], default="minibatch",
                   help="minibatch: mini-batch k-means over the store's chunks (default); "
                        "kmeans: dask-ml k-means||; hdbscan: HDBSCAN on a sample")
    a.add_argument("--clusters", type=_k_list, metavar="K,K,...",
                   help="numbers of clusters to sweep (default 3,5,10,20,50,100,150,200)")
    a.add_argument("--alpha", type=float,
                   help="significance threshold per cluster (default 0.0027, 3 sigma)")
    a.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    a.add_argument("--seeds", type=int, default=3,
                   help="models per k for the stability (adjusted Rand index); 1 = off (default 3)")
    a.add_argument("--standardize", action="store_true",
                   help="scale descriptor columns to zero mean, unit variance before clustering")
    a.add_argument("--permutations", type=int, default=100, metavar="N",
                   help="rounds of the shuffled-label null (default 100; 0 = none)")
    a.add_argument("--sample", type=int, default=10000, metavar="N",
                   help="rows of the random sample: initial centres, HDBSCAN fit, stability, "
                        "map (default 10000)")
    a.add_argument("--pca", type=int, metavar="N", help="hdbscan: reduce to N principal components first")
    a.add_argument("--min-cluster-size", type=int, metavar="N",
                   help="hdbscan: min_cluster_size (default max(10, sample/200))")
    a.add_argument("--map-k", type=int, metavar="K",
                   help="k shown in the map and the per-cluster histograms (default 10)")
    a.add_argument("--tsne", action="store_true", help="also a t-SNE map of the sample")
    a.add_argument("--write-labels", nargs="?", const="latest", default=None, metavar="RUN",
                   help="write the cluster labels into the store under analysis/RUN/ "
                        "(default RUN: latest)")
    a.add_argument("--workers", type=int, help="start a local Dask cluster of N worker processes")
    a.add_argument("--scheduler", metavar="ADDRESS", help="join a Dask cluster, e.g. tcp://HOST:8786")
    a.add_argument("--threads", type=int, help="threads of this process (default: all cores)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    a.set_defaults(func=cmd_analyze)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distatomenv",
        description="Atomic environment descriptors (n2p2 symmetry functions) at any scale: "
                    "compute them into a Zarr store, export n2p2's nnp-atomenv files.")
    p.add_argument("--version", action="version", version=f"distatomenv {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compute", help="compute environment vectors into a store",
                       description="Compute every atom's symmetry functions, their derivatives "
                                   "and its environment vector into a Zarr v3 store.")
    c.add_argument("data", help="n2p2 input.data file")
    c.add_argument("--settings", help="input.nn (default: input.nn beside DATA)")
    c.add_argument("--scaling", help="scaling.data (default: scaling.data beside DATA; "
                                     "computed from DATA when there is none)")
    c.add_argument("--neighbors", required=True, metavar="SPEC",
                   help='neighbour counts per element pair, n2p2 style "6 2 4 4" '
                        '(elements in atomic-number order) or "H-H=6,H-O=2,O-H=4,O-O=4"')
    c.add_argument("-o", "--output", required=True, metavar="STORE", help="store to write")
    c.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="floating type of G and dG (default float64)")
    c.add_argument("--chunk-rows", type=int, default=2048, help="rows per chunk (default 2048)")
    c.add_argument("--bins", type=int, default=100,
                   help="bins of the scaled-SF histograms kept in the store (default 100)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing store")
    c.add_argument("--resume", action="store_true",
                   help="continue an incomplete store: compute only the missing work units")
    c.add_argument("--threads", type=int, help="numba threads per process (default: all cores "
                                                "of this process, divided among ranks/workers)")
    c.add_argument("--backend", choices=["serial", "mpi", "dask"], default=None,
                   help="where units run (default: mpi when started under mpiexec, else serial)")
    c.add_argument("--workers", type=int,
                   help="dask: start a local cluster of this many worker processes")
    c.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask: join an existing cluster, e.g. tcp://HOST:8786")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    c.add_argument("--progress", action="store_true",
                   help="show progress bars even when stderr is not a terminal "
                        "(default: only on a terminal)")
    c.set_defaults(func=cmd_compute)

    e = sub.add_parser("export", help="write n2p2 nnp-atomenv files from a store",
                       description="Write atomic-env.G, atomic-env.dGdx/dGdy/dGdz and "
                                   "neighbor-list.data in nnp-atomenv's exact format.")
    e.add_argument("store")
    e.add_argument("--format", choices=["n2p2"], default="n2p2")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("info", help="describe a store",
                       description="Elements, atom counts, arrays, chunks, settings, provenance.")
    i.add_argument("store")
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("scaling", help="compute scaling.data (like n2p2's nnp-scaling)",
                       description="SF minimum, maximum, mean and sigma over every atom.")
    s.add_argument("data")
    s.add_argument("--settings", help="input.nn (default: beside DATA)")
    s.add_argument("-o", "--output", required=True, metavar="FILE")
    s.add_argument("--threads", type=int)
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_scaling)

    nb = sub.add_parser("neighbors", help="survey neighbour counts and g(r) before computing",
                        description="Count every atom's neighbour entries of each element "
                                    "within the global maximum SF cutoff (as compute does), "
                                    "print per element pair the minimum, mean and maximum and "
                                    "the suggested --neighbors, and write neighbors.histo, "
                                    "rdf.dat (g(r) per pair) and neighbors.png.")
    nb.add_argument("data", help="n2p2 input.data file")
    nb.add_argument("--settings", help="input.nn (default: input.nn beside DATA)")
    nb.add_argument("-o", "--output", default="neighbors-survey", metavar="DIR",
                    help="folder for the files (default: ./neighbors-survey)")
    nb.add_argument("--bins", type=int, default=200, help="bins of g(r) (default 200)")
    nb.add_argument("--rmax", type=float, help="largest r of g(r) (default: the cutoff)")
    nb.add_argument("--structures", type=int, metavar="N",
                    help="survey only the first N structures")
    nb.add_argument("--threads", type=int, help="numba threads (default: all cores)")
    nb.add_argument("-q", "--quiet", action="store_true",
                    help="print only the suggested --neighbors string")
    nb.set_defaults(func=cmd_neighbors)

    d = sub.add_parser("demo", help="generate Lennard-Jones data, compute, export, info",
                       description="The embedded default: a binary Lennard-Jones liquid with "
                                   "exact forces, run through compute, export and info.")
    d.add_argument("--directory", default="distatomenv-demo", help="where to write everything")
    d.add_argument("--structures", type=int, default=20)
    d.add_argument("--atoms", type=int, default=64)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--neighbors", default="2 2 2 2",
                   help='neighbour counts, default "2 2 2 2" (Ar-Ar, Ar-Kr, Kr-Ar, Kr-Kr)')
    d.add_argument("--threads", type=int)
    d.set_defaults(func=cmd_demo)
    _add_analyze_parser(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DistatomenvError as exc:
        print(f"distatomenv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distatomenv: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
