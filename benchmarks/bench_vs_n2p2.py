"""distatomenv compute against n2p2's nnp-atomenv, side by side in one run.

Workloads (built in a work folder, never in the project): n2p2's H2O_RPBE-D3
input.data concatenated ``--copies`` times (100: 400 structures, 33,600 atoms),
``--neighbors "6 2 4 4"``, and CG water (``CG_water_inputs_only``, 100 copies:
1,900 structures, 684,000 beads), ``--neighbors "4"``; derivatives on, the
case's scaling.data given to both programs.  The copies are jittered
(positions + N(0, ``--jitter``) per coordinate, bench_compute.build_input), so
that no compressor profits from exact repeats.

Runs, each a fresh process tree (bench_compute.timed_process: wall seconds,
CPU seconds of the whole tree and their system part, peak RSS of its largest
process), each after a ``sync`` that writes back the previous run's output
(not timed), interleaved
round by round (``--rounds``, default 3), medians reported:

* n2p2 ``nnp-atomenv`` on 1 rank (no launcher) and ``mpirun -np 2`` (the
  system's OpenMPI; a different launcher would run every rank as size 1);
* distatomenv ``compute --threads 1``; with the default threads (all cores);
  ``mpiexec -n 2 ... --backend mpi --threads 1`` with the venv's own launcher.

Derived: the speed-up over n2p2 of each pairing (1 thread vs 1 rank, default
threads vs 1 rank, 2 ranks vs 2 ranks) and the parallel efficiency at 2
processes, E = T(1) / (2 T(2)), of both programs.  ``--extra ARGS`` adds
options to every timed distatomenv run (e.g. ``--force-matching none``).  Then,
once per case: store bytes per atom of float64, ``--dtype float32`` and
``--precision n2p2`` with ``--force-matching none`` (what n2p2's text holds: G
and dG), and of float64 and ``--precision n2p2`` with compute's default
options, against n2p2's text (atomic-env.G + dGdx/dGdy/dGdz, from n2p2's own
output, or from ``distatomenv export`` -- the same format -- when n2p2 is
absent).  Last, the first run with an empty numba cache (a fresh
NUMBA_CACHE_DIR) against a warm one, on the LJ reference (``--neighbors 1``):
wall time and peak RSS.

n2p2 is skipped, with a message, where its binaries (``--n2p2 DIR``, default
$DISTATOMENV_N2P2 or ../shared/tools/n2p2) or OpenMPI's ``mpirun`` are absent;
the MPI runs of distatomenv where the venv has no ``mpiexec``/mpi4py.

Usage:
    python benchmarks/bench_vs_n2p2.py [--copies 100] [--rounds 3] [--cases h2o cg]
                                       [--json FILE] [--workdir DIR]
    python benchmarks/bench_vs_n2p2.py --copies 5 --rounds 1      # a quick check
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE.parent))
from bench_compute import build_input, store_bytes, timed_process  # noqa: E402

VENV_BIN = Path(sys.executable).parent
#: name -> (reference folder, --neighbors)
CASES = {"h2o": ("H2O_RPBE-D3", "6 2 4 4"), "cg": ("CG_water_inputs_only", "4")}
N2P2_FILES = ("atomic-env.G", "atomic-env.dGdx", "atomic-env.dGdy", "atomic-env.dGdz")
N2P2_BINS = "100"
#: the runs of one round, in the order they run
RUNS = ("n2p2 1 rank", "distatomenv --threads 1", "distatomenv default threads",
        "n2p2 mpirun -np 2", "distatomenv mpiexec -n 2 --threads 1")
#: (label, distatomenv run, n2p2 run) of the speed-up ratios
PAIRS = (("1 thread vs n2p2 1 rank", "distatomenv --threads 1", "n2p2 1 rank"),
         ("default threads vs n2p2 1 rank", "distatomenv default threads", "n2p2 1 rank"),
         ("2 MPI ranks vs n2p2 mpirun -np 2", "distatomenv mpiexec -n 2 --threads 1",
          "n2p2 mpirun -np 2"))


# ----------------------------------------------------------------------------- tools
def clean_env(**extra):
    """This environment without MPI launcher variables (a child must not think
    it is a rank of this process's launcher) plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_", "DISTATOMENV_"))}
    env.update(extra)
    return env


def n2p2_env(one_rank):
    # OpenMPI refuses root without these; one rank without a launcher starts
    # fastest in isolated mode (shared memory and TCP are then not needed)
    extra = dict(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                 OMP_NUM_THREADS="1")
    if one_rank:
        extra.update(OMPI_MCA_plm="isolated", OMPI_MCA_btl="self", OMPI_MCA_pml="ob1")
    return clean_env(**extra)


def find_n2p2(given):
    """(folder of nnp-atomenv or None, why not)."""
    d = Path(given or os.environ.get("DISTATOMENV_N2P2")
             or HERE.parents[2] / "shared" / "tools" / "n2p2")
    exe = d / "nnp-atomenv"
    if not os.access(exe, os.X_OK):
        return None, f"n2p2 skipped: {exe} not found (pass --n2p2 DIR or set DISTATOMENV_N2P2)"
    try:
        ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        ldd = ""
    if "not found" in ldd:
        return None, (f"n2p2 skipped: {exe} lacks runtime libraries (run bash "
                      f"{d / 'setup.sh'})")
    return d, ""


def find_openmpi(given):
    """OpenMPI's mpirun (n2p2 is linked against it), or (None, why not)."""
    candidates = [given] if given else ["/usr/bin/mpirun", shutil.which("mpirun")]
    for c in candidates:
        if not c or not os.access(c, os.X_OK):
            continue
        try:
            v = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "Open MPI" in v.stdout + v.stderr:
            return c, ""
    return None, ("n2p2 on 2 ranks skipped: no OpenMPI mpirun found (pass --mpirun PATH); "
                  "another launcher would run every rank as size 1")


def find_mpiexec():
    exe = VENV_BIN / "mpiexec"
    if not os.access(exe, os.X_OK):
        return None, f"distatomenv on 2 MPI ranks skipped: no {exe} (the venv's MPICH launcher)"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None, "distatomenv on 2 MPI ranks skipped: mpi4py is not installed in the venv"
    return exe, ""


def distatomenv_cmd(data, store, neighbors, *extra):
    return [sys.executable, "-m", "distatomenv.cli", "compute", str(data), "--neighbors",
            neighbors, "-o", str(store), "--overwrite", "-q", *extra]


def text_bytes(folder):
    return sum((folder / n).stat().st_size for n in N2P2_FILES if (folder / n).exists())


def remove_n2p2_outputs(folder):
    """n2p2's outputs of one run (GB of text at 100 copies of CG water)."""
    for p in folder.iterdir():
        if p.name.startswith(("atomic-env.", "sf-scaled.", "nnp-atomenv.log")) or p.name in (
                "neighbor-list.data", "neighbors.histo", "neighbors.out"):
            p.unlink()


def measure(cmd, **kw):
    """timed_process, with a failure turned into a record instead of an exception.

    Dirty pages are written back first (``sync``, not timed): otherwise a run
    pays, in CPU and disk time, for the previous run's output still in the
    page cache -- n2p2's gigabytes of text before the distatomenv run that
    follows it, a store before the n2p2 run that follows it."""
    os.sync()
    try:
        r = timed_process(cmd, **kw)
    except RuntimeError as exc:
        return {"error": str(exc).strip().splitlines()[-1:] or ["failed"]}
    return {"seconds": r["seconds"], "cpu": r["cpu"], "sys": r["sys"],
            "peak_rss_mib": r["maxrss_kib"] / 1024}


def median(runs, key):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else None


# ----------------------------------------------------------------------------- parts
def timing_case(name, data, neighbors, args, tools, work):
    """Interleaved rounds of every run on one case; returns the per-run records
    and n2p2's text bytes (None without n2p2)."""
    n2p2, mpirun, mpiexec = tools
    run_dir = data.parent
    store = work / f"{name}.zarr"
    extra = tuple(args.extra.split())
    cmds = {}
    if n2p2:
        cmds["n2p2 1 rank"] = ([str(n2p2 / "nnp-atomenv"), N2P2_BINS, *neighbors.split()],
                               n2p2_env(True))
        if mpirun:
            cmds["n2p2 mpirun -np 2"] = ([mpirun, "-np", "2", str(n2p2 / "nnp-atomenv"),
                                         N2P2_BINS, *neighbors.split()], n2p2_env(False))
    cmds["distatomenv --threads 1"] = (distatomenv_cmd(data, store, neighbors, "--threads", "1",
                                                       "--backend", "serial", *extra), clean_env())
    cmds["distatomenv default threads"] = (distatomenv_cmd(data, store, neighbors, "--backend",
                                                           "serial", *extra), clean_env())
    if mpiexec:
        cmds["distatomenv mpiexec -n 2 --threads 1"] = (
            [str(mpiexec), "-n", "2", *distatomenv_cmd(data, store, neighbors, "--threads", "1",
                                                       "--backend", "mpi", *extra)], clean_env())
    for key, (cmd, _) in cmds.items():
        print(f"  {key}: {' '.join(cmd)}", flush=True)
    runs = {k: [] for k in RUNS if k in cmds}
    text = None
    # warm-up: numba's cache, the page cache of the input
    measure(cmds["distatomenv --threads 1"][0], env=cmds["distatomenv --threads 1"][1])
    for r in range(args.rounds):
        for key in runs:
            cmd, env = cmds[key]
            rec = measure(cmd, cwd=run_dir, env=env)
            if key.startswith("n2p2"):
                if text is None and "error" not in rec:
                    text = text_bytes(run_dir)
                remove_n2p2_outputs(run_dir)
            runs[key].append(rec)
            shown = (f"{rec['seconds']:.2f} s wall, {rec['cpu']:.2f} s CPU "
                     f"({rec['sys']:.2f} system), {rec['peak_rss_mib']:.0f} MiB"
                     if "error" not in rec
                     else f"FAILED: {rec['error']}")
            print(f"  round {r + 1}: {key:<40} {shown}", flush=True)
    return runs, text


#: (label, compute options) of the store-size runs: the first three hold what
#: n2p2's text holds (G and dG, no force-matching features); the last two are
#: compute's defaults, whatever features they add
SIZE_RUNS = (("float64", ("--force-matching", "none")),
             ("float32", ("--dtype", "float32", "--force-matching", "none")),
             ("--precision n2p2", ("--precision", "n2p2", "--force-matching", "none")),
             ("float64, default options", ()),
             ("--precision n2p2, default options", ("--precision", "n2p2")))


def sizes_case(name, data, neighbors, atoms, text, work):
    """Store bytes per atom of float64, float32 and --precision n2p2 (one run
    each, also timed), against n2p2's text bytes per atom."""
    out = {}
    for label, extra in SIZE_RUNS:
        store = work / f"{name}-size.zarr"
        rec = measure(distatomenv_cmd(data, store, neighbors, *extra), env=clean_env())
        if "error" in rec:
            out[label] = rec
            continue
        rec["bytes_per_atom"] = store_bytes(store)
        out[label] = rec
    source = "n2p2's output"
    if text is None:
        # n2p2 absent: the n2p2 export writes the same files, token for token
        store = work / f"{name}-size.zarr"
        subprocess.run(distatomenv_cmd(data, store, neighbors, "--force-matching", "none"),
                       check=True, env=clean_env())
        exp = work / f"{name}-export"
        shutil.rmtree(exp, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "distatomenv.cli", "export", str(store), "-o",
                        str(exp), "-q"], check=True, env=clean_env(), stdout=subprocess.DEVNULL)
        text = text_bytes(exp)
        shutil.rmtree(exp)
        source = "distatomenv export (n2p2's format)"
    shutil.rmtree(work / f"{name}-size.zarr", ignore_errors=True)
    return {"stores": out, "text_bytes_per_atom": text / atoms, "text_source": source}


def first_run(reference, work):
    """Empty numba cache against a warm one, LJ reference, --neighbors 1."""
    lj = reference / "LJ"
    if not lj.is_dir():
        return {"skipped": f"no LJ reference at {lj}"}
    cache = work / "numba-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    cmd = distatomenv_cmd(lj / "input.data", work / "lj.zarr", "1", "--backend", "serial")
    env = clean_env(NUMBA_CACHE_DIR=str(cache))
    cold = measure(cmd, env=env)
    warm = [measure(cmd, env=env) for _ in range(2)]
    warm = min((w for w in warm if "error" not in w), key=lambda w: w["seconds"],
               default=warm[0])
    out = {"cold": cold, "warm": warm}
    if "error" not in cold and "error" not in warm:
        out["extra_seconds"] = cold["seconds"] - warm["seconds"]
    return out


# ----------------------------------------------------------------------------- report
def verdict(ok):
    return "met" if ok else "NOT met"


def report(results):
    lines = []
    for name, case in results["cases"].items():
        atoms = case["atoms"]
        lines.append(f"\n{case['label']} x {case['copies']} ({atoms:,} atoms, --neighbors "
                     f"\"{case['neighbors']}\", jitter {case['jitter']}), medians of "
                     f"{results['rounds']} interleaved round(s):")
        lines.append(f"  {'run':<40} {'wall s':>8} {'CPU s':>8} {'sys s':>6} {'cores':>6} "
                     f"{'atoms/s':>9} {'peak MiB':>9}  all walls")
        for key, runs in case["runs"].items():
            s, c, m = median(runs, "seconds"), median(runs, "cpu"), median(runs, "peak_rss_mib")
            k = median(runs, "sys")
            if s is None:
                lines.append(f"  {key:<40} FAILED: {runs[0].get('error')}")
                continue
            walls = ", ".join(f"{r['seconds']:.2f}" for r in runs if "seconds" in r)
            k = "-" if k is None else f"{k:.2f}"
            lines.append(f"  {key:<40} {s:8.2f} {c:8.2f} {k:>6} {c / s:6.2f} {atoms / s:9.0f} "
                         f"{m:9.0f}  {walls}")
        for label, ratio in case["speedup"].items():
            lines.append(f"  speed-up {label}: {ratio:.2f}x")
        for prog, e in case["efficiency"].items():
            lines.append(f"  parallel efficiency at 2 processes, {prog}: {e:.1%}")
        sz = case.get("sizes")
        if sz:
            t = sz["text_bytes_per_atom"]
            lines.append(f"  n2p2 text: {t:,.0f} bytes/atom ({sz['text_source']})")
            for label, rec in sz["stores"].items():
                if "error" in rec:
                    lines.append(f"  store {label}: FAILED: {rec['error']}")
                    continue
                lines.append(f"  store {label:<34} {rec['bytes_per_atom']:7,.0f} bytes/atom = "
                             f"n2p2 / {t / rec['bytes_per_atom']:.2f}  (one run: "
                             f"{rec['seconds']:.2f} s wall, {rec['cpu']:.2f} s CPU)")
    fr = results.get("first_run")
    if fr:
        lines.append("\nfirst run, empty numba cache, LJ reference (--neighbors 1):")
        if "skipped" in fr:
            lines.append(f"  skipped: {fr['skipped']}")
        elif "extra_seconds" in fr:
            c, w = fr["cold"], fr["warm"]
            lines.append(f"  cold {c['seconds']:.1f} s ({c['cpu']:.1f} s CPU, peak "
                         f"{c['peak_rss_mib']:.0f} MiB); warm {w['seconds']:.2f} s "
                         f"({w['cpu']:.1f} s CPU, peak {w['peak_rss_mib']:.0f} MiB): "
                         f"{fr['extra_seconds']:.1f} s over warm")
        else:
            lines.append(f"  FAILED: {fr}")
    lines.append("\ntargets:")
    for t in results["targets"]:
        lines.append(f"  {t['what']:<62} {t['measured']:<22} {verdict(t['met'])}"
                     if t["met"] is not None else f"  {t['what']:<62} {t['measured']}")
    for note in results["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def targets(results):
    out = []
    h2o, cg = results["cases"].get("h2o"), results["cases"].get("cg")

    def add(what, value, ok, fmt):
        out.append({"what": what, "measured": "not measured" if value is None else fmt(value),
                    "met": None if value is None else ok(value)})
    x = lambda v: f"{v:.2f}x"  # noqa: E731
    sp = (h2o or {}).get("speedup", {})
    add("H2O: --threads 1 >= 3x n2p2 at 1 rank", sp.get(PAIRS[0][0]), lambda v: v >= 3, x)
    add("H2O: default threads >= 4x n2p2 at 1 rank", sp.get(PAIRS[1][0]), lambda v: v >= 4, x)
    for case, c in (("H2O", h2o), ("CG water", cg)):
        if c:
            add(f"{case}: 2 MPI ranks >= 3x n2p2 at 2 ranks", c["speedup"].get(PAIRS[2][0]),
                lambda v: v >= 3, x)
    add("CG water: parallel efficiency at 2 processes >= 85 %",
        (cg or {}).get("efficiency", {}).get("distatomenv"), lambda v: v >= 0.85,
        lambda v: f"{v:.1%}")
    fr = results.get("first_run") or {}
    add("first run <= 15 s over warm (LJ)", fr.get("extra_seconds"), lambda v: v <= 15,
        lambda v: f"{v:.1f} s")
    peak = (fr.get("cold") or {}).get("peak_rss_mib")
    add("first run peak memory <= 300 MB (LJ)", None if peak is None else peak * 1.048576,
        lambda v: v <= 300, lambda v: f"{v:.0f} MB")
    sz = ((h2o or {}).get("sizes") or {})
    lossy = (sz.get("stores") or {}).get("--precision n2p2", {}).get("bytes_per_atom")
    add("H2O: --precision n2p2 store (G, dG) <= 1/4 of n2p2's text",
        None if lossy is None else sz["text_bytes_per_atom"] / lossy, lambda v: v >= 4,
        lambda v: f"n2p2 / {v:.2f}")
    return out


# ----------------------------------------------------------------------------- main
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=Path(os.environ.get(
        "DISTATOMENV_REFERENCE", HERE.parents[2] / "shared" / "reference")))
    ap.add_argument("--n2p2", help="folder of n2p2's nnp-atomenv (default $DISTATOMENV_N2P2 "
                                   "or ../shared/tools/n2p2)")
    ap.add_argument("--mpirun", help="OpenMPI's mpirun for n2p2 (default /usr/bin/mpirun)")
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["h2o", "cg"])
    ap.add_argument("--copies", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jitter", type=float, default=0.05,
                    help="sigma of the position jitter of the copies (default 0.05; 0: exact)")
    ap.add_argument("--extra", default="", metavar="ARGS",
                    help='more options for every timed distatomenv compute, e.g. '
                         '"--force-matching none" (default: none, compute\'s defaults)')
    ap.add_argument("--no-sizes", action="store_true", help="skip the store sizes")
    ap.add_argument("--no-first-run", action="store_true", help="skip the empty-cache run")
    ap.add_argument("--workdir", type=Path, help="keep inputs and stores here (default: a "
                                                 "temporary folder, removed at the end)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    notes = []
    n2p2, why = find_n2p2(args.n2p2)
    if why:
        notes.append(why)
    mpirun = None
    if n2p2:
        mpirun, why = find_openmpi(args.mpirun)
        if why:
            notes.append(why)
    mpiexec, why = find_mpiexec()
    if why:
        notes.append(why)
    for n in notes:
        print(n, flush=True)

    tmp = None
    if args.workdir:
        work = args.workdir
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-vs-n2p2-")
        work = Path(tmp.name)
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
               "copies": args.copies, "rounds": args.rounds, "cases": {}, "notes": notes,
               "n2p2": str(n2p2) if n2p2 else None, "mpirun": mpirun,
               "mpiexec": str(mpiexec) if mpiexec else None}
    try:
        for name in args.cases:
            folder, neighbors = CASES[name]
            ref = args.reference / folder
            if not ref.is_dir():
                notes.append(f"{name}: skipped, no reference at {ref}")
                print(notes[-1])
                continue
            print(f"{folder} x {args.copies}: building the input ...", flush=True)
            data = build_input(ref, work / name, args.copies, jitter=args.jitter)
            with open(data) as f:
                atoms = sum(1 for ln in f if ln.startswith("atom"))
            runs, text = timing_case(name, data, neighbors, args,
                                     (n2p2, mpirun, mpiexec), work)
            med = {k: median(v, "seconds") for k, v in runs.items()}
            speedup = {label: med[n] / med[d] for label, d, n in PAIRS
                       if med.get(d) and med.get(n)}
            eff = {}
            for prog, one, two in (("distatomenv", "distatomenv --threads 1",
                                    "distatomenv mpiexec -n 2 --threads 1"),
                                   ("n2p2", "n2p2 1 rank", "n2p2 mpirun -np 2")):
                if med.get(one) and med.get(two):
                    eff[prog] = med[one] / (2 * med[two])
            case = {"label": folder, "copies": args.copies, "atoms": atoms,
                    "neighbors": neighbors, "jitter": args.jitter, "runs": runs,
                    "speedup": speedup, "efficiency": eff}
            if not args.no_sizes:
                case["sizes"] = sizes_case(name, data, neighbors, atoms, text, work)
            results["cases"][name] = case
            shutil.rmtree(work / f"{name}.zarr", ignore_errors=True)
        if not args.no_first_run:
            print("first run with an empty numba cache (LJ) ...", flush=True)
            results["first_run"] = first_run(args.reference, work)
        results["targets"] = targets(results)
        print(report(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
