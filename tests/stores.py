"""Reading whole stores back in tests: the bit-for-bit backend comparisons."""
from __future__ import annotations

import numpy as np
import zarr

from distatomenv.store.reader import open_store


def store_arrays(path) -> dict:
    """Every array of a complete store: ``elements/<E>/<name>``, ``stats/<E>/<name>``
    (except each unit's partial histograms, whose rows depend on the plan) and
    ``structures/<name>``; and the ``statistics`` attribute as ``attrs/statistics``."""
    rd = open_store(path)                             # complete, or this raises
    root = zarr.open_group(str(path), mode="r")
    out = {}
    for top in ("elements", "stats"):
        if top not in root:
            continue
        for e, group in root[top].groups():
            for name, arr in group.arrays():
                if name != "sf_hist_units":
                    out[f"{top}/{e}/{name}"] = arr[...]
    for name, arr in root["structures"].arrays():
        out[f"structures/{name}"] = arr[...]
    out["attrs/statistics"] = np.array(repr(rd.statistics))
    assert any(k.startswith("elements/") for k in out) and any(
        k.startswith("structures/") for k in out)
    return out


def assert_same_store(path, reference: dict):
    """The store at ``path`` holds exactly ``reference`` (from :func:`store_arrays`),
    same names, dtypes and bits."""
    got = store_arrays(path)
    assert got.keys() == reference.keys()
    for k, ref in reference.items():
        assert got[k].dtype == ref.dtype, k
        np.testing.assert_array_equal(got[k], ref, err_msg=k)


def crash_in_unit(monkeypatch, unit_id: int):
    """Make every compute in this test fail in work unit ``unit_id`` (a
    RuntimeError "simulated crash in unit N"), leaving an incomplete store;
    returns the real ``UnitRunner.run`` so that a test can restore it."""
    from distatomenv.engine import worker

    real_run = worker.UnitRunner.run

    def failing(self, unit):
        if unit.id == unit_id:
            raise RuntimeError(f"simulated crash in unit {unit_id}")
        return real_run(self, unit)
    monkeypatch.setattr(worker.UnitRunner, "run", failing)
    return real_run
