"""The ``--neighbors`` string: how many neighbour entries of each element an
environment row keeps per central element.

Two spellings (elements in atomic-number order): n2p2's row-major list
``"6 2 4 4"`` and by name ``"H-H=6,H-O=2,O-H=4,O-O=4"``.
:func:`parse_neighbor_spec` reads either, :func:`format_neighbor_spec` writes
the list and :func:`suggest_neighbors` makes it from per-pair minima (the
survey, the store's statistics).  numpy only.
"""
from __future__ import annotations

import numpy as np

from ..errors import NeighborSpecError

__all__ = ["parse_neighbor_spec", "format_neighbor_spec", "suggest_neighbors"]


def parse_neighbor_spec(spec, elements) -> np.ndarray:
    """Neighbour counts ncut[e][en] from a ``--neighbors`` string.

    Two forms (elements in atomic-number order):
    * n2p2's list, row-major: ``"6 2 4 4"`` means H-H 6, H-O 2, O-H 4, O-O 4;
    * by name: ``"H-H=6,H-O=2,O-H=4,O-O=4"`` (pairs not named are 0).
    n2p2 reads the numbers with atof and truncates; we require integers >= 0.
    Returns int64 (n_elements, n_elements).
    """
    ne = len(elements)
    text = str(spec).strip()
    if isinstance(spec, (list, tuple, np.ndarray)):
        text = " ".join(str(v) for v in spec)
    ncut = np.zeros((ne, ne), dtype=np.int64)
    if "=" in text:
        for item in text.replace(";", ",").split(","):
            item = item.strip()
            if not item:
                continue
            try:
                pair, value = item.split("=")
                a, b = (x.strip() for x in pair.split("-"))
            except ValueError:
                raise NeighborSpecError(
                    f"--neighbors: cannot read {item!r}; expected CENTRAL-NEIGHBOR=COUNT, "
                    f"e.g. {elements[0]}-{elements[-1]}=4") from None
            for x in (a, b):
                if x not in elements:
                    raise NeighborSpecError(
                        f"--neighbors: unknown element {x!r} in {item!r}; the settings have "
                        f"{', '.join(elements)}")
            ncut[elements.index(a), elements.index(b)] = _count(value, item)
        return ncut
    values = text.replace(",", " ").split()
    if len(values) != ne * ne:
        order = ", ".join(f"{a}-{b}" for a in elements for b in elements)
        raise NeighborSpecError(
            f"--neighbors: found {len(values)} value(s) in {text!r}, expected {ne * ne} "
            f"(one per element pair, in the order {order})")
    for k, v in enumerate(values):
        ncut[k // ne, k % ne] = _count(v, text)
    return ncut


def format_neighbor_spec(ncut) -> str:
    """The n2p2-style ``--neighbors`` string of ``ncut`` (inverse of
    :func:`parse_neighbor_spec` for the list form): ``[[6, 2], [4, 4]]`` -> ``"6 2 4 4"``."""
    return " ".join(str(int(v)) for v in np.asarray(ncut).ravel())


def _count(value, context):
    try:
        f = float(value)
    except ValueError:
        raise NeighborSpecError(
            f"--neighbors: {value.strip()!r} in {context!r} is not a number") from None
    if not (0 <= f < 2 ** 31) or f != int(f):
        raise NeighborSpecError(
            f"--neighbors: {value.strip()!r} in {context!r} must be a whole number >= 0")
    return int(f)


def suggest_neighbors(min_counts, elements) -> str:
    """The ``--neighbors`` string (n2p2's row-major list) of the per-pair minima.

    min_counts : dict (central symbol, neighbour symbol) -> smallest count that
        every central atom has; pairs not given (or None) count as 0.
    elements : symbols in atomic-number order.
    """
    elements = list(elements)
    ne = len(elements)
    ncut = np.zeros((ne, ne), dtype=np.int64)
    for (a, b), v in min_counts.items():
        if a not in elements or b not in elements:
            raise ValueError(f"suggest_neighbors: pair {a}-{b} has an element not in {elements}")
        ncut[elements.index(a), elements.index(b)] = 0 if v is None else int(v)
    return format_neighbor_spec(ncut)
