"""The ``distatomenv`` command line: argument parsing only.

Every subcommand delegates to the public Python API (:mod:`distatomenv.pipeline`);
no logic lives here.  Errors of type DistatomenvError, and the OS's refusals,
are printed as one line (``distatomenv: error: FILE:LINE: ...``, control
characters escaped) with the exit status of their class
(:func:`distatomenv.errors.describe`: 2 usage, 3 bad input, 4 I/O, 5 damaged
store, 130 interrupted; README "Failures").
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from . import __version__
from .errors import DistatomenvError, describe


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


#: The scheduler address that ``--backend dask`` joins when neither --workers
#: nor --scheduler is given (set by the dask-kubernetes operator in DaskJobs).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def _backend(args):
    """(backend name, backend options) from --backend/--workers/--scheduler."""
    backend = args.backend
    if backend is None:
        backend = "dask" if (args.workers or args.scheduler) else detect_backend()
    if backend == "dask":
        scheduler = args.scheduler
        if scheduler is None and args.workers is None:
            # a Dask operator's DaskJob (and dask's own config) name the cluster here
            scheduler = os.environ.get(SCHEDULER_ENV) or None
        return backend, {"workers": args.workers, "scheduler": scheduler}
    return backend, {}


def _add_backend_arguments(p):
    p.add_argument("--threads", type=int, help="numba threads per process (default: all cores "
                                                "of this process, divided among ranks/workers)")
    p.add_argument("--backend", choices=["serial", "mpi", "dask"], default=None,
                   help="where the work runs (default: mpi when started under mpiexec, "
                        "else serial)")
    p.add_argument("--workers", type=int,
                   help="dask: start a local cluster of this many worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask: join an existing cluster, e.g. tcp://HOST:8786 (with --backend "
                        f"dask and no --workers: default ${SCHEDULER_ENV}, which the Dask "
                        "Kubernetes operator sets in a DaskJob)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--progress", action="store_true",
                   help="show progress bars even when stderr is not a terminal "
                        "(default: only on a terminal)")


def cmd_compute(args):
    from .pipeline import compute
    command = "distatomenv " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    quiet = args.quiet or launcher_rank() > 0        # under MPI only rank 0 reports
    bar = None
    if show_progress(args):
        from .progress import ProgressBar
        bar = ProgressBar()
    progress = bar
    data, settings, scaling = _compute_input(args)
    backend, options = _backend(args)
    try:
        store = compute(data, settings=settings, scaling=scaling,
                        neighbors=args.neighbors, out=args.output, dtype=args.dtype,
                        chunk_rows=args.chunk_rows, overwrite=args.overwrite, resume=args.resume,
                        threads=args.threads, progress=progress, command=command,
                        backend=backend, bins=args.bins, precision=args.precision,
                        **({"force_matching": args.force_matching} if args.force_matching else {}),
                        **options)
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
    paths = export(args.store, args.output, format=args.format, overwrite=args.overwrite)
    if not args.quiet:
        for p in paths:
            print(p)
    return 0


def cmd_verify(args):
    from .errors import EXIT_DAMAGED
    from .pipeline import verify
    report = verify(args.store)
    print(report.text())
    return 0 if report.ok else EXIT_DAMAGED


def cmd_info(args):
    from .pipeline import info
    print(info(args.store))
    return 0


def cmd_scaling(args):
    from .pipeline import scaling
    backend, options = _backend(args)
    bar = None
    if show_progress(args):
        from .progress import ProgressBar
        bar = ProgressBar()
    try:
        scaling(args.data, args.output, settings=args.settings, backend=backend,
                threads=args.threads, progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet and launcher_rank() == 0:
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


def cmd_warmup(args):
    import numba

    from .warmup import warmup
    t = warmup()
    if not args.quiet:
        print(f"compiled: compute {t['compute']:.1f} s, neighbour survey {t['neighbors']:.1f} s; "
              f"numba cache: {numba.config.CACHE_DIR or 'beside the package (__pycache__)'}")
    return 0


def cmd_demo(args):
    from .demo import run_demo
    bar = None
    if sys.stderr.isatty():
        from .progress import ProgressBar
        bar = ProgressBar()
    res = run_demo(args.directory, structures=args.structures, molecules=args.molecules,
                   seed=args.seed, permutations=args.permutations, threads=args.threads,
                   progress=bar)
    for kind, result in res.reports.items():
        print(f"\n{kind}:")
        print(result.summary())
    print(f"\ndemo: reports: {res.reports['atomistic'].out_dir}/report.html and "
          f"{res.reports['cg'].out_dir}/report.html")
    for line in res.verdict:
        print(f"demo: {line}")
    print(f"demo: done in {res.seconds:.1f} s")
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
    from .pipeline import analyze
    command = "distatomenv " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = analyze(args.store if len(args.store) > 1 else args.store[0], args.output,
                     command=command, elements=args.element,
                     descriptor=args.descriptor, component=args.component, method=args.method,
                     clusters=args.clusters, alpha=args.alpha, seed=args.seed, seeds=args.seeds,
                     standardize=args.standardize, permutations=args.permutations,
                     sample=args.sample, pca=args.pca, min_cluster_size=args.min_cluster_size,
                     min_samples=args.min_samples, map_k=args.map_k, tsne=args.tsne, write_labels=args.write_labels,
                     scheduler=args.scheduler, workers=args.workers, threads=args.threads,
                     progress=not args.quiet and sys.stderr.isatty(),
                     # readout options: only those given, the API holds the defaults
                     **{k: getattr(args, k) for k in ("readout", "folds", "tiers", "readout_sample",
                                                      "clusters_view", "advice", "advice_tolerance",
                                                      "compare_different_data") if hasattr(args, k)})
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
    a.add_argument("--component", choices=["x", "y", "z", "all", "norm"], default="all",
                   help="force component(s) to test (default all: x, y, z; norm: |F|, in G space)")
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
                   help="hdbscan: min_cluster_size (default 50, n2p2's notebook)")
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
    r.add_argument("--folds", type=int, default=argparse.SUPPRESS, metavar="K",
                   help="folds of the cross-validation, grouped by structure (default 5, or one "
                        "structure per fold when there are fewer)")
    r.add_argument("--tiers", type=_tier_list, default=argparse.SUPPRESS, metavar="T,T,...",
                   help="readout tiers: linear, g_weighted, reference_knn, potential_linear, "
                        "potential_quadratic (default: all the store allows; the potential tiers "
                        "need a store computed with --force-matching)")
    r.add_argument("--readout-sample", type=int, default=argparse.SUPPRESS, metavar="N",
                   help="atoms per element sampled for the k-NN reference and the parity plot "
                        "(default 5000)")
    r.add_argument("--no-advice", dest="advice", action="store_false", default=argparse.SUPPRESS,
                   help="skip the design advice (SF importance, suggested SF set, neighbour "
                        "saturation)")
    r.add_argument("--advice-tolerance", type=float, default=argparse.SUPPRESS, metavar="DR2",
                   help="R² the suggested SF set and --neighbors may lose against the full set "
                        "(default 0.01)")
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
    a.set_defaults(func=cmd_analyze)


def _tier_list(text):
    tiers = [t.strip() for t in text.split(",") if t.strip()]
    if not tiers:
        raise argparse.ArgumentTypeError("expected at least one readout tier")
    return tiers


# ---------------------------------------------------------------------------
# coarse-grain, convert, synth, and the --format hook of compute
# ---------------------------------------------------------------------------
def _progress_bar(args, phase):
    if not show_progress(args):
        return None
    from .progress import ProgressBar
    bar = ProgressBar()
    bar.start(phase, 0, 0)
    return bar


def _compute_input(args):
    """(data, settings, scaling) for compute: with --format ase the trajectory
    is first converted to input.data (``--converted`` or ``STORE.input.data``; for an
    object-store URL, ``<name>.input.data`` beside the input);
    input.nn and scaling.data default to the ones beside the trajectory."""
    if getattr(args, "format", "n2p2") != "ase":
        return args.data, args.settings, args.scaling
    from .io.ase import convert
    if detect_backend() == "mpi":
        raise DistatomenvError("--format ase under mpiexec: convert first (distatomenv convert "
                               "TRAJ -o input.data), then run compute on input.data")
    store = os.fspath(args.output).rstrip("/\\")
    if "://" in store:                   # an object-store URL: convert beside the input
        store = os.path.join(os.path.dirname(os.path.abspath(args.data)),
                             store.rsplit("/", 1)[-1])
    out = args.converted or store + ".input.data"
    convert(args.data, out, index=args.index, fmt=args.ase_format)
    if not args.quiet:
        print(f"distatomenv: converted {args.data} -> {out} (n2p2 input.data)")
    here = os.path.dirname(os.path.abspath(args.data))
    settings = args.settings or os.path.join(here, "input.nn")
    scaling = args.scaling
    if scaling is None and os.path.exists(os.path.join(here, "scaling.data")):
        scaling = os.path.join(here, "scaling.data")
    return out, settings, scaling


def cmd_coarse_grain(args):
    from .cg import coarse_grain
    bar = _progress_bar(args, "coarse-grain")
    try:
        result = coarse_grain(args.data, args.output, bond_cutoff=args.bond_cutoff,
                              molecules=args.molecules, masses=args.mass,
                              cg_element=args.cg_element, composition=args.composition,
                              format=args.format, index=args.index, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"distatomenv: coarse-grained {result}")
    return 0


def cmd_convert(args):
    from .io.ase import convert
    count = [0, 0]

    def tally(structures, atoms):
        count[0] += structures
        count[1] += atoms
    out = convert(args.input, args.output, index=args.index,
                  fmt="n2p2" if args.format == "n2p2" else args.ase_format, progress=tally)
    if not args.quiet:
        print(f"distatomenv: converted {count[0]} structures ({count[1]} atoms) -> {out}")
    return 0


def cmd_synth(args):
    t0 = time.perf_counter()
    if args.system == "lj":
        from .synth import write_lj_dataset, write_lj_fast
        if args.total_atoms:
            bar = _progress_bar(args, "synth")
            try:
                r = write_lj_fast(args.output, args.total_atoms, atoms_per_structure=args.atoms,
                                  seed=args.seed, base_samples=args.structures,
                                  overwrite=args.overwrite, progress=bar)
            finally:
                if bar is not None:
                    bar.close()
            what = f"{r['n_structures']} Lennard-Jones structures of {args.atoms} atoms"
            paths = r
        else:
            paths = write_lj_dataset(args.output, n_structures=args.structures,
                                     n_atoms=args.atoms, seed=args.seed, overwrite=args.overwrite)
            what = f"{args.structures} Lennard-Jones structures of {args.atoms} atoms"
        if not args.quiet:
            print(f"distatomenv: {what} ({time.perf_counter() - t0:.1f} s): "
                  f"{paths['input.data']}, {paths['input.nn']}")
        return 0
    from .synth.md import write_water_dataset, write_water_fast
    options = {"temperature": args.temperature, "density": args.density}
    if args.equilibration is not None:
        options["equilibration_steps"] = args.equilibration
    if args.total_atoms:
        bar = _progress_bar(args, "synth")
        try:
            r = write_water_fast(args.output, args.total_atoms, n_molecules=args.molecules,
                                 seed=args.seed, base_samples=args.structures,
                                 overwrite=args.overwrite, progress=bar, **options)
        finally:
            if bar is not None:
                bar.close()
        what = f"{r['n_structures']} structures, {r['n_atoms']} atoms"
    else:
        r = write_water_dataset(args.output, n_structures=args.structures,
                                n_molecules=args.molecules, seed=args.seed,
                                overwrite=args.overwrite, stride=args.stride, **options)
        what = f"{args.structures} structures, {3 * args.molecules * args.structures} atoms"
    if not args.quiet:
        print(f"distatomenv: water-like liquid, {what}, box {r['box']:.4f} A, SF cutoff "
              f"{r['sf_cutoff']:g} A ({r['seconds']:.1f} s)")
        for key in ("atomistic_data", "atomistic_nn", "cg_data", "cg_nn"):
            print(f"  {key.replace('_', ' ')}: {r[key]}")
    return 0


def _add_data_parsers(sub):
    g = sub.add_parser("coarse-grain", help="one site per molecule: centres of mass, summed forces",
                       description="Coarse-grain an atomistic input.data: one site per molecule "
                                   "at its centre of mass (wrapped into the cell), force = sum of "
                                   "the molecule's atomic forces, energy, charge and cell carried "
                                   "over (n2p2's nnp-cgdata step).")
    g.add_argument("data", help="atomistic input.data (or, with --format ase, any trajectory "
                                "ASE reads with forces)")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="CG input.data to write")
    how = g.add_mutually_exclusive_group(required=True)
    how.add_argument("--bond-cutoff", metavar="R",
                     help='molecules = atoms connected by bonds shorter than R, through periodic '
                          'images: one length ("1.2") or per element pair ("H-O=1.2,H-H=0"; '
                          'unlisted pairs: the leading bare length, else not bonded)')
    how.add_argument("--molecules", metavar="FILE",
                     help="molecules file: one line per molecule of 0-based atom indices, the "
                          "same for every structure")
    g.add_argument("--mass", action="append", metavar="E=M",
                   help="override an atomic mass, e.g. H=2.014 (repeatable or comma-separated; "
                        "default: standard atomic weights)")
    g.add_argument("--cg-element", default="Cm",
                   help="element symbol of the CG sites (default Cm, as n2p2's example)")
    g.add_argument("--composition", metavar="FORMULA",
                   help="required composition of every molecule, e.g. H2O, or 'any' (default: "
                        "that of the first molecule)")
    g.add_argument("--format", choices=["n2p2", "ase"], default="n2p2",
                   help="input format (default n2p2; ase: any format ASE reads)")
    g.add_argument("--index", default=":", metavar="SLICE",
                   help="frames to use, ASE syntax (':', '-1', '0:100:10'; default all)")
    g.add_argument("--progress", action="store_true", help="show a progress bar")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    g.set_defaults(func=cmd_coarse_grain)

    v = sub.add_parser("convert", help="write n2p2 input.data from any trajectory ASE reads",
                       description="Convert extended XYZ, VASP OUTCAR, LAMMPS dumps with forces, "
                                   "ASE .traj, ... (needs the optional package ase: "
                                   "pip install 'distatomenv[ase]') to n2p2's input.data.")
    v.add_argument("input", help="trajectory with forces")
    v.add_argument("-o", "--output", required=True, metavar="FILE", help="input.data to write")
    v.add_argument("--format", choices=["ase", "n2p2"], default="ase",
                   help="reader (default ase; n2p2: input.data, e.g. to select frames)")
    v.add_argument("--ase-format", metavar="NAME",
                   help="ASE format name (extxyz, vasp-out, lammps-dump-text, traj, ...; "
                        "default: guessed from the file name)")
    v.add_argument("--index", default=":", metavar="SLICE",
                   help="frames to convert, ASE syntax (':', '-1', '0:100:10'; default all)")
    v.add_argument("-q", "--quiet", action="store_true", help="no summary")
    v.set_defaults(func=cmd_convert)

    y = sub.add_parser("synth", help="generate data sets with exact forces (water-like MD, LJ)",
                       description="water: molecular dynamics of a flexible water-like liquid "
                                   "(O-H-H, harmonic bonds and angle, Lennard-Jones between "
                                   "molecules, Langevin thermostat); writes atomistic/ and cg/ "
                                   "input.data + input.nn.  lj: Monte Carlo Lennard-Jones liquid.  "
                                   "--total-atoms makes large benchmark inputs quickly.")
    y.add_argument("system", choices=["water", "lj"])
    y.add_argument("-o", "--output", required=True, metavar="DIR")
    y.add_argument("--structures", type=int, default=10,
                   help="structures to sample (with --total-atoms: distinct MD samples that the "
                        "structures are made from; default 10)")
    y.add_argument("--molecules", type=int, default=64, help="water: molecules per structure "
                                                             "(default 64)")
    y.add_argument("--atoms", type=int, default=64, help="lj: atoms per structure (default 64)")
    y.add_argument("--total-atoms", type=int, metavar="N",
                   help="write at least N atoms fast: --structures MD (water) or Monte Carlo "
                        "(lj) samples under random cube symmetries, translations and jitter, "
                        "exact forces recomputed")
    y.add_argument("--stride", type=int, default=40, help="water: MD steps between samples")
    y.add_argument("--equilibration", type=int, metavar="STEPS",
                   help="water: MD steps before the first sample (default 2000)")
    y.add_argument("--temperature", type=float, default=300.0, help="water: K (default 300)")
    y.add_argument("--density", type=float, default=0.030,
                   help="water: molecules per A^3 (default 0.030)")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--overwrite", action="store_true", help="replace existing files")
    y.add_argument("--progress", action="store_true", help="show a progress bar")
    y.add_argument("-q", "--quiet", action="store_true", help="no summary")
    y.set_defaults(func=cmd_synth)


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
    c.add_argument("--precision", choices=["full", "n2p2"], default="full",
                   help="full (default): lossless.  n2p2: LOSSY, G, dG and the force-matching "
                        "features rounded to 33 mantissa bits (relative error <= 5.8e-11, below "
                        "the 9 significant digits of n2p2's text, so 'export' still matches "
                        "n2p2 within 1 in the last digit) for a store about 1/5 of n2p2's text; "
                        "float64 only (refused with --dtype float32); recorded in the store")
    c.add_argument("--chunk-rows", type=int, default=2048, help="rows per chunk (default 2048)")
    c.add_argument("--force-matching", choices=["none", "linear", "quadratic"], default=None,
                   help="also store the force-matching features for the readout's potential tiers: "
                        "linear (D_i = sum_j dG_j/dr_i over every neighbour; 3 x sum of SFs floats "
                        "per atom) or quadratic (also the derivatives of G_s G_t; 3 x sum "
                        "nSF(nSF+1)/2 more); default linear (on --resume: what the store has)")
    c.add_argument("--bins", type=int, default=100,
                   help="bins of the scaled-SF histograms kept in the store (default 100)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing store")
    c.add_argument("--resume", action="store_true",
                   help="continue an incomplete store: compute only the missing work units")
    c.add_argument("--format", choices=["n2p2", "ase"], default="n2p2",
                   help="input format (default n2p2; ase: any trajectory ASE reads with forces, "
                        "converted to input.data first)")
    c.add_argument("--ase-format", metavar="NAME", help="with --format ase: ASE format name "
                                                        "(default: guessed from the file name)")
    c.add_argument("--index", default=":", metavar="SLICE",
                   help="with --format ase: frames to use (ASE syntax, default all)")
    c.add_argument("--converted", metavar="FILE",
                   help="with --format ase: where the converted input.data goes "
                        "(default STORE.input.data)")
    _add_backend_arguments(c)
    c.set_defaults(func=cmd_compute)

    e = sub.add_parser("export", help="write n2p2 nnp-atomenv files from a store",
                       description="Write atomic-env.G, atomic-env.dGdx/dGdy/dGdz and "
                                   "neighbor-list.data in nnp-atomenv's exact format.")
    e.add_argument("store")
    e.add_argument("--format", choices=["n2p2"], default="n2p2")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds files (those of the same names are "
                        "replaced; default: refuse a non-empty folder)")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", help="check every chunk of a store (checksums, missing chunks)",
                       description="Read every chunk of every array and check its crc32c "
                                   "checksum; in a complete store also that no chunk is "
                                   "missing.  Prints OK, or each damaged chunk and why; exit "
                                   "status 0 when intact, 5 when damaged.")
    v.add_argument("store")
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", help="describe a store",
                       description="Elements, atom counts, arrays, chunks, settings, provenance.")
    i.add_argument("store")
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("scaling", help="compute scaling.data (like n2p2's nnp-scaling)",
                       description="SF minimum, maximum, mean and sigma over every atom.")
    s.add_argument("data")
    s.add_argument("--settings", help="input.nn (default: beside DATA)")
    s.add_argument("-o", "--output", required=True, metavar="FILE")
    _add_backend_arguments(s)
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

    d = sub.add_parser("demo", help="the whole story: MD liquid, coarse-graining, compute, "
                                    "analyze, verdict",
                       description="The embedded default: generate a water-like liquid by "
                                   "molecular dynamics, coarse-grain it, compute and analyse "
                                   "both descriptions, and compare how well each resolves "
                                   "its forces.")
    d.add_argument("--directory", default="distatomenv-demo", help="where to write everything")
    d.add_argument("--structures", type=int, default=20, help="configurations (default 20)")
    d.add_argument("--molecules", type=int, default=64, help="molecules each (default 64)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--permutations", type=int, default=50,
                   help="rounds of the permutation null (default 50)")
    d.add_argument("--threads", type=int)
    d.set_defaults(func=cmd_demo)

    w = sub.add_parser("warmup", help="compile every numba kernel now (for container images)",
                       description="Compile the kernels of compute (every SF type, force "
                                   "matching) and of the neighbour survey into numba's cache "
                                   "(NUMBA_CACHE_DIR), so that the first real run does not wait "
                                   "for the compiler. Run it once when building an image.")
    w.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    w.set_defaults(func=cmd_warmup)

    _add_analyze_parser(sub)
    _add_data_parsers(sub)
    return p


def main(argv=None) -> int:
    from .interrupt import watching
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with watching():                 # Ctrl-C ends even a long numba loop
            return args.func(args)
    except BrokenPipeError:              # stdout closed early (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except BaseException as exc:         # noqa: B036 - only the known classes are handled
        known = describe(exc)
        if known is None:                # a bug: keep the traceback for the report
            raise
        message, status = known
        prefix = "distatomenv: " if status == 130 else "distatomenv: error: "
        print(prefix + message, file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
