"""``distatomenv convert``: n2p2 input.data from any trajectory ASE reads."""
from __future__ import annotations

from .common import add_parser


def add(sub):
    v = add_parser(sub, "convert", help="write n2p2 input.data from any trajectory ASE reads",
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
    v.set_defaults(func=run)


def run(args):
    from ..io.ase import convert
    count = [0, 0]

    def tally(structures, atoms):
        count[0] += structures
        count[1] += atoms
    out = convert(args.input, args.output, index=args.index,
                  fmt="n2p2" if args.format == "n2p2" else args.ase_format, progress=tally)
    if not args.quiet:
        print(f"distatomenv: converted {count[0]} structures ({count[1]} atoms) -> {out}")
    return 0
