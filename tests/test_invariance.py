"""Symmetry of the environment rows, and the neighbour specification.

Through :meth:`EnvironmentCalculator.compute` (scaled rows, every SF type):

* translation of every atom (cluster; periodic cells with the positions
  remapped into the cell afterwards, fractional f -= floor(f));
* rotation of a cluster: G unchanged, every column triple (dGdx, dGdy, dGdz)
  of the derivative rows rotates like a vector, dG' = R dG;
* permutation of the atoms: rows follow the atoms, ``nb_atom`` maps through
  the permutation, G and dG rows are unchanged (no exact distance ties between
  different atoms exist in these structures);
* adding integer combinations of lattice vectors to some atoms (then
  remapping) leaves every output unchanged.

Floating-point noise: moving a structure changes positions and entry vectors
by rounding only (~1e-15 relative), so G and dG agree to ``RTOL`` = 1e-10
relative and ``ATOL`` = 1e-10 absolute (G reaches ~1e3 for the weighted
types); integer outputs (atom, nb_atom, nb_order) must be identical.

In the small cell every atom has self-images at +T and -T, an exact distance
tie; the neighbour list must order it by image shift wherever the atom sits
(:func:`test_self_image_tie_order_is_translation_invariant`), because the
derivative block of a self-image neighbour is taken on the first of them.

Also :func:`parse_neighbor_spec` (both spellings, every error) and the
:class:`NotEnoughNeighborsError` of ``compute``.
"""
from __future__ import annotations

import numpy as np
import pytest

from distatomenv.descriptors.environment import EnvironmentCalculator
from distatomenv.descriptors.spec import parse_neighbor_spec
from distatomenv.descriptors.neighbors import neighbor_list
from distatomenv.io.structure import remap_positions
from distatomenv.descriptors.symfuncs import SymmetryFunction, SymmetryFunctionSet
from distatomenv.errors import NeighborSpecError, NotEnoughNeighborsError
from structures import ELEMENTS, LATTICE_SMALL, LATTICE_TRICLINIC, random_structure

RTOL = 1e-10
ATOL = 1e-10



# ----------------------------------------------------------------------------- fixtures

STRUCTURES = {
    "triclinic": random_structure(13, list("HOCHOHCOHHOC"), lattice=LATTICE_TRICLINIC),
    "small_cell": random_structure(5, list("OHCH"), lattice=LATTICE_SMALL),
    "cluster": random_structure(7, list("OHHCOHCHOHHO"),
                                box=np.array([[0.0, 0.0, 0.0], [4.2, 3.8, 4.0]])),
}
PERIODIC = ["triclinic", "small_cell"]


def all_sfs():
    """Every SF type, for every central element."""
    out = []
    for c in ELEMENTS:
        for e1 in ELEMENTS:
            out.append(SymmetryFunction(c, 2, e1=e1, eta=0.25, rc=4.6))
        out.append(SymmetryFunction(c, 2, e1=c, eta=0.9, rs=1.6, rc=5.3))
        for t in (3, 9):
            out += [SymmetryFunction(c, t, e1="H", e2="O", eta=0.02, lambda_=-1.0, zeta=2.5,
                                     rc=5.0),
                    SymmetryFunction(c, t, e1="C", e2="O", eta=0.1, rs=0.9, lambda_=1.0,
                                     zeta=1.0, rc=4.4),
                    SymmetryFunction(c, t, e1="H", e2="H", eta=0.05, lambda_=1.0, zeta=4.0,
                                     rc=4.9)]
        out += [SymmetryFunction(c, 12, eta=0.2, rc=5.0),
                SymmetryFunction(c, 13, eta=0.1, rs=1.1, lambda_=-1.0, zeta=2.5, rc=4.7),
                SymmetryFunction(c, 20, e1="O", rl=0.9, rc=4.25, subtype="p2"),
                SymmetryFunction(c, 20, e1="H", rl=-4.8, rc=4.8, subtype="p4a"),
                SymmetryFunction(c, 21, e1="H", e2="O", rl=-5.2, rc=5.2, angle_left=-60.0,
                                 angle_right=60.0, subtype="p3"),
                SymmetryFunction(c, 22, e1="C", e2="O", rl=1.0, rc=4.6, angle_left=150.0,
                                 angle_right=210.0, subtype="e"),
                SymmetryFunction(c, 23, rl=2.0, rc=5.4, subtype="p1"),
                SymmetryFunction(c, 24, rl=0.5, rc=4.1, angle_left=30.0, angle_right=120.0,
                                 subtype="p2a"),
                SymmetryFunction(c, 25, rl=-3.0, rc=4.4, angle_left=90.0, angle_right=175.0,
                                 subtype="p4")]
    return out


#: Rows: central H, C, O; columns: neighbour H, C, O.
NCUT = np.array([[2, 1, 2], [3, 1, 2], [2, 2, 2]])


@pytest.fixture(scope="module")
def calc():
    sfset = SymmetryFunctionSet(list(ELEMENTS), all_sfs(), cutoff_type=6, cutoff_alpha=0.2)
    scaling = {}
    for a, e in enumerate(sfset.elements):
        k = np.arange(sfset.n_sf(e))
        scaling[e] = (0.1 * (k % 3), 0.5 + 0.25 * ((k + a) % 5), -0.2 + 0.1 * (k % 4))
    return EnvironmentCalculator(sfset, NCUT, scaling)


def _compute(calc, name, positions=None, elem=None):
    e0, p0, lat = STRUCTURES[name]
    return calc.compute(e0 if elem is None else elem, p0 if positions is None else positions,
                        lat)


def _dg(rows):
    """(rows, columns, 3) derivative array."""
    return np.stack([rows["dGdx"], rows["dGdy"], rows["dGdz"]], axis=-1)


def assert_same_rows(ref, got, what, rotation=None):
    """Every output equal: integers exactly, G and dG to RTOL/ATOL; with
    ``rotation`` R, got's dG must equal R dG of ref (per column triple)."""
    assert sorted(ref) == sorted(got), what
    for e in ref:
        r, g = ref[e], got[e]
        for key in ("atom", "nb_atom", "nb_order"):
            np.testing.assert_array_equal(g[key], r[key], err_msg=f"{what}: {e} {key}")
        np.testing.assert_allclose(g["G"], r["G"], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{what}: {e} G")
        want = _dg(r) if rotation is None else _dg(r) @ rotation.T
        np.testing.assert_allclose(_dg(g), want, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{what}: {e} dG")
        assert np.abs(_dg(r)).max() > 1e-3, f"{what}: {e} derivatives are all zero"


def rotation_matrix(axis, angle):
    axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


# ----------------------------------------------------------------------------- invariance
@pytest.mark.parametrize("shift", [(3.7, -12.1, 0.4), (-0.25, 0.31, 0.05)])
def test_translation_cluster(calc, shift):
    ref = _compute(calc, "cluster")
    pos = STRUCTURES["cluster"][1] + np.array(shift)
    assert_same_rows(ref, _compute(calc, "cluster", pos), f"cluster shifted by {shift}")


@pytest.mark.parametrize("name", PERIODIC)
@pytest.mark.parametrize("shift", [(3.7, -12.1, 0.4), (-0.25, 0.31, 0.05), (0.5, 0.5, 0.5)])
def test_translation_periodic(calc, name, shift):
    _, pos, lat = STRUCTURES[name]
    ref = _compute(calc, name)
    moved = remap_positions(pos + np.array(shift), lat)
    if np.abs(shift).max() > 10:
        assert not np.allclose(moved, pos + np.array(shift))    # atoms were remapped
    assert_same_rows(ref, _compute(calc, name, moved), f"{name} shifted by {shift}")


@pytest.mark.parametrize("shift", [(0.0, 0.0, 0.0), (3.7, -12.1, 0.4), (0.5, 0.5, 0.5)])
def test_self_image_tie_order_is_translation_invariant(shift):
    """An atom's self-images at +T and -T are exactly equally far away; the
    neighbour list promises to order exact ties by (atom, image shift), and
    compute() takes a self-image neighbour block's derivative on the first of
    them (dG_i/dr_{i+T} differs from dG_i/dr_{i-T}).  So the -T image must come
    first wherever the atom sits in the cell, or the dG block changes when the
    structure is translated (test_translation_periodic[small_cell])."""
    _, pos, lat = STRUCTURES["small_cell"]
    moved = remap_positions(pos + np.array(shift), lat)
    nl = neighbor_list(moved, lat, 5.4)
    for i in range(len(pos)):
        sl = nl.of(i)
        own = np.flatnonzero(nl.j[sl] == i) + sl.start
        index = {tuple(int(x) for x in nl.shift[q]): q for q in own}
        for T, q in index.items():
            q_minus = index[tuple(-x for x in T)]
            if T < tuple(-x for x in T):
                assert q < q_minus, (
                    f"atom {i}: self-image {T} (d = {nl.d[q]!r}) should precede "
                    f"{tuple(-x for x in T)} (d = {nl.d[q_minus]!r}); the ordering of this "
                    "exact tie depends on rounding of (r_i + T) - r_i")


@pytest.mark.parametrize("axis, angle", [((1, 2, 3), 0.7), ((0, 0, 1), np.pi / 2),
                                         ((-1, 0.5, 0.2), 2.9)])
def test_rotation_cluster(calc, axis, angle):
    R = rotation_matrix(axis, angle)
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)
    pos = STRUCTURES["cluster"][1]
    centre = np.array([1.0, -2.0, 0.5])
    rotated = (pos - centre) @ R.T + centre
    ref = _compute(calc, "cluster")
    got = _compute(calc, "cluster", rotated)
    assert_same_rows(ref, got, f"cluster rotated by {angle} about {axis}", rotation=R)
    # dG is not rotation invariant itself (or the check above proves nothing)
    assert any(not np.allclose(_dg(got[e]), _dg(ref[e]), atol=1e-6) for e in ref)


@pytest.mark.parametrize("name", PERIODIC + ["cluster"])
def test_permutation(calc, name):
    elem, pos, _ = STRUCTURES[name]
    n = len(elem)
    perm = np.random.default_rng(42).permutation(n)          # new atom k = old atom perm[k]
    assert (perm != np.arange(n)).any()
    ref = _compute(calc, name)
    got = _compute(calc, name, pos[perm], elem[perm])
    assert sorted(ref) == sorted(got)
    for e in ref:
        r, g = ref[e], got[e]
        np.testing.assert_array_equal(np.sort(g["atom"]), g["atom"])   # input atom order
        old = perm[g["atom"]]
        order = np.argsort(old)
        np.testing.assert_array_equal(old[order], r["atom"])
        np.testing.assert_array_equal(perm[g["nb_atom"][order]], r["nb_atom"])
        np.testing.assert_array_equal(g["nb_order"][order], r["nb_order"])
        np.testing.assert_allclose(g["G"][order], r["G"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(_dg(g)[order], _dg(r), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", PERIODIC)
def test_lattice_vector_moves(calc, name):
    elem, pos, lat = STRUCTURES[name]
    n = len(elem)
    ints = np.zeros((n, 3))
    ints[::2] = np.array([[1, -2, 3], [-1, 0, 2], [4, 1, -1], [0, -3, 0], [2, 2, 2], [-5, 1, 0]]
                         )[: len(ints[::2])]
    moved = remap_positions(pos + ints @ lat, lat)
    np.testing.assert_allclose(moved, pos, atol=1e-12)
    assert_same_rows(_compute(calc, name), _compute(calc, name, moved),
                     f"{name} atoms moved by lattice vectors")


# ----------------------------------------------------------------------------- neighbour spec
def test_parse_neighbor_spec_forms_agree():
    els = ["H", "O"]
    a = parse_neighbor_spec("6 2 4 4", els)
    b = parse_neighbor_spec("H-H=6,H-O=2,O-H=4,O-O=4", els)
    np.testing.assert_array_equal(a, [[6, 2], [4, 4]])
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and b.dtype == np.int64
    # other spellings of the same
    np.testing.assert_array_equal(parse_neighbor_spec("6,2,4,4", els), a)
    np.testing.assert_array_equal(parse_neighbor_spec([6, 2, 4, 4], els), a)
    np.testing.assert_array_equal(parse_neighbor_spec(" O-O = 4 ; H-H=6, H-O=2,O-H=4 ", els), a)
    np.testing.assert_array_equal(parse_neighbor_spec("6.0 2 4e0 4", els), a)
    # unnamed pairs are 0
    np.testing.assert_array_equal(parse_neighbor_spec("O-H=3", els), [[0, 0], [3, 0]])
    # three elements, row-major in atomic-number order
    np.testing.assert_array_equal(parse_neighbor_spec("1 2 3 4 5 6 7 8 9", ELEMENTS),
                                  np.arange(1, 10).reshape(3, 3))


@pytest.mark.parametrize("spec, match", [
    ("6 2 4", r"found 3 value\(s\) in '6 2 4', expected 4 .*H-H, H-O, O-H, O-O"),
    ("6 2 4 4 1", r"found 5 value\(s\)"),
    ("", r"found 0 value\(s\)"),
    ("H-X=2", r"unknown element 'X' in 'H-X=2'; the settings have H, O"),
    ("C-H=1,H-H=2", r"unknown element 'C'"),
    ("h-H=1", r"unknown element 'h'"),
    ("6 two 4 4", r"'two' in '6 two 4 4' is not a number"),
    ("H-H=abc", r"'abc' in 'H-H=abc' is not a number"),
    ("6 -2 4 4", r"'-2' in '6 -2 4 4' must be a whole number >= 0"),
    ("H-O=-1", r"'-1' in 'H-O=-1' must be a whole number >= 0"),
    ("6 2.5 4 4", r"'2.5' in '6 2.5 4 4' must be a whole number >= 0"),
    ("H-H=0.5", r"must be a whole number >= 0"),
    ("H-H", r"found 1 value\(s\) in 'H-H'"),             # no '=': the list form
    ("H-H=2,O-O", r"cannot read 'O-O'; expected CENTRAL-NEIGHBOR=COUNT, e.g. H-O=4"),
    ("H-H=1,H=2", r"cannot read 'H=2'"),
    ("H-H=1=2", r"cannot read 'H-H=1=2'"),
])
def test_parse_neighbor_spec_errors(spec, match):
    with pytest.raises(NeighborSpecError, match=match):
        parse_neighbor_spec(spec, ["H", "O"])


@pytest.mark.parametrize("spec", ["inf 2 4 4", "H-H=nan", "H-O=1e30"])
def test_parse_neighbor_spec_non_finite_or_huge(spec):
    """Non-finite or out-of-range counts are rejected with a NeighborSpecError
    like any other bad count (not an OverflowError/ValueError from int())."""
    with pytest.raises(NeighborSpecError, match="must be a whole number >= 0|too large"):
        parse_neighbor_spec(spec, ["H", "O"])


def test_not_enough_neighbors(calc):
    """Asking for more O neighbours than an O atom has within the cutoff."""
    elem, pos, _ = STRUCTURES["cluster"]
    ncut = NCUT.copy()
    o = ELEMENTS.index("O")
    n_o = int((elem == o).sum())
    ncut[o, o] = n_o + 2                  # each O atom has only n_o - 1 O neighbours
    c2 = EnvironmentCalculator(calc.sfset, ncut,
                               {e: (np.zeros(calc.sfset.n_sf(e)), np.ones(calc.sfset.n_sf(e)),
                                    np.zeros(calc.sfset.n_sf(e))) for e in ELEMENTS})
    first_o = int(np.flatnonzero(elem == o)[0])
    with pytest.raises(NotEnoughNeighborsError) as info:
        c2.compute(elem, pos, None, structure_index=4)
    err = info.value
    d = np.linalg.norm(pos[elem == o] - pos[first_o], axis=1)
    found = int((d <= calc.rc_max).sum()) - 1          # O atoms within the cutoff, not itself
    assert (err.structure, err.atom, err.central, err.neighbor) == (5, first_o + 1, "O", "O")
    assert (err.found, err.requested) == (found, n_o + 2)
    msg = str(err)
    assert f"structure 5 (1-based), atom {first_o + 1} (1-based, element O)" in msg
    assert f"has only {found} O neighbour(s) within the cutoff" in msg
    assert f"but {n_o + 2} were requested for the pair O-O" in msg
    # the same counts are fine when they are available
    ok = ncut.copy()
    ok[o, o] = 1
    EnvironmentCalculator(calc.sfset, ok, {e: (np.zeros(calc.sfset.n_sf(e)),
                                                np.ones(calc.sfset.n_sf(e)),
                                                np.zeros(calc.sfset.n_sf(e)))
                                            for e in ELEMENTS}).compute(elem, pos, None)


@pytest.mark.parametrize("pos", [[[0, 0, 0], [1, 0, 0]],                 # axis-aligned dimer
                                 [[0, 0, 0], [1, 0, 0], [0, 1.5, 0]]])   # planar molecule
def test_flat_non_periodic_structures_find_their_neighbours(pos):
    pos = np.array(pos, dtype=float)
    nl = neighbor_list(pos, None, 3.0)
    for i in range(len(pos)):
        assert sorted(nl.j[nl.of(i)].tolist()) == [j for j in range(len(pos)) if j != i]
