"""Reader and writer of n2p2 ``scaling.data`` files, and the SF scaling itself.

scaling.data holds, for every element and SF, the minimum, maximum, mean and
standard deviation of the unscaled SF over the data set.  Lines starting with
``#`` are comments; every other non-blank line has 6 columns::

    e_index  sf_index  sf_min  sf_max  sf_mean  sf_sigma

with ``e_index`` 1-based in atomic-number order and ``sf_index`` 1-based in
n2p2's sorted SF order (:class:`~distatomenv.descriptors.symfuncs.SymmetryFunctionSet`).

Scaling
-------
Every mode is an affine map per SF, written for vectorised kernels as::

    Gs = (G - shift) * factor + offset        dGs/dr = dG/dr * factor

========== ========= ============================== ========
mode       shift     factor                         offset
========== ========= ============================== ========
none       0         1                              0
scale      Gmin      (Smax - Smin) / (Gmax - Gmin)  Smin
center     Gmean     1                              0
scalecenter Gmean    (Smax - Smin) / (Gmax - Gmin)  Smin
sigma      Gmean     (Smax - Smin) / Gsigma         Smin
========== ========= ============================== ========

Degenerate SFs: where ``Gmax == Gmin`` (scale, scalecenter) or ``Gsigma`` is 0
or NaN (sigma) the factor would be infinite or NaN.  n2p2 divides anyway and
writes ``-NAN``/``INF`` tokens into atomic-env.*; we use factor 1 instead, so
such an SF becomes ``Smin + (G - shift)``: exactly Smin on the data the table
was made from and still informative (and finite) elsewhere.  A factor of 0
would erase the SF and its derivatives, which we avoid.  (The differential
tests against n2p2 accept exactly these columns, see tests/differential.)

Degenerate rows, written as nnp-scaling writes them and read back:

* an element with no atoms in the data: min = +1.7976931348623157E+308 (the
  largest double), max = -1.7976931348623157E+308, mean = sigma = ``-NAN``;
  :meth:`ScalingTable.absent` finds such elements;
* an element with one atom: sigma = ``-NAN`` (the sample standard deviation
  of one value).

NaN is accepted only in the mean and sigma columns; ``INF`` (written by
distatomenv before it followed n2p2 here) only in the min and max columns of
a row of an element with no atoms.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import ScalingFileError
from .fields import finite_float, integer

__all__ = ["ScalingTable", "read_scaling", "write_scaling", "SCALING_MODES", "NO_ATOMS"]

#: Scaling modes (n2p2's ST_NONE, ST_SCALE, ST_CENTER, ST_SCALECENTER, ST_SCALESIGMA).
SCALING_MODES = ("none", "scale", "center", "scalecenter", "sigma")
_STATS = ("min", "max", "mean", "sigma")
_COLUMNS = ("e_index", "sf_index", "sf_min", "sf_max", "sf_mean", "sf_sigma")
#: min and max of an SF over no values, as nnp-scaling writes them (its running
#: extremes start at the largest double).
NO_ATOMS = (float(np.finfo(np.float64).max), -float(np.finfo(np.float64).max))
#: NaN as n2p2 produces it (0/0 on x86 has the sign bit set: printed -NAN).
NAN = math.copysign(math.nan, -1.0)


@dataclass(eq=False)
class ScalingTable:
    """SF statistics per element, in n2p2's SF order.

    Attributes
    ----------
    elements : element symbols in atomic-number order.
    min, max, mean, sigma : dict element -> float64 array (nSF(element),),
        the statistics of the unscaled SFs (SF units, i.e. dimensionless or
        Z-weighted as the SF type defines).
    """

    elements: list[str]
    min: dict
    max: dict
    mean: dict
    sigma: dict

    def __post_init__(self):
        self.elements = list(self.elements)
        for stat in _STATS:
            table = getattr(self, stat)
            if set(table) != set(self.elements):
                raise ValueError(f"ScalingTable.{stat} has elements {sorted(table)}, "
                                 f"expected {self.elements}")
            setattr(self, stat, {e: np.asarray(table[e], dtype=np.float64).reshape(-1)
                                 for e in self.elements})
        for e in self.elements:
            sizes = {len(getattr(self, stat)[e]) for stat in _STATS}
            if len(sizes) != 1:
                raise ValueError(f"ScalingTable: min/max/mean/sigma of {e} differ in length")

    def n_sf(self, element: str) -> int:
        return len(self.min[element])

    @classmethod
    def from_moments(cls, elements, count, min, max, mean, m2) -> "ScalingTable":
        """A table from per-element moments, with n2p2's degenerate rows.

        count : dict element -> number of atoms; min, max, mean, m2 : dict
        element -> float64 (nSF,) (m2: sum of squared deviations from the mean).
        sigma is the sample standard deviation (divides by count - 1), NaN for
        one atom; an element with no atoms gets the :data:`NO_ATOMS` extremes
        and NaN mean and sigma, as nnp-scaling writes them.
        """
        tmin, tmax, tmean, tsigma = {}, {}, {}, {}
        for e in elements:
            n = int(count[e])
            if n == 0:
                k = len(min[e])
                tmin[e], tmax[e] = np.full(k, NO_ATOMS[0]), np.full(k, NO_ATOMS[1])
                tmean[e] = np.full(k, NAN)
            else:
                tmin[e], tmax[e], tmean[e] = min[e], max[e], mean[e]
            tsigma[e] = np.sqrt(m2[e] / (n - 1)) if n > 1 else np.full(len(min[e]), NAN)
        return cls(elements=list(elements), min=tmin, max=tmax, mean=tmean, sigma=tsigma)

    def absent(self) -> list[str]:
        """Elements whose rows say "no atoms" (min > max: the table was made
        from data without that element)."""
        return [e for e in self.elements
                if len(self.min[e]) and bool(np.all(self.min[e] > self.max[e]))]

    def to_dict(self) -> dict:
        """JSON-able dict; inverse of :meth:`from_dict`."""
        d = {"elements": list(self.elements)}
        for stat in _STATS:
            d[stat] = {e: getattr(self, stat)[e].tolist() for e in self.elements}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ScalingTable":
        return cls(elements=list(d["elements"]), **{s: dict(d[s]) for s in _STATS})

    def coefficients(self, element: str, mode: str, smin: float = 0.0, smax: float = 1.0):
        """The affine map of one element's SFs (see the module docstring).

        Parameters
        ----------
        element : element symbol.
        mode : one of :data:`SCALING_MODES`.
        smin, smax : target range (``scale_min_short``, ``scale_max_short``).

        Returns
        -------
        shift, factor, offset : float64 arrays (nSF,) with
            ``Gs = (G - shift) * factor + offset`` and ``dGs = dG * factor``.
        """
        if mode not in SCALING_MODES:
            raise ValueError(f"unknown scaling mode {mode!r}; expected one of {SCALING_MODES}")
        n = self.n_sf(element)
        shift = np.zeros(n)
        factor = np.ones(n)
        offset = np.zeros(n)
        if mode == "none":
            return shift, factor, offset
        if mode == "center":
            return self.mean[element].copy(), factor, offset
        if mode == "sigma":
            denom = self.sigma[element]
        else:
            denom = self.max[element] - self.min[element]
        ok = denom > 0
        factor[ok] = (smax - smin) / denom[ok]
        shift = (self.min if mode == "scale" else self.mean)[element].copy()
        offset[:] = smin
        return shift, factor, offset

    def factor(self, element: str, mode: str, smin: float = 0.0, smax: float = 1.0) -> np.ndarray:
        """The factor by which scaling multiplies G derivatives: float64 (nSF,)."""
        return self.coefficients(element, mode, smin, smax)[1]

    def apply(self, element: str, G, mode: str, smin: float = 0.0, smax: float = 1.0) -> np.ndarray:
        """Scale SF values G, array (..., nSF) in n2p2's SF order; returns a new array."""
        G = np.asarray(G, dtype=np.float64)
        if G.shape[-1:] != (self.n_sf(element),):
            raise ValueError(f"G has shape {G.shape}; its last axis must have "
                             f"{self.n_sf(element)} SFs of {element}")
        shift, factor, offset = self.coefficients(element, mode, smin, smax)
        return (G - shift) * factor + offset


def _int(path, line, tok, col) -> int:
    return integer(tok, ScalingFileError, path, line, col, _COLUMNS[col - 1])


def _float(path, line, tok, col) -> float:
    """A number of column ``col``: finite, except NaN in mean and sigma (n2p2
    writes -NAN there for one or no atoms) and +-INF in min and max."""
    try:
        value = float(tok)
    except ValueError:
        value = None
    if value is not None and ((col >= 5 and math.isnan(value))
                              or (col in (3, 4) and math.isinf(value))):
        return value
    return finite_float(tok, ScalingFileError, path, line, col, _COLUMNS[col - 1])


def read_scaling(path, sfset) -> ScalingTable:
    """Read a scaling.data file and check it against the SF set.

    Every (element, SF) pair of ``sfset`` must have exactly one row, and there
    must be no other rows.

    Raises
    ------
    ScalingFileError naming the file and line.
    """
    path = os.fspath(path)
    elements = list(sfset.elements)
    stats = {e: np.full((sfset.n_sf(e), 4), np.nan) for e in elements}
    row_line = {e: np.zeros(sfset.n_sf(e), dtype=np.int64) for e in elements}
    with open(path, "r", encoding="utf-8", errors="replace", newline=None) as f:
        for line, raw in enumerate(f, start=1):
            toks = raw.split()
            if not toks or toks[0].startswith("#"):
                continue
            if len(toks) != 6:
                raise ScalingFileError(path, line, f"found {len(toks)} columns, expected 6 "
                                                   f"({' '.join(_COLUMNS)})")
            ei = _int(path, line, toks[0], 1)
            si = _int(path, line, toks[1], 2)
            values = [_float(path, line, toks[k], k + 1) for k in range(2, 6)]
            if not 1 <= ei <= len(elements):
                raise ScalingFileError(path, line, f"e_index {ei} out of range 1..{len(elements)} "
                                                   f"(elements {' '.join(elements)})")
            e = elements[ei - 1]
            if not 1 <= si <= sfset.n_sf(e):
                raise ScalingFileError(path, line, f"sf_index {si} out of range 1..{sfset.n_sf(e)} "
                                                   f"for element {e}")
            if row_line[e][si - 1]:
                raise ScalingFileError(path, line, f"duplicate row for element {e} sf_index {si} "
                                                   f"(first at line {row_line[e][si - 1]})")
            mn, mx, _, sigma = values
            no_atoms = mn >= NO_ATOMS[0] and mx <= NO_ATOMS[1]
            if mx < mn and not no_atoms:
                raise ScalingFileError(path, line, f"sf_max {mx!r} is smaller than sf_min {mn!r} "
                                                   "(only a row of an element without atoms, "
                                                   f"min {NO_ATOMS[0]!r} and max {NO_ATOMS[1]!r} "
                                                   "as nnp-scaling writes it, may be)")
            if math.isinf(mn) or math.isinf(mx):
                if not no_atoms:
                    raise ScalingFileError(path, line, f"found sf_min {mn!r}, sf_max {mx!r}: "
                                                       "an infinite value is only allowed in a "
                                                       "row of an element without atoms")
            if sigma < 0:
                raise ScalingFileError(path, line, f"sf_sigma {sigma!r} is negative")
            stats[e][si - 1] = values
            row_line[e][si - 1] = line
    for ei, e in enumerate(elements, start=1):
        missing = np.flatnonzero(row_line[e] == 0) + 1
        if len(missing):
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise ScalingFileError(path, None, f"element {e} (e_index {ei}): expected "
                                               f"{sfset.n_sf(e)} rows, found "
                                               f"{sfset.n_sf(e) - len(missing)}; missing sf_index "
                                               f"{shown}")
    return ScalingTable(elements=elements,
                        **{s: {e: stats[e][:, k].copy() for e in elements}
                           for k, s in enumerate(_STATS)})


def _header() -> str:
    rule = "#" * 80 + "\n"
    wide = "#" * 121 + "\n"
    widths = (9, 11, 25, 25, 25, 25)
    numbers = "#" + "".join(f"{k:>{w}d}" for k, w in zip(range(1, 7), widths)) + "\n"
    names = "#" + "".join(f"{n:>{w}s}" for n, w in zip(_COLUMNS, widths)) + "\n"
    return (rule + "# Symmetry function scaling data (distatomenv).\n" + rule
            + "# Col  Name     Description\n" + rule
            + "# 1    e_index  Element index (1-based, atomic-number order).\n"
            + "# 2    sf_index Symmetry function index (1-based, sorted SF order).\n"
            + "# 3    sf_min   Minimum of the unscaled symmetry function.\n"
            + "# 4    sf_max   Maximum of the unscaled symmetry function.\n"
            + "# 5    sf_mean  Mean of the unscaled symmetry function.\n"
            + "# 6    sf_sigma Standard deviation of the unscaled symmetry function.\n"
            + wide + numbers + names + wide)


def _e24(v) -> str:
    """``%24.16E`` as C writes n2p2's numbers (every NaN as n2p2's -NAN)."""
    v = float(v)
    return f"{'-NAN':>24s}" if math.isnan(v) else f"{v:24.16E}"


def write_scaling(path, table: ScalingTable, sfset) -> None:
    """Write a scaling table in n2p2's scaling.data format.

    Rows are ``%10d %10d`` followed by four ``%24.16E`` (which read back
    bit-identically), grouped by element in atomic-number order.  NaN is
    written ``-NAN``, as C's printf writes n2p2's 0/0 (the sign bit set; a
    NaN's sign does not survive the store's JSON attributes), so degenerate
    rows are byte-identical to nnp-scaling's.
    """
    elements = list(sfset.elements)
    if list(table.elements) != elements:
        raise ValueError(f"scaling table elements {table.elements} do not match the SF set "
                         f"{elements}")
    for e in elements:
        if table.n_sf(e) != sfset.n_sf(e):
            raise ValueError(f"scaling table has {table.n_sf(e)} SFs for {e}, the SF set "
                             f"{sfset.n_sf(e)}")
    out = [_header()]
    for ei, e in enumerate(elements, start=1):
        for si, row in enumerate(zip(table.min[e], table.max[e], table.mean[e], table.sigma[e]),
                                 start=1):
            out.append(f"{ei:10d} {si:10d} " + " ".join(map(_e24, row)) + "\n")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("".join(out))
