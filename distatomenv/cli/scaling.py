"""``distatomenv scaling``: scaling.data as n2p2's nnp-scaling writes it."""
from __future__ import annotations

from ..executors.launcher import launcher_rank
from .common import add_backend_arguments, add_parser, backend_options
from .progress import progress_bar


def add(sub):
    s = add_parser(sub, "scaling", help="compute scaling.data (like n2p2's nnp-scaling)",
                   description="SF minimum, maximum, mean and sigma over every atom.")
    s.add_argument("data")
    s.add_argument("--settings", help="input.nn (default: beside DATA)")
    s.add_argument("-o", "--output", required=True, metavar="FILE")
    add_backend_arguments(s)
    s.set_defaults(func=run)


def run(args):
    from ..engine.scaling import scaling
    backend, options = backend_options(args)
    bar = progress_bar(args)
    try:
        scaling(args.data, args.output, settings=args.settings, backend=backend,
                threads=args.threads, progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet and launcher_rank() == 0:
        print(args.output)
    return 0
