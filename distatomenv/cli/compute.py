"""``distatomenv compute``: environment vectors of every atom into a store."""
from __future__ import annotations


from ..errors import DistatomenvError
from ..executors.launcher import detect_backend, launcher_rank
from .common import add_backend_arguments, add_parser, api_option, backend_options, \
    command_line, given
from .progress import progress_bar

API = "distatomenv.engine.run:compute"


def add(sub):
    c = add_parser(sub, "compute", help="compute environment vectors into a store",
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
    api_option(c, "--chunk-rows", type=int, source=f"{API}.chunk_rows",
               help="rows per chunk (default: 2048, doubled up to 16384 while a chunk of the "
                    "widest array stays within 4 MiB and every worker keeps 16 chunks of the "
                    "most numerous element; on --resume: the store's)")
    c.add_argument("--force-matching", choices=["none", "linear", "quadratic"], default=None,
                   help="also store the force-matching features for the readout's potential tiers: "
                        "linear (D_i = sum_j dG_j/dr_i over every neighbour; 3 x sum of SFs floats "
                        "per atom) or quadratic (also the derivatives of G_s G_t; 3 x sum "
                        "nSF(nSF+1)/2 more); default linear (on --resume: what the store has)")
    api_option(c, "--bins", type=int, source=f"{API}.bins",
               help="bins of the scaled-SF histograms kept in the store (default {default})")
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
    add_backend_arguments(c)
    c.set_defaults(func=run)


def compute_input(args):
    """(data, settings, scaling) for compute: with --format ase the trajectory
    is converted to input.data first (:func:`distatomenv.io.ase.convert_for_store`)."""
    if getattr(args, "format", "n2p2") != "ase":
        return args.data, args.settings, args.scaling
    from ..io.ase import convert_for_store
    if detect_backend() == "mpi":
        raise DistatomenvError("--format ase under mpiexec: convert first (distatomenv convert "
                               "TRAJ -o input.data), then run compute on input.data")
    data, settings, scaling = convert_for_store(args.data, args.output, converted=args.converted,
                                                index=args.index, fmt=args.ase_format,
                                                settings=args.settings, scaling=args.scaling)
    if not args.quiet:
        print(f"distatomenv: converted {args.data} -> {data} (n2p2 input.data)")
    return data, settings, scaling


def run(args):
    from ..engine.run import compute
    command = command_line()
    quiet = args.quiet or launcher_rank() > 0        # under MPI only rank 0 reports
    bar = progress_bar(args)
    data, settings, scaling = compute_input(args)
    backend, options = backend_options(args)
    try:
        store = compute(data, settings=settings, scaling=scaling,
                        neighbors=args.neighbors, out=args.output, dtype=args.dtype,
                        overwrite=args.overwrite, resume=args.resume,
                        threads=args.threads, progress=bar, command=command,
                        backend=backend, precision=args.precision,
                        **given(args, "chunk_rows", "bins"),
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
