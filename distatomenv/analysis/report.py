"""The analysis report: report.json, clusters.csv, PNG plots, report.html,
and the terminal summary.

``report.json`` is an interface other tools read; its schema is documented
in the README ("Analysis").  Version it with ``format_version`` when it
changes incompatibly.

report.html is rendered with jinja2 (autoescaping on) from the templates in
``templates/`` beside this module (package data): ``report.html.j2`` the
page, ``readout.html.j2``, ``advice.html.j2`` and ``comparison.html.j2`` its
sections, ``macros.html.j2`` small pieces, the ``guide_*.html`` texts and
``report.css``.  The number formatting they use is this module's
(``_fmt`` and the helpers registered in :func:`_templates`), shared with the
terminal summary.
"""
from __future__ import annotations

import csv
import functools
import json
import os
import time

from . import plots

__all__ = ["REPORT_FORMAT", "REPORT_VERSION", "build_report", "write_report", "summary_table",
           "readout_table", "advice_table", "cluster_table", "fragment_text", "AnalysisResult"]

REPORT_FORMAT = "distatomenv-analysis"
REPORT_VERSION = 1

CSV_FIELDS = ["element", "component", "descriptor", "method", "k", "cluster", "size", "mean", "std",
              "t", "df", "p", "p_holm", "p_bh", "hedges_g", "significant", "inertia", "noise_fraction"]


class AnalysisResult:
    """What :func:`distatomenv.analyze` returns.

    Attributes
    ----------
    out_dir : str
    report : dict
        The content of report.json.
    readout : list of dict
        ``report["readout"]``: the force readout, one entry per element, tier
        and components (the headline).
    results : list of dict
        ``report["results"]``: one entry per element, component and k (the
        n2p2 notebook's cluster view).
    files : dict name -> path
        report.json, clusters.csv, report.html, every plot and, with a
        suggested SF set, suggested_input.nn.
    timings : dict phase -> seconds
    analyzer : the fitted :class:`~distatomenv.analysis.Analyzer`
    """

    def __init__(self, out_dir, report, files, analyzer):
        self.out_dir = out_dir
        self.report = report
        self.results = report["results"]
        self.readout = report.get("readout", [])
        self.files = files
        self.timings = report["timings"]
        self.analyzer = analyzer

    def summary(self) -> str:
        """The concise table printed by the CLI."""
        return summary_table(self.report)

    def potential(self, element=None, tier="potential_linear") -> dict:
        """The fitted potential of a potential tier, mapped back to input.nn's SFs.

        E = Σ_j w_{e_j} · G_j (+ G_jᵀ Q_{e_j} G_j for the quadratic tier), G the
        store's scaled SFs, fitted to the forces on every structure with the
        λ the cross-validation chose (energies up to a constant per element).

        Returns a dict: ``tier``, ``lambda``, and per element (or only
        ``element``): ``{"sfs": [SF descriptions], "w": (nSF,) array, "Q":
        (nSF, nSF) array or None}``.
        """
        import numpy as np

        fitted = getattr(self.analyzer, "readout_potential_", {}) or {}
        if tier not in fitted:
            raise KeyError(f"no {tier} tier in this analysis (compute the store with "
                           f"--force-matching and keep the potential tiers); have {sorted(fitted)}")
        fit = fitted[tier]
        w_all = -np.asarray(fit["force_weights"])          # F = -dE/dr: the force weights are -w
        meta = self.report["store"].get("provenance", {}) or {}
        sfset = (meta.get("settings") or {}).get("sfset")
        els = list(self.report["store"]["elements"])
        nsf = [sum(1 for f in sfset["functions"] if f["element"] == e) for e in els] if sfset else None
        if nsf is None:
            raise KeyError("the store records no SF settings to map the weights to")
        n_lin = sum(nsf)
        out = {"tier": tier, "lambda": fit["lambda"], "elements": {}}
        d0, q0 = 0, n_lin
        for a, e in enumerate(els):
            n = nsf[a]
            sfs = [f for f in sfset["functions"] if f["element"] == e]
            entry = {"sfs": [_describe(f) for f in sfs], "w": w_all[d0:d0 + n], "Q": None}
            if tier == "potential_quadratic":
                iu = np.triu_indices(n)
                Q = np.zeros((n, n))
                Q[iu] = w_all[q0:q0 + len(iu[0])]
                entry["Q"] = (Q + Q.T) / 2            # feature (s,t) is d(G_s G_t): Q symmetric
                q0 += len(iu[0])
            out["elements"][e] = entry
            d0 += n
        if element is not None:
            if element not in out["elements"]:
                raise KeyError(f"element {element!r} not in {list(out['elements'])}")
            return {"tier": tier, "lambda": fit["lambda"], "element": element, **out["elements"][element]}
        return out

    def select(self, **where) -> list[dict]:
        """Results entries matching every ``key=value`` given (e.g. element="H", k=10)."""
        return [r for r in self.results if all(r.get(k) == v for k, v in where.items())]

    def __repr__(self):
        return f"<AnalysisResult {self.out_dir!r}: {len(self.results)} results>"


def build_report(analyzer, command=None) -> dict:
    """The report.json document of a fitted Analyzer."""
    from distatomenv import __version__
    from .analyze import _jsonable

    params = _jsonable(analyzer.recorded_params())
    params["clusters"] = list(analyzer._ks)
    params["alpha"] = analyzer._alpha
    params["stability_seeds"] = [analyzer.seed + i for i in range(analyzer.seeds)]
    store = dict(analyzer.store_)
    meta = store.pop("meta", {}) or {}
    elements = {}
    for e, info in analyzer.elements_.items():
        elements[e] = {"n_rows": info["n_rows"], "forces": info["forces"]}
    fits = {f"{e}/{d}": _jsonable(v) for (e, d), v in analyzer.fits_.items()}
    return {
        "format": REPORT_FORMAT,
        "format_version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "distatomenv_version": __version__,
        "command": command,
        "parameters": params,
        "store": {**_jsonable(store), "provenance": _jsonable(meta)},
        "labels_run": analyzer.run_name_,
        "elements": elements,
        "fits": fits,
        "noise_handling": (
            "HDBSCAN noise (label -1) is its own group: it is tested against the rest and "
            "reported under 'noise', but it is not a cluster: it is not counted in k, in the "
            "significant share or in the Holm/BH family; noise rows belong to every cluster's "
            "'rest' and count as one group in eta2" if analyzer.method == "hdbscan" else None),
        "readout": _jsonable(list(getattr(analyzer, "readout_", None) or [])),
        "readout_note": getattr(analyzer, "readout_note_", None),
        **_advice_sections(analyzer),
        "results": analyzer.results_,
        "timings": {k: round(v, 3) for k, v in analyzer.timings_.items()},
    }


ADVICE_KEYS = ("importance", "elimination", "saturation")
#: The suggested reduced SF set (``elimination.fragment``) as an input.nn fragment.
FRAGMENT_FILE = "suggested_input.nn"


def _advice_sections(analyzer) -> dict:
    """report.json's ``importance``, ``elimination``, ``saturation`` (the design
    advice, :mod:`.advice`) and ``comparison``: JSON-safe, null when absent."""
    from .analyze import _jsonable

    advice = getattr(analyzer, "advice_", None) or {}
    out = {k: (None if advice.get(k) is None else _jsonable(advice[k])) for k in ADVICE_KEYS}
    comparison = getattr(analyzer, "comparison_", None)
    out["comparison"] = None if comparison is None else _jsonable(comparison)
    return out


def _ordered(keys, report) -> list:
    """``keys`` (element symbols) in the store's element order, others after."""
    keys = list(keys or [])
    order = list(report.get("store", {}).get("elements") or [])
    return [e for e in order if e in keys] + sorted(k for k in keys if k not in order)


def _sf_totals(report) -> dict:
    """SF element -> number of its SFs in the rows (the elimination's start)."""
    seen = set()
    for ent in (report.get("importance") or {}).values():
        for d in ent.get("sfs") or []:
            seen.add((d.get("sf_element"), d.get("sf_index")))
    out = {}
    for x, _ in seen:
        out[x] = out.get(x, 0) + 1
    return out


def _suggested_text(report, sep=", ") -> str:
    """'10 of 55 SFs (H 5 of 27, O 5 of 28)'."""
    elim = report.get("elimination") or {}
    sug = elim.get("suggested") or {}
    tot = _sf_totals(report)
    n = sum(len(v) for v in sug.values())
    per = sep.join(f"{x} {len(sug.get(x) or [])}" + (f" of {tot[x]}" if x in tot else "")
                   for x in _ordered(set(sug) | set(tot), report))
    return f"{n} of {elim.get('n_sf', '?')} SFs" + (f" ({per})" if per else "")


def _r2_change_text(report, sep=", ") -> str:
    """'H 0.994 -> 0.985, O 0.986 -> 0.978' (full -> suggested)."""
    elim = report.get("elimination") or {}
    full, sug = elim.get("r2_full") or {}, elim.get("r2_suggested") or {}
    return sep.join(f"{e} {_fmt(full.get(e), '.4f').strip()} -> {_fmt(sug.get(e), '.4f').strip()}"
                    for e in _ordered(full, report))


def fragment_text(report) -> str | None:
    """The content of suggested_input.nn: a comment header, then the
    ``symfunction_short`` lines of ``elimination.fragment`` (None without one)."""
    elim = report.get("elimination") or {}
    lines = elim.get("fragment")
    if not lines:
        return None
    tol = elim.get("tolerance")
    head = [
        "# distatomenv design advice: the suggested reduced symmetry-function set",
        f"# store: {report.get('store', {}).get('path')}",
        "# Paste these lines in place of the symfunction_short lines of input.nn.",
        "# Greedy backward elimination on the held-out force readout (linear tier, same folds",
        "# and lambda): the smallest set whose R2 stays within "
        f"{_fmt(tol, 'g').strip()} of the full set's for every element.",
        f"# Kept: {_suggested_text(report)}.",
        f"# R2 all SFs -> suggested: {_r2_change_text(report)}.",
        "# A suggestion for the linear readout: compute a store with this set and analyse it",
        "# (or compare both stores) before training; n2p2 needs a new scaling.data for it.",
    ]
    return "\n".join(head + list(lines)) + "\n"


def _write_csv(results, filename):
    with open(filename, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS)
        for r in results:
            rows = list(r["clusters"])
            if r.get("noise"):
                rows.append(r["noise"])
            for c in rows:
                w.writerow([r["element"], r["component"], r["descriptor"], r["method"], r["k"],
                            c["id"], c["size"]] +
                           ["" if c[f] is None else repr(float(c[f]))
                            for f in ("mean", "std", "t", "df", "p", "p_holm", "p_bh", "hedges_g")] +
                           ["" if c["significant"] is None else int(c["significant"])] +
                           ["" if c.get("inertia") is None else repr(float(c["inertia"])),
                            "" if r.get("noise_fraction") is None else repr(float(r["noise_fraction"]))])


def _describe(f) -> str:
    from distatomenv.descriptors.symfuncs import SymmetryFunction

    return SymmetryFunction.from_dict(f).describe()


def _fmt(x, spec=".2f"):
    return "  n/a" if x is None else format(x, spec)


def _eta2_text(r) -> str:
    """eta2 with its null expectation (k-1)/(N-1) in brackets."""
    null = r.get("eta2_null")
    return _fmt(r["eta2"], ".3f") + ("" if null is None else f" ({null:.3f})")


TIER_NAMES = {"linear": "linear", "g_weighted": "G-weighted", "reference_knn": "k-NN reference",
              "potential_linear": "potential lin.", "potential_quadratic": "potential quad."}


def _comps(entry) -> str:
    c = entry.get("components") or []
    return "".join(c) if c else "?"


def _lc_text(entry, sep=" ") -> str:
    """The learning curve as '10%:0.95 30%:0.98 100%:0.99'."""
    pts = sorted((pt for pt in (entry.get("learning_curve") or []) if pt.get("fraction") is not None),
                 key=lambda pt: pt["fraction"])
    return sep.join(f"{100 * pt['fraction']:.0f}%:{_fmt(pt.get('r2'), '.3f').strip()}" for pt in pts)


def readout_elements(report) -> list:
    """Elements with readout entries, in the store's order."""
    have = {r["element"] for r in report.get("readout") or []}
    order = list(report.get("store", {}).get("elements") or [])
    return [e for e in order if e in have] + sorted(have - set(order))


def readout_table(report) -> str:
    """The force readout: one line per element, tier and components
    (held-out R², its 95 % interval, the shuffled-force null, RMSE against the
    force standard deviation, lambda, rows/structures, folds, learning curve)."""
    entries = report.get("readout") or []
    title = ("Force readout: held-out R² of the forces from the dG rows (folds grouped by "
             "structure; null = shuffled forces)")
    if not entries:
        note = report.get("readout_note") or "no readout in this report"
        return f"{title}\n  {note}"
    head = (f"{'element':<8} {'tier':<15} {'F':<4} {'R2':>7} {'95% interval':>15} {'null':>7} "
            f"{'RMSE':>9} {'F std':>9} {'lambda':>8} {'rows/structures':>16} {'folds':>5}  "
            f"learning curve")
    lines = [title, head, "-" * len(head)]
    for e in readout_elements(report):
        for r in entries:
            if r["element"] != e:
                continue
            tier = TIER_NAMES.get(r.get("tier"), str(r.get("tier")))
            start = f"{r['element']:<8} {tier:<15} {_comps(r):<4}"
            if r.get("skipped"):
                lines.append(f"{start} skipped: {r['skipped']}")
                continue
            band = ("n/a" if r.get("r2_low") is None or r.get("r2_high") is None
                    else f"{r['r2_low']:.3f}-{r['r2_high']:.3f}")
            lam = "n/a" if r.get("lambda") is None else format(r["lambda"], ".2g")
            rows = f"{r.get('n_rows', '?')}/{r.get('n_structures', '?')}"
            lines.append(
                f"{start} {_fmt(r.get('r2'), '.3f'):>7} {band:>15} {_fmt(r.get('r2_null'), '.3f'):>7} "
                f"{_fmt(r.get('rmse'), '.4g'):>9} {_fmt(r.get('force_std'), '.4g'):>9} {lam:>8} "
                f"{rows:>16} {r.get('folds', ''):>5}  {_lc_text(r)}".rstrip()
                + (f"  energies of held-out structures: R² {r['energy_r2']:.3f}"
                   if r.get("energy_r2") is not None else ""))
    return "\n".join(lines)


def summary_table(report) -> str:
    """The terminal summary: the force readout first (per element and tier),
    then the n2p2 notebook's cluster view (when it was run)."""
    parts = [readout_table(report)]
    advice = advice_table(report)
    if advice:
        parts.append(advice)
    if report.get("results"):
        parts.append("The n2p2 notebook's view: share of clusters whose forces differ from the "
                     "rest (grows with the number of atoms)\n" + cluster_table(report))
    elif report.get("parameters", {}).get("clusters_view") is False:
        parts.append("The n2p2 notebook's view: switched off")
    return "\n\n".join(parts)


def advice_table(report) -> str:
    """The design advice in a few lines: the three SFs with the largest ΔR²
    per element, the suggested set (size, R² before and after, the fragment
    file), the suggested --neighbors next to the survey's and the stored one,
    and the comparison of stores.  Empty when the report has none of them."""
    lines = []
    imp = report.get("importance") or {}
    elim = report.get("elimination")
    sat = report.get("saturation")
    if imp or elim or sat:
        lines.append("Design advice (linear tier; ΔR² = held-out R² lost without the SF, same folds "
                     "and lambda)")
    for e in _ordered(imp, report):
        ent = imp[e]
        lines.append(f"  {e}: R² {_fmt(ent.get('r2_full'), '.3f').strip()} with all "
                     f"{len(ent.get('sfs') or [])} SFs; largest ΔR²:")
        for d in (ent.get("sfs") or [])[:3]:
            lines.append(f"    {_fmt(d.get('delta_r2'), '+.4f'):>8}  {d.get('label')}")
    if elim:
        ff = elim.get("fragment_file")
        lines.append(f"  suggested set (within {_fmt(elim.get('tolerance'), 'g').strip()} of the full R²): "
                     f"{_suggested_text(report)}" + (f" -> {ff}" if ff else ""))
        lines.append(f"    R² all SFs -> suggested: {_r2_change_text(report)}")
    if sat:
        lines.append(f"  --neighbors: suggested \"{sat.get('suggested_neighbors')}\" (saturation knees); "
                     f"survey \"{sat.get('survey_neighbors') or 'n/a'}\"; stored "
                     f"\"{sat.get('stored_neighbors') or 'n/a'}\" (pairs {_pairs_text(report)})")
    cmp_ = report.get("comparison")
    if cmp_ and cmp_.get("elements"):
        stores = cmp_.get("stores") or []
        names = plots.store_labels(stores)
        if lines:
            lines.append("")
        lines.append("Stores side by side (linear tier; ΔR² against the first, paired over the same folds)")
        width = max([len(n) for n in names] + [5])
        head = (f"  {'store':<{width}} {'element':<8} {'R2':>7} {'95% interval':>15} {'dR2':>8} "
                f"{'paired 95%':>17} {'features':>8}")
        lines += [head, "  " + "-" * (len(head) - 2)]
        for e in _ordered(cmp_["elements"], report):
            for i, r in enumerate(cmp_["elements"][e]):
                name = _store_name(r, stores, names)
                note = _comparison_note(r, i, stores)
                lines.append(
                    f"  {name:<{width}} {e:<8} {_fmt(r.get('r2'), '.3f'):>7} "
                    f"{_interval(r, 'r2', '-', '.3f'):>15} "
                    f"{_fmt(r.get('delta_r2'), '+.4f'):>8} {_interval(r, 'delta', '..'):>17} "
                    f"{r.get('n_features', ''):>8}" + (f"  {note}" if note else ""))
    return "\n".join(lines)


def cluster_table(report) -> str:
    """One line per element, component and k: share, chance band, Holm share,
    eta2 (its null expectation), inertia (k-means) or noise fraction (HDBSCAN), ARI."""
    results = report["results"]
    inertia = any(r.get("inertia") is not None for r in results)
    noise = any(r.get("noise_fraction") is not None for r in results)
    head = (f"{'element':<8} {'F':<4} {'descr':<5} {'k':>4} {'signif.':>9} {'share':>6} "
            f"{'chance 95%':>12} {'Holm':>6} {'eta2 (null)':>13}"
            + (f" {'inertia':>10}" if inertia else "") + (f" {'noise':>6}" if noise else "")
            + f" {'ARI':>5}")
    lines = [head, "-" * len(head)]
    for r in results:
        band = ("n/a" if r["null_low"] is None
                else f"{r['null_low']:.2f}-{r['null_high']:.2f}")
        extra = ""
        if inertia:
            extra += f" {'n/a' if r.get('inertia') is None else format(r['inertia'], '.4g'):>10}"
        if noise:
            extra += f" {'n/a' if r.get('noise_fraction') is None else format(r['noise_fraction'], '.1%'):>6}"
        lines.append(
            f"{r['element']:<8} {r['component']:<4} {r['descriptor']:<5} {r['k']:>4} "
            f"{r['n_significant']:>4}/{r['n_tested']:<4} {_fmt(r['significant_share']):>6} "
            f"{band:>12} {_fmt(r['significant_share_holm']):>6} {_eta2_text(r):>13}{extra} "
            f"{_fmt(r['stability_ari']):>5}")
    return "\n".join(lines)


def _safe(s) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(s))


def write_report(analyzer, out_dir, command=None) -> AnalysisResult:
    """Write report.json, clusters.csv, the plots and report.html into
    ``out_dir`` (created if needed)."""
    os.makedirs(out_dir, exist_ok=True)
    report = build_report(analyzer, command)
    files = {}
    results = report["results"]
    clusters_on = getattr(analyzer, "clusters_view", True) is not False
    key = analyzer.map_key() if clusters_on else None
    plot_files = []          # (section element, title, file): the cluster view
    readout_files = []       # (element, title, file): the readout, shown first

    samples = getattr(analyzer, "readout_samples_", None) or {}
    r2_linear = {}
    for e in readout_elements(report):
        ents = [r for r in report["readout"] if r["element"] == e]
        pooled = [r for r in ents if r.get("tier") == "linear" and len(r.get("components") or []) == 3]
        r2_linear[e] = pooled[0].get("r2") if pooled else None
        smp = samples.get(e) or {}
        if len(smp.get("forces", ())) and len(smp.get("predicted", ())):
            f = plots.plot_parity(e, smp, os.path.join(out_dir, f"parity_{_safe(e)}.png"),
                                  r2=r2_linear[e])
            readout_files.append((e, "Held-out parity: predicted against reference force "
                                     "(linear tier, x, y, z pooled; a sample of atoms)", f))
        if any(r.get("learning_curve") for r in ents):
            f = plots.plot_learning_curve(e, ents, os.path.join(out_dir, f"learning_{_safe(e)}.png"))
            readout_files.append((e, "Learning curve: held-out R² against the share of structures "
                                     "used", f))
    report["interactive_map"] = _write_map(analyzer, samples, out_dir, r2_linear, files)
    advice_files = _write_advice(report, out_dir, files)

    for e in (report["elements"] if clusters_on else []):
        hs = []
        for comp in ("x", "y", "z", "norm"):
            for (he, hd, hk), (edges, hist, comps) in analyzer.hists_.items():
                if he == e and hk == key and comp in comps:
                    hs.append((comp, edges[comps.index(comp)], hist[:, comps.index(comp), :].sum(axis=0)))
                    break
        if hs:
            f = plots.plot_forces(e, hs, os.path.join(out_dir, f"forces_{_safe(e)}.png"))
            plot_files.append((e, "Force distributions", f))
        es = [r for r in results if r["element"] == e]
        if analyzer.method != "hdbscan" or len(es):
            f = plots.plot_share(e, es, analyzer._alpha, os.path.join(out_dir, f"share_{_safe(e)}.png"))
            plot_files.append((e, "Significant share against k, with the chance band", f))
        for (me, md), mp in analyzer.maps_.items():
            if me == e:
                f = plots.plot_map(e, md, mp, key, os.path.join(out_dir, f"map_{_safe(e)}_{_safe(md)}.png"))
                plot_files.append((e, f"Descriptor space ({md}), coloured by cluster", f))
        for r in es:
            if analyzer.method != "hdbscan" and r["k"] != key:
                continue
            edges, hist, comps = analyzer.hists_[(e, r["descriptor"], key)]
            j = comps.index(r["component"])
            name = f"clusters_{_safe(e)}_F{r['component']}_{_safe(r['descriptor'])}_k{r['k']}.png"
            f = plots.plot_cluster_histograms(r, edges[j], hist[:, j, :], os.path.join(out_dir, name))
            plot_files.append((e, f"F{r['component']} per cluster ({r['descriptor']}, k={r['k']}): "
                                  f"cluster vs rest", f))

    report["plots"] = [os.path.basename(f) for _, _, f in readout_files + advice_files + plot_files]
    files["report.json"] = os.path.join(out_dir, "report.json")
    with open(files["report.json"], "w") as fh:
        json.dump(report, fh, indent=1, allow_nan=False)
    files["clusters.csv"] = os.path.join(out_dir, "clusters.csv")
    _write_csv(results, files["clusters.csv"])
    files["report.html"] = os.path.join(out_dir, "report.html")
    with open(files["report.html"], "w") as fh:
        fh.write(_html(report, plot_files, readout_files, advice_files))
    for _, _, f in readout_files + advice_files + plot_files:
        files[os.path.basename(f)] = f
    return AnalysisResult(out_dir, report, files, analyzer)


def _write_advice(report, out_dir, files) -> list:
    """The design-advice plots and suggested_input.nn; sets
    ``elimination.fragment_file``.  Returns (key, title, file) of the plots:
    key "importance/<E>", "elimination", "saturation/<E>" or "comparison"."""
    out = []
    imp = report.get("importance") or {}
    for e in _ordered(imp, report):
        f = plots.plot_importance(e, imp[e], os.path.join(out_dir, f"importance_{_safe(e)}.png"))
        out.append((f"importance/{e}", f"Forces on {e}: ΔR² of each symmetry function", f))
    elim = report.get("elimination")
    if elim and elim.get("path"):
        f = plots.plot_elimination(elim, os.path.join(out_dir, "elimination.png"))
        out.append(("elimination", "Backward elimination: R² against the number of SFs kept", f))
    sat = report.get("saturation") or {}
    for e in _ordered(sat.get("elements") or {}, report):
        f = plots.plot_saturation(e, sat["elements"][e], os.path.join(out_dir, f"saturation_{_safe(e)}.png"),
                                  tolerance=sat.get("tolerance"))
        out.append((f"saturation/{e}", f"Forces on {e}: R² against the neighbour blocks kept", f))
    comparison = report.get("comparison")
    if comparison and comparison.get("elements"):
        f = plots.plot_comparison(comparison, os.path.join(out_dir, "comparison.png"))
        out.append(("comparison", "R² per element and store, and ΔR² against the first", f))
    if elim is not None:
        text = fragment_text(report)
        elim["fragment_file"] = None
        if text is not None:
            path = os.path.join(out_dir, FRAGMENT_FILE)
            with open(path, "w") as fh:
                fh.write(text)
            files[FRAGMENT_FILE] = path
            elim["fragment_file"] = FRAGMENT_FILE
    return out


def _write_map(analyzer, samples, out_dir, r2, files) -> dict:
    """The chemiscope map of the readout's sampled atoms (report.json's
    ``interactive_map``: ``file`` (or None) and ``note``)."""
    from . import chemiscope_map

    if not any(len((s or {}).get("structure", ())) for s in samples.values()):
        return {"file": None, "note": "no sampled atoms (the readout did not run)"}
    ok, why = chemiscope_map.available()
    if not ok:
        return {"file": None, "note": f"not written: {why}"}
    path = os.path.join(out_dir, chemiscope_map.MAP_FILE)
    try:
        info = chemiscope_map.write_chemiscope(
            analyzer.store_["path"], samples, path,
            labels=chemiscope_map.cluster_labels(analyzer, samples), r2=r2)
    except Exception as exc:               # noqa: BLE001 -- the map is optional; say why
        return {"file": None, "note": f"not written: {type(exc).__name__}: {exc}"}
    files[chemiscope_map.MAP_FILE] = path
    capped = " (capped)" if info["capped"] else ""
    return {"file": chemiscope_map.MAP_FILE, "n_structures": info["n_structures"],
            "n_environments": info["n_environments"], "properties": info["properties"],
            "note": f"{info['n_environments']} sampled atoms in {info['n_structures']} "
                    f"structures{capped}"}


def _pairs_text(report) -> str:
    els = list(report.get("store", {}).get("elements") or [])
    return ", ".join(f"{a}-{b}" for a in els for b in els)


def _comparison_note(r, i, stores) -> str:
    """The note of a comparison row: its own, or "reference" for the first store's."""
    if r.get("note"):
        return str(r["note"])
    return "reference" if i == 0 and stores and r.get("store") == stores[0] else ""


def _store_name(r, stores, names) -> str:
    """The label of a comparison row's store (``names`` from plots.store_labels)."""
    return names[stores.index(r["store"])] if r.get("store") in stores else str(r.get("store"))


def _interval(r, prefix, dash="-", spec=None) -> str:
    """'lo-hi' of ``<prefix>_low`` and ``<prefix>_high`` of a comparison row."""
    lo, hi = r.get(f"{prefix}_low"), r.get(f"{prefix}_high")
    if lo is None or hi is None:
        return "n/a"
    spec = spec or ("+.4f" if prefix == "delta" else ".4f")
    return f"{lo:{spec}}{dash}{hi:{spec}}"


# ----------------------------------------------------------------------------- report.html
#: The templates of report.html (package data beside this module).
TEMPLATES = "templates"


def _curve_r2(entry, blocks):
    """R² of a saturation curve (``entry["curve"]``) at ``blocks`` neighbour blocks."""
    return {c["blocks"]: c.get("r2") for c in entry.get("curve") or []}.get(blocks)


def _removal_steps(elim) -> list:
    """The steps of the backward elimination that removed an SF."""
    return [st for st in elim.get("path") or [] if st.get("removed")]


def _readout_sections(report) -> list:
    """The readout section of each element: its entries, atoms and structures."""
    entries = report.get("readout") or []
    out = []
    for e in readout_elements(report):
        ents = [r for r in entries if r["element"] == e]
        out.append({"element": e, "entries": ents,
                    "n_atoms": (report.get("store", {}).get("n_rows") or {}).get(e),
                    "n_structures": max((r.get("n_structures") or 0 for r in ents), default=0)})
    return out


@functools.cache
def _templates():
    """The jinja2 environment of report.html: autoescaping on, an undefined
    name an error, and a line holding only a ``{% tag %}`` leaves nothing."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("distatomenv.analysis", TEMPLATES),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=_fmt, basename=os.path.basename,
                       tier_name=lambda t: TIER_NAMES.get(t, str(t)))
    env.globals.update(ordered=_ordered, suggested_text=_suggested_text, pairs_text=_pairs_text,
                       lc_text=_lc_text, curve_r2=_curve_r2, removal_steps=_removal_steps,
                       store_labels=plots.store_labels, store_name=_store_name,
                       comparison_note=_comparison_note, zip=zip)
    return env


def _advice_html(report, advice_files=()) -> list:
    """The "Design advice" subsection of the readout section (one string in a list)."""
    figs = {key: (title, f) for key, title, f in advice_files}
    page = _templates().get_template("advice.html.j2").render(report=report, figs=figs)
    return [page.removesuffix("\n")]


def _html(report, plot_files, readout_files=(), advice_files=()) -> str:
    """report.html: the readout (and its design advice) first, then the n2p2
    notebook's view; ``*_files`` are the plots, (section, title, file)."""
    p = report["parameters"]
    return _templates().get_template("report.html.j2").render(
        report=report, p=p, clusters_on=p.get("clusters_view", True) is not False,
        readout_sections=_readout_sections(report), readout_files=readout_files,
        plot_files=plot_files, figs={key: (title, f) for key, title, f in advice_files})
