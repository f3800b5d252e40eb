"""The plan: every row owned by exactly one unit, in whole chunks."""
from __future__ import annotations

import numpy as np
import pytest

from distatomenv.engine.plan import default_units, first_rows, make_plan


def _check(counts, chunk, n_units):
    units = make_plan(counts, chunk, n_units)
    total = counts.sum(axis=0)
    fr = first_rows(counts)
    assert [u.id for u in units] == list(range(n_units))
    for e in range(counts.shape[1]):
        owned = np.zeros(total[e], dtype=int)
        for u in units:
            a, b = u.rows[e]
            if b == a:
                continue                  # owns nothing of this element
            assert a % chunk == 0, "a unit's rows must start on a chunk boundary"
            assert b % chunk == 0 or b == total[e], "and end on one or at the end"
            owned[a:b] += 1
        assert (owned == 1).all(), "every row is owned by exactly one unit"
    # each unit's owned atoms, over the structures it reads, are exactly its rows
    for u in units:
        got = {e: [] for e in range(counts.shape[1])}
        for s in range(u.first, u.last):
            elem = np.repeat(np.arange(counts.shape[1]), counts[s])
            mask = u.owned_atoms(fr[s], counts[s], elem)
            for e in range(counts.shape[1]):
                rows = fr[s, e] + np.arange(counts[s, e])
                got[e].extend(rows[mask[elem == e]])
        for e, (a, b) in enumerate(u.rows):
            assert got[e] == list(range(a, b))
        assert u.atoms == sum(b - a for a, b in u.rows)
    return units


@pytest.mark.parametrize("n_units", [1, 2, 3, 5, 17, 64])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_uneven_structures(n_units, chunk):
    rng = np.random.default_rng(n_units * 100 + chunk)
    counts = rng.integers(0, 40, size=(53, 3))
    counts[7] = [300, 0, 2]           # one big structure
    counts[20] = 0                    # an empty one
    _check(counts, chunk, n_units)


def test_more_units_than_structures_leaves_empty_units():
    counts = np.array([[5, 3], [2, 2]])
    units = _check(counts, 2, 6)
    assert sum(u.empty for u in units) >= 3
    assert sum(u.atoms for u in units) == counts.sum()


def test_balance_many_structures():
    counts = np.full((1000, 2), [64, 32])
    units = _check(counts, 128, 8)
    loads = np.array([u.atoms for u in units])
    assert loads.max() / loads.mean() <= 1.05


def test_plan_is_deterministic():
    counts = np.random.default_rng(0).integers(1, 50, size=(100, 2))
    a = [u.to_dict() for u in make_plan(counts, 16, 7)]
    b = [u.to_dict() for u in make_plan(counts.copy(), 16, 7)]
    assert a == b


def test_default_units():
    assert default_units(1000, 1, 2048) == 1
    assert default_units(10_000_000, 1, 2048) == 200
    assert default_units(10_000_000, 4, 2048) == 200
    assert default_units(100, 8, 2048) == 8
    # in parallel: 8 units per worker when the chunks allow it (load balance)
    assert default_units(136_800, 2, 2048) == 16
    assert default_units(136_800, 16, 2048) == 67          # one unit per chunk
    assert default_units(10 ** 8, 16, 2048) == 1024         # at most 64 per worker


def test_choose_units_avoids_reading_structures_twice():
    """Water-like counts (O has half the rows of H, so its chunks span twice the
    structures): 16 units would read 77 % more atoms than there are; the chosen
    count reads at most 10 % more, never fewer units than workers, and data
    whose chunks line up keeps the wanted count."""
    from distatomenv.engine.plan import choose_units, read_atoms

    water = np.array([[128, 64], [32, 16], [32, 16], [32, 16]] * 100)
    assert read_atoms(make_plan(water, 2048, 16), water) > 1.7 * water.sum()
    n = choose_units(water, 2048, 16, n_workers=2)
    assert 2 <= n < 16
    assert read_atoms(make_plan(water, 2048, n), water) <= 1.10 * water.sum()
    beads = np.full((1900, 1), 360)
    assert choose_units(beads, 2048, 16, n_workers=2) == 16
    # nothing reads little enough: the count that reads least, not below the workers
    tiny = np.array([[5, 1]] * 3)
    assert choose_units(tiny, 2, 8, n_workers=4) >= 4
