"""The periodic table: element symbols and atomic numbers.

n2p2 orders elements by atomic number, and the weighted symmetry functions
(types 12, 13, 23, 24, 25) weight each neighbour by its atomic number Z.

Kept here rather than taken from ``ase.data`` on purpose: ASE is an optional
dependency (the ``ase`` extra, for other trajectory formats), and compute
needs only this list of symbols.
"""
from __future__ import annotations

SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn "
    "Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce "
    "Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn "
    "Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl "
    "Mc Lv Ts Og"
).split()

ATOMIC_NUMBER = {s: i + 1 for i, s in enumerate(SYMBOLS)}


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol (case-sensitive, as n2p2).

    Raises KeyError for an unknown symbol; callers turn that into an error that
    names their file and line.
    """
    return ATOMIC_NUMBER[symbol]


def sort_by_atomic_number(symbols) -> list[str]:
    """Element symbols in atomic-number order (n2p2's element order)."""
    return sorted(symbols, key=atomic_number)


# Standard atomic weights (IUPAC, abridged conventional values) in atomic mass
# units (Da); for elements without stable isotopes, the mass number of the
# longest-lived isotope.  Used for centres of mass (``distatomenv coarse-grain``,
# molecular dynamics).  Cm (curium, Z = 96) is also the pseudo-element that
# n2p2's coarse-graining example uses for its beads.
_MASSES = (
    1.008, 4.0026, 6.94, 9.0122, 10.81, 12.011, 14.007, 15.999, 18.998, 20.180,
    22.990, 24.305, 26.982, 28.085, 30.974, 32.06, 35.45, 39.948, 39.098, 40.078,
    44.956, 47.867, 50.942, 51.996, 54.938, 55.845, 58.933, 58.693, 63.546, 65.38,
    69.723, 72.630, 74.922, 78.971, 79.904, 83.798, 85.468, 87.62, 88.906, 91.224,
    92.906, 95.95, 98.0, 101.07, 102.91, 106.42, 107.87, 112.41, 114.82, 118.71,
    121.76, 127.60, 126.90, 131.29, 132.91, 137.33, 138.91, 140.12, 140.91, 144.24,
    145.0, 150.36, 151.96, 157.25, 158.93, 162.50, 164.93, 167.26, 168.93, 173.05,
    174.97, 178.49, 180.95, 183.84, 186.21, 190.23, 192.22, 195.08, 196.97, 200.59,
    204.38, 207.2, 208.98, 209.0, 210.0, 222.0, 223.0, 226.0, 227.0, 232.04,
    231.04, 238.03, 237.0, 244.0, 243.0, 247.0, 247.0, 251.0, 252.0, 257.0,
    258.0, 259.0, 262.0, 267.0, 268.0, 269.0, 270.0, 269.0, 278.0, 281.0,
    282.0, 285.0, 286.0, 289.0, 290.0, 293.0, 294.0, 294.0,
)
assert len(_MASSES) == len(SYMBOLS)

#: symbol -> standard atomic weight (u).
ATOMIC_MASS = dict(zip(SYMBOLS, _MASSES))


def atomic_mass(symbol: str) -> float:
    """Standard atomic weight of an element (u); KeyError for an unknown symbol."""
    return ATOMIC_MASS[symbol]
