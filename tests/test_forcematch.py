"""Force-matching features (descriptors/forcematch.py) against central
differences: D_i = Σ_j ∂G_j/∂r_i and Q_i = Σ_j ∂(G_{j,s} G_{j,t})/∂r_i, summed
per element of j, for every SF type (the mixed set of test_derivatives.py:
types 2, 3, 9, 12, 13 and 20-25 with assorted subtypes), on a cluster, a
triclinic cell and a cell smaller than the cutoff (atoms see their own images;
moving an atom moves its images); and D under every cutoff type 0-8.

Step and tolerance are those of test_derivatives.py (FD_STEP = 1e-5, the
criterion of its ``_compare``): the features are sums of the derivatives
checked there.
"""
from __future__ import annotations

import numpy as np
import pytest

from distatomenv.descriptors.environment import EnvironmentCalculator
from distatomenv.descriptors.forcematch import ForceMatchingLayout
from distatomenv.io.structure import remap_positions

from test_derivatives import FD_STEP, NCUT, NONZERO, _compare, _own_g, _scaling, _sfset, mixed_sfs, structures


def _sums(calc, sfset, elem, pos, lattice, quadratic):
    """Σ_j G_j (and Σ_j G_j,s G_j,t) per element of j, the functions whose
    gradient the features are."""
    p = pos if lattice is None else remap_positions(pos, lattice)
    own = _own_g(calc.compute(elem, p, lattice), sfset, len(elem))
    lay = ForceMatchingLayout([sfset.n_sf(e) for e in sfset.elements])
    lin = np.zeros(lay.n_linear)
    quad = np.zeros(lay.n_quadratic)
    for j, g in enumerate(own):
        a = int(elem[j])
        lin[lay.d_offset[a]:lay.d_offset[a + 1]] += g
        if quadratic:
            iu = np.triu_indices(len(g))
            quad[lay.q_offset[a]:lay.q_offset[a + 1]] += np.outer(g, g)[iu]
    return lin, quad


@pytest.mark.parametrize("name", ["cluster", "triclinic", "small_cell"])
@pytest.mark.parametrize("scaling", ["identity", "factors"])
def test_features_are_gradients_of_the_summed_sfs(name, scaling):
    sfset = _sfset(mixed_sfs(), cutoff=7, alpha=0.3)
    elem, pos, lattice = structures()[name]
    n = len(elem)
    ncut = np.zeros_like(NCUT) if name == "small_cell" else NCUT
    calc = EnvironmentCalculator(sfset, ncut, _scaling(sfset, scaling), force_matching="quadratic")
    plain = EnvironmentCalculator(sfset, ncut, _scaling(sfset, scaling))
    base = calc.compute(elem, pos if lattice is None else remap_positions(pos, lattice), lattice)
    feats = {}
    for e, res in base.items():
        for r, i in enumerate(res["atom"]):
            feats[int(i)] = (np.stack([res[f"fm_d{c}"][r] for c in "xyz"], axis=1),
                             np.stack([res[f"fmq_d{c}"][r] for c in "xyz"], axis=1))
    assert sorted(feats) == list(range(n))
    biggest = 0.0
    for i in range(n):
        for axis in range(3):
            up, down = pos.copy(), pos.copy()
            up[i, axis] += FD_STEP
            down[i, axis] -= FD_STEP
            lp, qp = _sums(plain, sfset, elem, up, lattice, True)
            lm, qm = _sums(plain, sfset, elem, down, lattice, True)
            l0, q0 = _sums(plain, sfset, elem, pos, lattice, True)
            _compare(feats[i][0][:, axis], (lp - lm) / (2 * FD_STEP), l0,
                     lambda idx: f"{name} atom {i} D column {idx[0]}", f"D, axis {axis}")
            _compare(feats[i][1][:, axis], (qp - qm) / (2 * FD_STEP), q0,
                     lambda idx: f"{name} atom {i} Q column {idx[0]}", f"Q, axis {axis}")
            biggest = max(biggest, np.abs(feats[i][0]).max())
    assert biggest > NONZERO


@pytest.mark.parametrize("cutoff", range(9))
def test_linear_features_under_every_cutoff_type(cutoff):
    """D against central differences for the exponential types under cutoff
    types 0-8 (alpha 0.3), on the triclinic cell."""
    from test_derivatives import EXPONENTIAL_TYPES, exponential_sfs

    sfset = _sfset([f for t in EXPONENTIAL_TYPES for f in exponential_sfs(t)], cutoff=cutoff, alpha=0.3)
    elem, pos, lattice = structures()["triclinic"]
    calc = EnvironmentCalculator(sfset, NCUT, _scaling(sfset, "factors"), force_matching="linear")
    plain = EnvironmentCalculator(sfset, NCUT, _scaling(sfset, "factors"))
    base = calc.compute(elem, remap_positions(pos, lattice), lattice)
    D = {int(i): np.stack([res[f"fm_d{c}"][r] for c in "xyz"], axis=1)
         for res in base.values() for r, i in enumerate(res["atom"])}
    l0, _ = _sums(plain, sfset, elem, pos, lattice, False)
    for i in range(len(elem)):
        for axis in range(3):
            up, down = pos.copy(), pos.copy()
            up[i, axis] += FD_STEP
            down[i, axis] -= FD_STEP
            fd = (_sums(plain, sfset, elem, up, lattice, False)[0]
                  - _sums(plain, sfset, elem, down, lattice, False)[0]) / (2 * FD_STEP)
            _compare(D[i][:, axis], fd, l0, lambda idx: f"cutoff {cutoff} atom {i} column {idx[0]}",
                     f"D, axis {axis}")
    assert max(np.abs(d).max() for d in D.values()) > NONZERO


def test_linear_only_and_none():
    sfset = _sfset(mixed_sfs(), cutoff=7, alpha=0.3)
    elem, pos, lattice = structures()["triclinic"]
    p = remap_positions(pos, lattice)
    lin = EnvironmentCalculator(sfset, NCUT, _scaling(sfset, "identity"), force_matching="linear")
    out = lin.compute(elem, p, lattice)
    lay = ForceMatchingLayout([sfset.n_sf(e) for e in sfset.elements])
    for res in out.values():
        assert res["fm_dx"].shape == (len(res["atom"]), lay.n_linear)
        assert "fmq_dx" not in res
    none = EnvironmentCalculator(sfset, NCUT, _scaling(sfset, "identity")).compute(elem, p, lattice)
    assert all("fm_dx" not in r for r in none.values())
    # the other rows are the same with or without the features
    for e in out:
        np.testing.assert_array_equal(out[e]["dGdx"], none[e]["dGdx"])
    with pytest.raises(ValueError, match="force_matching must be one of"):
        EnvironmentCalculator(sfset, NCUT, _scaling(sfset, "identity"), force_matching="cubic")


@pytest.mark.parametrize("name", ["cluster", "triclinic", "small_cell"])
@pytest.mark.parametrize("mode", ["none", "linear"])
@pytest.mark.parametrize("owned", ["all", "some"])
def test_kernel_taken_sums_are_the_bits_of_the_batched_ones(name, mode, owned, monkeypatch):
    """One serial pass, where the kernel copies the neighbour blocks and adds
    the linear sums itself, writes exactly what the batched path writes (every
    entry's derivatives, then the blocks gathered and the sums added from
    them), split into several batches and over threads."""
    from distatomenv.descriptors import environment
    sfset = _sfset(mixed_sfs(), cutoff=7, alpha=0.3)
    elem, pos, lattice = structures()[name]
    p = pos if lattice is None else remap_positions(pos, lattice)
    ncut = np.zeros_like(NCUT) if name == "small_cell" else NCUT
    mine = None if owned == "all" else np.arange(len(elem)) % 3 == 1
    calc = EnvironmentCalculator(sfset, ncut, _scaling(sfset, "factors"), force_matching=mode)
    fused = calc.compute(elem, p, lattice, owned=mine, threads=1)
    monkeypatch.setattr(environment, "_serial", lambda atoms, threads: False)
    monkeypatch.setattr(environment, "BATCH_BYTES", 64 << 10)
    batched = calc.compute(elem, p, lattice, owned=mine, threads=2)
    assert fused.keys() == batched.keys()
    for e in fused:
        assert fused[e].keys() == batched[e].keys()
        assert ("fm_dx" in fused[e]) == (mode == "linear")
        for k in fused[e]:
            np.testing.assert_array_equal(fused[e][k], batched[e][k], err_msg=f"{name} {e} {k}")
