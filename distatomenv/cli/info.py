"""``distatomenv info``: what a store holds (:class:`~distatomenv.store.info.StoreInfo`, as text)."""
from __future__ import annotations

from .common import add_parser


def add(sub):
    i = add_parser(sub, "info", help="describe a store",
                   description="Elements, atom counts, arrays, chunks, settings, provenance.")
    i.add_argument("store")
    i.set_defaults(func=run)


def run(args):
    from ..engine.run import info
    print(info(args.store))
    return 0
