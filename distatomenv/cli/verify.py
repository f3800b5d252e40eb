"""``distatomenv verify``: every chunk of a store checked."""
from __future__ import annotations

from ..errors import EXIT_DAMAGED
from .common import add_parser


def add(sub):
    v = add_parser(sub, "verify", help="check every chunk of a store (checksums, missing chunks)",
                   description="Read every chunk of every array and check its crc32c "
                               "checksum; in a complete store also that no chunk is "
                               "missing.  Prints OK, or each damaged chunk and why; exit "
                               "status 0 when intact, 5 when damaged.")
    v.add_argument("store")
    v.set_defaults(func=run)


def run(args):
    from ..engine.run import verify
    report = verify(args.store)
    print(report.text())
    return 0 if report.ok else EXIT_DAMAGED
