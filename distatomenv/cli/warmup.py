"""``distatomenv warmup``: compile every numba kernel into numba's cache now."""
from __future__ import annotations

from .common import add_parser


def add(sub):
    w = add_parser(sub, "warmup", help="compile every numba kernel now (for container images)",
                   description="Compile the kernels of compute (every SF type, force "
                               "matching) and of the neighbour survey into numba's cache "
                               "(NUMBA_CACHE_DIR), so that the first real run does not wait "
                               "for the compiler. Run it once when building an image.")
    w.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    w.set_defaults(func=run)


def run(args):
    import numba

    from ..tools.warmup import warmup
    t = warmup()
    if not args.quiet:
        print(f"compiled: compute {t['compute']:.1f} s, neighbour survey {t['neighbors']:.1f} s; "
              f"numba cache: {numba.config.CACHE_DIR or 'beside the package (__pycache__)'}")
    return 0
