"""Chunks encoded and written by the writer itself (store/chunks.py): the files
are byte for byte the ones zarr writes, for every codec chain the layout can
declare; anything else goes through zarr; writes are whole or not at all."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import zarr

import distatomenv
from distatomenv.store import StoreLayout, StoreWriter, create_store, direct
from distatomenv.store import chunks
from distatomenv.store.chunks import ChunkFiles
from distatomenv.store.direct import DIRECT_IO_ENV, DIRECT_MIN_BYTES


@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    from distatomenv.tools.synth import write_lj_dataset
    return write_lj_dataset(tmp_path_factory.mktemp("lj"), n_structures=8, n_atoms=128, seed=3)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


def _chunk_files(root):
    return [f for f in _files(root) if "/c/" in f]


def _zarr_only(monkeypatch):
    monkeypatch.setattr(ChunkFiles, "for_array", classmethod(lambda cls, *a, **k: None))


@pytest.mark.parametrize("options", [
    dict(force_matching="linear"),
    dict(force_matching="quadratic", precision="n2p2"),
    dict(dtype="float32", chunk_rows=100),
], ids=["linear", "n2p2-precision", "float32-short-chunks"])
@pytest.mark.parametrize("flag", ["0", "1"], ids=["cached", "direct"])
def test_a_compute_writes_the_chunks_zarr_writes(lj, tmp_path, monkeypatch, options, flag):
    """Whole computes, once through zarr and once through ChunkFiles: the
    same chunk files with the same bytes (last, short chunks included), and
    ChunkFiles did write the row arrays."""
    monkeypatch.setenv(DIRECT_IO_ENV, flag)
    used = []
    real = ChunkFiles.write

    def spy(self, row_start, rows):
        used.append(self.root.name)
        return real(self, row_start, rows)

    monkeypatch.setattr(ChunkFiles, "write", spy)
    past_cache = []
    real_put = chunks.put_direct

    def put_spy(path, view):
        past_cache.append(path)
        return real_put(path, view)

    monkeypatch.setattr(chunks, "put_direct", put_spy)
    ours = tmp_path / "ours.zarr"
    distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=ours, **options)
    assert {"G", "dGdx", "positions", "structure", "nb_atom"} <= set(used)
    big = sorted(f for f in _chunk_files(ours) if (ours / f).stat().st_size >= DIRECT_MIN_BYTES)
    assert sorted(os.path.relpath(p, ours) for p in past_cache) == (big if flag == "1" else [])
    assert flag == "0" or big or options.get("chunk_rows")
    with monkeypatch.context() as m:
        _zarr_only(m)
        theirs = tmp_path / "zarr.zarr"
        distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=theirs, **options)
    names = _chunk_files(theirs)
    assert names and _chunk_files(ours) == names
    short = 0
    for f in names:
        assert (ours / f).read_bytes() == (theirs / f).read_bytes(), f
    for e in zarr.open_group(ours / "elements", mode="r").group_keys():
        g = zarr.open_array(ours, path=f"elements/{e}/G", mode="r")
        short += g.shape[0] % g.chunks[0] != 0
    if options.get("chunk_rows"):
        assert short, "the case should end in a short chunk"
    assert distatomenv.store.integrity.verify(ours).ok


@pytest.mark.parametrize("compressor,shuffle", [("lz4", "bitshuffle"), ("zlib", "noshuffle"),
                                                ("none", "shuffle")])
def test_every_layout_compressor_is_written_as_zarr_writes_it(tmp_path, monkeypatch,
                                                              compressor, shuffle):
    from tests.test_store import expected_rows, make_layout, make_structures
    layout = make_layout(compressor=compressor, shuffle=shuffle, compression_level=3)
    stores = {}
    for way in ("ours", "zarr"):
        with monkeypatch.context() as m:
            if way == "zarr":
                _zarr_only(m)
            path = stores[way] = tmp_path / f"{way}.zarr"
            structures = make_structures(layout)
            create_store(path, layout, structures, {"run": "test"}, n_units=1)
            w = StoreWriter(path)
            for e in layout.elements:
                n = layout.n_rows[e]
                if n:
                    w.write_rows(e, 0, expected_rows(layout, e, 0, n, structures["counts"]))
            if way == "ours":
                assert any(f is not None for f in w._files.values())
    chunks = _chunk_files(stores["zarr"])
    assert chunks and _chunk_files(stores["ours"]) == chunks
    for f in chunks:
        assert (stores["ours"] / f).read_bytes() == (stores["zarr"] / f).read_bytes(), f


def test_unknown_codec_chains_go_through_zarr(tmp_path):
    g = zarr.open_group(tmp_path / "s.zarr", mode="w")
    plain = g.create_array("plain", shape=(10, 3), chunks=(4, 3), dtype="f8",
                           compressors=[zarr.codecs.BloscCodec(), zarr.codecs.Crc32cCodec()])
    gzip = g.create_array("gzip", shape=(10, 3), chunks=(4, 3), dtype="f8",
                          compressors=[zarr.codecs.GzipCodec()])
    split = g.create_array("split", shape=(10, 3), chunks=(4, 2), dtype="f8",
                           compressors=[zarr.codecs.Crc32cCodec()])
    no_sum = g.create_array("nosum", shape=(10, 3), chunks=(4, 3), dtype="f8",
                            compressors=[zarr.codecs.BloscCodec()])
    assert ChunkFiles.for_array(plain, tmp_path / "s.zarr", direct=False) is not None
    for a in (gzip, split, no_sum):
        assert ChunkFiles.for_array(a, tmp_path / "s.zarr", direct=False) is None, a.path


def _one_array(tmp_path, rows=4096):
    g = zarr.open_group(tmp_path / "s.zarr", mode="w")
    a = g.create_array("a", shape=(rows, 64), chunks=(2048, 64), dtype="f8",
                       compressors=[zarr.codecs.Crc32cCodec()])
    return a, ChunkFiles.for_array(a, tmp_path / "s.zarr", direct=True)


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this OS")
def test_a_file_system_that_refuses_o_direct_gets_buffered_writes(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(direct.os, "open", refuse)
    a, files = _one_array(tmp_path)
    rows = np.random.default_rng(0).normal(size=a.shape)
    files.write(0, rows)
    assert not files.direct
    np.testing.assert_array_equal(a[:], rows)
    assert _files(tmp_path / "s.zarr" / "a") == ["c/0/0", "c/1/0", "zarr.json"]


@pytest.mark.parametrize("direct_io", [True, False])
def test_a_failed_write_leaves_the_old_chunk_and_no_temporary(tmp_path, monkeypatch, direct_io):
    a, files = _one_array(tmp_path)
    files.direct = direct_io
    old = np.ones(a.shape)
    files.write(0, old)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct.os, "write", full)
    monkeypatch.setattr(direct, "open", lambda *a, **k: _Full(), raising=False)
    with pytest.raises(OSError, match="No space left"):
        files.write(0, np.zeros(a.shape))
    np.testing.assert_array_equal(a[:], old)
    assert _files(tmp_path / "s.zarr" / "a") == ["c/0/0", "c/1/0", "zarr.json"]


class _Full:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_the_writer_uses_zarr_for_an_fsspec_store(tmp_path):
    """A URL store: no ChunkFiles, zarr writes (and the rows arrive)."""
    from tests.test_store import expected_rows, make_layout, make_structures
    layout = make_layout()
    url = "memory://chunk-files-test/u.zarr"
    structures = make_structures(layout)
    create_store(url, layout, structures, {"run": "test"}, n_units=1)
    w = StoreWriter(url)
    rows = expected_rows(layout, "H", 0, layout.n_rows["H"], structures["counts"])
    w.write_rows("H", 0, rows)
    assert w._files and all(f is None for f in w._files.values())
    np.testing.assert_array_equal(zarr.open_array(url, path="elements/H/G", mode="r")[:],
                                  rows["G"])
