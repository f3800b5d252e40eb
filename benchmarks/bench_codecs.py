"""Compression speed and ratio of candidate codecs on real store rows.

Workload: n2p2's H2O_RPBE-D3 input.data concatenated ``--copies`` times with
jittered positions (N(0, 0.05) on every coordinate, see bench_compute.build_input),
``--neighbors "6 2 4 4"``, with derivatives and the quadratic force-matching
features, computed into a store by ``distatomenv compute`` (or ``--store`` to
reuse one).  The first chunk (2048 rows) of every array of every element is
read back and, per array kind, compressed with each candidate Blosc setting
exactly as the store's writer does it: one thread (zarr encodes off the main
thread, where numcodecs' Blosc never starts threads), the dtype's typesize.

Reported per kind and codec: ratio (raw / compressed bytes, summed over the
elements), compression and decompression speed in MB/s of raw data (best of
``--repeat``, one core), and the single-core seconds that compressing the
whole store would cost.  ``--bitround K`` adds lossy candidates: float arrays
rounded to K mantissa bits first (numcodecs BitRound; ``--precision n2p2``).

``--case cg`` measures CG water (``--neighbors 4``) instead.

Usage:  python benchmarks/bench_codecs.py [--case h2o|cg] [--copies 20] [--store STORE] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from bench_compute import build_input  # noqa: E402

KINDS = {
    "G": ("G",),
    "dGdx/dGdy/dGdz": ("dGdx", "dGdy", "dGdz"),
    "fm_d*": ("fm_dx", "fm_dy", "fm_dz"),
    "fmq_d*": ("fmq_dx", "fmq_dy", "fmq_dz"),
    "positions": ("positions",),
    "forces": ("forces",),
    "integers (structure, atom, nb_*)": ("structure", "atom", "nb_atom", "nb_order", "nb_count"),
}
MiB4 = 1 << 22
#: (label, cname, clevel, shuffle, blocksize); blocksize 0 = Blosc's automatic choice
CANDIDATES = [
    ("zstd 5 shuffle", "zstd", 5, 1, 0),
    ("zstd 3 shuffle", "zstd", 3, 1, 0),
    ("zstd 1 shuffle", "zstd", 1, 1, 0),
    ("zstd 1 shuffle 4 MiB", "zstd", 1, 1, MiB4),
    ("zstd 1 bitshuffle", "zstd", 1, 2, 0),
    ("zstd 1 bitshuffle 4 MiB", "zstd", 1, 2, MiB4),
    ("zstd 3 bitshuffle", "zstd", 3, 2, 0),
    ("lz4 5 shuffle", "lz4", 5, 1, 0),
    ("lz4 5 bitshuffle", "lz4", 5, 2, 0),
    ("lz4 5 bitshuffle 4 MiB", "lz4", 5, 2, MiB4),
    ("lz4 1 shuffle", "lz4", 1, 1, 0),
    ("lz4 1 bitshuffle", "lz4", 1, 2, 0),
    ("lz4 1 bitshuffle 4 MiB", "lz4", 1, 2, MiB4),
    ("blosclz 5 shuffle", "blosclz", 5, 1, 0),
]


#: the lossless candidates that are also tried after BitRound
LOSSY_BASES = ("zstd 1 shuffle 4 MiB", "zstd 1 bitshuffle", "zstd 1 bitshuffle 4 MiB",
               "lz4 5 shuffle", "lz4 5 bitshuffle", "lz4 1 bitshuffle 4 MiB")
#: (reference case, --neighbors)
CASES = {"h2o": ("H2O_RPBE-D3", "6 2 4 4"), "cg": ("CG_water_inputs_only", "4")}


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(chunks, codec, repeat, bitround=None):
    """Sum over chunks of raw bytes, compressed bytes, compress and decompress seconds."""
    from numcodecs import BitRound
    raw = comp = tc = td = 0.0
    for a in chunks:
        a = np.ascontiguousarray(a)
        if bitround is not None and a.dtype.kind == "f":
            br = BitRound(bitround)
            enc = codec.encode(br.encode(a))
            tc += best_time(lambda: codec.encode(br.encode(a)), repeat)
        else:
            enc = codec.encode(a)
            tc += best_time(lambda: codec.encode(a), repeat)
        td += best_time(lambda: codec.decode(enc), repeat)
        raw += a.nbytes
        comp += len(enc)
    return raw, comp, tc, td


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", default=str(HERE.parents[2] / "shared" / "reference"))
    ap.add_argument("--case", choices=sorted(CASES), default="h2o",
                    help="h2o: H2O_RPBE-D3 (default); cg: CG water")
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--store", help="measure this store's rows instead of computing one")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--bitround", type=int, nargs="*", default=[33],
                    help="lossy candidates: float arrays rounded to these mantissa bits")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from numcodecs import Blosc, blosc
    blosc.use_threads = False        # what the writer gets: zarr encodes off the main thread
    from distatomenv.store.reader import open_store

    tmp = tempfile.TemporaryDirectory(prefix="bench-codecs-")
    store = args.store
    if store is None:
        case, nb = CASES[args.case]
        data = build_input(Path(args.reference) / case, Path(tmp.name) / "in", args.copies,
                           jitter=0.05)
        store = str(Path(tmp.name) / "s.zarr")
        subprocess.run([sys.executable, "-m", "distatomenv.cli", "compute", str(data), "--neighbors",
                        nb, "-o", store, "-q", "--force-matching", "quadratic"], check=True)
    rd = open_store(store)
    chunk = rd.layout.chunk_rows
    atoms = sum(rd.n_rows(e) for e in rd.elements)
    results = {"store": store, "atoms": atoms, "chunk_rows": chunk, "kinds": {}}
    lossy = [(f"bitround {k} + {label}", cn, cl, sh, bs, k) for k in args.bitround
             for (label, cn, cl, sh, bs) in CANDIDATES if label in
             LOSSY_BASES]
    for kind, names in KINDS.items():
        chunks, full = [], 0
        for e in rd.elements:
            for n in names:
                if n not in rd.layout.array_names():
                    continue
                arr = rd.array(e, n)
                chunks.append(arr[:min(chunk, arr.shape[0])])
                full += arr.nbytes
        if not chunks:
            continue
        rows = []
        floats = chunks[0].dtype.kind == "f"
        for label, cname, clevel, shuffle, blocksize, *k in CANDIDATES + (lossy if floats else []):
            codec = Blosc(cname=cname, clevel=clevel, shuffle=shuffle, blocksize=blocksize)
            raw, comp, tc, td = measure(chunks, codec, args.repeat, k[0] if k else None)
            rows.append({"codec": label, "ratio": raw / comp, "compress_MBps": raw / tc / 1e6,
                         "decompress_MBps": raw / td / 1e6,
                         "store_compress_s": full / (raw / tc),
                         "bytes_per_atom": full / (raw / comp) / atoms})
        results["kinds"][kind] = {"raw_bytes_per_atom": full / atoms, "codecs": rows}
        print(f"\n{kind}: {full / atoms:,.0f} raw bytes per atom")
        print(f"  {'codec':<36} {'ratio':>6} {'comp MB/s':>10} {'dec MB/s':>9} "
              f"{'s/store':>8} {'B/atom':>8}")
        for r in rows:
            print(f"  {r['codec']:<36} {r['ratio']:6.2f} {r['compress_MBps']:10.0f} "
                  f"{r['decompress_MBps']:9.0f} {r['store_compress_s']:8.3f} "
                  f"{r['bytes_per_atom']:8.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
