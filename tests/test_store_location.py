"""The store's file layer (:mod:`distatomenv.store.fs`): one code path through
zarr's store API for a local directory and an fsspec URL (``memory://`` here;
``s3://`` in test_s3.py)."""
from __future__ import annotations

import json
import os
import uuid

import pytest
import zarr

from distatomenv.errors import StoreError
from distatomenv.store.fs import StoreLocation, is_url


@pytest.fixture(params=["local", "memory"])
def loc(request, tmp_path):
    if request.param == "local":
        return StoreLocation(str(tmp_path / "run.zarr"))
    return StoreLocation(f"memory://distatomenv-{uuid.uuid4().hex}/run.zarr")


def test_a_missing_store_is_only_looked_at(loc):
    assert not loc.exists()
    assert loc.names() == [] and loc.files() == set() and loc.marked_groups("units") == set()
    assert loc.size() == 0
    with pytest.raises(FileNotFoundError):
        loc.read_bytes("zarr.json")
    if loc.local:                          # reading through zarr did not create the directory
        assert not os.path.lexists(loc.path)


def test_markers_listing_size_and_removal(loc):
    zarr.open_group(loc.path, mode="w", attributes={"format": "x"})
    assert loc.exists() and loc.isdir()
    for unit in (0, 3, 11):
        loc.write_atomic(json.dumps({"unit": unit}).encode(), "units", str(unit), "zarr.json")
    loc.write_atomic(b"not a marker", "units", "7", "notes.txt")
    assert loc.marked_groups("units") == {"0", "3", "11"}
    assert sorted(loc.names("units")) == ["0", "11", "3", "7"]
    assert loc.files("units", "3") == {"zarr.json"}
    assert "units/11/zarr.json" in loc.files()
    assert json.loads(loc.read_bytes("units", "11", "zarr.json")) == {"unit": 11}
    assert json.loads(loc.read_bytes("zarr.json"))["attributes"] == {"format": "x"}
    # a marker rewritten is replaced whole; nothing temporary is left beside it
    loc.write_atomic(b'{"unit": 3, "again": true}', "units", "3", "zarr.json")
    assert loc.files("units", "3") == {"zarr.json"}
    expected = sum(len(loc.read_bytes(*f.split("/"))) for f in loc.files())
    assert loc.size() == expected > 0
    assert loc.size("units", "3") == len(b'{"unit": 3, "again": true}')
    loc.remove()
    assert not loc.exists()


def test_a_local_marker_is_never_seen_half_written(tmp_path, monkeypatch):
    """zarr's LocalStore writes a temporary file and renames it: a write that
    fails half way leaves the old marker in place and no temporary file."""
    loc = StoreLocation(str(tmp_path / "run.zarr"))
    loc.write_atomic(b'{"old": 1}', "units", "0", "zarr.json")
    import pathlib

    class Boom(Exception):
        pass

    def failing_rename(self, target):    # the write is done, the rename fails
        assert self.name.endswith(".partial") and self.read_bytes() == b'{"new": 2}'
        raise Boom()

    monkeypatch.setattr(pathlib.Path, "replace", failing_rename)
    with pytest.raises(Boom):
        loc.write_atomic(b'{"new": 2}', "units", "0", "zarr.json")
    assert loc.read_bytes("units", "0", "zarr.json") == b'{"old": 1}'
    assert os.listdir(tmp_path / "run.zarr" / "units" / "0") == ["zarr.json"]


def test_urls_and_unusable_locations():
    assert is_url("s3://b/run.zarr") and is_url("simplecache::s3://b/x") and not is_url("a/b")
    assert StoreLocation("a/run.zarr").local
    with pytest.raises(StoreError, match="nosuchproto://x/run.zarr"):
        StoreLocation("nosuchproto://x/run.zarr")
