"""``distatomenv coarse-grain``: one site per molecule (n2p2's nnp-cgdata step)."""
from __future__ import annotations

from .common import add_parser, api_option, given
from .progress import progress_bar


def add(sub):
    g = add_parser(sub, "coarse-grain", help="one site per molecule: centres of mass, summed forces",
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
    api_option(g, "--cg-element", source="distatomenv.tools.cg:coarse_grain.cg_element",
               help="element symbol of the CG sites (default {default}, as n2p2's example)")
    g.add_argument("--composition", metavar="FORMULA",
                   help="required composition of every molecule, e.g. H2O, or 'any' (default: "
                        "that of the first molecule)")
    g.add_argument("--format", choices=["n2p2", "ase"], default="n2p2",
                   help="input format (default n2p2; ase: any format ASE reads)")
    g.add_argument("--index", default=":", metavar="SLICE",
                   help="frames to use, ASE syntax (':', '-1', '0:100:10'; default all)")
    g.add_argument("--progress", action="store_true", help="show a progress bar")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    g.set_defaults(func=run)


def run(args):
    from ..tools.cg import coarse_grain
    bar = progress_bar(args, "coarse-grain")
    try:
        result = coarse_grain(args.data, args.output, bond_cutoff=args.bond_cutoff,
                              molecules=args.molecules, masses=args.mass,
                              composition=args.composition, format=args.format,
                              index=args.index, progress=bar, **given(args, "cg_element"))
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        print(f"distatomenv: coarse-grained {result}")
    return 0
