"""``distatomenv export``: n2p2's nnp-atomenv files from a store."""
from __future__ import annotations

from .common import add_parser


def add(sub):
    e = add_parser(sub, "export", help="write n2p2 nnp-atomenv files from a store",
                   description="Write atomic-env.G, atomic-env.dGdx/dGdy/dGdz and "
                               "neighbor-list.data in nnp-atomenv's exact format.")
    e.add_argument("store")
    e.add_argument("--format", choices=["n2p2"], default="n2p2")
    e.add_argument("-o", "--output", required=True, metavar="DIR")
    e.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds files (those of the same names are "
                        "replaced; default: refuse a non-empty folder)")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=run)


def run(args):
    from ..engine.run import export
    paths = export(args.store, args.output, format=args.format, overwrite=args.overwrite)
    if not args.quiet:
        for p in paths:
            print(p)
    return 0
