"""Chunk files written past the page cache (store/direct.py): the same bytes,
whole or not at all, a fallback where the file system refuses O_DIRECT, and
the rule that chooses it."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import distatomenv
from distatomenv.errors import DistatomenvError
from distatomenv.store import direct
from distatomenv.store.chunks import ChunkFiles
from distatomenv.store.direct import (DIRECT_IO_ENV, DIRECT_MIN_BYTES, DirectLocalStore,
                                      direct_io_wanted, filesystem_type)

@pytest.fixture(scope="module")
def lj(tmp_path_factory):
    from distatomenv.tools.synth import write_lj_dataset
    return write_lj_dataset(tmp_path_factory.mktemp("lj"), n_structures=8, n_atoms=128, seed=3)


needs_o_direct = pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this OS")


def _buffer(data: bytes):
    return default_buffer_prototype().buffer.from_bytes(data)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, fs in os.walk(root) for f in fs)


@needs_o_direct
def test_values_round_trip_whole(tmp_path, monkeypatch):
    """Every length, aligned or not, comes back byte for byte at its exact
    size; values from DIRECT_MIN_BYTES on go the direct way (where the file
    system allows it), and no temporary file is left."""
    store = DirectLocalStore(tmp_path / "s")
    taken = []
    real = DirectLocalStore._put_direct

    def spy(self, path, value):
        ok = real(self, path, value)
        taken.append((len(value), ok))
        return ok

    monkeypatch.setattr(DirectLocalStore, "_put_direct", spy)
    rng = np.random.default_rng(1)
    sizes = [0, 1, DIRECT_MIN_BYTES - 1, DIRECT_MIN_BYTES, DIRECT_MIN_BYTES + 1, 4096 * 17,
             3_000_001, 5 << 20]
    data = {f"c/{k}": rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            for k, n in enumerate(sizes)}
    for key, value in data.items():
        sync(store.set(key, _buffer(value)))
    sync(store.set("c/2", _buffer(data["c/7"])))        # replace a file
    data["c/2"] = data["c/7"]
    for key, value in data.items():
        assert (tmp_path / "s" / key).stat().st_size == len(value)
        assert sync(store.get(key, prototype=default_buffer_prototype())).to_bytes() == value
    assert _files(tmp_path / "s") == sorted(data)
    assert [n for n, _ in taken] == [n for n in sizes if n >= DIRECT_MIN_BYTES] + [5 << 20]
    if filesystem_type(tmp_path) in direct.DIRECT_FILESYSTEMS:
        assert all(ok for _, ok in taken) and store.direct


@needs_o_direct
def test_a_file_system_that_refuses_o_direct_gets_buffered_writes(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct.os, "open", refuse)
    store = DirectLocalStore(tmp_path / "s")
    value = os.urandom(DIRECT_MIN_BYTES * 3 + 5)
    sync(store.set("c/0", _buffer(value)))
    sync(store.set("c/1", _buffer(value)))
    assert not store.direct
    assert (tmp_path / "s" / "c" / "0").read_bytes() == value
    assert _files(tmp_path / "s") == ["c/0", "c/1"]


@needs_o_direct
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    store = DirectLocalStore(tmp_path / "s")
    old = os.urandom(DIRECT_MIN_BYTES * 2)
    sync(store.set("c/0", _buffer(old)))

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        sync(store.set("c/0", _buffer(os.urandom(DIRECT_MIN_BYTES * 2))))
    assert (tmp_path / "s" / "c" / "0").read_bytes() == old
    assert _files(tmp_path / "s") == ["c/0"]


def test_filesystem_type_reads_the_longest_mount_point(tmp_path):
    """The mount that holds a path (or the nearest existing folder above a
    store not yet made), with mountinfo's escaped spaces."""
    root = os.path.realpath(tmp_path)
    for d in ("scratch/run", "scratch/my disk", "scratchy"):
        (tmp_path / d).mkdir(parents=True)
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"23 22 0:21 / {root}/scratch rw shared:2 - lustre 10.0.0.1@tcp:/fs rw\n"
        f"24 23 0:22 / {root}/scratch/my\\040disk rw - xfs /dev/sdb rw\n"
        f"25 22 0:23 / {root}/scratchy rw - nfs4 srv:/x rw\n"
        "garbage line\n")
    assert filesystem_type(tmp_path / "scratch/run/a.zarr", info) == "lustre"
    assert filesystem_type(tmp_path / "scratch/my disk/a.zarr/c/0", info) == "xfs"
    assert filesystem_type(tmp_path / "scratchy", info) == "nfs4"
    assert filesystem_type(tmp_path / "elsewhere/a.zarr", info) == "ext4"
    assert filesystem_type(tmp_path, tmp_path / "absent") is None


@needs_o_direct
def test_direct_io_wanted_follows_the_variable_then_the_file_system(tmp_path, monkeypatch):
    monkeypatch.setenv(DIRECT_IO_ENV, "1")
    assert direct_io_wanted("/dev/shm/x.zarr")
    monkeypatch.setenv(DIRECT_IO_ENV, "0")
    assert not direct_io_wanted(tmp_path / "x.zarr")
    monkeypatch.setenv(DIRECT_IO_ENV, "yes")
    with pytest.raises(DistatomenvError, match=r"DISTATOMENV_DIRECT_IO='yes': expected 1"):
        direct_io_wanted(tmp_path)
    monkeypatch.delenv(DIRECT_IO_ENV)
    monkeypatch.setattr(direct, "filesystem_type", lambda path: "nfs4")
    assert not direct_io_wanted(tmp_path)
    monkeypatch.setattr(direct, "filesystem_type", lambda path: "xfs")
    assert direct_io_wanted(tmp_path)


@needs_o_direct
def test_compute_writes_the_same_bytes_either_way(lj, tmp_path, monkeypatch):
    """A whole compute, chunks past the cache or through it: every file of the
    two stores holds the same bytes, bar the run's own metadata."""
    stores, direct_writes = {}, []
    real = DirectLocalStore._put_direct

    def spy(self, path, value):
        direct_writes.append(path)
        return real(self, path, value)

    monkeypatch.setattr(DirectLocalStore, "_put_direct", spy)
    # the rows through zarr (store/chunks.py, which writes them itself, has its own tests)
    monkeypatch.setattr(ChunkFiles, "for_array", classmethod(lambda cls, *a, **k: None))
    for flag in ("0", "1"):
        monkeypatch.setenv(DIRECT_IO_ENV, flag)
        out = tmp_path / f"d{flag}.zarr"
        distatomenv.compute(lj["input.data"], neighbors="3 3 3 3", out=out,
                            force_matching="linear")
        stores[flag] = out
        assert bool(direct_writes) == (flag == "1")
    files = _files(stores["1"])
    assert files == _files(stores["0"])
    chunks = [f for f in files if "/c/" in f]
    assert sorted(os.path.relpath(p, stores["1"]) for p in direct_writes) == \
        sorted(f for f in chunks if os.path.getsize(stores["1"] / f) >= DIRECT_MIN_BYTES)
    for f in chunks:
        assert (stores["1"] / f).read_bytes() == (stores["0"] / f).read_bytes(), f
