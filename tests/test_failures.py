"""Nothing silent (issue 15): degenerate and hostile inputs, damaged stores,
full disks and a second writer.  Each failure is one line on stderr, without a
traceback or a control character, with the exit status of its class
(README "Failures"): 2 usage, 3 bad input, 4 I/O, 5 damaged store, 130
interrupted."""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import distatomenv
from distatomenv.errors import (CoincidentAtomsError, DataFileError, FileAccessError,
                                NeighborListTooLargeError, NotEnoughNeighborsError,
                                StoreDamagedError, StoreExistsError, StoreIncompleteError,
                                StoreLockedError, clean, quote)
from distatomenv.store.reader import open_store

EXE = [sys.executable, "-m", "distatomenv.cli"]
NB = "6 2 4 4"


# ----------------------------------------------------------------------------- helpers
def run(*args, env=None, preexec_fn=None, timeout=600):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(EXE + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, preexec_fn=preexec_fn)


def assert_clean(p, status, *words):
    """One error, the expected exit status, no traceback, no control character."""
    assert p.returncode == status, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    bad = [c for c in p.stderr if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")]
    assert not bad, (bad, p.stderr)
    for w in words:
        assert w in p.stderr, (w, p.stderr)


@pytest.fixture
def case(reference_dir, tmp_path):
    """make(edit=None, scaling=True, nn=None) -> input.data in a fresh folder,
    a copy of H2O_RPBE-D3 (4 periodic structures, 336 atoms) with ``edit``
    applied to its list of lines."""
    src = reference_dir / "H2O_RPBE-D3"
    count = [0]

    def make(edit=None, scaling=True, nn=None):
        count[0] += 1
        d = tmp_path / f"in{count[0]}"
        d.mkdir()
        lines = (src / "input.data").read_text().splitlines(keepends=True)
        if edit is not None:
            edit(lines)
        (d / "input.data").write_text("".join(lines))
        (d / "input.nn").write_text(nn if nn is not None else (src / "input.nn").read_text())
        if scaling:
            shutil.copy(src / "scaling.data", d / "scaling.data")
        return d / "input.data"
    return make


def atom_line(lines, k):
    """Index in ``lines`` of the k-th (0-based) atom line of structure 1."""
    return [i for i, ln in enumerate(lines) if ln.split()[:1] == ["atom"]][k]


def set_atom(lines, k, **fields):
    """Replace fields (x, y, z, fx, ...) of the k-th atom line of structure 1."""
    i = atom_line(lines, k)
    toks = lines[i].split()
    names = ["atom", "x", "y", "z", "element", "charge", "energy", "fx", "fy", "fz"]
    for name, value in fields.items():
        toks[names.index(name)] = str(value)
    lines[i] = " ".join(toks) + "\n"
    return i + 1                      # its 1-based line number


def duplicate_atom(lines):
    """Atom 2 of structure 1 put exactly on atom 1; returns atom 2's line."""
    x, y, z = lines[atom_line(lines, 0)].split()[1:4]
    return set_atom(lines, 1, x=x, y=y, z=z)


def no_caps():
    """preexec_fn: drop the capabilities that let root ignore file permissions,
    so a chmod-protected file or folder refuses root's child too."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):               # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


@pytest.fixture
def store(case, tmp_path):
    """A complete store of the reference case (serial)."""
    data = case()
    out = tmp_path / "s.zarr"
    distatomenv.compute(data, neighbors=NB, out=out)
    return out


@pytest.fixture
def store0(case, tmp_path):
    """A complete store without neighbour blocks ("0 0 0 0"): few enough
    features for the analysis of 4 structures."""
    out = tmp_path / "s0.zarr"
    distatomenv.compute(case(), neighbors="0 0 0 0", out=out)
    return out


def copy_store(src, dst):
    shutil.copytree(src, dst)
    return dst


def flip_bit(path):
    b = bytearray(Path(path).read_bytes())
    b[len(b) // 2] ^= 0x10
    Path(path).write_bytes(bytes(b))


# ----------------------------------------------------------------------------- quoting
def test_quote_escapes_truncates_and_shows_a_bom():
    assert quote(b"\x1b]0;owned\x07\x1b[2J") == "\\x1b]0;owned\\x07\\x1b[2J"
    assert quote("\ufeffbegin") == "\\ufeffbegin"
    assert quote("a\u202eb") == "a\\u202eb"                  # a bidi override is visible
    long = quote("x" * 1_000_000)
    assert long.startswith("x" * 80) and long.endswith("... (1000000 characters)")
    assert len(long) < 120
    assert quote(b"\xff\xfe") == "\\xff\\xfe"               # invalid UTF-8 shown, not replaced
    assert clean("two\nlines\r") == "two\nlines\\x0d"


def test_hostile_tokens_are_quoted_safely(case, tmp_path):
    esc = "\x1b]0;owned\x07\x1b[2J"
    data = case(lambda ls: set_atom(ls, 0, element="O" + esc))
    p = run("compute", data, "--neighbors", NB, "-o", tmp_path / "a.zarr")
    assert_clean(p, 3, "\\x1b]0;owned\\x07\\x1b[2J", f"{data}:")
    junk = "J" * 1_000_000
    data = case(lambda ls: ls.insert(atom_line(ls, 0), junk + "\n"))
    p = run("compute", data, "--neighbors", NB, "-o", tmp_path / "b.zarr")
    assert_clean(p, 3, "(1000000 characters)")
    assert len(p.stderr) < 1000, len(p.stderr)
    # a crafted keyword in input.nn: the warning is quoted too
    nn = (Path(data).parent / "input.nn").read_text() + f"\nfoo{esc} 1\n"
    data = case(nn=nn)
    p = run("compute", data, "--neighbors", NB, "-o", tmp_path / "c.zarr")
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stderr and "\\x1b" in p.stderr


def test_byte_order_mark_is_accepted_at_the_start_and_visible_elsewhere(case, tmp_path):
    data = case()
    raw = Path(data).read_bytes()
    Path(data).write_bytes(b"\xef\xbb\xbf" + raw)
    nn = Path(data).parent / "input.nn"
    nn.write_bytes(b"\xef\xbb\xbf" + nn.read_bytes())
    rd = distatomenv.compute(data, neighbors=NB, out=tmp_path / "bom.zarr")
    assert rd.layout.n_structures == 4
    # anywhere else it is an error that shows it
    k = raw.index(b"begin", raw.index(b"end\n"))             # the second record
    Path(data).write_bytes(raw[:k] + b"\xef\xbb\xbf" + raw[k:])
    with pytest.raises(DataFileError, match=r"'\\ufeffbegin' outside"):
        distatomenv.compute(data, neighbors=NB, out=tmp_path / "bom2.zarr")


# ----------------------------------------------------------------------------- silent results
def test_coincident_atoms_are_refused_and_nan_never_reaches_a_complete_store(case, tmp_path):
    data = case(duplicate_atom)
    line = atom_line(Path(data).read_text().splitlines(), 1) + 1
    out = tmp_path / "dup.zarr"
    # with scaling.data: found while computing; the store says it failed
    with pytest.raises(CoincidentAtomsError,
                       match=rf"input\.data:{line}: structure 1 \(1-based\): atoms 1 and 2 "
                             rf"\(lines {line - 1} and {line}\) are 0 apart.*closer than 0\.00"):
        distatomenv.compute(data, neighbors=NB, out=out)
    with pytest.raises(StoreIncompleteError, match="CoincidentAtomsError"):
        open_store(out)
    # CLI: exit status 3, one line
    p = run("compute", data, "--neighbors", NB, "-o", tmp_path / "dup2.zarr")
    assert_clean(p, 3, f"{data}:{line}:", "atoms 1 and 2")
    # the fixed input replaces the failed store without any flag
    fixed = case()
    shutil.copy(fixed, data)
    rd = distatomenv.compute(data, neighbors=NB, out=out)
    assert rd.status == "complete"
    for e in rd.elements:
        assert np.isfinite(rd.read(e, "G")).all() and np.isfinite(rd.read(e, "dGdx")).all()


def test_overwrite_leaves_no_old_store_behind_when_the_new_run_fails(case, tmp_path):
    """--overwrite moves the old store aside and deletes it while the run goes
    on; a run that then fails on its input still finishes the deletion before
    the process exits, and a good run finds nothing left over."""
    good = case()
    out = tmp_path / "runs" / "s.zarr"
    p = run("compute", good, "--neighbors", NB, "-o", out, "-q")
    assert p.returncode == 0, p.stderr
    bad = case(duplicate_atom)
    p = run("compute", bad, "--neighbors", NB, "-o", out, "--overwrite", "-q")
    assert_clean(p, 3, "atoms 1 and 2")
    assert sorted(x.name for x in out.parent.iterdir()) == ["s.zarr"]
    with pytest.raises(StoreIncompleteError, match="CoincidentAtomsError"):
        open_store(out)
    p = run("compute", good, "--neighbors", NB, "-o", out, "--overwrite", "-q")
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in out.parent.iterdir()) == ["s.zarr"]
    assert open_store(out).status == "complete"


def test_coincident_atoms_without_scaling_data_stop_before_any_store(case, tmp_path):
    data = case(duplicate_atom, scaling=False)
    out = tmp_path / "dup.zarr"
    p = run("compute", data, "--neighbors", NB, "-o", out)
    assert_clean(p, 3, "atoms 1 and 2")
    assert not out.exists()
    # the scaling command writes nothing (no NaN table)
    p = run("scaling", data, "-o", tmp_path / "scaling.data")
    assert_clean(p, 3, "atoms 1 and 2", "are 0 apart")
    assert not (tmp_path / "scaling.data").exists()


def test_nearly_coincident_atoms_below_the_stated_threshold(case, tmp_path):
    def nudge(lines):
        x, y, z = (float(v) for v in lines[atom_line(lines, 0)].split()[1:4])
        return set_atom(lines, 1, x=repr(x + 1e-4), y=repr(y), z=repr(z))
    data = case(nudge)
    with pytest.raises(CoincidentAtomsError, match=r"are 0\.0001 apart, closer than 0\.0012"):
        distatomenv.compute(data, neighbors=NB, out=tmp_path / "near.zarr")


def test_a_coordinate_whose_wrap_loses_precision_is_refused(case, tmp_path):
    line = []
    data = case(lambda ls: line.append(set_atom(ls, 2, x="1e300")))
    with pytest.raises(DataFileError, match=rf"input\.data:{line[0]}: structure 1: position "
                                            r"\(1e\+300, .* cells outside the cell .* lose"):
        distatomenv.compute(data, neighbors=NB, out=tmp_path / "far.zarr")
    p = run("scaling", data, "-o", tmp_path / "scaling.data")
    assert_clean(p, 3, f"{data}:{line[0]}:", "lose its precision")


# ----------------------------------------------------------------------------- damaged stores
def test_checksums_on_every_array(store):
    rd = open_store(store)
    for e in rd.elements:
        for name in rd.layout.array_names():
            assert "Crc32cCodec" in [type(c).__name__ for c in rd.array(e, name).compressors]
    assert "crc32c" in rd.summary()
    assert distatomenv.verify(store).ok


def test_flipped_bit_deleted_and_truncated_chunks_are_caught(store, tmp_path):
    flipped = copy_store(store, tmp_path / "flip.zarr")
    flip_bit(flipped / "elements/H/G/c/0/0")
    deleted = copy_store(store, tmp_path / "del.zarr")
    os.remove(deleted / "elements/O/dGdx/c/0/0")
    cut = copy_store(store, tmp_path / "cut.zarr")
    chunk = cut / "elements/H/positions/c/0/0"
    chunk.write_bytes(chunk.read_bytes()[:-40])
    cases = [(flipped, "elements/H/G/c/0/0", "checksum mismatch"),
             (deleted, "elements/O/dGdx/c/0/0", "missing (rows 0-111 of O/dGdx; written by unit"),
             (cut, "elements/H/positions/c/0/0", "checksum mismatch")]
    for path, key, why in cases:
        report = distatomenv.verify(path)
        assert not report.ok and [d.key for d in report.damaged] == [key], report.text()
        p = run("verify", path)
        assert p.returncode == 5 and f"{key}: {why}" in p.stdout, p.stdout
        out = tmp_path / f"export-{path.stem}"
        p = run("export", path, "-o", out)
        assert_clean(p, 5, key, "verify")
        assert not out.exists(), "a failed export leaves nothing"
        with pytest.raises(StoreDamagedError, match=key):
            distatomenv.export(path, tmp_path / f"api-{path.stem}")
    p = run("analyze", deleted, "-o", tmp_path / "rep-del", "-q")
    assert_clean(p, 5, "elements/O/dGdx/c/0/0: missing")
    assert run("verify", store).returncode == 0


@pytest.mark.parametrize("key", ["elements/O/forces/c/0/0", "elements/H/G/c/0/0",
                                 "elements/H/dGdy/c/0/0"])
def test_a_flipped_bit_is_caught_by_analyze(store0, tmp_path, key):
    flipped = copy_store(store0, tmp_path / "flip.zarr")
    flip_bit(flipped / key)
    p = run("analyze", flipped, "-o", tmp_path / "rep", "-q", "--no-clusters")
    assert_clean(p, 5, f"{key}: checksum mismatch")
    with pytest.raises(StoreDamagedError, match=f"{key}: checksum mismatch"):
        distatomenv.analyze(flipped, tmp_path / "rep2", clusters=[3, 5], permutations=0,
                            progress=False)


# ----------------------------------------------------------------------------- hang
def big_cutoff_nn(src_nn: str, rc: str) -> str:
    """input.nn with one more radial SF of cutoff ``rc`` (the last line)."""
    return src_nn + f"\nsymfunction_short H 2 H 0.0 0.0 {rc}\n"


def test_a_huge_cutoff_is_refused_before_computing(case, reference_dir, tmp_path):
    nn = big_cutoff_nn((reference_dir / "H2O_RPBE-D3" / "input.nn").read_text(), "1e6")
    data = case(scaling=False, nn=nn)
    line = len(nn.splitlines())
    t0 = time.perf_counter()
    p = run("compute", data, "--neighbors", NB, "-o", tmp_path / "big.zarr")
    assert time.perf_counter() - t0 < 60
    assert_clean(p, 3, f"input.nn:{line}: structure", "the largest cutoff 1e+06",
                 "entries", "memory budget", "DISTATOMENV_MEMORY_BUDGET")
    assert not (tmp_path / "big.zarr").exists()
    with pytest.raises(NeighborListTooLargeError, match=r"would hold about [0-9.e+]+ entries"):
        distatomenv.survey_neighbors(data)
    # the exact count is checked before the list is allocated (non-periodic too)
    from distatomenv.descriptors.neighbors import neighbor_list
    with pytest.raises(NeighborListTooLargeError, match=r"would hold 90 entries"):
        neighbor_list(np.random.default_rng(0).random((10, 3)), None, 10.0, max_entries=50)


def test_sigint_ends_a_long_neighbour_search_within_seconds(case, reference_dir, tmp_path):
    from distatomenv.descriptors.neighbors import neighbor_list
    neighbor_list(np.random.default_rng(0).random((4, 3)), np.eye(3), 0.5)   # warm the cache
    nn = big_cutoff_nn((reference_dir / "H2O_RPBE-D3" / "input.nn").read_text(), "1e4")
    data = case(scaling=False, nn=nn)
    env = dict(os.environ, DISTATOMENV_MEMORY_BUDGET="1e30")   # let the search start
    # Ctrl-C on a foreground command: SIGINT at its default, also when this
    # suite runs in the background (a shell starts background jobs with
    # SIGINT ignored, and children inherit that)
    proc = subprocess.Popen(EXE + ["scaling", str(data), "-o", str(tmp_path / "s.data"),
                                   "--progress", "--threads", "1"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.set_blocking(proc.stderr.fileno(), False)
    err = b""
    t0 = time.monotonic()
    while b"scaling" not in err:              # the pass (and its first search) has begun
        assert proc.poll() is None, err
        assert time.monotonic() - t0 < 300, err
        err += proc.stderr.read() or b""
        time.sleep(0.1)
    time.sleep(2.0)
    assert proc.poll() is None, "the search should still run"
    proc.send_signal(signal.SIGINT)
    t1 = time.monotonic()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("SIGINT did not end the neighbour search within 20 s")
    took = time.monotonic() - t1
    os.set_blocking(proc.stderr.fileno(), True)
    err = (err + proc.stderr.read()).decode(errors="replace")
    assert proc.returncode == 130, err
    assert took < 10, took
    assert "distatomenv: interrupted" in err and "Traceback" not in err, err
    assert not (tmp_path / "s.data").exists()


# ----------------------------------------------------------------------------- one line, not a traceback
def test_missing_and_unreadable_inputs(case, tmp_path):
    data = case()
    missing = tmp_path / "nope" / "input.data"
    p = run("compute", missing, "--neighbors", NB, "-o", tmp_path / "a.zarr")
    assert_clean(p, 4, f"{missing}: cannot read input.data: No such file or directory")
    assert "input.nn" not in p.stderr
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(data, alone / "input.data")
    p = run("compute", alone / "input.data", "--neighbors", NB, "-o", tmp_path / "b.zarr")
    assert_clean(p, 4, f"{alone / 'input.nn'}: cannot read input.nn", "--settings",
                 "No such file or directory")
    p = run("compute", tmp_path, "--neighbors", NB, "-o", tmp_path / "c.zarr")
    assert_clean(p, 4, f"{tmp_path}: cannot read input.data: Is a directory")
    p = run("scaling", missing, "-o", tmp_path / "s.data")
    assert_clean(p, 4, "No such file or directory")
    with pytest.raises(FileAccessError, match="No such file or directory"):
        distatomenv.compute(missing, neighbors=NB, out=tmp_path / "d.zarr")
    secret = tmp_path / "secret"
    secret.mkdir()
    shutil.copy(data, secret / "input.data")
    shutil.copy(Path(data).parent / "input.nn", secret / "input.nn")
    os.chmod(secret / "input.data", 0)
    try:
        p = run("compute", secret / "input.data", "--neighbors", NB, "-o", tmp_path / "e.zarr",
                preexec_fn=no_caps if os.geteuid() == 0 else None)
        assert_clean(p, 4, f"{secret / 'input.data'}: cannot read input.data: Permission denied")
    finally:
        os.chmod(secret / "input.data", 0o644)
    for e in (p.stderr,):
        assert e.count("\n") == 1


def test_outputs_that_cannot_be_written(case, store, store0, tmp_path):
    data = case()
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        pre = no_caps if os.geteuid() == 0 else None
        p = run("compute", data, "--neighbors", NB, "-o", ro / "s.zarr", preexec_fn=pre)
        assert_clean(p, 4, str(ro / "s.zarr"), "Permission denied")
        p = run("export", store, "-o", ro / "out", preexec_fn=pre)
        assert_clean(p, 4, str(ro / "out"), "Permission denied")
        p = run("analyze", store0, "-o", ro / "rep", "-q", "--no-clusters", preexec_fn=pre)
        assert_clean(p, 4, str(ro / "rep"), "Permission denied")
    finally:
        os.chmod(ro, 0o755)
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me\n")
    p = run("export", store, "-o", a_file)
    assert_clean(p, 4, f"{a_file}: the export folder exists and is not a folder")
    p = run("analyze", store, "-o", a_file, "-q")
    assert_clean(p, 4, f"{a_file}: the report folder exists and is not a folder")
    assert a_file.read_text() == "keep me\n"


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and mount): a disk that fills up."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("the full-disk tests mount a 1 MiB tmpfs (mount -t tmpfs -o size=1m), "
                    "which needs root")
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(disk, leave=64 << 10):
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_full_disk(case, store, store0, small_disk, tmp_path):
    data = case()
    out = small_disk / "s.zarr"
    p = run("compute", data, "--neighbors", NB, "-o", out)
    assert_clean(p, 4, "No space left on device", str(out))
    p = run("export", store, "-o", small_disk / "out")
    assert_clean(p, 4, "No space left on device", str(small_disk / "out"))
    assert not (small_disk / "out").exists(), "a failed export leaves nothing"
    shutil.rmtree(out, ignore_errors=True)
    fill(small_disk, 16 << 10)
    p = run("analyze", store0, "-o", small_disk / "rep", "-q", "--no-clusters")
    assert_clean(p, 4, "No space left on device")


# ----------------------------------------------------------------------------- leftovers and overwrites
def test_bad_input_found_while_computing_leaves_a_store_the_next_run_replaces(case, tmp_path):
    data = case(lambda ls: set_atom(ls, 4, fx="abc"))
    out = tmp_path / "s.zarr"
    p = run("compute", data, "--neighbors", NB, "-o", out)
    assert_clean(p, 3, "found 'abc' in column 8 (fx)")
    assert "failed_on" in (out / "zarr.json").read_text()
    shutil.copy(case(), data)                              # the fixed input, no flags
    p = run("compute", data, "--neighbors", NB, "-o", out)
    assert p.returncode == 0, p.stderr
    # too many neighbours requested: the same
    out2 = tmp_path / "n.zarr"
    with pytest.raises(NotEnoughNeighborsError):
        distatomenv.compute(data, neighbors="60 2 4 4", out=out2)
    assert distatomenv.compute(data, neighbors=NB, out=out2).status == "complete"
    # an incomplete store that failed for another reason still needs --resume
    from distatomenv.store.writer import mark_failed
    mark_failed(out2, "killed")
    p = run("compute", data, "--neighbors", NB, "-o", out2)
    assert_clean(p, 2, "--resume")


def test_export_refuses_a_non_empty_folder_without_overwrite(store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    p = run("export", store, "-o", out)
    assert_clean(p, 2, "not empty", "--overwrite")
    with pytest.raises(StoreExistsError, match="not empty"):
        distatomenv.export(store, out)
    p = run("export", store, "-o", out, "--overwrite", "-q")
    assert p.returncode == 0, p.stderr
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "atomic-env.G").exists()
    assert not [f for f in os.listdir(out) if "partial" in f]


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_second_writer_is_refused_and_stale_locks_are_taken_over(case, tmp_path):
    from distatomenv.store.lock import STALE_AFTER, StoreLock, lock_path
    data = case()
    out = tmp_path / "s.zarr"
    with StoreLock(out, command="distatomenv compute (the first writer)"):
        p = run("compute", data, "--neighbors", NB, "-o", out)
        assert_clean(p, 2, "another process is writing this store", f"process {os.getpid()}",
                     socket.gethostname(), "the first writer")
        p = run("compute", data, "--neighbors", NB, "-o", out, "--resume")
        assert_clean(p, 2, "another process is writing this store")
        with pytest.raises(StoreLockedError, match="Wait for it to finish"):
            distatomenv.compute(data, neighbors=NB, out=out)
    assert not os.path.exists(lock_path(out))
    # a lock left by a process that died (same host) is stale: taken over
    lock = lock_path(out)
    Path(lock).write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(),
                                      "started": "2020-01-01T00:00:00+00:00"}))
    assert distatomenv.compute(data, neighbors=NB, out=out).status == "complete"
    assert not os.path.exists(lock)
    # another host's lock holds while it is touched, and is stale once it is not
    Path(lock).write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": "now"}))
    with pytest.raises(StoreLockedError, match="process 1 on host elsewhere"):
        distatomenv.compute(data, neighbors=NB, out=out, overwrite=True)
    old = time.time() - STALE_AFTER - 60
    os.utime(lock, (old, old))
    assert distatomenv.compute(data, neighbors=NB, out=out, overwrite=True).status == "complete"


def test_compute_into_a_folder_that_does_not_exist_yet(tmp_path):
    """The lock beside the store is taken before the store exists: its folder
    is created as the store's would be."""
    from distatomenv.tools.synth import write_lj_dataset

    paths = write_lj_dataset(tmp_path / "in", n_structures=2, n_atoms=64, seed=1)
    store = distatomenv.compute(paths["input.data"], neighbors="1 1 1 1",
                                out=tmp_path / "new" / "deeper" / "run.zarr")
    assert store.status == "complete"
    assert not (tmp_path / "new" / "deeper" / "run.zarr.lock").exists()


# ----------------------------------------------------------------------------- --precision n2p2
def test_precision_n2p2_refusals_and_damage(case, tmp_path):
    data = case()
    from distatomenv.errors import DistatomenvError
    for kw, words in ((dict(precision="n2p2", dtype="float32"), "cannot be combined with --dtype "
                       "float32"), (dict(precision="half"), "--precision must be one of full, n2p2")):
        with pytest.raises(DistatomenvError, match=words):
            distatomenv.compute(data, neighbors=NB, out=tmp_path / "x.zarr", **kw)
        assert not (tmp_path / "x.zarr").exists()
    # a lossy store is checksummed like any other: a flipped bit is caught
    out = tmp_path / "p.zarr"
    distatomenv.compute(data, neighbors=NB, out=out, precision="n2p2")
    assert distatomenv.verify(out).ok
    flip_bit(out / "elements/H/dGdx/c/0/0")
    p = run("verify", out)
    assert p.returncode == 5 and "elements/H/dGdx/c/0/0: checksum mismatch" in p.stdout, p.stdout
    assert "precision n2p2 (LOSSY" in p.stdout
