"""Coarse-graining: one site per molecule, at its centre of mass.

The step that n2p2 leaves to a hand-written C++ example (``nnp-cgdata``):
turn an atomistic ``input.data`` into a coarse-grained (CG) one, with one
pseudo-atom ("bead") per molecule.

For every structure:

* **Molecules** are either found from a bond cutoff or given explicitly.
  - Bond cutoff: atoms i and j are bonded when some periodic image of j lies
    within the cutoff of their element pair; molecules are the connected
    components of this bond graph.  The search is a cell list over every
    periodic image that can lie within the cutoff, so it is exact for any
    triclinic cell, however small.  Each molecule is *unwrapped* across the
    periodic boundaries along its bonds.  A molecule that is bonded to its
    own periodic image (a cutoff so large that bonds percolate through the
    cell) is an error: it has no centre of mass.
  - Explicit: a molecules file with one line per molecule, holding the
    **0-based** indices of its atoms within the structure (whitespace or
    commas between them, ``#`` starts a comment, blank lines are ignored).
    The same molecules are used for every structure.  Each molecule is
    unwrapped by the minimum-image convention relative to its first listed
    atom, so a molecule must be smaller than half the cell.
* **Site**: the centre of mass ``R = sum_i m_i r_i / sum_i m_i`` of the
  unwrapped molecule, wrapped into the cell as n2p2 does (fractional
  coordinates in [0, 1)).  Masses are standard atomic weights
  (:data:`distatomenv.elements.ATOMIC_MASS`) unless overridden.
* **Force**: the sum of the molecule's atomic forces (the total force on its
  centre of mass).  The site's charge and atomic energy are the sums of the
  molecule's; the structure's energy, total charge and cell are carried over.
* **Order**: sites in the order of the molecules: for a bond cutoff, by the
  smallest atom index in each molecule; for a molecules file, by line.

Every molecule must have the same composition (that of the first molecule,
or the one given as ``composition="H2O"``) unless ``composition="any"``.
Errors are :class:`~distatomenv.errors.CoarseGrainError` (or
:class:`~distatomenv.errors.MoleculesFileError` for the molecules file) whose
message starts with ``FILE:LINE:`` (the data file and the structure's
``begin`` line) and names the structure and the atom indices.

The file is processed one structure at a time: memory does not grow with it.
The output is written to ``OUT.part`` and renamed at the end, so a failed
run never leaves a partial ``OUT``.
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass

import numba
import numpy as np

from ..descriptors.neighbors import HALF_LIST, atom_entries, cell_sort, entry_buffers, grid_shape
from ..elements import ATOMIC_MASS, ATOMIC_NUMBER, sort_by_atomic_number
from ..errors import CoarseGrainError, DistatomenvError, MoleculesFileError
from ..io.files import replacing
from ..io.inputdata import write_structures
from ..io.structure import Structure
from ..io.fields import integer

__all__ = [
    "DEFAULT_CG_ELEMENT",
    "BondCutoffs",
    "Molecules",
    "CoarseGrainResult",
    "parse_bond_cutoff",
    "parse_masses",
    "parse_composition",
    "format_composition",
    "read_molecules",
    "find_molecules",
    "explicit_molecules",
    "coarse_grain_structure",
    "coarse_grain",
]

#: Element name of the CG sites, as in n2p2's coarse-graining example (curium, Z = 96).
DEFAULT_CG_ELEMENT = "Cm"

#: Most molecules listed in one error message.
_SHOW = 5


# ----------------------------------------------------------------------------
# Options
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BondCutoffs:
    """Bond cutoffs per element pair (length unit of the data).

    default : cutoff of every pair not listed (0 = not bonded).
    pairs : {(A, B): r} with A <= B in atomic-number order.
    """

    default: float = 0.0
    pairs: tuple = ()

    def get(self, a: str, b: str) -> float:
        key = tuple(sort_by_atomic_number([a, b]))
        for k, r in self.pairs:
            if k == key:
                return r
        return self.default

    def matrix(self, elements) -> np.ndarray:
        """float64 (E, E) cutoffs for ``elements`` (symmetric)."""
        e = list(elements)
        return np.array([[self.get(a, b) for b in e] for a in e], dtype=np.float64).reshape(
            len(e), len(e))

    def __str__(self) -> str:
        parts = [f"{a}-{b}={r:g}" for (a, b), r in self.pairs]
        if self.default > 0 or not parts:
            parts.insert(0, f"{self.default:g}")
        return ",".join(parts)


def _element(sym: str, what: str) -> str:
    if sym not in ATOMIC_NUMBER:
        raise DistatomenvError(f"{what}: '{sym}' is not an element symbol (case matters: 'O', 'Cl')")
    return sym


def _positive(text: str, what: str, allow_zero: bool) -> float:
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        want = "a number >= 0" if allow_zero else "a positive number"
        raise DistatomenvError(f"{what}: found '{text}', expected {want}")
    return v


def parse_bond_cutoff(spec) -> BondCutoffs:
    """``--bond-cutoff``: one length for every element pair (``"1.2"``), or
    element pairs (``"O-H=1.2,H-H=0"``), optionally with a bare default length
    first (``"1.2,H-H=0"``).  Pairs not listed use the default (0 if none:
    not bonded).  A BondCutoffs or a number is returned / accepted as is."""
    if isinstance(spec, BondCutoffs):
        return spec
    if isinstance(spec, (int, float)):
        return BondCutoffs(_positive(str(spec), "--bond-cutoff", False))
    if isinstance(spec, dict):
        spec = ",".join(f"{k}={v}" for k, v in spec.items())
    text = str(spec).strip()
    if not text:
        raise DistatomenvError("--bond-cutoff is empty; expected a length such as 1.2 or pairs "
                               "such as O-H=1.2,H-H=0")
    default = 0.0
    pairs = {}
    for k, item in enumerate(p.strip() for p in text.split(",")):
        if "=" not in item:
            if k != 0:
                raise DistatomenvError(f"--bond-cutoff: found '{item}', expected PAIR=LENGTH such "
                                       "as O-H=1.2 (a bare length may only come first)")
            default = _positive(item, "--bond-cutoff", False)
            continue
        pair, value = (t.strip() for t in item.split("=", 1))
        names = [t.strip() for t in pair.split("-")]
        if len(names) != 2:
            raise DistatomenvError(f"--bond-cutoff: found '{pair}', expected an element pair "
                                   "such as O-H")
        key = tuple(sort_by_atomic_number([_element(n, "--bond-cutoff") for n in names]))
        if key in pairs:
            raise DistatomenvError(f"--bond-cutoff: the pair {key[0]}-{key[1]} is given twice")
        pairs[key] = _positive(value, f"--bond-cutoff {pair}", True)
    if default == 0 and not any(r > 0 for r in pairs.values()):
        raise DistatomenvError(f"--bond-cutoff '{text}' bonds nothing: give at least one "
                               "positive length")
    return BondCutoffs(default, tuple(sorted(pairs.items())))


def parse_masses(spec) -> dict:
    """``--mass``: ``"H=1.008,O=16"`` (or a dict, or a list of such strings) ->
    {symbol: mass}; masses in u (any consistent unit works: only ratios matter)."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        items = [f"{k}={v}" for k, v in spec.items()]
    elif isinstance(spec, str):
        items = [spec]
    else:
        items = list(spec)
    out = {}
    for chunk in items:
        for item in (t.strip() for t in str(chunk).split(",")):
            if not item:
                continue
            if "=" not in item:
                raise DistatomenvError(f"--mass: found '{item}', expected ELEMENT=MASS such as "
                                       "H=1.008")
            sym, value = (t.strip() for t in item.split("=", 1))
            out[_element(sym, "--mass")] = _positive(value, f"--mass {sym}", False)
    return out


_FORMULA = re.compile(r"([A-Z][a-z]?)(\d*)")


def parse_composition(text):
    """``"H2O"`` -> {"H": 2, "O": 1}; ``"any"`` -> "any"; None -> None
    (the first molecule sets the composition)."""
    if text is None or isinstance(text, dict):
        return text
    text = str(text).strip()
    if text.lower() == "any":
        return "any"
    pos, out = 0, {}
    for m in _FORMULA.finditer(text):
        if m.start() != pos:
            break
        sym = _element(m.group(1), "--composition")
        out[sym] = out.get(sym, 0) + (int(m.group(2)) if m.group(2) else 1)
        pos = m.end()
    if pos != len(text) or not out or any(v <= 0 for v in out.values()):
        raise DistatomenvError(f"--composition: found '{text}', expected a formula such as H2O "
                               "or 'any'")
    return out


def format_composition(comp: dict) -> str:
    """{"H": 2, "O": 1} -> "H2O" (elements in atomic-number order)."""
    return "".join(f"{e}{comp[e] if comp[e] != 1 else ''}" for e in sort_by_atomic_number(comp))


# ----------------------------------------------------------------------------
# Molecules
# ----------------------------------------------------------------------------
@dataclass(eq=False)
class Molecules:
    """Molecules of one structure, in CSR form (M molecules, n atoms).

    atoms : int64 (n,), atom indices grouped by molecule (ascending within a
        molecule for a bond cutoff, as listed for a molecules file).
    starts : int64 (M + 1,), molecule k is ``atoms[starts[k]:starts[k+1]]``.
    unwrapped : float64 (n,) x 3, positions of ``atoms`` with every molecule
        made whole across the periodic boundaries (length), or None.
    """

    atoms: np.ndarray
    starts: np.ndarray
    unwrapped: np.ndarray | None = None

    @property
    def n_molecules(self) -> int:
        return len(self.starts) - 1

    def __len__(self) -> int:
        return self.n_molecules

    def __getitem__(self, k) -> np.ndarray:
        return self.atoms[self.starts[k]:self.starts[k + 1]]

    def as_lists(self) -> list[list[int]]:
        return [self[k].tolist() for k in range(self.n_molecules)]


def read_molecules(path) -> tuple[Molecules, np.ndarray]:
    """Read a molecules file: one line per molecule of 0-based atom indices.

    Returns (Molecules without positions, int64 (M,) line number of each
    molecule).  Raises MoleculesFileError for a non-integer or negative
    index, an atom listed twice (naming both lines) and a file without any
    molecule.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MoleculesFileError(path, None, "file not found")
    atoms, starts, lines, seen = [], [0], [], {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            text = raw.split("#", 1)[0].replace(",", " ")
            toks = text.split()
            if not toks:
                continue
            for col, tok in enumerate(toks, 1):
                a = integer(tok, MoleculesFileError, path, lineno, col, "atom index")
                if a < 0:
                    raise MoleculesFileError(path, lineno, f"found '{tok}' in column {col}, "
                                                           "expected a 0-based atom index >= 0")
                if a in seen:
                    where = "earlier on this line" if seen[a] == lineno else f"on line {seen[a]}"
                    raise MoleculesFileError(path, lineno, f"atom {a} (0-based) is in two "
                                                           f"molecules: here and {where}")
                seen[a] = lineno
                atoms.append(a)
            starts.append(len(atoms))
            lines.append(lineno)
    if not lines:
        raise MoleculesFileError(path, None, "no molecules (expected one line of 0-based atom "
                                             "indices per molecule)")
    return (Molecules(np.array(atoms, dtype=np.int64), np.array(starts, dtype=np.int64)),
            np.array(lines, dtype=np.int64))


def _where(s: Structure) -> tuple[str, int | None, str]:
    """(path, line, 'structure K (1-based)') for messages about structure s."""
    line = s.line if s.line and s.line > 0 else None
    return (s.path or "<structure>"), line, f"structure {s.index + 1} (1-based)"


def explicit_molecules(s: Structure, molecules: Molecules, lines=None, source="") -> Molecules:
    """Check the molecules of a molecules file against structure ``s`` and
    unwrap them (minimum image relative to each molecule's first atom).

    lines : int64 (M,) line numbers of the molecules in ``source`` (for messages).
    """
    path, line, what = _where(s)
    n = s.natoms
    atoms = molecules.atoms
    if len(atoms) and atoms.max() >= n:
        k = int(np.searchsorted(molecules.starts, int(np.argmax(atoms >= n)), side="right") - 1)
        at = f"line {lines[k]} of {source}" if lines is not None else f"molecule {k}"
        raise CoarseGrainError(path, line, f"{what} has {n} atoms (0-based indices 0..{n - 1}) "
                                           f"but {at} names atom {int(atoms.max())}")
    covered = np.zeros(n, dtype=bool)
    covered[atoms] = True
    if not covered.all():
        missing = np.flatnonzero(~covered)
        shown = ", ".join(str(int(a)) for a in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise CoarseGrainError(path, line, f"{what}: {len(missing)} atom(s) are in no molecule "
                                           f"of {source or 'the molecules'}: atoms {shown} "
                                           "(0-based)")
    r = s.positions[atoms]
    if s.lattice is not None:
        first = np.repeat(r[molecules.starts[:-1]], np.diff(molecules.starts), axis=0)
        inv = np.linalg.inv(s.lattice)
        df = (r - first) @ inv
        df -= np.round(df)
        r = first + df @ s.lattice
    return Molecules(atoms, molecules.starts, r)


@numba.njit(cache=True)
def _find(parent, off, x, out):
    """Root of x; out[:] = u[x] - u[root] (integer image offsets); compresses paths."""
    root = x
    o0 = 0
    o1 = 0
    o2 = 0
    while parent[root] != root:
        o0 += off[root, 0]
        o1 += off[root, 1]
        o2 += off[root, 2]
        root = parent[root]
    out[0] = o0
    out[1] = o1
    out[2] = o2
    cur = x
    while cur != root and parent[cur] != root:
        nxt = parent[cur]
        c0 = off[cur, 0]
        c1 = off[cur, 1]
        c2 = off[cur, 2]
        off[cur, 0] = o0
        off[cur, 1] = o1
        off[cur, 2] = o2
        parent[cur] = root
        o0 -= c0
        o1 -= c1
        o2 -= c2
        cur = nxt
    return root


@numba.njit(cache=True)
def _bond_components(frac, pos, lattice, periodic, types, rc, nbin, reach, parent, off, err):
    """Union-find of the bond graph over every periodic image.

    frac : float64 (n, 3), fractional coordinates in [0, 1) (periodic) or
        scaled to [0, 1] in the bounding box (non-periodic).
    pos : float64 (n, 3), Cartesian positions, ``frac @ lattice`` when periodic.
    lattice : float64 (3, 3), rows are the lattice vectors (zeros if not periodic).
    types : int64 (n,), element index of each atom into rc.
    rc : float64 (E, E), bond cutoffs (0 = never bonded).
    nbin, reach : int64 (3,), the cell grid (:func:`~.descriptors.neighbors.grid_shape`)
        for the largest cutoff.
    parent, off : int64 (n,), (n, 3), outputs: union-find forest with
        off[x] = u[x] - u[parent[x]], u the integer image of each atom in its
        unwrapped molecule.
    err : int64 (5,), output on failure: i, j and the image shift of j.
    Returns 0, or 1 when a molecule is bonded to its own periodic image.
    """
    n = frac.shape[0]
    bins, cstart, catoms = cell_sort(frac, nbin)
    for i in range(n):
        parent[i] = i
        off[i, 0] = 0
        off[i, 1] = 0
        off[i, 2] = 0
    oi = np.zeros(3, dtype=np.int64)
    oj = np.zeros(3, dtype=np.int64)
    no_stop = np.zeros(1, dtype=np.int64)
    ej, ex, ey, ez, e2, es = entry_buffers(cstart, reach)
    for i in range(n):
        # every image in reach of the grid, each pair once (j >= i); the
        # bond test below decides
        m = atom_entries(i, pos, lattice, periodic, bins, cstart, catoms, nbin, reach, np.inf,
                         HALF_LIST, ej, ex, ey, ez, e2, es, no_stop)
        ti = types[i]
        for k in range(m):
            j = ej[k]
            r = rc[ti, types[j]]
            if r <= 0.0:
                continue
            n0 = es[k, 0]
            n1 = es[k, 1]
            n2 = es[k, 2]
            sx = n0 * lattice[0, 0] + n1 * lattice[1, 0] + n2 * lattice[2, 0]
            sy = n0 * lattice[0, 1] + n1 * lattice[1, 1] + n2 * lattice[2, 1]
            sz = n0 * lattice[0, 2] + n1 * lattice[1, 2] + n2 * lattice[2, 2]
            dx = pos[j, 0] + sx - pos[i, 0]
            dy = pos[j, 1] + sy - pos[i, 1]
            dz = pos[j, 2] + sz - pos[i, 2]
            if dx * dx + dy * dy + dz * dz >= r * r:
                continue
            # bond: image (n0, n1, n2) of j is bonded to i, so u[j] - u[i] = n
            ri = _find(parent, off, i, oi)
            rj = _find(parent, off, j, oj)
            if ri == rj:
                if oj[0] - oi[0] != n0 or oj[1] - oi[1] != n1 or oj[2] - oi[2] != n2:
                    err[0] = i
                    err[1] = j
                    err[2] = n0
                    err[3] = n1
                    err[4] = n2
                    return 1
            else:
                parent[rj] = ri
                off[rj, 0] = n0 + oi[0] - oj[0]
                off[rj, 1] = n1 + oi[1] - oj[1]
                off[rj, 2] = n2 + oi[2] - oj[2]
    return 0


@numba.njit(cache=True)
def _resolve(parent, off, roots, images):
    """roots[x], images[x] = root of x and u[x] - u[root] for every atom."""
    tmp = np.zeros(3, dtype=np.int64)
    for x in range(parent.shape[0]):
        roots[x] = _find(parent, off, x, tmp)
        images[x, 0] = tmp[0]
        images[x, 1] = tmp[1]
        images[x, 2] = tmp[2]


def find_molecules(s: Structure, cutoffs) -> Molecules:
    """Molecules of structure ``s``: connected components of the bond graph.

    cutoffs : :class:`BondCutoffs` or anything :func:`parse_bond_cutoff` takes.
    Atoms i, j are bonded when ``|r_j + n L - r_i| < cutoff(e_i, e_j)`` for some
    lattice translation n L (any image, the atom's own included).  Molecules
    are ordered by their smallest atom index, atoms ascending within each.

    Raises CoarseGrainError when a molecule is bonded to its own periodic
    image (it percolates through the cell).
    """
    cutoffs = parse_bond_cutoff(cutoffs)
    path, line, what = _where(s)
    n = s.natoms
    symbols = sorted(set(s.elements.tolist()))
    tindex = {e: k for k, e in enumerate(symbols)}
    types = np.array([tindex[e] for e in s.elements.tolist()], dtype=np.int64)
    rc = cutoffs.matrix(symbols)
    rcmax = float(rc.max()) if rc.size else 0.0
    parent = np.empty(n, dtype=np.int64)
    off = np.empty((n, 3), dtype=np.int64)
    err = np.zeros(5, dtype=np.int64)
    if s.lattice is not None:
        lat = np.ascontiguousarray(s.lattice, dtype=np.float64)
        inv = np.linalg.inv(lat)
        frac = s.positions @ inv
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0                          # rounding at the upper edge
        pos = frac @ lat
        width = 1.0 / np.linalg.norm(inv, axis=0)        # distances between lattice planes
        periodic = True
    else:
        lat = np.zeros((3, 3))
        lo = s.positions.min(axis=0)
        width = np.maximum(s.positions.max(axis=0) - lo, 1e-300)
        frac = (s.positions - lo) / width
        pos = s.positions
        periodic = False
    if rcmax > 0:
        # at most about 2 n^(1/3) cells per direction: a sparse structure and
        # a short bond keep few, fuller cells
        cap = max(1, int(round(2.0 * max(n, 1) ** (1.0 / 3.0))))
        nbin, reach = grid_shape(width, rcmax, periodic, max_bins=cap)
        status = _bond_components(np.ascontiguousarray(frac, dtype=np.float64),
                                  np.ascontiguousarray(pos, dtype=np.float64), lat, periodic,
                                  types, rc, nbin, reach, parent, off, err)
    else:
        parent[:] = np.arange(n)
        off[:] = 0
        status = 0
    if status:
        i, j = int(err[0]), int(err[1])
        shift = err[2:5]
        d = np.linalg.norm(pos[j] + shift @ lat - pos[i])
        pair = f"{s.elements[i]}-{s.elements[j]}"
        if i == j:
            how = (f"atom {i} ({s.elements[i]}) is bonded to its own periodic image "
                   f"{tuple(int(v) for v in shift)} at {d:.6g}")
        else:
            how = (f"the bond between atoms {i} ({s.elements[i]}) and {j} ({s.elements[j]}) "
                   f"(image shift {tuple(int(v) for v in shift)}, distance {d:.6g}) joins the "
                   "molecule to its own image")
        raise CoarseGrainError(path, line, f"{what}: a molecule is connected to its own periodic "
                                           f"image, so it spans the cell: {how} (atom indices "
                                           f"0-based); the bond cutoff {cutoffs.get(*pair.split('-')):g} "
                                           f"for {pair} is too large (--bond-cutoff {cutoffs})")
    roots = np.empty(n, dtype=np.int64)
    images = np.empty((n, 3), dtype=np.int64)
    _resolve(parent, off, roots, images)
    # molecules ordered by their smallest atom; atoms ascending within each
    first = np.full(n, n, dtype=np.int64)
    np.minimum.at(first, roots, np.arange(n))
    key = first[roots]
    atoms = np.lexsort((np.arange(n), key)).astype(np.int64)
    sizes = np.bincount(key, minlength=n)
    sizes = sizes[sizes > 0]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    unwrapped = pos[atoms] + (images[atoms] @ lat if periodic else 0.0)
    return Molecules(atoms, starts, np.ascontiguousarray(unwrapped))


# ----------------------------------------------------------------------------
# Coarse-graining
# ----------------------------------------------------------------------------
def _masses(symbols, overrides) -> np.ndarray:
    out = np.empty(len(symbols))
    for k, e in enumerate(symbols):
        m = overrides.get(e, ATOMIC_MASS.get(e))
        if m is None:
            raise DistatomenvError(f"no mass for element '{e}'; give it with --mass {e}=MASS")
        out[k] = m
    return out


def _compositions(s: Structure, mol: Molecules):
    """(symbols, int64 (M, E) element counts per molecule), symbols in atomic-number order."""
    symbols = sort_by_atomic_number(set(s.elements.tolist()))
    tindex = {e: k for k, e in enumerate(symbols)}
    types = np.array([tindex[e] for e in s.elements[mol.atoms].tolist()], dtype=np.int64)
    molof = np.repeat(np.arange(mol.n_molecules), np.diff(mol.starts))
    counts = np.zeros((mol.n_molecules, len(symbols)), dtype=np.int64)
    np.add.at(counts, (molof, types), 1)
    return symbols, counts


def _check_composition(s: Structure, mol: Molecules, expected: dict, origin: str):
    path, line, what = _where(s)
    symbols, counts = _compositions(s, mol)
    want = np.array([expected.get(e, 0) for e in symbols], dtype=np.int64)
    extra = set(expected) - set(symbols)
    bad = np.flatnonzero((counts != want).any(axis=1)) if not extra else np.arange(len(counts))
    if len(bad) == 0:
        return
    shown = []
    for k in bad[:_SHOW]:
        comp = {e: int(c) for e, c in zip(symbols, counts[k]) if c}
        atoms = mol[k].tolist()
        shown.append(f"atoms {atoms} ({format_composition(comp)})")
    more = f" and {len(bad) - _SHOW} more" if len(bad) > _SHOW else ""
    raise CoarseGrainError(path, line, f"{what}: {len(bad)} of {mol.n_molecules} molecule(s) "
                                       f"are not {format_composition(expected)} ({origin}): "
                                       f"{'; '.join(shown)}{more} (atom indices 0-based); check "
                                       "the bond cutoff or molecules, or pass --composition any")


def coarse_grain_structure(s: Structure, molecules: Molecules, masses=None,
                           cg_element: str = DEFAULT_CG_ELEMENT, comment: str | None = None
                           ) -> Structure:
    """The CG structure of ``s``: one site per molecule.

    molecules : :class:`Molecules` with ``unwrapped`` positions (from
        :func:`find_molecules` or :func:`explicit_molecules`).
    masses : {symbol: mass} overriding the standard atomic weights.
    Returns a Structure with the site positions (centres of mass wrapped into
    the cell; length), summed forces, charges and atomic energies, and the
    energy, total charge, cell, index and line of ``s``.
    """
    symbols = s.elements[molecules.atoms]
    uniq = sorted(set(symbols.tolist()))
    mass_of = dict(zip(uniq, _masses(uniq, parse_masses(masses))))
    m = np.array([mass_of[e] for e in symbols.tolist()])
    starts = molecules.starts[:-1]
    total = np.add.reduceat(m, starts)
    com = np.add.reduceat(m[:, None] * molecules.unwrapped, starts, axis=0) / total[:, None]
    if s.lattice is not None:
        frac = com @ np.linalg.inv(s.lattice)
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0
        com = frac @ s.lattice
    a = molecules.atoms
    forces = np.add.reduceat(s.forces[a], starts, axis=0)
    charges = np.add.reduceat(s.charges[a], starts)
    energies = np.add.reduceat(s.atom_energies[a], starts)
    return Structure(index=s.index, line=s.line, comment=s.comment if comment is None else comment,
                     lattice=None if s.lattice is None else s.lattice.copy(), positions=com,
                     elements=np.full(len(com), cg_element), charges=charges,
                     atom_energies=energies, forces=forces, energy=s.energy, charge=s.charge,
                     path="")


@dataclass
class CoarseGrainResult:
    """What :func:`coarse_grain` wrote.

    path : the CG input.data.  n_structures, n_atoms, n_sites : counts read and written.
    composition : formula of the molecules ("H2O"), "any" when unchecked.
    cg_element : element of the sites.  seconds : wall time.
    """

    path: str
    n_structures: int
    n_atoms: int
    n_sites: int
    composition: str
    cg_element: str
    seconds: float

    def __str__(self) -> str:
        return (f"{self.n_structures} structures, {self.n_atoms} atoms -> {self.n_sites} "
                f"{self.cg_element} sites ({self.composition}) in {self.path} "
                f"({self.seconds:.2f} s)")


def coarse_grain(data, out, *, bond_cutoff=None, molecules=None, masses=None,
                 cg_element: str = DEFAULT_CG_ELEMENT, composition=None, format: str = "n2p2",
                 index=":", progress=None) -> CoarseGrainResult:
    """Coarse-grain every structure of ``data`` into ``out`` (n2p2 input.data).

    Parameters
    ----------
    data : atomistic input.data, or with ``format="ase"`` any trajectory ASE
        reads with forces (extended XYZ, OUTCAR, LAMMPS dump, .traj).
    out : the CG input.data to write (replaced).
    bond_cutoff : molecules from bonds (see :func:`parse_bond_cutoff`: 1.2,
        "O-H=1.2,H-H=0", ...), in the length unit of the data.
    molecules : molecules file (one line of 0-based atom indices per
        molecule, the same for every structure).  Exactly one of
        ``bond_cutoff`` and ``molecules``.
    masses : {symbol: mass} or "H=1.008,O=16" overriding the standard atomic weights.
    cg_element : element symbol of the sites (default "Cm", as n2p2's example).
    composition : "H2O" to require it, "any" to allow mixed molecules, None
        (default) to require every molecule to match the first one.
    format : "n2p2" or "ase" (then ``index`` selects frames, ASE syntax).
    progress : optional callable(structures, atoms) after each structure.

    Returns a :class:`CoarseGrainResult`.
    """
    t0 = time.perf_counter()
    if (bond_cutoff is None) == (molecules is None):
        raise DistatomenvError("coarse-grain needs exactly one of --bond-cutoff and --molecules")
    if cg_element not in ATOMIC_NUMBER:
        raise DistatomenvError(f"--cg-element: '{cg_element}' is not an element symbol; the sites "
                               "need one (n2p2 weights some SFs by atomic number), e.g. Cm")
    cutoffs = None if bond_cutoff is None else parse_bond_cutoff(bond_cutoff)
    masses = parse_masses(masses)
    expected = parse_composition(composition)
    origin = "as given with --composition"
    explicit, lines = (None, None) if molecules is None else read_molecules(molecules)
    source = None if molecules is None else os.fspath(molecules)
    data = os.fspath(data)
    out = os.fspath(out)
    if format == "n2p2":
        from ..io.inputdata import iter_structures
        structures = iter_structures(data)
    elif format == "ase":
        from ..io.ase import iter_structures as iter_ase
        structures = iter_ase(data, index=index)
    else:
        raise DistatomenvError(f"unknown input format {format!r}; expected 'n2p2' or 'ase'")
    how = (f"bonds {cutoffs}" if cutoffs is not None else f"molecules {os.path.basename(source)}")
    n_structures = n_atoms = n_sites = 0
    with replacing(out) as f:
        for s in structures:
            if explicit is not None:
                mol = explicit_molecules(s, explicit, lines, source)
            else:
                mol = find_molecules(s, cutoffs)
            if expected is None:
                symbols, counts = _compositions(s, Molecules(mol[0], np.array([0, len(mol[0])])))
                expected = {e: int(c) for e, c in zip(symbols, counts[0]) if c}
                origin = (f"the composition of the first molecule of structure "
                          f"{s.index + 1}, atoms {mol[0].tolist()}")
            if expected != "any":
                _check_composition(s, mol, expected, origin)
            comment = "\n".join(c for c in (s.comment, f"coarse-grained by distatomenv: "
                                f"{mol.n_molecules} molecules ({how}) -> {cg_element} sites "
                                "at centres of mass") if c)
            cg = coarse_grain_structure(s, mol, masses, cg_element, comment)
            write_structures(f, [cg])
            n_structures += 1
            n_atoms += s.natoms
            n_sites += cg.natoms
            if progress is not None:
                progress(1, s.natoms)
    comp = "any" if expected == "any" else format_composition(expected)
    return CoarseGrainResult(out, n_structures, n_atoms, n_sites, comp, cg_element,
                             time.perf_counter() - t0)
