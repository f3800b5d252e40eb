"""Stores on object storage: ``s3://bucket/run.zarr`` against a local S3 server.

A moto S3 server on 127.0.0.1 (a random port) stands in for the object
store.  The endpoint and the credentials reach every process through the
usual environment variables only (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``): the two Dask worker processes of the LocalCluster
inherit them.  The workers compute into the bucket, then analyse it; info and
export read it; the arrays equal the serial local store's bit for bit; and
no object in the bucket holds the secret.
"""
from __future__ import annotations

import json
import logging
import os
import secrets

import numpy as np
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
pytest.importorskip("distributed")

import distatomenv                                     # noqa: E402
from distatomenv.cli import main                       # noqa: E402
from distatomenv.errors import StoreError, StoreExistsError  # noqa: E402
from distatomenv.store.fs import StoreLocation         # noqa: E402
from distatomenv.store.labels import label_runs, read_labels  # noqa: E402
from distatomenv.tools.synth import write_lj_dataset         # noqa: E402
from stores import assert_same_store, store_arrays     # noqa: E402

NEIGHBORS = "2 2 2 2"
CHUNK = 32
BUCKET = "distatomenv-test"
#: Small index blocks and scaling parts, so that both workers get some.
GRAIN = {"DISTATOMENV_INDEX_BLOCK_BYTES": "4096", "DISTATOMENV_SCALING_PART_ATOMS": "100"}


def _close_async_clients(s3fs):
    """Close the HTTP sessions of the asynchronous S3 file systems that zarr's
    stores opened (on zarr's event loop), before the cache forgets them, so
    that none is collected unclosed."""
    from zarr.core.sync import sync
    for fs in list(s3fs.S3FileSystem._cache.values()):
        client = getattr(fs, "_s3", None)
        if fs.asynchronous and client is not None:
            sync(client.close())


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 and the environment that points at it.

    Yields ``(secret, access_key)``.  The secret is random, so finding it
    anywhere in the bucket can only mean that it was written there.
    """
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    secret = "s3cr3t-" + secrets.token_hex(16)
    access = "AKIA" + secrets.token_hex(8).upper()
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith(("AWS_", "DISTATOMENV_TEST_")):
                mp.delenv(k)
        mp.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        mp.setenv("AWS_ACCESS_KEY_ID", access)
        mp.setenv("AWS_SECRET_ACCESS_KEY", secret)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("NUMBA_NUM_THREADS", "1")
        for k, v in GRAIN.items():
            mp.setenv(k, v)
        import s3fs
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        yield secret, access
        _close_async_clients(s3fs)
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture(scope="module")
def lj(s3, tmp_path_factory):
    """3 structures of 64 atoms, and their serial store on the local disk (made
    with the same environment, hence the same index blocks, as the S3 runs)."""
    d = tmp_path_factory.mktemp("lj")
    paths = write_lj_dataset(d, n_structures=3, n_atoms=64, seed=0)
    distatomenv.compute(paths["input.data"], neighbors=NEIGHBORS, out=d / "serial.zarr",
                        chunk_rows=CHUNK, threads=1)
    return paths["input.data"], d / "serial.zarr"


@pytest.fixture(scope="module")
def cluster(s3):
    """Two Dask worker processes, one thread each (started after the S3
    environment is set, so they inherit it)."""
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c.scheduler_address


def _bucket_objects():
    import s3fs
    fs = s3fs.S3FileSystem()
    fs.invalidate_cache()
    return fs, fs.find(BUCKET)


def test_two_workers_compute_and_analyse_a_store_in_s3(s3, lj, cluster, tmp_path, capsys):
    secret, access = s3
    data, serial = lj
    url = f"s3://{BUCKET}/run.zarr"
    # compute through the CLI, on the two workers, straight into the bucket
    assert main(["compute", str(data), "--neighbors", NEIGHBORS, "-o", url,
                 "--chunk-rows", str(CHUNK), "--backend", "dask", "--scheduler", cluster,
                 "--threads", "1", "-q"]) == 0
    rd = distatomenv.open_store(url)
    assert rd.status == "complete" and rd.n_units >= 2
    # units with atoms (the coordinator marks empty units itself)
    pids = {rd.unit_info(u)["pid"] for u in range(rd.n_units) if rd.unit_info(u).get("atoms")}
    assert len(pids) == 2 and os.getpid() not in pids        # both workers wrote units
    # the same bits as the serial store on the local disk
    assert_same_store(url, store_arrays(serial))
    assert 0 < rd.nbytes_stored() == StoreLocation(url).size()

    # info and export read the store from the bucket
    assert main(["info", url]) == 0
    out = capsys.readouterr().out
    assert f"distatomenv store {url}" in out and "status: complete" in out
    assert "total on disk:" in out
    assert main(["export", url, "-o", str(tmp_path / "s3-out"), "-q"]) == 0
    distatomenv.export(str(serial), tmp_path / "local-out")
    names = sorted(os.listdir(tmp_path / "local-out"))
    assert names == sorted(os.listdir(tmp_path / "s3-out")) and "atomic-env.G" in names
    for n in names:
        assert (tmp_path / "s3-out" / n).read_bytes() == (tmp_path / "local-out" / n).read_bytes(), n

    # analyse it on the same two workers, writing the labels back into the bucket
    report = tmp_path / "report"
    # (G only: every epoch of the fit reads every chunk again, one GET each)
    result = distatomenv.analyze(url, report, clusters=[3, 5], permutations=10, seeds=2,
                                 sample=200, descriptor="G", write_labels="s3run",
                                 scheduler=cluster, progress=False)
    doc = json.loads((report / "report.json").read_text())
    assert doc["store"]["path"] == url
    assert {r["element"] for r in result.results} == set(rd.elements)
    assert all(r["k"] in (3, 5) and r["n_tested"] >= 1 for r in result.results)
    assert label_runs(url) == ["s3run"]
    e = rd.elements[0]
    labels = read_labels(url, "s3run", e, "G", "labels_k3")
    assert labels.shape == (rd.n_rows(e),) and labels.min() >= 0 and labels.max() <= 2

    # credentials come from the environment and are never written into the store
    fs, keys = _bucket_objects()
    metadata = [k for k in keys if k.endswith("zarr.json")]
    assert any(k.endswith("run.zarr/zarr.json") for k in metadata)
    assert any("/units/" in k for k in metadata) and any("/analysis/" in k for k in metadata)
    for k in metadata:
        text = fs.cat_file(k).decode()
        assert secret not in text and access not in text, k
    for f in report.iterdir():
        if f.suffix in (".json", ".csv", ".html"):
            assert secret not in f.read_text() and access not in f.read_text(), f


def test_overwrite_and_refusals_on_s3(s3, lj, tmp_path):
    data, serial = lj
    url = f"s3://{BUCKET}/serial.zarr"
    distatomenv.compute(data, neighbors=NEIGHBORS, out=url, chunk_rows=CHUNK, threads=1)
    assert_same_store(url, store_arrays(serial))
    with pytest.raises(StoreExistsError, match=r"s3://.*serial.zarr: a complete store already "
                                               r"exists; use overwrite"):
        distatomenv.compute(data, neighbors=NEIGHBORS, out=url, chunk_rows=CHUNK, threads=1)
    # --overwrite replaces it (the old objects go first) ...
    distatomenv.compute(data, neighbors=NEIGHBORS, out=url, chunk_rows=CHUNK, threads=1,
                        overwrite=True)
    assert_same_store(url, store_arrays(serial))
    # ... but never a prefix holding objects that are not a store's
    fs, _ = _bucket_objects()
    fs.pipe_file(f"{BUCKET}/serial.zarr/my_results.csv", b"1,2")
    with pytest.raises(StoreError, match=r"refusing to overwrite: .* not part of a distatomenv "
                                         r"store: \['my_results.csv'\]"):
        distatomenv.compute(data, neighbors=NEIGHBORS, out=url, chunk_rows=CHUNK, threads=1,
                            overwrite=True)
    fs.invalidate_cache()
    assert fs.cat_file(f"{BUCKET}/serial.zarr/my_results.csv") == b"1,2"
    assert distatomenv.open_store(url).status == "complete"
    fs.pipe_file(f"{BUCKET}/notes/readme.txt", b"keep me")
    with pytest.raises(StoreError, match=r"exists and is not a distatomenv store; refusing to "
                                         r"delete it"):
        distatomenv.compute(data, neighbors=NEIGHBORS, out=f"s3://{BUCKET}/notes", threads=1,
                            chunk_rows=CHUNK, overwrite=True)
    with pytest.raises(StoreError, match=r"no such store \(the path does not exist\)"):
        distatomenv.open_store(f"s3://{BUCKET}/nothing.zarr")


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(StoreError, match=r"nosuchfs://x/run.zarr: not a usable store location"):
        distatomenv.open_store("nosuchfs://x/run.zarr")
    np.testing.assert_equal(StoreLocation("a/run.zarr").local, True)
