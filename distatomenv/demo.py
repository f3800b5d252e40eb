"""``distatomenv demo``: the whole story on data the package makes itself.

1. generate a small molecular liquid (flexible water-like triatomics, numba
   molecular dynamics with a thermostat, exact forces):
   :func:`distatomenv.synth.write_water_dataset`, which also coarse-grains it
   (one ``Cm`` site per molecule at its centre of mass, summed forces);
2. survey the neighbour counts of both descriptions and choose ``--neighbors``
   (the suggested counts, capped so the demo stays small);
3. compute both descriptions into stores (scaling pass included);
4. analyse both (mini-batch k-means, Welch t-tests per cluster, permutation
   null) into ``report/atomistic`` and ``report/cg``;
5. print where the reports are and a two-line verdict: how much of the force
   the atomistic and the coarse-grained descriptors resolve (the share of
   clusters whose force distribution differs from the rest, against chance).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Largest neighbour count per pair used by the demo (keeps the rows small).
MAX_NEIGHBORS = {"atomistic": 2, "cg": 4}


@dataclass
class DemoResult:
    """What :func:`run_demo` made: paths, stores, analysis results, verdict lines."""

    directory: Path
    data: dict
    neighbors: dict = field(default_factory=dict)
    stores: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)
    shares: dict = field(default_factory=dict)
    verdict: list = field(default_factory=list)
    seconds: float = 0.0


def _capped(spec: str, cap: int) -> str:
    return " ".join(str(min(int(v), cap)) for v in spec.split())


def _clusters_for(rows: int, wanted=(3, 5, 10, 20, 50)) -> list[int]:
    """The k values of the sweep that leave at least ~20 rows per cluster."""
    ks = [k for k in wanted if k * 20 <= rows]
    return ks or [2]


def share_summary(result) -> dict:
    """Mean significant share over every k, element and component of an
    analysis, and the mean of the permutation band's upper edges (chance)."""
    shares = [r["significant_share"] for r in result.results if r["significant_share"] is not None]
    highs = [r["null_high"] for r in result.results if r.get("null_high") is not None]
    lows = [r["null_low"] for r in result.results if r.get("null_low") is not None]
    mean = (lambda v: sum(v) / len(v) if v else float("nan"))
    return {"share": mean(shares), "null_low": mean(lows), "null_high": mean(highs),
            "results": len(result.results)}


def run_demo(directory="distatomenv-demo", *, structures: int = 20, molecules: int = 64,
             seed: int = 0, permutations: int = 50, threads=None, progress=None,
             say=print) -> DemoResult:
    """Generate, coarse-grain, compute and analyse; see the module docstring.

    progress : a progress object for compute (``distatomenv.progress.ProgressBar``) or None.
    say : where the step messages go (``print`` by default).
    """
    from . import analyze, compute
    from .errors import DistatomenvError
    from .survey import survey_neighbors
    from .synth import write_water_dataset

    t0 = time.perf_counter()
    d = Path(os.fspath(directory))
    d.mkdir(parents=True, exist_ok=True)
    try:
        data = write_water_dataset(d / "data", n_structures=structures, n_molecules=molecules,
                                   seed=seed, overwrite=True)
    except ValueError as exc:            # sizes the generator cannot run
        raise DistatomenvError(f"demo: {exc}") from None
    res = DemoResult(directory=d, data=data)
    say(f"demo: {structures} configurations of {molecules} water-like molecules from "
        f"molecular dynamics (exact forces, {data['seconds']:.1f} s), coarse-grained to one "
        f"Cm site per molecule: {data['atomistic_data']}, {data['cg_data']}")
    for kind in ("atomistic", "cg"):
        survey = survey_neighbors(data[f"{kind}_data"], settings=data[f"{kind}_nn"])
        res.neighbors[kind] = _capped(survey.suggested, MAX_NEIGHBORS[kind])
        store = compute(data[f"{kind}_data"], settings=data[f"{kind}_nn"],
                        neighbors=res.neighbors[kind], out=d / f"{kind}.zarr", overwrite=True,
                        threads=threads, progress=progress, command="distatomenv demo")
        if progress is not None and hasattr(progress, "close"):
            progress.close()
        res.stores[kind] = store.path
        atoms = sum(store.n_rows(e) for e in store.elements)
        say(f"demo: {kind}: --neighbors \"{res.neighbors[kind]}\" (survey suggested "
            f"\"{survey.suggested}\"), {atoms} environments -> {store.path} "
            f"({store.timings['total']:.1f} s)")
        rows = min(store.n_rows(e) for e in store.elements)
        result = analyze(store.path, d / "report" / kind, clusters=_clusters_for(rows),
                         permutations=permutations, seed=seed, threads=threads,
                         command="distatomenv demo", progress=progress is not None)
        res.reports[kind] = result
        res.shares[kind] = share_summary(result)
        say(f"demo: {kind}: analysed {res.shares[kind]['results']} (element, component, k) "
            f"cases -> {result.files.get('report.html', result.out_dir)}")
    res.seconds = time.perf_counter() - t0
    a, c = res.shares["atomistic"], res.shares["cg"]
    res.verdict = [
        f"atomistic descriptors (H, O): {a['share']:.0%} of clusters have forces that differ "
        f"significantly from the rest (chance: {a['null_low']:.0%}-{a['null_high']:.0%})",
        f"coarse-grained descriptors (Cm): {c['share']:.0%} (chance: "
        f"{c['null_low']:.0%}-{c['null_high']:.0%}) -> "
        + ("the CG environments resolve the CG forces less well than the atomistic ones "
           "resolve theirs" if c["share"] < a["share"] else
           "the CG environments resolve the CG forces at least as well as the atomistic ones"),
    ]
    return res
