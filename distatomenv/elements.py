"""The periodic table: element symbols and atomic numbers.

n2p2 orders elements by atomic number, and the weighted symmetry functions
(types 12, 13, 23, 24, 25) weight each neighbour by its atomic number Z.
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
