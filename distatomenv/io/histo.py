"""Text files of histograms: scaled symmetry functions and neighbour counts.

distatomenv's own formats, in the spirit of n2p2's ``*.histo`` files: comment
lines starting with ``#`` describe the file, then one data line per bin with
whitespace-separated numeric columns.  Header lines of the form
``# key: value`` are machine readable; other comment lines are for people.
Floats are written ``%24.16E`` (17 significant digits: they read back
bit for bit).

``sf-scaled.ZZZ.SSSS.histo`` -- one scaled symmetry function
-------------------------------------------------------------
(:func:`sf_histo_name`: ZZZ = atomic number of the element, SSSS = 1-based
SF index in n2p2's sorted SF order, both zero-padded)::

    # distatomenv histogram of one scaled symmetry function
    # format: distatomenv sf-histo 1
    # element: H
    # sf_index: 1
    # description: <free text, one line>
    # values: 1000          values seen = underflow + overflow + sum of counts
    # underflow: 0          values below the first edge
    # overflow: 0           values above the last edge
    # bins: 100
    # columns: left right centre count
    ...
      -1.0000000000000000E+00  -9.8000000000000000E-01  -9.9000000000000000E-01  12

Bin k holds values v with left <= v < right; the last bin also holds
v == right.

``neighbors.histo`` -- neighbour counts per element pair
--------------------------------------------------------
A column named ``C<-N`` (central element C, neighbour element N) holds, in
the row of n, how many atoms of element C have exactly n neighbour entries of
element N within the cutoff (periodic images counted separately, as in
n2p2's neighbour lists).  Pairs are in n2p2's row-major order, the order of
the ``--neighbors`` list: central element major, both in atomic-number order
(``H<-H H<-O O<-H O<-O``).  Rows run from n = 0 to the largest count of any
pair.  Header lines give per pair the number of central atoms, the minimum,
mean and maximum count, and the suggested ``--neighbors`` string: per pair the
smallest count that every central atom has (the minimum; 0 for a pair whose
central element has no atoms)::

    # distatomenv neighbour-count histogram
    # format: distatomenv neighbors-histo 1
    # elements: H O
    # cutoff: 1.2000000000000000E+01        (optional; length unit of input.data)
    # columns: n H<-H H<-O O<-H O<-O
    # summary: H<-H atoms=128 min=20 mean=31.4 max=41
    ...
    # suggested: 20 10 21 7
         0     0     0     0     0
    ...

Readers raise :class:`~distatomenv.errors.HistoFileError` (``FILE:LINE:
message``) for malformed files.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..elements import ATOMIC_NUMBER, atomic_number
from ..descriptors.spec import suggest_neighbors
from ..errors import HistoFileError

__all__ = [
    "SFHisto", "NeighborsHisto", "sf_histo_name", "write_sf_histo", "read_sf_histo",
    "write_neighbors_histo", "read_neighbors_histo", "summarize_counts",
    "pair_name", "NEIGHBORS_HISTO_NAME",
]

NEIGHBORS_HISTO_NAME = "neighbors.histo"
_SF_FORMAT = "distatomenv sf-histo 1"
_NB_FORMAT = "distatomenv neighbors-histo 1"
_SF_COLUMNS = ["left", "right", "centre", "count"]
_FLOAT = "%24.16E"


# ----------------------------------------------------------------------------- helpers
def pair_name(central: str, neighbor: str) -> str:
    """Column name of an element pair: ``"H<-O"`` = O neighbours of H atoms."""
    return f"{central}<-{neighbor}"


def sf_histo_name(element: str, index: int) -> str:
    """File name of SF ``index`` (1-based) of ``element``: ``sf-scaled.001.0003.histo``."""
    return f"sf-scaled.{atomic_number(element):03d}.{int(index):04d}.histo"


def summarize_counts(h):
    """(atoms, min, mean, max) of a neighbour-count histogram ``h`` (h[n] = atoms
    with exactly n neighbours); min/mean/max are None when ``h`` counts no atom."""
    h = np.asarray(h, dtype=np.int64)
    atoms = int(h.sum())
    if atoms == 0:
        return 0, None, None, None
    nz = np.flatnonzero(h)
    mean = float(np.dot(np.arange(h.size, dtype=np.float64), h) / atoms)
    return atoms, int(nz[0]), mean, int(nz[-1])


def _check_elements(elements):
    elements = [str(e) for e in elements]
    for e in elements:
        if e not in ATOMIC_NUMBER:
            raise ValueError(f"unknown element symbol {e!r}")
    if [atomic_number(e) for e in elements] != sorted(atomic_number(e) for e in elements) \
            or len(set(elements)) != len(elements):
        raise ValueError(f"elements must be distinct and in atomic-number order, got {elements}")
    return elements


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _header(lines, path):
    """Split a file into {key: (value, line)} of '# key: value' lines and data lines."""
    keys, data = {}, []
    for lineno, raw in enumerate(lines, start=1):
        s = raw.strip()
        if not s:
            continue
        if s.startswith("#"):
            body = s[1:].strip()
            key, sep, value = body.partition(":")
            key = key.strip()
            if sep and key and " " not in key and key not in keys:
                keys[key] = (value.strip(), lineno)
            continue
        data.append((lineno, s.split()))
    return keys, data


def _require(keys, name, path):
    if name not in keys:
        raise HistoFileError(path, None, f"missing header line '# {name}: ...'")
    return keys[name]


def _int_field(tok, path, line, what, minimum=0):
    try:
        v = int(tok)
    except ValueError:
        raise HistoFileError(path, line, f"found {tok!r} for {what}, expected an integer") from None
    if v < minimum:
        raise HistoFileError(path, line, f"found {v} for {what}, expected an integer >= {minimum}")
    return v


def _float_field(tok, path, line, what):
    try:
        v = float(tok)
    except ValueError:
        raise HistoFileError(path, line, f"found {tok!r} for {what}, expected a number") from None
    if not math.isfinite(v):
        raise HistoFileError(path, line, f"found {tok!r} for {what}, expected a finite number")
    return v


def _read_lines(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise HistoFileError(path, None, "file not found")
    with open(path, encoding="utf-8", errors="replace") as f:
        return path, f.read().splitlines()


def _check_format(keys, path, expected):
    value, line = _require(keys, "format", path)
    if value != expected:
        raise HistoFileError(path, line, f"format {value!r}, expected {expected!r}")


# ----------------------------------------------------------------------------- SF histograms
@dataclass
class SFHisto:
    """One scaled SF's histogram as read from a file.

    edges : float64 (bins + 1,); counts : int64 (bins,); index is 1-based.
    """

    path: str
    element: str
    index: int
    description: str
    edges: np.ndarray
    counts: np.ndarray
    underflow: int = 0
    overflow: int = 0

    @property
    def values(self) -> int:
        return int(self.counts.sum()) + self.underflow + self.overflow

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])


def write_sf_histo(path, edges, counts, *, element, index, description="", underflow=0,
                   overflow=0):
    """Write the histogram of one scaled symmetry function (format: module doc).

    Parameters
    ----------
    path : file to write.
    edges : float64 (bins + 1,), increasing bin edges (scaled SF values).
    counts : int64 (bins,), values per bin.
    element : symbol of the SF's central element.
    index : 1-based SF index within the element (n2p2's sorted order).
    description : one line of free text (e.g. the SF's definition).
    underflow, overflow : values below the first / above the last edge.
    """
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.asarray(counts)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(f"edges must be 1-D with at least 2 values, got shape {edges.shape}")
    if counts.shape != (edges.size - 1,):
        raise ValueError(f"counts must have shape ({edges.size - 1},) to match edges, "
                         f"got {counts.shape}")
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be finite and strictly increasing")
    if counts.size and (np.any(counts < 0) or np.any(counts != np.round(counts))):
        raise ValueError("counts must be non-negative integers")
    counts = counts.astype(np.int64)
    if element not in ATOMIC_NUMBER:
        raise ValueError(f"unknown element symbol {element!r}")
    index, underflow, overflow = int(index), int(underflow), int(overflow)
    if index < 1 or underflow < 0 or overflow < 0:
        raise ValueError("index must be >= 1 and underflow/overflow >= 0")
    bins = counts.size
    out = [
        "# distatomenv histogram of one scaled symmetry function",
        f"# format: {_SF_FORMAT}",
        f"# element: {element}",
        f"# sf_index: {index}",
        f"# description: {_one_line(description)}",
        f"# values: {int(counts.sum()) + underflow + overflow}",
        f"# underflow: {underflow}",
        f"# overflow: {overflow}",
        f"# bins: {bins}",
        f"# columns: {' '.join(_SF_COLUMNS)}",
        "#   1 left    left edge of the bin (scaled SF value)",
        "#   2 right   right edge of the bin; bin k holds left <= v < right,",
        "#             the last bin also v == right",
        "#   3 centre  (left + right) / 2",
        "#   4 count   number of values in the bin",
        "# values = underflow + overflow + sum of the counts",
        f"#{'left':>23s} {'right':>24s} {'centre':>24s} {'count':>12s}",
    ]
    centre = 0.5 * (edges[:-1] + edges[1:])
    for k in range(bins):
        out.append(f"{_FLOAT % edges[k]} {_FLOAT % edges[k + 1]} {_FLOAT % centre[k]} "
                   f"{int(counts[k]):12d}")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(out) + "\n")


def read_sf_histo(path) -> SFHisto:
    """Read a file of :func:`write_sf_histo`; HistoFileError if malformed."""
    path, lines = _read_lines(path)
    keys, data = _header(lines, path)
    _check_format(keys, path, _SF_FORMAT)
    value, line = _require(keys, "element", path)
    if value not in ATOMIC_NUMBER:
        raise HistoFileError(path, line, f"unknown element symbol {value!r}")
    element = value
    value, line = _require(keys, "sf_index", path)
    index = _int_field(value, path, line, "sf_index", 1)
    description = keys.get("description", ("", None))[0]
    nums = {}
    for name in ("values", "underflow", "overflow", "bins"):
        value, line = _require(keys, name, path)
        nums[name] = _int_field(value, path, line, name, 1 if name == "bins" else 0)
    if len(data) != nums["bins"]:
        where = data[-1][0] if data else keys["bins"][1]
        raise HistoFileError(path, where, f"found {len(data)} data line(s), expected "
                                          f"{nums['bins']} (header 'bins')")
    edges = np.empty(nums["bins"] + 1)
    counts = np.empty(nums["bins"], dtype=np.int64)
    for k, (line, toks) in enumerate(data):
        if len(toks) != 4:
            raise HistoFileError(path, line, f"found {len(toks)} column(s), expected 4 "
                                             f"({' '.join(_SF_COLUMNS)})")
        left = _float_field(toks[0], path, line, "left")
        right = _float_field(toks[1], path, line, "right")
        _float_field(toks[2], path, line, "centre")
        counts[k] = _int_field(toks[3], path, line, "count")
        if not right > left:
            raise HistoFileError(path, line,
                                 f"right edge {toks[1]} is not above left edge {toks[0]}")
        if k > 0 and left != edges[k]:
            raise HistoFileError(path, line, f"left edge {toks[0]} differs from the right edge "
                                             f"{edges[k]:.16E} of the line before")
        edges[k], edges[k + 1] = left, right
    total = int(counts.sum()) + nums["underflow"] + nums["overflow"]
    if total != nums["values"]:
        raise HistoFileError(path, keys["values"][1],
                             f"values {nums['values']} differ from underflow + overflow + sum of "
                             f"the counts = {total}")
    return SFHisto(path=path, element=element, index=index, description=description,
                   edges=edges, counts=counts, underflow=nums["underflow"],
                   overflow=nums["overflow"])


# ----------------------------------------------------------------------------- neighbour counts
@dataclass
class NeighborsHisto:
    """A neighbour-count histogram file as read back.

    counts : dict (central, neighbour) -> int64 (nmax + 1,): atoms with exactly
        n neighbours.  atoms/min/mean/max : dicts per pair (None where a pair
    counts no atom).  suggested : the ``--neighbors`` string.
    """

    path: str
    elements: list
    counts: dict
    atoms: dict
    min: dict
    mean: dict
    max: dict
    suggested: str
    cutoff: float | None = None


def _pairs(elements):
    return [(a, b) for a in elements for b in elements]


def write_neighbors_histo(path, elements, counts, *, cutoff=None):
    """Write ``neighbors.histo`` (format: module doc).

    Parameters
    ----------
    path : file to write.
    elements : symbols in atomic-number order.
    counts : dict (central symbol, neighbour symbol) -> int array h, h[n] =
        central atoms with exactly n neighbours of that element within the
        cutoff.  A pair not in the dict counts no atom.
    cutoff : optional cutoff radius (length unit of input.data), recorded in
        the header.

    Returns the suggested ``--neighbors`` string.
    """
    elements = _check_elements(elements)
    pairs = _pairs(elements)
    for key in counts:
        if tuple(key) not in pairs:
            raise ValueError(f"counts has pair {key!r}, not a pair of {elements}")
    hs = {}
    for p in pairs:
        h = np.asarray(counts.get(p, np.zeros(0, dtype=np.int64)))
        if h.ndim != 1 or (h.size and (np.any(h < 0) or np.any(h != np.round(h)))):
            raise ValueError(f"counts[{p!r}] must be a 1-D array of non-negative integers")
        hs[p] = h.astype(np.int64)
    summary = {p: summarize_counts(hs[p]) for p in pairs}
    nmax = max([s[3] for s in summary.values() if s[3] is not None], default=0)
    suggested = suggest_neighbors({p: summary[p][1] for p in pairs}, elements)
    names = [pair_name(*p) for p in pairs]
    width = max([8] + [len(n) + 1 for n in names])
    out = [
        "# distatomenv neighbour-count histogram",
        f"# format: {_NB_FORMAT}",
        f"# elements: {' '.join(elements)}",
    ]
    if cutoff is not None:
        out.append(f"# cutoff: {float(cutoff):.16E}")
    out += [
        f"# columns: n {' '.join(names)}",
        "# Column C<-N: in the row of n, the number of atoms of element C that have exactly",
        "# n neighbour entries of element N within the cutoff (periodic images counted",
        "# separately). Pairs in n2p2's row-major order (the order of --neighbors):",
        "# central element major, elements in atomic-number order.",
        "# Summary lines: per pair the number of central atoms and the min, mean, max of n",
        "# ('-': no central atom).",
    ]
    for p, name in zip(pairs, names):
        atoms, lo, mean, hi = summary[p]
        if atoms:
            out.append(f"# summary: {name} atoms={atoms} min={lo} mean={mean:.6f} max={hi}")
        else:
            out.append(f"# summary: {name} atoms=0 min=- mean=- max=-")
    out.append("# suggested: " + suggested)
    out.append("# (suggested --neighbors: per pair the smallest count that every atom has)")
    out.append("#" + f"{'n':>{width - 1}s}" + "".join(f"{n:>{width}s}" for n in names))
    for n in range(nmax + 1):
        out.append(f"{n:{width}d}" + "".join(
            f"{int(hs[p][n]) if n < hs[p].size else 0:{width}d}" for p in pairs))
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(out) + "\n")
    return suggested


def read_neighbors_histo(path) -> NeighborsHisto:
    """Read ``neighbors.histo`` (:func:`write_neighbors_histo`); HistoFileError if malformed."""
    path, lines = _read_lines(path)
    keys, data = _header(lines, path)
    _check_format(keys, path, _NB_FORMAT)
    value, line = _require(keys, "elements", path)
    try:
        elements = _check_elements(value.split())
    except ValueError as exc:
        raise HistoFileError(path, line, str(exc)) from None
    if not elements:
        raise HistoFileError(path, line, "no elements")
    cutoff = None
    if "cutoff" in keys:
        cutoff = _float_field(keys["cutoff"][0], path, keys["cutoff"][1], "cutoff")
    pairs = _pairs(elements)
    value, line = _require(keys, "columns", path)
    expected = ["n"] + [pair_name(*p) for p in pairs]
    if value.split() != expected:
        raise HistoFileError(path, line, f"columns {value!r}, expected {' '.join(expected)!r} "
                                         "for these elements")
    table = np.zeros((len(data), len(pairs)), dtype=np.int64)
    for k, (line, toks) in enumerate(data):
        if len(toks) != len(expected):
            raise HistoFileError(path, line, f"found {len(toks)} column(s), expected "
                                             f"{len(expected)} ({' '.join(expected)})")
        n = _int_field(toks[0], path, line, "n")
        if n != k:
            raise HistoFileError(path, line, f"found n = {n}, expected {k} (rows must run "
                                             "0, 1, 2, ... without gaps)")
        for c, tok in enumerate(toks[1:]):
            table[k, c] = _int_field(tok, path, line, expected[c + 1])
    if not data:
        raise HistoFileError(path, None, "no data lines")
    counts = {p: table[:, c].copy() for c, p in enumerate(pairs)}
    summ = {p: summarize_counts(counts[p]) for p in pairs}
    suggested = suggest_neighbors({p: summ[p][1] for p in pairs}, elements)
    if "suggested" in keys:
        value, line = keys["suggested"]
        if value.split() != suggested.split():
            raise HistoFileError(path, line, f"suggested {value!r} does not match the data, "
                                             f"whose per-pair minima are {suggested!r}")
    return NeighborsHisto(path=path, elements=elements, counts=counts,
                          atoms={p: s[0] for p, s in summ.items()},
                          min={p: s[1] for p, s in summ.items()},
                          mean={p: s[2] for p, s in summ.items()},
                          max={p: s[3] for p, s in summ.items()},
                          suggested=suggested, cutoff=cutoff)
