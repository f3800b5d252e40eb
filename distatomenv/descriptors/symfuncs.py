"""Symmetry-function definitions, n2p2's sort order and the kernels' parameter tables.

A :class:`SymmetryFunction` is one ``symfunction_short`` line of input.nn, in
the units of the input files.  :class:`SymmetryFunctionSet` holds every
element's functions sorted exactly as n2p2 sorts them (the order of the G
values in a row and of the rows of scaling.data), the "relevant subsets"
n2p2 writes in the derivative blocks, and packs the parameters into the
numeric tables the numba kernels read (see :mod:`distatomenv.descriptors.kernels`).

Supported types (n2p2 numbers):

====  =======================================  ==========================
type  formula (sum over neighbours j, k)        parameters
====  =======================================  ==========================
 2    exp(-eta (r_ij - rs)^2) fc(r_ij)          e1 eta rs rc
 3    2^(1-zeta) (1 + lambda cos)^zeta          e1 e2 eta lambda zeta rc [rs]
      exp(-eta sum (r - rs)^2) fc fc fc (ij, ik, jk)
 9    as 3 without the jk factors (wide)         e1 e2 eta lambda zeta rc [rs]
 12   Z_j exp(-eta (r_ij - rs)^2) fc(r_ij)       eta rs rc
 13   as 3 with weight Z_j Z_k, all elements    eta rs lambda zeta rc
 20   C(r_ij; rl, rc)                           e1 rl rc subtype
 21   C(r_ij) C(r_ik) C(r_jk) C(theta; al, ar)  e1 e2 rl rc al ar subtype
 22   C(r_ij) C(r_ik) C(theta; al, ar)          e1 e2 rl rc al ar subtype
 23   Z_j C(r_ij; rl, rc)                       rl rc subtype
 24   Z_j Z_k x (21)                            rl rc al ar subtype
 25   Z_j Z_k x (22)                            rl rc al ar subtype
====  =======================================  ==========================

``C`` is a compact bump of core function ``subtype`` (p1, p2, p3, p4, e, or
asymmetric p1a-p4a for the radial part; see :func:`compact_core` for the
strings n2p2 accepts); angles are in degrees in input.nn.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..elements import atomic_number

#: SF types whose value is a sum over neighbour pairs (j, k).
ANGULAR_TYPES = frozenset({3, 9, 13, 21, 22, 24, 25})
#: Element-weighted types: every neighbour element contributes, weighted by Z.
WEIGHTED_TYPES = frozenset({12, 13, 23, 24, 25})
#: Polynomial types with compact support (Bircher, Singraber, Dellago 2020).
COMPACT_TYPES = frozenset({20, 21, 22, 23, 24, 25})
#: Narrow angular types (with the r_jk factor).
NARROW_TYPES = frozenset({3, 13, 21, 24})
SUPPORTED_TYPES = frozenset({2, 3, 9, 12, 13, 20, 21, 22, 23, 24, 25})

#: Core functions of compact SFs, the number used in the kernels' tables:
#: polynomials p1-p4, the exponential e, and the asymmetric polynomials p1a-p4a
#: (code 5 + k for pka).
COMPACT_SUBTYPES = {"p1": 1, "p2": 2, "p3": 3, "p4": 4, "e": 5,
                    "p1a": 6, "p2a": 7, "p3a": 8, "p4a": 9}
#: The subtype strings n2p2 accepts (asked of nnp-scaling itself): at most three
#: characters, ``p`` + degree 1-4 + an optional ``a``, or ``e`` followed by any one
#: or two characters (``ea``, ``e1``, ... all evaluate as ``e``; the string
#: itself still orders the SFs).
_SUBTYPE_RE = re.compile(r"p[1-4]a?|e\S{0,2}")


def compact_core(subtype: str) -> int | None:
    """Kernel code of a compact-SF subtype string (see :data:`COMPACT_SUBTYPES`),
    or ``None`` if n2p2 would refuse the string."""
    if not _SUBTYPE_RE.fullmatch(subtype):
        return None
    return COMPACT_SUBTYPES["e"] if subtype[0] == "e" else COMPACT_SUBTYPES[subtype]
#: Cutoff functions by n2p2 number (``cutoff_type`` keyword).
CUTOFF_TYPES = {0: "HARD", 1: "COS", 2: "TANHU", 3: "TANH", 4: "EXP",
                5: "POLY1", 6: "POLY2", 7: "POLY3", 8: "POLY4"}


@dataclass(frozen=True)
class SymmetryFunction:
    """One symmetry function as written in input.nn (lengths in input units).

    Attributes
    ----------
    element : central element symbol.
    type : n2p2 type number (see module docstring).
    e1, e2 : neighbour element symbols (``None`` where the type has none);
        for angular types stored with ``Z(e1) <= Z(e2)`` as n2p2 does.
    eta : Gaussian width, 1/length^2.
    rs : shift of the Gaussian (length), types 2, 3, 9, 12, 13.
    rl : left end of the radial window of compact types (length).
    rc : cutoff radius (length).
    lambda_, zeta : angular parameters of types 3, 9, 13.
    angle_left, angle_right : angular window of compact types, degrees.
    subtype : core function of compact types ("p2", "e", "p4a", ...).
    line : 1-based line number in input.nn (0 where unknown).
    """

    element: str
    type: int
    e1: str | None = None
    e2: str | None = None
    eta: float = 0.0
    rs: float = 0.0
    rl: float = 0.0
    rc: float = 0.0
    lambda_: float = 0.0
    zeta: float = 0.0
    angle_left: float = 0.0
    angle_right: float = 0.0
    subtype: str = ""
    line: int = 0

    @property
    def is_angular(self) -> bool:
        return self.type in ANGULAR_TYPES

    @property
    def is_weighted(self) -> bool:
        return self.type in WEIGHTED_TYPES

    @property
    def is_compact(self) -> bool:
        return self.type in COMPACT_TYPES

    def depends_on(self, neighbor_element: str) -> bool:
        """Whether this SF can change when an atom of ``neighbor_element`` moves.

        This is n2p2's "relevant subset" rule for the derivative blocks.
        """
        if self.is_weighted:
            return True
        if self.is_angular:
            return neighbor_element in (self.e1, self.e2)
        return self.e1 == neighbor_element

    def sort_key(self) -> tuple:
        """n2p2's order: type, then the type's own parameters (see README).

        Exponential types: rc, eta, rs, zeta, lambda, e1, e2; compact types:
        subtype (as a string), e1, e2, rc, rl, angle_left, angle_right (the
        neighbour elements before the radii, as n2p2's log shows for a subtype
        with several neighbour elements).  Elements compare by atomic number.
        """
        z1 = atomic_number(self.e1) if self.e1 else 0
        z2 = atomic_number(self.e2) if self.e2 else 0
        if self.is_compact:
            return (self.type, self.subtype, z1, z2, self.rc, self.rl,
                    self.angle_left, self.angle_right)
        return (self.type, self.rc, self.eta, self.rs, self.zeta, self.lambda_, z1, z2)

    def describe(self) -> str:
        """A short human-readable description, used by ``info`` and errors."""
        parts = [f"{self.element} type {self.type}"]
        if self.e1:
            parts.append(self.e1 + (f"-{self.e2}" if self.e2 else ""))
        if self.is_compact:
            parts.append(f"rl={self.rl:g} rc={self.rc:g} {self.subtype}")
            if self.is_angular:
                parts.append(f"angles=({self.angle_left:g},{self.angle_right:g})")
        else:
            parts.append(f"eta={self.eta:g} rs={self.rs:g} rc={self.rc:g}")
            if self.is_angular:
                parts.append(f"lambda={self.lambda_:g} zeta={self.zeta:g}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SymmetryFunction":
        return cls(**d)


@dataclass
class SymmetryFunctionSet:
    """Every element's SFs in n2p2's order (the kernels' tables:
    :func:`distatomenv.descriptors.tables.element_tables`).

    Parameters
    ----------
    elements : element symbols; stored in atomic-number order.
    functions : all SFs, in any order.
    cutoff_type : n2p2 cutoff type number (0-8) for the exponential SF types.
    cutoff_alpha : inner-cutoff fraction alpha in [0, 1).
    """

    elements: list[str]
    functions: list[SymmetryFunction]
    cutoff_type: int = 1
    cutoff_alpha: float = 0.0
    by_element: dict[str, list[SymmetryFunction]] = field(init=False)

    def __post_init__(self):
        self.elements = sorted(self.elements, key=atomic_number)
        self.by_element = {e: [] for e in self.elements}
        for sf in self.functions:
            self.by_element[sf.element].append(sf)
        for e in self.elements:
            self.by_element[e].sort(key=SymmetryFunction.sort_key)

    # -- shapes ---------------------------------------------------------------
    @property
    def n_elements(self) -> int:
        return len(self.elements)

    def index(self, element: str) -> int:
        """Index of an element in atomic-number order."""
        return self.elements.index(element)

    def n_sf(self, element: str) -> int:
        return len(self.by_element[element])

    def relevant(self, element: str, neighbor_element: str) -> list[int]:
        """Indices (0-based, in n2p2 order) of ``element``'s SFs that depend on an
        atom of ``neighbor_element``: the columns of its derivative block in a
        row whose central atom is ``neighbor_element``."""
        return [i for i, sf in enumerate(self.by_element[element])
                if sf.depends_on(neighbor_element)]

    def max_cutoff(self) -> float:
        """Largest SF cutoff over all elements (input units)."""
        return max(sf.rc for sf in self.functions)

    def to_dict(self) -> dict:
        return {
            "elements": list(self.elements),
            "cutoff_type": self.cutoff_type,
            "cutoff_alpha": self.cutoff_alpha,
            "functions": [sf.to_dict() for e in self.elements for sf in self.by_element[e]],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SymmetryFunctionSet":
        return cls(elements=list(d["elements"]),
                   functions=[SymmetryFunction.from_dict(f) for f in d["functions"]],
                   cutoff_type=int(d["cutoff_type"]), cutoff_alpha=float(d["cutoff_alpha"]))
