"""``distatomenv demo``: the whole story on data the package makes itself.

1. generate a small molecular liquid (flexible water-like triatomics, numba
   molecular dynamics with a thermostat, exact forces):
   :func:`distatomenv.tools.synth.write_water_dataset`, which also coarse-grains it
   (one ``Cm`` site per molecule at its centre of mass, summed forces);
2. survey the neighbour counts of both descriptions and choose ``--neighbors``
   (the suggested counts, capped so the demo stays small);
3. compute both descriptions into stores (scaling pass included);
4. analyse both (the cross-validated force readout, then the n2p2 notebook's
   cluster view) into ``report/atomistic`` and ``report/cg``;
5. print where the reports are and the verdict from the force readout: per
   element, the held-out R² of the force from the dG rows, atomistic against
   CG, with intervals, the shuffled-force null and the k-NN reference.
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

    progress : a progress object for compute (``distatomenv.cli.progress.ProgressBar``) or None.
    say : where the step messages go (``print`` by default).
    """
    from ..analysis.run import analyze
    from ..engine.run import compute
    from ..errors import DistatomenvError
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
                        force_matching="quadratic",
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
    res.verdict = readout_verdict(res.reports["atomistic"].readout, res.reports["cg"].readout)
    return res


def _r2(readout, element, tier="linear"):
    """The pooled (x, y, z) entry of ``tier`` for ``element``, or None."""
    for r in readout:
        if r["element"] == element and r["tier"] == tier and len(r["components"]) == 3 \
                and r.get("r2") is not None:
            return r
    return None


def readout_verdict(atomistic, cg) -> list[str]:
    """The demo's verdict from the two force readouts (report.json ``readout`` lists)."""
    def line(readout):
        parts = []
        for e in dict.fromkeys(r["element"] for r in readout):
            r = _r2(readout, e)
            if r is None:
                continue
            knn = _r2(readout, e, "reference_knn")
            parts.append(f"{e} {r['r2']:.3f} [{r['r2_low']:.3f}-{r['r2_high']:.3f}]"
                         + (f" (k-NN reference {knn['r2']:.2f})" if knn else ""))
        return ", ".join(parts)

    def low(readout):
        vals = [r["r2"] for r in readout if r["tier"] == "linear" and len(r["components"]) == 3
                and r.get("r2") is not None]
        return min(vals) if vals else float("nan")

    a_low, c_low = low(atomistic), low(cg)
    nulls = [r["r2_null"] for r in atomistic + cg if r["tier"] == "linear" and r.get("r2_null") is not None]
    out = [
        "force readout: held-out R^2 of the force from the dG rows (ridge, one weight vector "
        "for x, y, z; 5-fold CV by structure; 95 % interval)",
        f"atomistic descriptors: {line(atomistic)}",
        f"coarse-grained descriptors: {line(cg)}",
    ]
    if nulls:
        out.append(f"shuffled forces: R^2 {min(nulls):.2f} to {max(nulls):.2f} (no information, as it should be)")
    for name, readout in (("atomistic", atomistic), ("coarse-grained", cg)):
        lin, quad = _r2(readout, "all", "potential_linear"), _r2(readout, "all", "potential_quadratic")
        if lin or quad:
            parts = [f"{label} {r['r2']:.3f}" for label, r in (("linear", lin), ("quadratic", quad)) if r]
            out.append(f"{name}: the best potential in these SFs recovers R^2 " + ", ".join(parts)
                       + (" of the force (force matching" + (": the CG force-matching residual is "
                          f"{1 - max(r['r2'] for r in (lin, quad) if r):.0%} of the variance)"
                          if name == "coarse-grained" else ")")))
    if c_low < a_low:
        out.append(
            f"-> the atomistic descriptors determine {a_low:.0%} or more of the atomistic force variance. "
            f"The CG descriptors determine {c_low:.0%} of the instantaneous CG force variance: the rest "
            "includes the thermal noise of the removed atoms, which no CG descriptor resolves "
            "(a CG potential aims at the mean force), so the CG readout stays below the atomistic one")
    else:
        out.append(
            f"-> the CG descriptors determine {c_low:.0%} of the instantaneous CG force variance, "
            f"the atomistic ones {a_low:.0%} of theirs")
    return out
