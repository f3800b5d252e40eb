"""Tests of the store layer (distatomenv.store): layout, writer, reader.

The concurrency test (DESIGN §3) runs 7 spawned writer processes that write
uneven, chunk-aligned work units of several elements into one store at the
same time, then checks every row against what its owner wrote.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import zarr

from distatomenv.errors import StoreError, StoreExistsError, StoreIncompleteError
from distatomenv.store import (
    ELEMENT_ARRAYS,
    STRUCTURE_ARRAYS,
    StoreLayout,
    StoreReader,
    StoreWriter,
    create_store,
    finalize_store,
    format_meta,
    list_done_units,
    mark_failed,
    open_store,
    to_json,
)
from distatomenv.store import schema, trash

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def make_layout(**kw) -> StoreLayout:
    args = dict(
        elements=["H", "O", "Cu"],
        n_rows={"H": 37, "O": 20, "Cu": 0},
        nG={"H": 5, "O": 4, "Cu": 3},
        ndG={"H": 3, "O": 2, "Cu": 1},
        nblocks={"H": 2, "O": 0, "Cu": 1},
        derivatives=True,
        n_structures=4,
        chunk_rows=8,
    )
    args.update(kw)
    return StoreLayout(**args)


def make_counts(layout: StoreLayout, seed=0) -> np.ndarray:
    """(S, n_elements) atom counts whose columns sum to n_rows."""
    rng = np.random.default_rng(seed)
    S = layout.n_structures
    counts = np.zeros((S, len(layout.elements)), dtype=np.int64)
    for i, e in enumerate(layout.elements):
        n = layout.n_rows[e]
        if S:
            counts[:, i] = rng.multinomial(n, np.ones(S) / S)
    return counts


def make_structures(layout: StoreLayout, seed=0) -> dict:
    S = layout.n_structures
    counts = make_counts(layout, seed)
    periodic = np.arange(S) % 2 == 0
    lattice = np.full((S, 3, 3), np.nan)
    lattice[periodic] = np.eye(3) * 10.0
    return {
        "natoms": counts.sum(axis=1),
        "periodic": periodic,
        "lattice": lattice,
        "energy": -np.arange(S, dtype=float) * 1.5,
        "charge": np.zeros(S),
        "counts": counts,
    }


def expected_rows(layout: StoreLayout, element: str, start: int, stop: int, counts) -> dict:
    """Deterministic content of rows [start, stop) of every array of ``element``."""
    e = layout.elements.index(element)
    r = np.arange(start, stop)
    n = r.size

    def grid(ncols, scale):
        return (e * 1e5 + r[:, None] * scale + np.arange(ncols)[None, :] / 64.0).astype(float)

    structure_of_row = np.repeat(np.arange(len(counts)), counts[:, e])
    out = {
        "G": grid(layout.nG[element], 1.0),
        "forces": grid(3, -2.0),
        "positions": grid(3, 0.5),
        "structure": structure_of_row[start:stop].astype(np.int64),
        "atom": (r % 13).astype(np.int32),
        "nb_atom": (r[:, None] * 10 + np.arange(layout.nblocks[element])).astype(np.int32),
        "nb_order": ((r[:, None] + np.arange(layout.nblocks[element])) % 7).astype(np.int16),
        "nb_count": ((r[:, None] + np.arange(len(layout.elements))) % 11).astype(np.int32),
    }
    if layout.derivatives:
        for k, name in enumerate(("dGdx", "dGdy", "dGdz")):
            out[name] = grid(layout.ndG[element], -(k + 1.0))
    assert all(len(v) == n for v in out.values())
    return out


def chunk_aligned_pieces(n_rows, chunk_rows, rng, max_chunks=4):
    """Split [0, n_rows) into ranges of 1..max_chunks whole chunks (last one ends at n_rows)."""
    pieces, start = [], 0
    while start < n_rows:
        stop = min(n_rows, start + chunk_rows * int(rng.integers(1, max_chunks + 1)))
        pieces.append((start, stop))
        start = stop
    return pieces


def write_all(path, layout, counts, *, n_units_per_element=None, seed=1):
    """Write every row by units, mark them; returns the number of units."""
    rng = np.random.default_rng(seed)
    w = StoreWriter(path)
    unit = 0
    for e in layout.elements:
        for start, stop in chunk_aligned_pieces(layout.n_rows[e], layout.chunk_rows, rng):
            w.write_rows(e, start, expected_rows(layout, e, start, stop, counts))
            w.mark_unit_done(unit, {"element": e, "rows": [start, stop]})
            unit += 1
    return unit


def new_store(tmp_path, layout=None, name="s.zarr", meta=None, n_units=None, **kw):
    layout = layout or make_layout()
    structures = make_structures(layout)
    path = str(tmp_path / name)
    meta = {"inputs": {"input.data": "sha256:abc"}, "command": "test"} if meta is None else meta
    create_store(path, layout, structures, meta, n_units=n_units, **kw)
    return path, layout, structures


def set_root_attr(path, **attrs):
    """Test helper: change root attributes behind the API (simulate other states)."""
    g = zarr.open_group(path, mode="r+")
    g.update_attributes(attrs)


# ----------------------------------------------------------------------------
# round trip
# ----------------------------------------------------------------------------


def test_roundtrip_all_arrays(tmp_path):
    layout = make_layout()
    structures = make_structures(layout)
    path = str(tmp_path / "s.zarr")
    meta = {
        "inputs": {"input.data": "sha256:abc"},
        "neighbors": np.array([[6, 2], [4, 4]]),
        "conv_length": np.float64(5.8),
        "settings": {"cutoff_type": 2, "elements": ("H", "O")},
        "nan": float("nan"),
    }
    create_store(path, layout, structures, meta)
    n_units = write_all(path, layout, structures["counts"])
    finalize_store(path, n_units)

    rd = open_store(path)
    assert isinstance(rd, StoreReader)
    assert rd.status == "complete"
    assert rd.elements == ["H", "O", "Cu"]
    assert rd.layout == layout
    assert rd.meta["neighbors"] == [[6, 2], [4, 4]]
    assert rd.meta["settings"]["elements"] == ["H", "O"]
    assert rd.meta["conv_length"] == 5.8 and np.isnan(rd.meta["nan"])
    for e in layout.elements:
        want = expected_rows(layout, e, 0, layout.n_rows[e], structures["counts"])
        assert rd.n_rows(e) == layout.n_rows[e]
        for name in ELEMENT_ARRAYS:
            got = rd.read(e, name)
            assert got.dtype == np.dtype(layout.array_dtype(name)), (e, name)
            np.testing.assert_array_equal(got, want[name], err_msg=f"{e}/{name}")
            arr = rd.array(e, name)
            assert arr.shape == layout.array_shape(e, name)
            assert arr.chunks[0] == layout.chunk_rows
    for name in STRUCTURE_ARRAYS:
        if name == "first_row":
            continue
        np.testing.assert_array_equal(rd.structures(name), structures[name])
    counts = structures["counts"]
    np.testing.assert_array_equal(rd.structures("first_row"), np.cumsum(counts, 0) - counts)
    # rows_of_structure agrees with the per-row structure index
    for s in range(layout.n_structures):
        for e, sl in rd.rows_of_structure(s).items():
            assert np.all(rd.read(e, "structure", rows=sl) == s)
            assert sl.stop - sl.start == counts[s, layout.elements.index(e)]
    # fancy rows
    np.testing.assert_array_equal(
        rd.read("H", "G", rows=[0, 36]),
        expected_rows(layout, "H", 0, 37, counts)["G"][[0, 36]],
    )
    np.testing.assert_array_equal(rd.read("H", "atom", rows=np.array([3, 5])), [3, 5])
    assert rd.nbytes_stored() > 0
    rd2 = pickle.loads(pickle.dumps(rd))
    np.testing.assert_array_equal(rd2.read("O", "G"), rd.read("O", "G"))
    assert repr(rd2).startswith("<StoreReader") and "status=complete" in repr(rd2)
    assert rd.done_units() == set(range(n_units)) and rd.missing_units() == []


def test_zero_width_and_empty_arrays(tmp_path):
    layout = make_layout()
    path, layout, st = new_store(tmp_path, layout)
    n_units = write_all(path, layout, st["counts"])
    finalize_store(path, n_units)
    rd = open_store(path)
    assert rd.read("O", "nb_atom").shape == (20, 0)
    assert rd.read("O", "nb_order").dtype == np.int16
    assert rd.read("Cu", "G").shape == (0, 3)
    assert rd.read("Cu", "structure").shape == (0,)
    d = rd.dask("O", "nb_atom")
    assert d.shape == (20, 0) and d.compute().shape == (20, 0)
    assert rd.dask("Cu", "dGdx").compute().shape == (0, 1)
    # writing 0 rows at the end of an element with no rows is allowed and a no-op
    set_root_attr(path, status="incomplete")
    StoreWriter(path).write_rows("Cu", 0, {"G": np.zeros((0, 3))})


def test_dask_chunks_follow_zarr_chunks(tmp_path):
    path, layout, st = new_store(tmp_path)
    finalize_store(path, write_all(path, layout, st["counts"]))
    rd = open_store(path)
    d = rd.dask("H", "dGdy")
    assert d.chunks == ((8, 8, 8, 8, 5), (3,))
    np.testing.assert_array_equal(d.compute(), rd.read("H", "dGdy"))


def test_float32_option_and_no_derivatives(tmp_path):
    layout = make_layout(dtype="float32", derivatives=False, compressor="lz4", compression_level=3)
    path, layout, st = new_store(tmp_path, layout)
    finalize_store(path, write_all(path, layout, st["counts"]))
    rd = open_store(path)
    assert rd.array("H", "G").dtype == np.float32
    assert rd.array("H", "forces").dtype == np.float64
    want = expected_rows(layout, "H", 0, 37, st["counts"])
    np.testing.assert_array_equal(rd.read("H", "G"), want["G"].astype(np.float32))
    np.testing.assert_array_equal(rd.read("H", "forces"), want["forces"])
    assert not os.path.exists(os.path.join(path, "elements", "H", "dGdx"))
    with pytest.raises(StoreError, match="no array 'dGdx' for element H .this store has no derivatives"):
        rd.array("H", "dGdx")
    # integer arrays: the layout's compressor and level
    codec = rd.array("H", "nb_atom").compressors[0]
    assert codec.cname.value == "lz4" and codec.clevel == 3
    # float rows: same compressor at level 1 with 4 MiB blocks (schema.StoreLayout.compressors)
    for name in ("G", "forces", "positions"):
        codec = rd.array("H", name).compressors[0]
        assert codec.cname.value == "lz4" and codec.clevel == 1 and codec.blocksize == 1 << 22


def test_uncompressed_option(tmp_path):
    path, layout, st = new_store(tmp_path, make_layout(compressor="none"))
    finalize_store(path, write_all(path, layout, st["counts"]))
    rd = open_store(path)
    # no compressor, but the checksum stays (issue 15)
    for name in ("G", "dGdx"):
        assert [type(c).__name__ for c in rd.array("H", name).compressors] == ["Crc32cCodec"]
    assert "compressor: none" in rd.summary()


def test_derivative_rows_take_their_codec_whatever_the_compressor(tmp_path):
    """dGd* take DERIVATIVE_CODEC (lz4, bit shuffle) with any compressor but
    "none"; the other float rows take the layout's compressor and shuffle."""
    layout = make_layout(compressor="zlib", shuffle="noshuffle", compression_level=4)
    path, layout, st = new_store(tmp_path, layout)
    written = write_all(path, layout, st["counts"])
    finalize_store(path, written)
    rd = open_store(path)
    for name in ("dGdx", "dGdy", "dGdz"):
        blosc = rd.array("H", name).compressors[0]
        assert (blosc.cname.value, blosc.shuffle.value, blosc.clevel) == \
            schema.DERIVATIVE_CODEC + (1,), name
    blosc = rd.array("H", "G").compressors[0]
    assert (blosc.cname.value, blosc.shuffle.value, blosc.clevel) == ("zlib", "noshuffle", 1)
    want = expected_rows(layout, "H", 0, 37, st["counts"])
    np.testing.assert_array_equal(rd.read("H", "dGdz"), want["dGdz"])


def test_unwritten_rows_read_as_fill(tmp_path):
    path, layout, st = new_store(tmp_path)
    StoreWriter(path).write_rows("H", 8, {"G": np.ones((8, 5)), "atom": np.arange(8)})
    rd = open_store(path, allow_incomplete=True)
    g = rd.read("H", "G")
    assert np.isnan(g[:8]).all() and (g[8:16] == 1).all() and np.isnan(g[16:]).all()
    atom = rd.read("H", "atom")
    assert (atom[:8] == -1).all() and (atom[8:16] == np.arange(8)).all()


def test_writers_never_touch_root_metadata(tmp_path):
    path, layout, st = new_store(tmp_path)
    root_json = os.path.join(path, "zarr.json")
    before = open(root_json, "rb").read()
    write_all(path, layout, st["counts"])
    assert open(root_json, "rb").read() == before


def test_marker_is_a_zarr_group_with_info(tmp_path):
    path, layout, st = new_store(tmp_path, n_units=3)
    w = StoreWriter(path)
    w.mark_unit_done(2, {"rows": 16, "seconds": np.float32(1.5)})
    g = zarr.open_group(os.path.join(path, "units", "00000002"), mode="r")
    assert g.attrs["rows"] == 16 and g.attrs["seconds"] == 1.5
    assert g.attrs["unit"] == 2 and "host" in g.attrs and "finished" in g.attrs
    assert w.done_units() == {2} == list_done_units(path)
    assert w.unit_info(2)["rows"] == 16 and w.unit_info(0) is None
    # leftovers of an interrupted marker write and stray names are not markers
    os.makedirs(os.path.join(path, "units", "00000001"))
    open(os.path.join(path, "units", "00000001", "zarr.1234.partial"), "w").close()
    os.makedirs(os.path.join(path, "units", "junk"))
    assert w.done_units() == {2}


def test_writer_is_picklable(tmp_path):
    path, layout, st = new_store(tmp_path)
    w = pickle.loads(pickle.dumps(StoreWriter(path)))
    assert w.path == path and w.layout == layout
    assert repr(w) == f"StoreWriter({path!r})"


# ----------------------------------------------------------------------------
# THE concurrency test
# ----------------------------------------------------------------------------

N_PROCS = 7


def _writer_process(path, tasks, barrier, counts, split_seed):
    """Spawned writer: waits for all, then writes its units (own chunks only)."""
    w = StoreWriter(path)
    layout = w.layout
    rng = np.random.default_rng(split_seed)
    barrier.wait(timeout=120)
    for unit, pieces in tasks:
        for e, start, stop in pieces:
            rows = expected_rows(layout, e, start, stop, counts)
            # sometimes write a piece in several chunk-aligned calls, arrays split over calls
            cut = start + layout.chunk_rows * int(rng.integers(0, (stop - start) // layout.chunk_rows + 1))
            cut = min(cut, stop)
            names = list(rows)
            rng.shuffle(names)
            for a, b in ((start, cut), (cut, stop)):
                if b > a:
                    half = len(names) // 2
                    for group in (names[:half], names[half:]):
                        w.write_rows(e, a, {k: rows[k][a - start : b - start] for k in group})
        w.mark_unit_done(unit, {"pieces": [list(p) for p in pieces], "pid": os.getpid()})


def test_concurrent_writers_lose_nothing(tmp_path):
    layout = StoreLayout(
        elements=["H", "O", "S", "Cu"],
        n_rows={"H": 1003, "O": 517, "S": 16, "Cu": 0},
        nG={"H": 40, "O": 33, "S": 7, "Cu": 5},
        ndG={"H": 31, "O": 25, "S": 4, "Cu": 2},
        nblocks={"H": 6, "O": 0, "S": 3, "Cu": 2},
        derivatives=True,
        n_structures=23,
        chunk_rows=16,
    )
    rng = np.random.default_rng(12345)
    # uneven units: 1..5 chunks each, the last of H and O ending at n_rows off-boundary
    pieces = []
    for e in layout.elements:
        pieces += [(e, a, b) for a, b in chunk_aligned_pieces(layout.n_rows[e], 16, rng, max_chunks=5)]
    assert any(b - a == 16 for _, a, b in pieces) and any(b - a >= 48 for _, a, b in pieces)
    assert ("H", 992, 1003) in pieces or any(b == 1003 and b % 16 for _, a, b in pieces)
    order = rng.permutation(len(pieces))
    units, i = [], 0
    while i < len(order):  # some units hold two pieces (of different elements, like a real unit)
        k = int(rng.integers(1, 3))
        units.append([pieces[j] for j in order[i : i + k]])
        i += k
    n_units = len(units)
    path, _, st = new_store(tmp_path, layout, n_units=n_units)
    counts = st["counts"]

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    owner = {u: u % N_PROCS for u in range(n_units)}
    procs = []
    for p in range(N_PROCS):
        tasks = [(u, units[u]) for u in range(n_units) if owner[u] == p]
        procs.append(ctx.Process(target=_writer_process, args=(path, tasks, barrier, counts, p)))
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(timeout=300)
    assert [pr.exitcode for pr in procs] == [0] * N_PROCS

    finalize_store(path, n_units)
    rd = open_store(path)
    pids = {rd.unit_info(u)["pid"] for u in range(n_units)}
    assert len(pids) == N_PROCS  # really written by N_PROCS processes
    for e in layout.elements:
        want = expected_rows(layout, e, 0, layout.n_rows[e], counts)
        for name in layout.array_names():
            np.testing.assert_array_equal(rd.read(e, name), want[name], err_msg=f"lost data in {e}/{name}")
    # markers record the pieces their owner wrote
    for u in range(n_units):
        assert [tuple(p) for p in rd.unit_info(u)["pieces"]] == [tuple(p) for p in units[u]]


def test_write_rows_refuses_misaligned_ranges(tmp_path):
    path, layout, st = new_store(tmp_path)  # H: 37 rows, chunk_rows 8
    w = StoreWriter(path)
    g = lambda n: {"G": np.zeros((n, 5))}  # noqa: E731
    with pytest.raises(StoreError, match=r"start 4 is not a multiple of chunk_rows=8.*#3682"):
        w.write_rows("H", 4, g(4))
    with pytest.raises(StoreError, match=r"stop 12 is neither a multiple of chunk_rows=8 nor n_rows=37"):
        w.write_rows("H", 0, g(12))
    with pytest.raises(StoreError, match=r"rows \[32, 40\) of element H are out of range: the element has 37 rows"):
        w.write_rows("H", 32, g(8))
    with pytest.raises(StoreError, match=r"rows \[-8, 0\) .* out of range"):
        w.write_rows("H", -8, g(8))
    # nothing was written by the refused calls
    assert np.isnan(open_store(path, allow_incomplete=True).read("H", "G")).all()
    # allowed: whole chunks, and the short last chunk
    w.write_rows("H", 8, g(16))
    w.write_rows("H", 32, g(5))
    layout.check_rows("H", 0, 37)


# ----------------------------------------------------------------------------
# incomplete stores, resume, overwrite, failure
# ----------------------------------------------------------------------------


def test_incomplete_store_is_refused_and_names_missing_units(tmp_path):
    path, layout, st = new_store(tmp_path, n_units=6)
    w = StoreWriter(path)
    for u in (0, 1, 3):
        w.mark_unit_done(u, {})
    with pytest.raises(StoreIncompleteError, match=r"incomplete .*3 of 6 work units missing: units 2, 4-5.*--resume"):
        open_store(path)
    with pytest.raises(StoreIncompleteError, match=r"3 of 6 work units have not finished: units 2, 4-5"):
        finalize_store(path, 6)
    assert open_store(path, allow_incomplete=True).status == "incomplete"
    rd = open_store(path, allow_incomplete=True)
    assert rd.missing_units() == [2, 4, 5]
    assert "incomplete (3 of 6 work units missing: units 2, 4-5)" in rd.summary()


def test_incomplete_store_without_recorded_plan_size(tmp_path):
    path, layout, st = new_store(tmp_path)
    StoreWriter(path).mark_unit_done(7, {})
    with pytest.raises(StoreIncompleteError, match=r"1 work units finished \(number planned not recorded\)"):
        open_store(path)
    assert open_store(path, allow_incomplete=True).missing_units() is None


def test_complete_store_is_not_overwritten_without_overwrite(tmp_path):
    path, layout, st = new_store(tmp_path)
    finalize_store(path, write_all(path, layout, st["counts"]))
    with pytest.raises(StoreExistsError, match="a complete store already exists; use overwrite"):
        create_store(path, layout, st, {"inputs": {}})
    with pytest.raises(StoreExistsError, match="complete store already exists"):
        create_store(path, layout, st, {"inputs": {}}, resume=True)
    assert open_store(path).status == "complete"
    # writers refuse a complete store too
    with pytest.raises(StoreError, match=r"cannot write: store status is 'complete'"):
        StoreWriter(path)
    # with overwrite it is replaced by a fresh, empty store
    create_store(path, layout, st, {"inputs": {}}, overwrite=True)
    rd = open_store(path, allow_incomplete=True)
    assert rd.status == "incomplete" and rd.done_units() == set()
    assert np.isnan(rd.read("H", "G")).all()


def test_incomplete_store_needs_resume_or_overwrite(tmp_path):
    path, layout, st = new_store(tmp_path)
    with pytest.raises(StoreError, match=r"incomplete store .* use resume \(--resume\) .* overwrite \(--overwrite\)"):
        create_store(path, layout, st, {"inputs": {}})


def test_resume_keeps_done_units(tmp_path):
    meta = {"inputs": {"input.data": "sha256:abc"}, "command": "first"}
    path, layout, st = new_store(tmp_path, meta=meta, n_units=3)
    counts = st["counts"]
    w = StoreWriter(path)
    w.write_rows("H", 0, expected_rows(layout, "H", 0, 37, counts))
    w.mark_unit_done(0, {"rows": 37})
    mark_failed(path, "worker 3 died: MemoryError")
    with pytest.raises(StoreIncompleteError, match="the run failed with: worker 3 died: MemoryError"):
        open_store(path)

    create_store(path, layout, st, dict(meta, command="second"), resume=True, n_units=3)
    rd = open_store(path, allow_incomplete=True)
    assert rd.done_units() == {0}
    assert rd.error is None  # the failure is resolved by the resume
    assert [h["event"] for h in rd.history] == ["created", "failed", "resumed"]
    assert rd.meta["command"] == "first"  # the store keeps its original metadata
    np.testing.assert_array_equal(rd.read("H", "G"), expected_rows(layout, "H", 0, 37, counts)["G"])

    w = StoreWriter(path)
    w.write_rows("O", 0, expected_rows(layout, "O", 0, 20, counts))
    w.mark_unit_done(1)
    w.mark_unit_done(2)
    finalize_store(path, 3)
    rd = open_store(path)
    assert rd.status == "complete" and [h["event"] for h in rd.history][-1] == "completed"


def test_resume_refuses_a_different_run(tmp_path):
    meta = {"inputs": {"input.data": "sha256:abc"}, "plan": {"n_units": 3}}
    path, layout, st = new_store(tmp_path, meta=meta, n_units=3)
    other_layout = make_layout(chunk_rows=16)
    with pytest.raises(StoreError, match=r"cannot resume: .*\n  layout chunk_rows: store has 8, this run has 16"):
        create_store(path, other_layout, make_structures(other_layout), meta, resume=True)
    with pytest.raises(StoreError, match=r"meta\['inputs'\] .*store has \{'input.data': 'sha256:abc'\}"):
        create_store(path, layout, st, {"inputs": {"input.data": "sha256:def"}}, resume=True)
    with pytest.raises(StoreError, match=r"meta\['plan'\] \(work units\)"):
        create_store(path, layout, st, dict(meta, plan={"n_units": 4}), resume=True)
    with pytest.raises(StoreError, match=r"number of work units: store has 3, this run plans 5"):
        create_store(path, layout, st, meta, resume=True, n_units=5)
    st2 = dict(st, energy=st["energy"] + 1.0)
    with pytest.raises(StoreError, match=r"structures/energy differs from this run's index"):
        create_store(path, layout, st2, meta, resume=True)
    # and a matching run resumes
    create_store(path, layout, st, meta, resume=True)


def test_resume_refuses_a_store_that_was_never_fully_created(tmp_path):
    path, layout, st = new_store(tmp_path)
    set_root_attr(path, status="creating")
    with pytest.raises(StoreError, match=r"cannot resume: the earlier run died while creating .*--overwrite"):
        create_store(path, layout, st, {"inputs": {"input.data": "sha256:abc"}}, resume=True)
    with pytest.raises(StoreIncompleteError, match=r"died while creating the store; re-run with --overwrite"):
        open_store(path)
    with pytest.raises(StoreError, match=r"cannot write: store status is 'creating'"):
        StoreWriter(path)
    with pytest.raises(StoreError, match=r"cannot finalize: store creation never finished"):
        finalize_store(path, 0)
    create_store(path, layout, st, {}, overwrite=True)
    assert open_store(path, allow_incomplete=True).status == "incomplete"


def test_overwrite_refuses_to_delete_a_non_store(tmp_path):
    d = tmp_path / "precious"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    layout = make_layout()
    st = make_structures(layout)
    with pytest.raises(StoreError, match=r"exists and is not a distatomenv store; refusing to delete it"):
        create_store(str(d), layout, st, {}, overwrite=True)
    with pytest.raises(StoreError, match=r"not a distatomenv store; refusing to write into it"):
        create_store(str(d), layout, st, {})
    assert (d / "notes.txt").read_text() == "keep me"
    f = tmp_path / "file.zarr"
    f.write_text("x")
    with pytest.raises(StoreError, match="not a distatomenv store"):
        create_store(str(f), layout, st, {}, overwrite=True)
    assert f.read_text() == "x"
    # another Zarr tree is not ours either
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w", attributes={"format": "xyz"})
    with pytest.raises(StoreError, match="not a distatomenv store"):
        create_store(str(tmp_path / "other.zarr"), layout, st, {}, overwrite=True)
    # a store with a foreign file inside is not deleted either
    path, layout, st = new_store(tmp_path)
    (tmp_path / "s.zarr" / "my_results.csv").write_text("1,2")
    with pytest.raises(StoreError, match=r"refusing to overwrite: .* not part of a distatomenv store: \['my_results.csv'\]"):
        create_store(path, layout, st, {}, overwrite=True)
    assert (tmp_path / "s.zarr" / "my_results.csv").exists()
    assert open_store(path, allow_incomplete=True).status == "incomplete"


def test_overwrite_moves_the_old_store_aside_and_deletes_it_in_the_background(tmp_path):
    path, layout, st = new_store(tmp_path)
    finalize_store(path, write_all(path, layout, st["counts"]))
    old_chunk = next(p for p in (tmp_path / "s.zarr").rglob("*") if p.is_file()
                     and "/c/" in str(p))
    create_store(path, layout, st, {"inputs": {}}, overwrite=True)
    # the new store is usable at once, whatever the deletion has reached
    rd = open_store(path, allow_incomplete=True)
    assert rd.status == "incomplete" and rd.done_units() == set()
    trash.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    assert not old_chunk.exists()
    assert np.isnan(open_store(path, allow_incomplete=True).read("H", "G")).all()


def test_overwrite_deletes_stale_siblings_of_dead_removals_only(tmp_path):
    import socket
    import subprocess
    import sys
    path, layout, st = new_store(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = Path(trash.trash_name(path, pid=dead_pid))
    live = Path(trash.trash_name(path, pid=os.getppid()))
    remote = Path(trash.trash_name(path, pid=dead_pid, host=socket.gethostname() + "-other"))
    other_store = Path(trash.trash_name(tmp_path / "t.zarr", pid=dead_pid))
    # this pid, but no removal of this process: an earlier process that had it
    reused = Path(trash.trash_name(path))
    for d in (stale, live, remote, other_store, reused):
        (d / "elements").mkdir(parents=True)
        (d / "zarr.json").write_text("{}")
    assert trash.stale_siblings(path) == sorted([str(stale), str(reused)])
    create_store(path, layout, st, {"inputs": {}}, overwrite=True)
    trash.wait()
    assert not stale.exists() and not reused.exists()
    # a removal that may still run, one of another host, another store's: kept
    assert live.exists() and remote.exists() and other_store.exists()
    assert open_store(path, allow_incomplete=True).status == "incomplete"


def test_overwrite_through_a_link_or_where_the_store_cannot_be_moved(tmp_path, monkeypatch):
    # a symbolic link stays where it is; its target's store is replaced there
    real = tmp_path / "real"
    real.mkdir()
    path, layout, st = new_store(real)
    finalize_store(path, write_all(path, layout, st["counts"]))
    os.chmod(path, 0o750)
    link = tmp_path / "link.zarr"
    link.symlink_to(real / "s.zarr", target_is_directory=True)
    create_store(str(link), layout, st, {"inputs": {}}, overwrite=True)
    trash.wait()
    assert link.is_symlink() and os.readlink(link) == str(real / "s.zarr")
    assert sorted(p.name for p in real.iterdir()) == ["s.zarr"]
    assert os.stat(path).st_mode & 0o7777 == 0o750
    assert open_store(str(link), allow_incomplete=True).status == "incomplete"
    assert open_store(path, allow_incomplete=True).done_units() == set()
    # a rename the file system refuses (a mount point, permissions): removed at once
    path2, _, _ = new_store(tmp_path, name="m.zarr")

    def refuse(src, dst):
        raise OSError(16, "Device or resource busy")
    monkeypatch.setattr(trash.os, "rename", refuse)
    create_store(path2, layout, st, {"inputs": {}}, overwrite=True)
    assert not any(".removing-" in p.name for p in tmp_path.iterdir())
    assert open_store(path2, allow_incomplete=True).status == "incomplete"


def test_empty_directory_is_used(tmp_path):
    d = tmp_path / "empty.zarr"
    d.mkdir()
    layout = make_layout()
    create_store(str(d), layout, make_structures(layout), {})
    assert open_store(str(d), allow_incomplete=True).layout == layout


def test_mark_failed_leaves_store_incomplete_with_message(tmp_path):
    path, layout, st = new_store(tmp_path, n_units=2)
    mark_failed(path, "rank 5: NotEnoughNeighborsError in structure 12")
    rd = open_store(path, allow_incomplete=True)
    assert rd.status == "incomplete"
    assert rd.error == "rank 5: NotEnoughNeighborsError in structure 12"
    assert "error: rank 5: NotEnoughNeighborsError" in rd.summary()
    with pytest.raises(StoreIncompleteError, match=r"2 of 2 work units missing: units 0-1; the run failed with: rank 5"):
        open_store(path)
    # a complete store marked failed becomes incomplete
    w = StoreWriter(path)
    w.mark_unit_done(0)
    w.mark_unit_done(1)
    finalize_store(path, 2)
    assert open_store(path).error is None
    mark_failed(path, "export check failed")
    with pytest.raises(StoreIncompleteError, match="export check failed"):
        open_store(path)
    with pytest.raises(StoreError, match="not a distatomenv store"):
        mark_failed(str(tmp_path), "x")


def test_finalize_checks(tmp_path):
    path, layout, st = new_store(tmp_path, n_units=2)
    with pytest.raises(StoreError, match=r"cannot finalize with n_units=3: the store was created for 2 units"):
        finalize_store(path, 3)
    with pytest.raises(StoreError, match=r"n_units must be a non-negative integer, got -1"):
        finalize_store(path, -1)
    path2, _, _ = new_store(tmp_path, name="t.zarr")
    w = StoreWriter(path2)
    for u in (0, 1, 5):
        w.mark_unit_done(u)
    with pytest.raises(StoreError, match=r"markers exist for units 5, beyond n_units=2"):
        finalize_store(path2, 2)
    assert open_store(path2, allow_incomplete=True).status == "incomplete"


# ----------------------------------------------------------------------------
# reader
# ----------------------------------------------------------------------------


def test_open_store_errors(tmp_path):
    with pytest.raises(StoreError, match=r"no such store \(the path does not exist\)"):
        open_store(str(tmp_path / "nope.zarr"))
    with pytest.raises(StoreError, match="not a distatomenv store"):
        open_store(str(tmp_path))
    (tmp_path / "bad.zarr").mkdir()
    (tmp_path / "bad.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="not a distatomenv store"):
        open_store(str(tmp_path / "bad.zarr"))
    path, layout, st = new_store(tmp_path)
    set_root_attr(path, format_version=2)
    with pytest.raises(StoreError, match=r"format_version is 2, but this distatomenv reads format_version 1"):
        open_store(path, allow_incomplete=True)


def test_reader_lookup_errors(tmp_path):
    path, layout, st = new_store(tmp_path)
    finalize_store(path, write_all(path, layout, st["counts"]))
    rd = open_store(path)
    with pytest.raises(StoreError, match=r"element 'Xe' is not in the store \(elements: \['H', 'O', 'Cu'\]\)"):
        rd.read("Xe", "G")
    with pytest.raises(StoreError, match=r"element 'Xe' is not in the store"):
        rd.n_rows("Xe")
    with pytest.raises(StoreError, match=r"no array 'energy' for element H; arrays are"):
        rd.array("H", "energy")
    with pytest.raises(StoreError, match=r"no structure array 'G'"):
        rd.structures("G")
    with pytest.raises(StoreError, match=r"structure 4 out of range: the store has 4 structures"):
        rd.rows_of_structure(4)
    assert rd.rows_of_structure(-1) == rd.rows_of_structure(3)


def test_summary_is_readable(tmp_path):
    meta = {
        "inputs": {"input.data": {"sha256": "ab" * 32, "bytes": 44672}},
        "version": "0.1.0",
        "command": "distatomenv compute input.data -o s.zarr",
        "symmetry_functions": {"H": [{"type": 2, "eta": 0.01 * i, "rc": 12.0} for i in range(27)]},
        "scaling": {"H": {"min": list(np.linspace(0, 1, 27))}},
        "units": {"length": "Bohr", "conv_length": 5.8038448995319847},
    }
    path, layout, st = new_store(tmp_path, meta=meta)
    finalize_store(path, write_all(path, layout, st["counts"]))
    text = open_store(path).summary()
    assert "status: complete (1 work units finished" not in text
    for expected in (
        "status: complete",
        "elements: H, O, Cu",
        "element H: 37 rows, nG 5, ndG 3, 2 neighbour blocks",
        "  G          (37, 5)",
        "(8, 5)",
        "blosc zstd level 5 (shuffle)",
        "compression ratio",
        "meta:",
        "  inputs:\n    input.data: {sha256: 'abababab",
        "  symmetry_functions:\n    H:\n      [0]: {type: 2, eta: 0.0, rc: 12.0}",
        "      ... (27 items in all)",
        "min: [0.0, 0.038461538461538464, ",
        "(27 items)",
        "  units: {length: 'Bohr', conv_length: 5.803844899531985}",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert len(text.splitlines()) < 80


def test_format_meta_shapes():
    lines = format_meta({"a": {}, "b": [], "c": [[1, 2], [3]], "d": "x" * 300, "e": None})
    assert lines[0] == "a: {}"
    assert lines[1] == "b: []"
    assert lines[2:5] == ["c:", "  [0]: [1, 2]", "  [1]: [3]"]
    assert lines[5].startswith("d: 'xxx") and lines[5].endswith("(302 chars)")
    assert lines[6] == "e: null"


# ----------------------------------------------------------------------------
# every raise of the layout and the writer
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(elements="HO"), r"elements must be a list of non-empty strings, got 'HO'"),
        (dict(elements=["H", ""]), r"elements must be a list of non-empty strings"),
        (dict(elements=[]), r"elements is empty"),
        (dict(elements=["H", "H"], n_rows={"H": 1}), r"duplicate element in \['H', 'H'\]"),
        (dict(nG={"H": 5, "O": 4}), r"nG must have one entry per element \['H', 'O', 'Cu'\], got \['H', 'O'\]"),
        (dict(nblocks=[1, 2, 3]), r"nblocks must have one entry per element"),
        (dict(n_rows={"H": -1, "O": 2, "Cu": 0}), r"n_rows\['H'\] must be >= 0, got -1"),
        (dict(n_rows={"H": 2.5, "O": 2, "Cu": 0}), r"n_rows\['H'\] must be an integer, got 2.5"),
        (dict(n_structures=True), r"n_structures must be an integer, got True"),
        (dict(chunk_rows=0), r"chunk_rows must be positive, got 0"),
        (dict(derivatives="yes"), r"derivatives must be True or False, got 'yes'"),
        (dict(dtype="float16"), r"dtype must be one of \('float64', 'float32'\), got 'float16'"),
        (dict(compressor="brotli"), r"compressor must be one of .*got 'brotli'"),
        (dict(compression_level=10), r"compression_level must be 0..9, got 10"),
        (dict(shuffle="bytes"), r"shuffle must be one of .*got 'bytes'"),
    ],
)
def test_layout_validation(change, message):
    with pytest.raises(StoreError, match="invalid store layout: " + message):
        make_layout(**change)


def test_layout_dict_roundtrip_and_errors():
    lay = make_layout(n_rows={"H": np.int64(37), "O": 20, "Cu": 0})
    assert type(lay.n_rows["H"]) is int
    d = lay.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert StoreLayout.from_dict(d) == lay
    with pytest.raises(StoreError, match=r"invalid store layout: unknown keys \['extra'\]"):
        StoreLayout.from_dict(dict(d, extra=1))
    d2 = dict(d)
    del d2["nG"]
    with pytest.raises(StoreError, match=r"invalid store layout: missing keys \['nG'\]"):
        StoreLayout.from_dict(d2)
    d3 = dict(d)
    del d3["compressor"]  # optional keys take their default
    assert StoreLayout.from_dict(d3).compressor == "zstd"


def test_layout_helpers():
    lay = make_layout()
    assert lay.n_chunks("H") == 5 and lay.n_chunks("Cu") == 0
    assert lay.array_chunks("O", "nb_atom") == (8, 1)
    assert lay.array_shape("O", "nb_atom") == (20, 0)
    assert schema.unit_key(12) == "units/00000012"
    assert schema.format_id_ranges([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8"
    assert schema.format_id_ranges(range(0, 100, 2), limit=3) == "0, 2, 4, ... (47 more ranges)"
    assert "dGdx" not in make_layout(derivatives=False).array_names()


@pytest.mark.parametrize(
    "change, message",
    [
        ("notadict", r"structures must be a dict of arrays, got str"),
        (dict(counts=None), r"missing \['counts'\], unknown \[\]"),
        (dict(mass=np.zeros(4)), r"missing \[\], unknown \['mass'\]"),
        (dict(energy=np.zeros(5)), r"structures\['energy'\] has shape \(5,\), expected \(4,\)"),
        (dict(lattice=np.zeros((4, 9))), r"structures\['lattice'\] has shape \(4, 9\), expected \(4, 3, 3\)"),
        (dict(natoms=np.zeros(4)), r"structures\['natoms'\] has dtype float64, cannot be stored as int64"),
        (dict(periodic=np.array([0, 1, 2, 0])), r"structures\['periodic'\] has dtype int64, cannot be stored as bool"),
        ("negcounts", r"structures\['counts'\] has negative entries"),
        ("badsum", r"structures\['counts'\] sums to 38 atoms of element H, but layout.n_rows\['H'\] = 37"),
        ("badfirst", r"structures\['first_row'\]\[1, 0\] = 99, but the prefix sum of counts gives"),
    ],
)
def test_structures_validation(tmp_path, change, message):
    layout = make_layout()
    st = make_structures(layout)
    if change == "notadict":
        st = "x"
    elif change == "negcounts":
        st["counts"] = st["counts"].copy()
        st["counts"][0, 0] -= 5
        st["counts"][1, 0] += 5
        st["counts"][0, 0] = -1
    elif change == "badsum":
        st["counts"] = st["counts"].copy()
        st["counts"][0, 0] += 1
    elif change == "badfirst":
        c = st["counts"]
        st["first_row"] = np.cumsum(c, 0) - c
        st["first_row"][1, 0] = 99
    else:
        for k, v in change.items():
            if v is None:
                del st[k]
            else:
                st[k] = v
    with pytest.raises(StoreError, match=message):
        create_store(str(tmp_path / "s.zarr"), layout, st, {})
    assert not os.path.exists(tmp_path / "s.zarr")  # nothing created on bad input


def test_structures_accepts_given_first_row_and_int_periodic(tmp_path):
    layout = make_layout()
    st = make_structures(layout)
    st["first_row"] = np.cumsum(st["counts"], 0) - st["counts"]
    st["periodic"] = st["periodic"].astype(int)
    create_store(str(tmp_path / "s.zarr"), layout, st, {})
    rd = open_store(str(tmp_path / "s.zarr"), allow_incomplete=True)
    assert rd.structures("periodic").dtype == bool
    assert np.isnan(rd.structures("lattice")[1]).all()


def test_create_store_argument_errors(tmp_path):
    layout = make_layout()
    st = make_structures(layout)
    p = str(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match=r"layout must be a StoreLayout, got dict"):
        create_store(p, layout.to_dict(), st, {})
    with pytest.raises(StoreError, match=r"overwrite and resume exclude each other"):
        create_store(p, layout, st, {}, overwrite=True, resume=True)
    with pytest.raises(StoreError, match=r"meta must be a dict, got list"):
        create_store(p, layout, st, [])
    with pytest.raises(StoreError, match=r"meta\['settings'\]: key 3 is a int; store attributes need string keys"):
        create_store(p, layout, st, {"settings": {3: "x"}})
    with pytest.raises(StoreError, match=r"meta\['f'\]\[1\] = .* \(a builtin_function_or_method\) cannot be stored as a JSON attribute"):
        create_store(p, layout, st, {"f": [1, print]})
    with pytest.raises(StoreError, match=r"n_units must be a non-negative integer, got 2.0"):
        create_store(p, layout, st, {}, n_units=2.0)
    assert not os.path.exists(p)


def test_to_json_conversions(tmp_path):
    assert to_json({"a": (np.int32(1), np.bool_(True), tmp_path / "x")}) == {
        "a": [1, True, str(tmp_path / "x")]
    }


def test_writer_argument_errors(tmp_path):
    path, layout, st = new_store(tmp_path, n_units=4)
    w = StoreWriter(path)
    with pytest.raises(StoreError, match=r"element 'Xe' is not in the store"):
        w.write_rows("Xe", 0, {"G": np.zeros((8, 5))})
    with pytest.raises(StoreError, match=r"row_start must be an integer, got 0.0"):
        w.write_rows("H", 0.0, {"G": np.zeros((8, 5))})
    with pytest.raises(StoreError, match=r"unknown array\(s\) \['Q'\] for element H; arrays are"):
        w.write_rows("H", 0, {"Q": np.zeros((8, 5))})
    with pytest.raises(StoreError, match=r"H/G: array of shape \(8, 4\), expected \(8, 5\)"):
        w.write_rows("H", 0, {"G": np.zeros((8, 4))})
    with pytest.raises(StoreError, match=r"H/atom: array of shape \(7,\), expected \(8,\)"):
        w.write_rows("H", 0, {"G": np.zeros((8, 5)), "atom": np.zeros(7, int)})
    with pytest.raises(StoreError, match=r"H/G: array of shape \(\), expected \(-1, 5\)"):
        w.write_rows("H", 0, {"G": np.float64(1.0)})
    with pytest.raises(StoreError, match=r"H/atom: dtype float64 cannot be stored as int32"):
        w.write_rows("H", 0, {"atom": np.zeros(8)})
    with pytest.raises(StoreError, match=r"H/nb_order: values 0..40000 do not fit the stored dtype int16"):
        w.write_rows("H", 0, {"nb_order": np.array([[0, 40000]] * 8)})
    with pytest.raises(StoreError, match=r"unit_id 4 is out of range: the store plans 4 units"):
        w.mark_unit_done(4)
    with pytest.raises(StoreError, match=r"unit_id must be a non-negative integer, got -1"):
        w.mark_unit_done(-1)
    with pytest.raises(StoreError, match=r"info of unit 0\['obj'\] = .* cannot be stored"):
        w.mark_unit_done(0, {"obj": object()})
    assert w.done_units() == set()
    w.write_rows("H", 0, {})  # nothing to write

    nd = str(tmp_path / "nd.zarr")
    lay2 = make_layout(derivatives=False)
    create_store(nd, lay2, make_structures(lay2), {})
    with pytest.raises(StoreError, match=r"unknown array\(s\) \['dGdx'\] for element H \(this store has no derivatives\)"):
        StoreWriter(nd).write_rows("H", 0, {"dGdx": np.zeros((8, 3))})
    with pytest.raises(StoreError, match="not a distatomenv store"):
        StoreWriter(str(tmp_path))


def test_store_layer_imports_nothing_heavy():
    """The store layer must not pull in numba, mpi4py, distributed or the descriptors."""
    import subprocess
    import sys

    code = (
        "import sys, distatomenv.store.writer, distatomenv.store.reader;"
        "bad=[m for m in ('numba','mpi4py','distributed','distatomenv.descriptors','distatomenv.executors')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    # import the store modules without running distatomenv/__init__.py's imports
    env = dict(os.environ)
    pkg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "distatomenv")
    res = subprocess.run(
        [sys.executable, "-c", "import importlib.util, sys, types;"
         "sys.modules['distatomenv']=types.ModuleType('distatomenv');"
         f"sys.modules['distatomenv'].__path__=[{pkg!r}];"
         + code],
        capture_output=True, text=True, env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr


# ----------------------------------------------------------------------------
# codecs and precision
# ----------------------------------------------------------------------------
def _awkward_floats(shape, seed):
    """Full-mantissa float64 values plus the edge cases a codec could mangle."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape) * 10.0 ** rng.integers(-12, 6, size=shape)
    flat = a.reshape(-1)
    edge = [0.0, -0.0, 5e-324, -2.2250738585072014e-308, 1e300, 1.0, np.nextafter(1.0, 2.0),
            -1e-300]
    flat[:len(edge)] = edge[:flat.size]
    return a


def _write_awkward(path, layout, counts):
    """Every row of every element with _awkward_floats in every float array."""
    w = StoreWriter(path)
    written = {}
    for k, e in enumerate(layout.elements):
        n = layout.n_rows[e]
        if not n:
            w.mark_unit_done(k)
            continue
        rows = expected_rows(layout, e, 0, n, counts)
        for j, name in enumerate(layout.array_names()):
            if np.dtype(layout.array_dtype(name)).kind == "f":
                rows[name] = _awkward_floats((n, layout.columns(e, name)), 10 * k + j)
            elif name not in rows:
                rows[name] = np.zeros((n, layout.columns(e, name)) if layout.columns(e, name)
                                      else (n,), dtype=layout.array_dtype(name))
        w.write_rows(e, 0, rows)
        w.mark_unit_done(k, {"rows": {e: [0, n]}})
        written[e] = rows
    return written


def test_lossless_float_rows_roundtrip_bit_identical(tmp_path):
    """The fast codecs of the float rows (zstd level 1, 4 MiB blocks; lz4 with bit
    shuffle for dGd*) keep every bit."""
    layout = make_layout(n_rows={"H": 37, "O": 20, "Cu": 3}, force_matching="quadratic",
                         n_fm=4, n_fmq=10)
    path, layout, st = new_store(tmp_path, layout)
    written = _write_awkward(path, layout, st["counts"])
    finalize_store(path, len(layout.elements))
    rd = open_store(path)
    assert rd.layout.precision == "full"
    for e, rows in written.items():
        for name, want in rows.items():
            got = rd.read(e, name)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (e, name)
    for name in schema.ROW_FLOAT_ARRAYS:
        arr = rd.array("H", name)
        assert arr.filters == ()
        blosc, crc = arr.compressors
        want = (("lz4", 1, "bitshuffle") if name in schema.DERIVATIVE_ARRAYS
                else ("zstd", 1, "shuffle"))
        assert (blosc.cname.value, blosc.clevel, blosc.shuffle.value, blosc.blocksize) == \
            want + (1 << 22,), name
        assert type(crc).__name__ == "Crc32cCodec"
    for name in ("structure", "atom", "nb_atom", "nb_order", "nb_count"):
        blosc, crc = rd.array("H", name).compressors
        assert (blosc.cname.value, blosc.clevel) == ("zstd", 5) and blosc.blocksize == 0, name
        assert type(crc).__name__ == "Crc32cCodec"


def test_store_with_the_previous_codecs_still_opens(tmp_path, monkeypatch):
    """A store made before the codec change (zstd level 5 on every array but G,
    no precision in its layout) reads, verifies, resumes the same."""
    from zarr.codecs import BloscCodec, Crc32cCodec

    def old_compressors(self, name=None):
        if name == "G":
            return [BloscCodec(cname="zstd", clevel=1, shuffle="shuffle", blocksize=1 << 22),
                    Crc32cCodec()]
        return [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"), Crc32cCodec()]

    with monkeypatch.context() as m:
        m.setattr(StoreLayout, "compressors", old_compressors)
        path, layout, st = new_store(tmp_path, n_units=3)
    # the layout attribute as the previous version wrote it
    g = zarr.open_group(path, mode="r+")
    old = dict(g.attrs["layout"])
    del old["precision"]
    g.update_attributes({"layout": old})
    assert zarr.open_array(path, path="elements/H/dGdx").compressors[0].clevel == 5
    # resume with this version's layout: the missing field is its default
    create_store(path, layout, st, {"inputs": {"input.data": "sha256:abc"}, "command": "test"},
                 resume=True, n_units=3)
    w = StoreWriter(path)
    unit = 0
    for e in layout.elements:
        if layout.n_rows[e]:
            w.write_rows(e, 0, expected_rows(layout, e, 0, layout.n_rows[e], st["counts"]))
        w.mark_unit_done(unit, {"rows": {e: [0, layout.n_rows[e]]}})
        unit += 1
    finalize_store(path, 3)
    rd = open_store(path)
    assert rd.layout.precision == "full"
    np.testing.assert_array_equal(rd.read("H", "dGdy"),
                                  expected_rows(layout, "H", 0, 37, st["counts"])["dGdy"])
    from distatomenv.store.integrity import verify
    report = verify(path)
    assert report.ok and "precision" not in report.text()


@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr:UserWarning")
def test_precision_n2p2_rounds_the_descriptor_arrays(tmp_path):
    from numcodecs import BitRound

    layout = make_layout(precision="n2p2", force_matching="linear", n_fm=4)
    path, layout, st = new_store(tmp_path, layout)
    written = _write_awkward(path, layout, st["counts"])
    finalize_store(path, len(layout.elements))
    rd = open_store(path)
    # recorded in the store: root attribute layout, and in the arrays' metadata
    assert zarr.open_group(path, mode="r").attrs["layout"]["precision"] == "n2p2"
    assert rd.layout.precision == "n2p2" and rd.layout.keepbits == schema.N2P2_KEEPBITS == 33
    meta = json.loads(open(os.path.join(path, "elements", "H", "dGdx", "zarr.json")).read())
    assert meta["codecs"][0] == {"name": "numcodecs.bitround", "configuration": {"keepbits": 33}}
    br = BitRound(33)
    for e, rows in written.items():
        for name, want in rows.items():
            got = rd.read(e, name)
            if name in schema.ROUNDED_ARRAYS:
                rounded = br.decode(br.encode(want)).reshape(want.shape)
                assert got.tobytes() == rounded.tobytes(), (e, name)
                # the low 52 - 33 = 19 mantissa bits are zero, the error is <= 2**-34
                assert not (got.view(np.uint64) & np.uint64((1 << 19) - 1)).any()
                normal = np.abs(want) >= np.finfo(np.float64).tiny
                assert np.all(np.abs(got - want)[normal] <= 2.0 ** -34 * np.abs(want)[normal])
            else:           # forces, positions and the integers keep every bit
                assert got.tobytes() == want.tobytes(), (e, name)
    assert rd.array("H", "forces").filters == ()
    assert "precision n2p2 (LOSSY" in rd.summary()
    from distatomenv.store.integrity import verify
    report = verify(path)
    assert report.ok and report.precision == "n2p2"
    assert "precision n2p2 (LOSSY: G, dGdx, dGdy, dGdz, fm_dx, fm_dy, fm_dz rounded to 33 " \
           "mantissa bits" in report.text()


def test_precision_validation():
    with pytest.raises(StoreError, match=r"invalid store layout: precision must be one of "
                                         r"\('full', 'n2p2'\), got 'half'"):
        make_layout(precision="half")
    with pytest.raises(StoreError, match=r"precision 'n2p2' .* needs dtype float64; float32 "
                                         r"keeps only 24 bits"):
        make_layout(precision="n2p2", dtype="float32")
    assert StoreLayout.from_dict(make_layout(precision="n2p2").to_dict()).precision == "n2p2"
