"""The long differential run against n2p2 (issue 13), one command:

    .venv/bin/python tests/differential/run.py --cases 1000 [--start 0] [--jobs 2]
        [--out /tmp/differential] [--shrink] [--json results.jsonl]

Runs the generator's seeds start .. start+cases-1 through n2p2 (nnp-scaling,
nnp-atomenv) and distatomenv (scaling, compute, export), compares every file
(tests/differential/harness.py) and prints one line per case that is not a
clean match, then the totals: statuses, token classes, and how many cases
covered each SF type x subtype, cutoff type and scaling mode (the README's
compatibility table).  Exit status 1 if any case diverges.  ``--shrink``
shrinks each diverging case and prints its input files.  A case is rerun
alone with ``--start SEED --cases 1 --keep``; its files stay in --out.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from differential.generator import EXP_TYPES, generate  # noqa: E402
from differential.harness import oracle_problem, run_case, shrink  # noqa: E402


def coverage(case) -> list[str]:
    """Coverage keys of a case: SF type x subtype, cutoff type (as seen by the
    exponential types), scaling mode, and a few data properties."""
    keys = [f"scaling {case.scaling}", f"keywords {'+'.join(case.flags) or 'none'}",
            f"sf keyword {case.sf_keyword}", f"normalisation {bool(case.norm)}",
            f"elements {len(case.elements)}"]
    types = case.sf_types()
    if types & set(EXP_TYPES):
        keys.append(f"cutoff {case.cutoff_type}" + (" alpha" if case.alpha else ""))
    for t in types:
        keys.append(f"type {t}")
    for t, sub in case.subtypes():
        keys.append(f"type {t} {sub}")
    for line in case.sfs:
        tok = line.split()
        if int(tok[1]) in (3, 9, 13):
            zeta = float(tok[5] if int(tok[1]) == 13 else tok[6])
            keys.append(f"type {tok[1]} zeta<0" if zeta < 0 else f"type {tok[1]} zeta>0")
    for s in case.structures:
        keys.append(f"structure {s.kind}")
    if case.extra.get("absent"):
        keys.append("declared element without atoms")
    return sorted(set(keys))


def _one(args):
    seed, out, keep = args
    case = generate(seed)
    t0 = time.perf_counter()
    try:
        res = run_case(case, Path(out) / f"case{seed}", keep=keep)
    except Exception as exc:          # a harness or distatomenv crash is a finding too
        return {"seed": seed, "status": "error", "error": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t0, "coverage": coverage(case)}
    return {"seed": seed, "status": res.status, "tokens": res.tokens, "classes": res.classes,
            "by_type": res.by_type,
            "n2p2_error": res.n2p2_error, "our_error": res.our_error,
            "divergences": [str(d) for d in res.divergences][:20], "seconds": res.seconds,
            "summary": res.summary(), "coverage": coverage(case), "describe": case.describe()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "distatomenv-differential"))
    ap.add_argument("--json", help="write one JSON line per case here")
    ap.add_argument("--keep", action="store_true", help="keep the files of every case")
    ap.add_argument("--shrink", action="store_true", help="shrink diverging cases")
    a = ap.parse_args(argv)
    problem = oracle_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    seeds = range(a.start, a.start + a.cases)
    t0 = time.perf_counter()
    status = collections.Counter()
    classes = collections.Counter()
    cov = collections.Counter()
    by_type = collections.Counter()
    tokens = 0
    bad = []
    log = open(a.json, "w") if a.json else None
    work = [(s, a.out, a.keep) for s in seeds]
    if a.jobs > 1:
        pool = ProcessPoolExecutor(a.jobs)
        results = pool.map(_one, work)
    else:
        results = map(_one, work)
    for n, r in enumerate(results, start=1):
        status[r["status"]] += 1
        tokens += r.get("tokens", 0)
        for k, v in (r.get("classes") or {}).items():
            classes[k] += v
        if r["status"] in ("match", "divergence"):
            for key in r["coverage"]:
                cov[key] += 1
            for k, v in (r.get("by_type") or {}).items():
                by_type[k] += v
        if log:
            log.write(json.dumps(r) + "\n")
            log.flush()
        if r["status"] not in ("match", "both-reject"):
            bad.append(r)
            print(r.get("summary") or f"case {r['seed']}: {r['status']} {r.get('error')}",
                  flush=True)
        if n % 50 == 0:
            print(f"... {n} cases, {time.perf_counter() - t0:.0f} s, {dict(status)}", flush=True)
    print(f"\n{a.cases} cases (seeds {a.start}..{a.start + a.cases - 1}) in "
          f"{time.perf_counter() - t0:.0f} s: {dict(sorted(status.items()))}")
    print(f"tokens compared: {tokens}; outside the +-1 rule, by class: {dict(sorted(classes.items()))}")
    print("\ncoverage (number of compared cases with each property):")
    for key in sorted(cov):
        print(f"  {key:45s} {cov[key]:5d}")
    print("\ntokens outside the +-1 rule by SF type and class (type 0: scaling.data "
          "rows without a label):")
    for key in sorted(by_type):
        print(f"  {key:45s} {by_type[key]:7d}")
    if a.shrink:
        for r in bad:
            if r["status"] != "divergence":
                continue
            case = generate(r["seed"])

            def fails(c, _seed=r["seed"]):
                res = run_case(c, Path(a.out) / f"shrink{_seed}", perturb=True)
                return res.status == "divergence"
            small = shrink(case, fails)
            print(f"\n--- seed {r['seed']} shrunk: input.nn ---\n{small.input_nn()}"
                  f"--- input.data ---\n{small.input_data()}--- args: {small.args()}")
    return 1 if status["divergence"] or status["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
