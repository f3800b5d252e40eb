"""compute / export / info through the public API: units, resume, faults, provenance."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

import distatomenv
from distatomenv.engine import job, run, scaling, worker
from distatomenv.stats.moments import MomentAccumulator
from distatomenv.errors import (NotEnoughNeighborsError, ScalingFileError, StoreError,
                                StoreExistsError,
                                StoreIncompleteError)
from distatomenv.io.scaling import read_scaling
from distatomenv.io.settings import read_settings
from distatomenv.store.reader import open_store
from distatomenv.tools.synth import write_lj_dataset
from stores import assert_same_store, crash_in_unit, store_arrays



@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    d = tmp_path_factory.mktemp("lj")
    return write_lj_dataset(d, n_structures=6, n_atoms=64, seed=3)


def test_many_units_bit_identical_to_one(lj, tmp_path):
    one = distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=tmp_path / "one.zarr",
                              chunk_rows=16, n_units=1)
    many = distatomenv.compute(lj["input.data"], neighbors="Ar-Ar=3,Ar-Kr=3,Kr-Ar=3,Kr-Kr=3",
                               out=tmp_path / "many.zarr", chunk_rows=16, n_units=7)
    assert many.n_units == 7 and one.n_units == 1
    assert_same_store(many.path, store_arrays(one.path))
    rows = sum(one.n_rows(e) for e in one.elements)
    assert rows == 6 * 64


def test_rows_hold_what_the_input_says(lj, tmp_path):
    from distatomenv.io.inputdata import read_structures
    rd = distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr")
    structs = read_structures(lj["input.data"])
    for e in rd.elements:
        s = rd.read(e, "structure")
        a = rd.read(e, "atom")
        f = rd.read(e, "forces")
        p = rd.read(e, "positions")
        for k in range(0, len(s), 37):
            st = structs[s[k]]
            assert st.elements[a[k]] == e
            np.testing.assert_array_equal(f[k], st.forces[a[k]])
            np.testing.assert_array_equal(p[k], st.positions[a[k]])
        # rows are in input order: structure, then atom
        key = s * 10_000 + a
        assert (np.diff(key) > 0).all()


def test_float32_store(lj, tmp_path):
    a = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=tmp_path / "a.zarr")
    b = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=tmp_path / "b.zarr",
                            dtype="float32")
    for e in a.elements:
        g64, g32 = a.read(e, "G"), b.read(e, "G")
        assert g32.dtype == np.float32 and g64.dtype == np.float64
        np.testing.assert_allclose(g32, g64, rtol=1e-6, atol=1e-7)
    assert b.nbytes_stored() < 0.7 * a.nbytes_stored()


def test_threads_over_structures_bit_identical(lj, tmp_path, monkeypatch):
    """With several threads, whole structures are computed concurrently (many
    small structures) or each structure is split by atoms (large ones): both
    write exactly the rows of one thread."""
    ref = distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=tmp_path / "t1.zarr",
                              chunk_rows=16, threads=1, force_matching="linear")
    used = []
    real = worker.UnitRunner._structure

    def spy(self, unit, s, threads):
        used.append(threads)
        return real(self, unit, s, threads)

    monkeypatch.setattr(worker.UnitRunner, "_structure", spy)
    distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=tmp_path / "t3.zarr",
                        chunk_rows=16, threads=3, force_matching="linear")
    assert used and set(used) == {1}          # structure-level: kernels run serial
    assert_same_store(tmp_path / "t3.zarr", store_arrays(ref.path))
    used.clear()
    monkeypatch.setattr(worker, "STRUCTURE_THREADS_MAX_ATOMS", 10)
    distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=tmp_path / "t3a.zarr",
                        chunk_rows=16, threads=3, force_matching="linear")
    assert used and set(used) == {None}       # atom-level: numba's thread count
    assert_same_store(tmp_path / "t3a.zarr", store_arrays(ref.path))


def test_threads_over_structures_report_the_first_failing_structure(lj, tmp_path):
    """Structures computed ahead on other threads do not change which error
    is raised: the first failing structure in input order."""
    text = open(lj["input.data"]).read().split("begin")
    # structures 3 and 5 (1-based) get two atoms at one place
    for k in (3, 5):
        lines = text[k].splitlines()
        atoms = [i for i, line in enumerate(lines) if line.startswith("atom")]
        lines[atoms[1]] = lines[atoms[0]]
        text[k] = "\n".join(lines) + "\n"
    bad = tmp_path / "input.data"
    bad.write_text("begin".join(text))
    for threads in (1, 2):
        with pytest.raises(Exception, match=r"structure 3 \(1-based\)"):
            distatomenv.compute(bad, settings=lj["input.nn"], neighbors="1 1 1 1",
                                out=tmp_path / f"bad{threads}.zarr", threads=threads)


def test_not_enough_neighbors_leaves_incomplete_store(lj, tmp_path):
    out = tmp_path / "bad.zarr"
    with pytest.raises(NotEnoughNeighborsError,
                       match=r"input\.data: structure 1 .* has only \d+ .* requested"):
        distatomenv.compute(lj["input.data"], neighbors="40 0 0 0", out=out)
    with pytest.raises(StoreIncompleteError, match="incomplete"):
        open_store(out)
    rd = open_store(out, allow_incomplete=True)
    assert rd.status != "complete"
    assert "NotEnoughNeighborsError" in (rd.error or "")
    assert "incomplete" in str(distatomenv.info(out))


def test_resume_computes_only_missing_units(lj, tmp_path, monkeypatch):
    clean = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2",
                                out=tmp_path / "clean.zarr", chunk_rows=16, n_units=5)
    out = tmp_path / "resume.zarr"
    real_run = crash_in_unit(monkeypatch, 3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, chunk_rows=16,
                            n_units=5)
    with pytest.raises(StoreIncompleteError, match="3"):
        open_store(out)
    ran = []

    def counting(self, unit):
        ran.append(unit.id)
        return real_run(self, unit)
    monkeypatch.setattr(worker.UnitRunner, "run", counting)
    with pytest.raises(StoreError, match="--resume"):
        distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, chunk_rows=16,
                            n_units=5)
    distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, chunk_rows=16,
                        n_units=5, resume=True)
    assert ran == [3, 4]
    assert_same_store(out, store_arrays(clean.path))


def test_complete_store_not_overwritten(lj, tmp_path):
    out = tmp_path / "s.zarr"
    distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=out)
    with pytest.raises(StoreExistsError, match="overwrite"):
        distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=out)
    distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, overwrite=True)
    assert open_store(out).layout.nblocks["Ar"] == 4


def test_provenance(lj, tmp_path):
    rd = distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr",
                             command="distatomenv compute test")
    meta = rd.meta
    raw = open(lj["input.data"], "rb").read()     # smaller than one 16 MiB block
    sha = hashlib.sha256(hashlib.sha256(raw).digest()).hexdigest()
    assert meta["inputs"]["data"]["checksum"] == sha
    assert "16 MiB blocks" in meta["inputs"]["data"]["checksum_type"]
    assert meta["inputs"]["settings"]["sha256"] == \
        hashlib.sha256(open(lj["input.nn"], "rb").read()).hexdigest()
    assert meta["inputs"]["scaling"]["computed"] is True
    assert meta["version"] == distatomenv.__version__
    assert meta["command"] == "distatomenv compute test"
    assert meta["neighbors"]["ncut"] == [[1, 1], [1, 1]]
    assert len(meta["settings"]["sfset"]["functions"]) == 52
    assert "conv_length" in meta["units"]["dG"]
    text = str(distatomenv.info(rd.path))
    for word in ("Ar", "Kr", "G", "dGdx", "chunks", sha[:12], "complete"):
        assert word in text


def test_info_returns_data(lj, tmp_path, capsys):
    """info() returns the facts (a StoreInfo); its str() is the command's text."""
    import json
    from distatomenv.cli import main
    from distatomenv.store.info import StoreInfo
    rd = distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr",
                             chunk_rows=64, n_units=3, command="distatomenv compute test")
    info = distatomenv.info(rd.path)
    assert isinstance(info, StoreInfo)
    assert info.status == "complete" and info.error is None
    assert info.n_units == 3 and info.done_units == 3 and info.missing_units == []
    assert info.elements == ["Ar", "Kr"] and info.n_structures == rd.layout.n_structures
    assert info.derivatives and info.dtype == "float64" and info.chunk_rows == 64
    assert info.stored_bytes == rd.nbytes_stored()
    for el in info.element_info:
        assert el.rows == rd.n_rows(el.element) and el.nG == rd.layout.nG[el.element]
        assert [a.name for a in el.arrays] == list(rd.layout.array_names())
        for a in el.arrays:
            arr = rd.array(el.element, a.name)
            assert a.shape == arr.shape and a.chunks == arr.chunks and a.stored_bytes > 0
            assert a.nbytes == arr.nbytes and a.dtype == str(arr.dtype)
    st = info.settings
    assert st.neighbors_spec == "1 1 1 1" and st.ncut == [[1, 1], [1, 1]]
    assert st.derivatives and st.elements == ["Ar", "Kr"]
    assert sum(len(v) for v in st.symmetry_functions.values()) == 52
    assert all(f.line > 0 and f.description for v in st.symmetry_functions.values() for f in v)
    assert info.neighbor_counts == rd.statistics["neighbors"]
    assert info.suggested_neighbors == run.suggested_neighbors(rd.statistics, rd.elements)
    assert info.hist_bins == job.DEFAULT_BINS
    assert info.provenance["command"] == "distatomenv compute test"
    assert info.provenance["inputs"] == rd.meta["inputs"]
    assert json.loads(json.dumps(info.to_dict()))["settings"]["neighbors_spec"] == "1 1 1 1"
    text = str(info)
    assert text == info.text() and text.startswith(f"distatomenv store {rd.path}\n")
    assert "\n".join(info.summary_lines()) == rd.summary(meta=False)
    assert f'suggested --neighbors "{info.suggested_neighbors}"' in text
    assert main(["info", rd.path]) == 0
    assert capsys.readouterr().out == text + "\n"


def test_missing_explicit_scaling_file(lj, tmp_path):
    with pytest.raises(ScalingFileError, match="nope.data: file not found"):
        distatomenv.compute(lj["input.data"], scaling=tmp_path / "nope.data",
                            neighbors="1 1 1 1", out=tmp_path / "s.zarr")


def test_computed_scaling_exported(lj, tmp_path):
    distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "s.zarr")
    paths = distatomenv.export(tmp_path / "s.zarr", tmp_path / "out")
    names = sorted(p.split("/")[-1] for p in paths if not p.endswith(".histo"))
    assert names == ["atomic-env.G", "atomic-env.dGdx", "atomic-env.dGdy", "atomic-env.dGdz",
                     "neighbor-list.data", "scaling.data"]
    st = read_settings(lj["input.nn"])
    table = read_scaling(tmp_path / "out" / "scaling.data", st.sfset)
    again = scaling.scaling_pass(lj["input.data"])
    for e in st.elements:
        np.testing.assert_allclose(table.mean[e], again.mean[e], rtol=1e-15)


@pytest.mark.parametrize("case", ["LJ", "H2O_polynomial", "H2O_weighted_cos_center",
                                  "H2O_wide_poly2_sigma"])
def test_scaling_pass_matches_nnp_scaling(case, reference_dir):
    """min/max to 1e-11 relative (extremes of G; one min of H2O_polynomial is a
    tiny value that differs by 1.9e-12), mean 1e-12, sigma 1e-9 (README)."""
    d = reference_dir / case
    ours = scaling.scaling_pass(d / "input.data")
    ref = read_scaling(d / "expected" / "scaling.data", read_settings(d / "input.nn").sfset)
    for e in ref.elements:
        np.testing.assert_allclose(ours.min[e], ref.min[e], rtol=1e-11, atol=0)
        np.testing.assert_allclose(ours.max[e], ref.max[e], rtol=1e-11, atol=0)
        np.testing.assert_allclose(ours.mean[e], ref.mean[e], rtol=1e-12, atol=0)
        np.testing.assert_allclose(ours.sigma[e], ref.sigma[e], rtol=1e-9, atol=0)


def test_moment_accumulator_merges_like_one_pass():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=(1000, 3)) * [1, 1e-6, 1e6]
    acc = MomentAccumulator(3)
    for part in np.array_split(x, 13):
        acc.add(part)
    np.testing.assert_allclose(acc.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(acc.sigma, x.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_array_equal(acc.min, x.min(axis=0))
    np.testing.assert_array_equal(acc.max, x.max(axis=0))


# ----------------------------------------------------------------------------- histograms
def _brute_neighbor_counts(struct, elements, rc):
    """Neighbours of each element within rc per atom: explicit periodic images."""
    pos = struct.remapped_positions()
    lat = struct.lattice
    reach = [int(np.ceil(rc / (abs(np.linalg.det(lat)) / np.linalg.norm(
        np.cross(lat[(k + 1) % 3], lat[(k + 2) % 3]))))) for k in range(3)]
    shifts = np.array([(a, b, c) for a in range(-reach[0], reach[0] + 1)
                       for b in range(-reach[1], reach[1] + 1)
                       for c in range(-reach[2], reach[2] + 1)]) @ lat
    el = np.array([elements.index(x) for x in struct.elements])
    out = np.zeros((len(pos), len(elements)), dtype=np.int64)
    for i in range(len(pos)):
        d = np.linalg.norm(pos[None, :, :] + shifts[:, None, :] - pos[i], axis=2)
        d[np.all(shifts == 0, axis=1), i] = np.inf         # not the atom itself
        inside = (d <= rc).sum(axis=0)
        out[i] = np.bincount(el, weights=inside, minlength=len(elements))
    return out


def test_histograms_and_neighbor_counts(lj, tmp_path):
    rd = distatomenv.compute(lj["input.data"], neighbors="1 1 1 1", out=tmp_path / "h.zarr",
                             chunk_rows=32, n_units=4, bins=17)
    st = read_settings(lj["input.nn"])
    els = rd.elements
    rc = st.sfset.max_cutoff()
    structs = distatomenv.io.inputdata.read_structures(lj["input.data"], els)
    brute = {e: [] for e in els}
    for s in structs:
        counts = _brute_neighbor_counts(s, els, rc)
        for a, e in enumerate(els):
            brute[e].append(counts[[els.index(x) == a for x in s.elements]])
    import zarr
    root = zarr.open_group(str(rd.path), mode="r")
    for e in els:
        nbc = rd.read(e, "nb_count")
        np.testing.assert_array_equal(nbc, np.concatenate(brute[e]))
        # the neighbour-count histogram is the histogram of nb_count
        nb_hist = root[f"stats/{e}/nb_hist"][...]
        for b in range(len(els)):
            h = np.bincount(nbc[:, b], minlength=nb_hist.shape[1])
            np.testing.assert_array_equal(nb_hist[b], h)
            d = rd.statistics["neighbors"][e][els[b]]
            assert (d["min"], d["max"]) == (nbc[:, b].min(), nbc[:, b].max())
            assert d["mean"] == pytest.approx(nbc[:, b].mean(), rel=1e-12)
        # scaled SFs: own columns of G, binned with np.histogram per SF
        nsf = st.sfset.n_sf(e)
        G = rd.read(e, "G")[:, :nsf]
        edges = root[f"stats/{e}/sf_edges"][...]
        hist = root[f"stats/{e}/sf_hist"][...]
        assert edges.shape == (nsf, 18) and hist.shape == (nsf, 19)
        for j in range(nsf):
            # the range is the data's own scaled min..max (up to the last bit)
            lo, hi = edges[j, 0], edges[j, -1]
            assert np.all((G[:, j] > lo - 1e-9 * (hi - lo)) & (G[:, j] < hi + 1e-9 * (hi - lo)))
            ref, _ = np.histogram(np.clip(G[:, j], lo, hi), bins=edges[j])
            assert hist[j, 0] == hist[j, -1] == 0
            np.testing.assert_array_equal(hist[j, 1:-1], ref)
            assert hist[j].sum() == rd.n_rows(e)
    text = str(distatomenv.info(rd.path))
    suggested = run.suggested_neighbors(rd.statistics, els)
    assert f'suggested --neighbors "{suggested}"' in text
    mins = [int(x) for x in suggested.split()]
    assert mins == [min(np.concatenate(brute[a])[:, b].min() for _ in [0])
                    for a in els for b in range(len(els))]
    # the suggestion works, one more neighbour anywhere does not
    distatomenv.compute(lj["input.data"], neighbors=suggested, out=tmp_path / "ok.zarr")
    worse = " ".join(str(m + (k == 0)) for k, m in enumerate(mins))
    with pytest.raises(NotEnoughNeighborsError):
        distatomenv.compute(lj["input.data"], neighbors=worse, out=tmp_path / "no.zarr")


def test_sf_histogram_bins_out_of_range_and_edges():
    edges = np.array([[0.0, 0.5, 1.0], [-1.0, 0.0, 1.0]])
    G = np.array([[-0.1, -1.0], [0.0, 1.0], [0.5, 1.5], [1.0, -2.0], [1.01, 0.0]])
    h = worker.sf_histogram(G, edges)
    # SF 0: below 1 (-0.1); [0, .5): 0.0; [.5, 1]: 0.5 and 1.0 (last edge is in the last bin); above: 1.01
    np.testing.assert_array_equal(h[0], [1, 1, 2, 1])
    np.testing.assert_array_equal(h[1], [1, 1, 2, 1])
    # any split of the rows sums to the same counts
    np.testing.assert_array_equal(worker.sf_histogram(G[:2], edges)
                                  + worker.sf_histogram(G[2:], edges), h)


def test_scaling_parts_depend_on_the_data_only():
    natoms = np.array([5, 5, 5, 30, 1, 1])
    assert scaling.scaling_parts(natoms, 10) == [(0, 2), (2, 4), (4, 6)]
    assert scaling.scaling_parts(natoms, 1000) == [(0, 6)]
    assert scaling.scaling_parts(np.array([3]), 1) == [(0, 1)]


def test_export_writes_the_histograms(lj, tmp_path):
    from distatomenv.io.histo import read_neighbors_histo, read_sf_histo, sf_histo_name
    rd = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=tmp_path / "e.zarr",
                             bins=12)
    paths = distatomenv.export(rd.path, tmp_path / "out")
    st = read_settings(lj["input.nn"])
    for e in rd.elements:
        hist, edges = rd.stats(e, "sf_hist"), rd.stats(e, "sf_edges")
        for j in range(st.sfset.n_sf(e)):
            p = tmp_path / "out" / sf_histo_name(e, j + 1)
            assert str(p) in paths
            h = read_sf_histo(p)
            assert (h.element, h.index) == (e, j + 1)
            np.testing.assert_array_equal(h.edges, edges[j])
            np.testing.assert_array_equal(h.counts, hist[j, 1:-1])
            assert h.counts.sum() + h.underflow + h.overflow == rd.n_rows(e)
    nb = read_neighbors_histo(tmp_path / "out" / "neighbors.histo")
    for a, e in enumerate(rd.elements):
        for k, b in enumerate(rd.elements):
            got = nb.counts[(e, b)]
            want = rd.stats(e, "nb_hist")[k]
            n = max(got.size, want.size)
            np.testing.assert_array_equal(np.pad(got, (0, n - got.size)),
                                          np.pad(want, (0, n - want.size)))
    assert nb.suggested == run.suggested_neighbors(rd.statistics, rd.elements)


def test_default_chunk_rows_grow_for_narrow_rows_and_many_atoms(capsys):
    """2048 rows for wide rows or few atoms; narrow rows of many atoms get
    more rows per chunk (fewer chunk files), as long as every worker keeps
    CHUNKS_PER_WORKER chunks; the CLI's help states the same numbers."""
    from distatomenv.cli import main
    rows = job.default_chunk_rows
    assert job.DEFAULT_CHUNK_ROWS == 2048
    assert rows(258 * 8, 10 ** 7) == 2048                   # H2O "6 2 4 4", float64
    assert rows(60 * 8, 684_000) == 8192                    # CG water x 100: 3.75 MiB chunks
    assert rows(60 * 8, 684_000, n_workers=2) == 8192
    assert rows(60 * 8, 684_000, n_workers=8) == 4096       # 167 chunks >= 16 x 8
    assert rows(60 * 8, 68_400) == 4096                     # CG water x 10
    assert rows(60 * 8, 68_400, n_workers=2) == 2048
    assert rows(60 * 4, 10 ** 7) == job.MAX_DEFAULT_CHUNK_ROWS == 16384
    assert rows(8, 1000) == 2048                            # never fewer than the default
    for r in (rows(w, n, k) for w in (8, 480, 4096) for n in (0, 10 ** 5, 10 ** 8)
              for k in (1, 3, 64)):
        assert 2048 <= r <= 16384 and r & (r - 1) == 0
    with pytest.raises(SystemExit):
        main(["compute", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    said = helptext[helptext.index("--chunk-rows CHUNK_ROWS rows"):][:300]
    for v in (job.DEFAULT_CHUNK_ROWS, job.MAX_DEFAULT_CHUNK_ROWS, job.CHUNKS_PER_WORKER):
        assert re.search(rf"\b{v}\b", said), (v, said)
    assert f"{job.CHUNK_TARGET_BYTES >> 20} MiB" in said, said


def test_default_chunk_rows_are_recorded_and_kept_on_resume(lj, tmp_path, monkeypatch):
    """A compute without chunk_rows takes default_chunk_rows for its rows; a
    resume keeps the store's chunk rows even where today's default differs
    (the default depends on the number of workers), and the resumed store is
    the one a clean run with those rows writes."""
    monkeypatch.setattr(job, "DEFAULT_CHUNK_ROWS", 8)
    monkeypatch.setattr(job, "MAX_DEFAULT_CHUNK_ROWS", 64)
    monkeypatch.setattr(job, "CHUNKS_PER_WORKER", 4)
    out = tmp_path / "resume.zarr"
    real_run = crash_in_unit(monkeypatch, 1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, n_units=3)
    from distatomenv.store.schema import read_root_attrs
    layout = read_root_attrs(out)["layout"]
    most = max(layout["n_rows"].values())
    expect = job.default_chunk_rows(1, most)
    assert layout["chunk_rows"] == expect and 8 < expect < 64
    monkeypatch.setattr(worker.UnitRunner, "run", real_run)
    monkeypatch.setattr(job, "CHUNKS_PER_WORKER", 1)        # a fresh run would take 64 now
    assert job.default_chunk_rows(1, most) == 64
    distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=out, resume=True)
    assert read_root_attrs(out)["layout"]["chunk_rows"] == expect
    clean = distatomenv.compute(lj["input.data"], neighbors="2 2 2 2", out=tmp_path / "c.zarr",
                                chunk_rows=expect, n_units=3)
    assert_same_store(out, store_arrays(clean.path))
