"""``distatomenv synth``: data sets with exact forces (water-like MD, Lennard-Jones)."""
from __future__ import annotations

import time

from .common import add_parser
from .progress import progress_bar


def add(sub):
    y = add_parser(sub, "synth", help="generate data sets with exact forces (water-like MD, LJ)",
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
    y.set_defaults(func=run)


def run(args):
    t0 = time.perf_counter()
    if args.system == "lj":
        from ..tools.synth import write_lj_dataset, write_lj_fast
        if args.total_atoms:
            bar = progress_bar(args, "synth")
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
    from ..tools.synth.md import write_water_dataset, write_water_fast
    options = {"temperature": args.temperature, "density": args.density}
    if args.equilibration is not None:
        options["equilibration_steps"] = args.equilibration
    if args.total_atoms:
        bar = progress_bar(args, "synth")
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
