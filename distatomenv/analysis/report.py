"""The analysis report: report.json, clusters.csv, PNG plots, report.html,
and the terminal summary.

``report.json`` is an interface other tools read; its schema is documented
in the README ("Analysis").  Version it with ``format_version`` when it
changes incompatibly.
"""
from __future__ import annotations

import csv
import html
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

    params = _jsonable(analyzer.get_params())
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


def _figures(files, element) -> list:
    """The titled <img> of each plot of ``element`` in ``files`` ((element, title, path))."""
    return [_img(title, f, "h4") for pe, title, f in files if pe == element]


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
                name = names[stores.index(r["store"])] if r.get("store") in stores else str(r.get("store"))
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
        fh.write(_html(report, plot_files, analyzer, readout_files, advice_files))
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


_GUIDE = """
<h3>How to read the notebook's view</h3>
<p>The <b>significant share</b> is a count of significant differences: the share of clusters whose
mean force differs from the rest's at p &lt; alpha.  It measures statistical power as much as
information: with the same descriptors it grows with the number of atoms (more atoms, smaller
differences become significant), so it is not comparable across elements, data sets or k.  And it
is blind for G against a Cartesian force component by symmetry: in an isotropic system the mean of
F<sub>x</sub> given G is zero however good G is.  Read it next to the force readout above, which
answers the question directly.</p>
<ul>
<li><b>Method</b> (as n2p2's descriptor-analysis notebook): the atoms of each element are
clustered in descriptor space; for every cluster, Welch's t-test compares the cluster's
forces with the forces of all other atoms.  If similar descriptors mean similar forces, many
clusters differ from the rest: a high <b>significant share</b> says the descriptors carry
force information.  A share near the chance band says they do not.</li>
<li><b>Chance band</b>: the 2.5&ndash;97.5 % range of the share when the cluster labels are
shuffled over the atoms (same cluster sizes, no link to the descriptors).  Read the share
against it, not against zero.</li>
<li><b>Holm / BH</b>: the shares after correcting the p-values for testing k clusters at once
(family-wise error / false discovery rate).</li>
<li><b>Hedges' g</b> (per cluster, in clusters.csv and report.json): how far the cluster's mean
force is from the rest's, in pooled standard deviations.  With millions of atoms tiny
differences are "significant"; |g| &lt; 0.2 is a small effect.</li>
<li><b>&eta;&sup2;</b>: the share of the force variance explained by the clusters (between-cluster
sum of squares / total).  It grows with k even for clusters with no link to the forces: read it
against <b>&eta;&sup2; null</b> = (k&minus;1)/(N&minus;1), its expectation when the labels are
shuffled over the N atoms.</li>
<li><b>F norm</b>: clusters of G (symmetry functions, rotation-invariant) are tested on the force
magnitude |F|: in an isotropic system the mean of F<sub>x</sub> given G is zero by symmetry, so a
Cartesian component would find nothing however good G is.</li>
<li><b>Inertia</b> (k-means): the sum of squared distances of the atoms to their cluster centre, in
the clustered space; it falls with k.  With <code>--method minibatch</code>, small elements are
clustered with full k-means run to convergence, large ones with mini-batch k-means
(<code>fits</code> in report.json says which).</li>
<li><b>Noise</b> (HDBSCAN): the fraction of atoms HDBSCAN leaves in no cluster.</li>
<li><b>ARI</b>: adjusted Rand index between the labelling and those of other seeds on the
sample: 1 = the clustering is reproducible, near 0 = it is arbitrary.</li>
<li>In the per-cluster histograms a cluster is <span style="color:#2e9a3c">green</span> when
its forces differ significantly from the rest (p &lt; alpha), <span style="color:#c8332b">red</span>
when not; the grey bars are the rest.</li>
</ul>
"""


_READOUT_GUIDE = """
<div class='guide'><b>How to read the readout.</b>
<ul>
<li><b>R&sup2;</b> = the share of the force variance predicted on structures the model has not
seen: the structures are split into folds, each fold's forces are predicted by a model fitted on
the other folds, and R&sup2; = 1 &minus; (sum of squared errors) / (sum of squares of the forces
about their mean).  1 = the descriptors determine the forces; 0 = no better than the mean force.
A network force is linear in the dG rows with weights that depend on G, so a high R&sup2; of the
<b>linear</b> tier (one weight vector shared by x, y and z) says a potential built on these
descriptors can reproduce the forces.</li>
<li><b>95 % interval</b>: the uncertainty of R&sup2; from resampling the structures.</li>
<li><b>Null</b>: R&sup2; of the same model fitted to shuffled forces (no link to the
descriptors).  It should be &asymp; 0; R&sup2; must stand well above it.</li>
<li><b>RMSE</b> and <b>force std</b>: the held-out error against the spread of the forces
(in the store's force unit); RMSE / std = &radic;(1 &minus; R&sup2;).</li>
<li><b>&lambda;</b>: the ridge penalty, chosen by cross-validation on a log grid.</li>
<li><b>G-weighted</b> tier: the dG features times [1, G of the atom], a network force
linearised in &part;E/&part;G; above the linear tier when the weights must vary with the
environment.</li>
<li><b>Potential tiers</b> (stores computed with <code>--force-matching</code>): force matching
with the best linear (E = &Sigma;<sub>j</sub> w<sub>e<sub>j</sub></sub>&middot;G<sub>j</sub>) and
quadratic potential in these SFs, one joint fit over every element, from the features
&Sigma;<sub>j</sub> &part;G<sub>j</sub>/&part;r<sub>i</sub> over <i>all</i> neighbours.  A network
with these SFs can do at least as well: a lower bound on what training can reach.  Element
<i>all</i> pools every atom and also gives the held-out R&sup2; of the structure energies the
fitted potential predicts (up to a constant per element).</li>
<li><b>k-NN reference</b>: a nonlinear regression on a sample of atoms, held out by structure.
It is a nonlinear reference to compare with, not the headline: in many dimensions with few atoms it can fall far below the linear tier, which knows that a force is linear in dG.</li>
<li><b>Learning curve</b>: R&sup2; with 10 %, 30 % and 100 % of the structures.  Still rising at
100 %: more data would help; flat: the descriptors, not the data, limit the readout.  For
coarse-grained forces the part not predicted includes thermal noise that no descriptor of the
beads can resolve.</li>
</ul></div>
"""


def _readout_html(report, readout_files) -> list:
    esc = html.escape
    out = ["<h2>Force readout: do the descriptors determine the forces?</h2>", _READOUT_GUIDE]
    entries = report.get("readout") or []
    if not entries:
        note = report.get("readout_note") or "no readout in this report"
        out.append(f"<p class='note'>The readout was not computed: {esc(note)}.</p>")
        return out
    for e in readout_elements(report):
        ents = [r for r in entries if r["element"] == e]
        n_atoms = (report.get("store", {}).get("n_rows") or {}).get(e)
        n_s = max((r.get("n_structures") or 0 for r in ents), default=0)
        atoms = "" if n_atoms is None else f"{n_atoms} atoms in "
        if e == "all":                      # the potential tiers' joint fit over every atom
            out.append(f"<h3>All elements together (the potential tiers' joint fit, {n_s} structures)</h3>")
            out += [f"<p>{esc(TIER_NAMES.get(r['tier'], r['tier']))}: held-out R&sup2; of the structure "
                    f"energies the fitted potential predicts (against the composition alone) "
                    f"<b>{_fmt(r.get('energy_r2'), '.3f')}</b>"
                    + (f" ({esc(r['energy_note'])})" if r.get("energy_note") else "") + "</p>"
                    for r in ents if r.get("tier", "").startswith("potential")]
        else:
            out.append(f"<h3>Element {esc(e)} ({atoms}{n_s} structures)</h3>")
        out.append("<table class='readout'><tr><th>tier</th><th>F</th><th>R&sup2;</th>"
                   "<th>95 % interval</th><th>null</th><th>RMSE</th><th>force std</th>"
                   "<th>&lambda;</th><th>rows / structures</th><th>folds</th><th>features</th>"
                   "<th>learning curve (share of structures: R&sup2;)</th></tr>")
        for r in ents:
            tier = esc(TIER_NAMES.get(r.get("tier"), str(r.get("tier"))))
            comps = esc(", ".join(r.get("components") or []))
            if r.get("skipped"):
                out.append(f"<tr><td>{tier}</td><td>{comps}</td><td colspan='10' class='skipped'>"
                           f"skipped: {esc(str(r['skipped']))}</td></tr>")
                continue
            band = ("n/a" if r.get("r2_low") is None or r.get("r2_high") is None
                    else f"{r['r2_low']:.3f}&ndash;{r['r2_high']:.3f}")
            lam = "n/a" if r.get("lambda") is None else format(r["lambda"], ".2g")
            out.append(
                f"<tr><td>{tier}</td><td>{comps}</td><td><b>{_fmt(r.get('r2'), '.3f')}</b></td>"
                f"<td>{band}</td><td>{_fmt(r.get('r2_null'), '.3f')}</td>"
                f"<td>{_fmt(r.get('rmse'), '.4g')}</td><td>{_fmt(r.get('force_std'), '.4g')}</td>"
                f"<td>{lam}</td><td>{r.get('n_rows', '')} / {r.get('n_structures', '')}</td>"
                f"<td>{r.get('folds', '')}</td><td>{r.get('n_features', '')}</td>"
                f"<td>{esc(_lc_text(r, ', ').replace('%:', ' %: '))}</td></tr>")
        out.append("</table>")
        out += _figures(readout_files, e)
    m = report.get("interactive_map") or {}
    out.append("<h3>Interactive map</h3>")
    if m.get("file"):
        out.append(
            f"<p><a href='{esc(m['file'])}'>{esc(m['file'])}</a>: {esc(m.get('note', ''))}, each a "
            "point (reference against predicted force, coloured by the residual); clicking a point "
            "shows the atom in its structure with the force arrows.  Open it by dragging the file "
            "onto <a href='https://chemiscope.org'>chemiscope.org</a>, or in Jupyter with "
            f"<code>chemiscope.show_input(\"{esc(m['file'])}\")</code>.</p>")
    else:
        out.append(f"<p class='note'>No chemiscope map: {esc(m.get('note') or 'not written')}.</p>")
    return out


_ADVICE_GUIDE = """
<div class='guide'><b>How to read the design advice.</b>  All of it comes from the statistics
of the readout above (linear tier, x, y, z pooled): the same folds, the same &lambda; of each
fold, no new pass over the store.
<ul>
<li><b>&Delta;R&sup2;</b> of a symmetry function = the held-out R&sup2; lost when that SF is
removed from input.nn: all of its columns go, in the atom's own block and in every neighbour
block where it appears.  Large: the forces need it.  &asymp; 0: the other SFs carry the same
information.  Negative (pale bars): the model does slightly better without it at this amount
of data.</li>
<li><b>Elimination</b>: the SFs are removed one at a time, each time the one whose removal costs
least in the worst element (an SF of X sits in the rows of every element that has X
neighbours), down to one SF per element.  The curve is R&sup2; of each element against the
number of SFs kept.</li>
<li><b>Suggested set</b>: the smallest set on that path whose R&sup2; stays within the
<b>tolerance</b> of the full set's for every element, written as <code>symfunction_short</code>
lines to paste in place of those in input.nn.  It is what the linear readout needs: compute a
store with it and analyse it (or compare both stores side by side) before training.</li>
<li><b>Neighbour saturation</b>: R&sup2; against the neighbour blocks kept for each neighbour
element (nearest first; the other pairs at their stored count).  The <b>knee</b> is the fewest
blocks within the tolerance of the full R&sup2;; the knees make the suggested
<code>--neighbors</code>, shown next to the survey's geometric suggestion (the neighbours every
atom has inside the cutoff) and what this store was computed with.  Only stored blocks can be
judged: a knee at the stored count says more blocks may still help.</li>
<li><b>Side by side</b> (several stores of the same data): R&sup2; of each store with its 95 %
interval, and &Delta;R&sup2; against the first store with a paired interval (the same folds and
the same groups of structures resampled for both): an interval that excludes 0 is a real
difference.</li>
</ul></div>
"""


def _pairs_text(report) -> str:
    els = list(report.get("store", {}).get("elements") or [])
    return ", ".join(f"{a}-{b}" for a in els for b in els)


def _img(title, f, level="h5") -> str:
    esc = html.escape
    return f"<{level}>{esc(title)}</{level}><img src='{esc(os.path.basename(f))}' alt='{esc(title)}'>"


def _advice_html(report, advice_files=()) -> list:
    """The "Design advice" subsection of the readout section."""
    esc = html.escape
    figs = {key: (title, f) for key, title, f in advice_files}
    imp = report.get("importance") or {}
    elim = report.get("elimination")
    sat = report.get("saturation")
    out = ["<h3 id='advice'>Design advice: which symmetry functions and how many neighbours do "
           "the forces need?</h3>"]
    if imp or elim or sat or report.get("comparison"):
        out.append(_ADVICE_GUIDE)
    if not (imp or elim or sat):
        switched_off = report.get("parameters", {}).get("advice") is False
        out.append("<p class='note'>No design advice in this report"
                   + (": switched off (<code>advice=False</code>, <code>--no-advice</code>)."
                      if switched_off else ".") + "</p>")
    if imp:
        out.append("<h4>Symmetry-function importance</h4>")
        for e in _ordered(imp, report):
            ent = imp[e]
            sfs = ent.get("sfs") or []
            top = ", ".join(f"{esc(str(d.get('label')))} ({_fmt(d.get('delta_r2'), '+.2g').strip()})"
                            for d in sfs[:3])
            out.append(f"<p><b>{esc(e)}</b>: R&sup2; with all {len(sfs)} SFs "
                       f"{_fmt(ent.get('r2_full'), '.3f')}; largest &Delta;R&sup2;: {top}.</p>")
            if f"importance/{e}" in figs:
                out.append(_img(*figs[f"importance/{e}"]))
            out.append(f"<details><summary>All {len(sfs)} SFs of the forces on {esc(e)}</summary>"
                       "<table class='readout'><tr><th>rank</th><th>SF</th><th>SF element</th>"
                       "<th>index</th><th>&Delta;R&sup2;</th><th>R&sup2; without it</th></tr>")
            for i, d in enumerate(sfs):
                out.append(f"<tr><td>{i + 1}</td><td style='text-align:left'>{esc(str(d.get('label')))}</td>"
                           f"<td>{esc(str(d.get('sf_element')))}</td><td>{d.get('sf_index')}</td>"
                           f"<td>{_fmt(d.get('delta_r2'), '+.3g')}</td>"
                           f"<td>{_fmt(d.get('r2_without'), '.4f')}</td></tr>")
            out.append("</table></details>")
    if elim:
        tol = elim.get("tolerance")
        full, sug = elim.get("r2_full") or {}, elim.get("r2_suggested") or {}
        out.append("<h4>Backward elimination and the suggested set</h4>")
        out.append(f"<p>Suggested: <b>{esc(_suggested_text(report))}</b>, the smallest set within "
                   f"{_fmt(tol, 'g').strip()} of the full R&sup2; for every element.</p>")
        out.append("<table class='readout'><tr><th>element</th><th>R&sup2; all SFs</th>"
                   "<th>R&sup2; suggested set</th><th>change</th></tr>")
        for e in _ordered(full, report):
            a, b = full.get(e), sug.get(e)
            d = None if a is None or b is None else b - a
            out.append(f"<tr><td>{esc(e)}</td><td>{_fmt(a, '.4f')}</td><td><b>{_fmt(b, '.4f')}</b></td>"
                       f"<td>{_fmt(d, '+.4f')}</td></tr>")
        out.append("</table>")
        if "elimination" in figs:
            out.append(_img(*figs["elimination"]))
        frag = elim.get("fragment")
        if frag:
            ff = elim.get("fragment_file")
            link = (f" (also in <a href='{esc(ff)}'>{esc(ff)}</a>, with a comment header)" if ff else "")
            out.append(f"<p>The suggested set as input.nn lines{link}: paste them in place of the "
                       "<code>symfunction_short</code> lines.</p>")
            out.append("<pre class='fragment'>" + esc("\n".join(frag)) + "</pre>")
        else:
            out.append("<p class='note'>No input.nn fragment: the store does not record its SF "
                       "settings.</p>")
        path = [st for st in elim.get("path") or [] if st.get("removed")]
        if path:
            els = _ordered(full, report)
            out.append(f"<details><summary>The order in which the SFs leave ({len(path)} steps)</summary>"
                       "<table class='readout'><tr><th>SFs left</th><th>removed</th><th>worst loss</th>"
                       + "".join(f"<th>R&sup2; {esc(e)}</th>" for e in els) + "</tr>")
            for st in path:
                r = st["removed"]
                out.append(f"<tr><td>{st.get('n_sf')}</td><td style='text-align:left'>"
                           f"{esc(str(r.get('label')))}</td><td>{_fmt(st.get('worst_loss'), '+.4f')}</td>"
                           + "".join(f"<td>{_fmt((st.get('r2') or {}).get(e), '.4f')}</td>" for e in els)
                           + "</tr>")
            out.append("</table></details>")
    if sat:
        out.append("<h4>Neighbour saturation</h4>")
        out.append(
            "<table class='readout'><tr><th>--neighbors</th><th>value</th></tr>"
            f"<tr><td>suggested (the knees, within {_fmt(sat.get('tolerance'), 'g').strip()})</td>"
            f"<td><b><code>{esc(str(sat.get('suggested_neighbors')))}</code></b></td></tr>"
            f"<tr><td>the survey's geometric suggestion</td>"
            f"<td><code>{esc(str(sat.get('survey_neighbors') or 'n/a'))}</code></td></tr>"
            f"<tr><td>this store was computed with</td>"
            f"<td><code>{esc(str(sat.get('stored_neighbors') or 'n/a'))}</code></td></tr></table>"
            f"<p class='note'>Pairs in the order {esc(_pairs_text(report))} (central-neighbour).</p>")
        els_sat = sat.get("elements") or {}
        out.append("<table class='readout'><tr><th>central</th><th>neighbour</th><th>blocks stored</th>"
                   "<th>knee</th><th>R&sup2; no blocks</th><th>R&sup2; at the knee</th>"
                   "<th>R&sup2; all stored</th><th></th></tr>")
        for e in _ordered(els_sat, report):
            for en in _ordered(els_sat[e], report):
                d = els_sat[e][en]
                curve = {c["blocks"]: c.get("r2") for c in d.get("curve") or []}
                flag = ("at the stored count: more blocks may help"
                        if d.get("stored") and d.get("knee") == d.get("stored") else "")
                out.append(f"<tr><td>{esc(e)}</td><td>{esc(en)}</td><td>{d.get('stored')}</td>"
                           f"<td><b>{d.get('knee')}</b></td><td>{_fmt(curve.get(0), '.4f')}</td>"
                           f"<td>{_fmt(curve.get(d.get('knee')), '.4f')}</td>"
                           f"<td>{_fmt(curve.get(d.get('stored')), '.4f')}</td>"
                           f"<td style='text-align:left'>{flag}</td></tr>")
        out.append("</table>")
        for e in _ordered(els_sat, report):
            if f"saturation/{e}" in figs:
                out.append(_img(*figs[f"saturation/{e}"]))
    out += _comparison_html(report, figs)
    return out


def _comparison_html(report, figs) -> list:
    esc = html.escape
    cmp_ = report.get("comparison")
    if not cmp_:
        return []
    out = ["<h4>Side by side: stores of the same data</h4>"]
    same = cmp_.get("same_data") or []
    stores = cmp_.get("stores") or []
    names = plots.store_labels(stores)
    out.append("<p>" + "; ".join(
        f"{esc(n)} = <code>{esc(s)}</code>" + ("" if i >= len(same) or same[i] else
                                               " (<b>different input data</b>: not paired)")
        for i, (n, s) in enumerate(zip(names, stores))) + ".</p>")
    out.append("<table class='readout'><tr><th>store</th><th>element</th><th>R&sup2;</th>"
               "<th>95 % interval</th><th>&Delta;R&sup2; vs first</th><th>paired 95 % interval</th>"
               "<th>features</th><th>note</th></tr>")
    for e in _ordered(cmp_.get("elements") or {}, report):
        for i, r in enumerate(cmp_["elements"][e]):
            name = names[stores.index(r["store"])] if r.get("store") in stores else str(r.get("store"))
            out.append(f"<tr><td style='text-align:left'>{esc(name)}</td><td>{esc(e)}</td>"
                       f"<td><b>{_fmt(r.get('r2'), '.4f')}</b></td><td>{_interval(r, 'r2')}</td>"
                       f"<td>{_fmt(r.get('delta_r2'), '+.4f')}</td><td>{_interval(r, 'delta', ' to ')}</td>"
                       f"<td>{r.get('n_features', '')}</td><td style='text-align:left'>"
                       f"{esc(_comparison_note(r, i, stores))}</td></tr>")
    out.append("</table>")
    if "comparison" in figs:
        out.append(_img(*figs["comparison"]))
    return out


def _comparison_note(r, i, stores) -> str:
    """The note of a comparison row: its own, or "reference" for the first store's."""
    if r.get("note"):
        return str(r["note"])
    return "reference" if i == 0 and stores and r.get("store") == stores[0] else ""


def _interval(r, prefix, dash="&ndash;", spec=None) -> str:
    """'lo-hi' of ``<prefix>_low`` and ``<prefix>_high`` of a comparison row."""
    lo, hi = r.get(f"{prefix}_low"), r.get(f"{prefix}_high")
    if lo is None or hi is None:
        return "n/a"
    spec = spec or ("+.4f" if prefix == "delta" else ".4f")
    return f"{lo:{spec}}{dash}{hi:{spec}}"


def _html(report, plot_files, analyzer, readout_files=(), advice_files=()) -> str:
    p = report["parameters"]
    esc = html.escape
    clusters_on = p.get("clusters_view", True) is not False
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>distatomenv analysis</title>",
           "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
           "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;"
           "text-align:right}img{max-width:100%;border:1px solid #eee;margin:4px 0}"
           "th{background:#eef2f7}table.readout td:first-child{text-align:left}"
           "td.skipped{text-align:left;color:#777}.note{color:#777}"
           ".guide{background:#f6f8fa;border-left:4px solid #1f5fa8;padding:2px 12px;font-size:14px}"
           "pre.fragment{background:#f6f8fa;border:1px solid #ddd;padding:6px 10px;font-size:13px;"
           "overflow-x:auto}details{margin:4px 0 10px}summary{cursor:pointer;color:#1f5fa8}"
           "</style></head><body>",
           "<h1>Descriptor analysis</h1>",
           f"<p>Store <code>{esc(report['store']['path'])}</code>; "
           f"distatomenv {esc(report['distatomenv_version'])}, {esc(report['created'])}.</p>"]
    out += _readout_html(report, readout_files)
    if report.get("readout"):
        out += _advice_html(report, advice_files)
    out.append("<h2>The n2p2 notebook's view</h2>")
    if not clusters_on:
        out.append("<p class='note'>The cluster view was switched off for this report.</p>")
    else:
        out.append(f"<p>Clusters in descriptor space, Welch's t-test of each cluster's forces "
                   f"against the rest: method <b>{esc(p['method'])}</b>; "
                   f"alpha {p['alpha']:.4g}; {p['permutations']} permutation rounds; "
                   f"standardize {p['standardize']}; seeds {p['stability_seeds']}.</p>")
        out.append(_GUIDE)
    if clusters_on and report.get("noise_handling"):
        out.append(f"<p><i>{esc(report['noise_handling'])}</i></p>")
    for e in (report["elements"] if clusters_on else []):
        out.append(f"<h3>Element {esc(e)} ({report['elements'][e]['n_rows']} atoms)</h3>")
        out.append("<table><tr><th>F</th><th>descriptor</th><th>k</th><th>significant</th>"
                   "<th>share</th><th>chance 95%</th><th>Holm</th><th>BH</th><th>&eta;&sup2;</th>"
                   "<th>&eta;&sup2; null</th><th>inertia</th><th>noise</th><th>ARI</th></tr>")
        for r in report["results"]:
            if r["element"] != e:
                continue
            band = "n/a" if r["null_low"] is None else f"{r['null_low']:.2f}&ndash;{r['null_high']:.2f}"
            out.append(
                f"<tr><td>{r['component']}</td><td>{r['descriptor']}</td><td>{r['k']}</td>"
                f"<td>{r['n_significant']}/{r['n_tested']}</td><td>{_fmt(r['significant_share'])}</td>"
                f"<td>{band}</td><td>{_fmt(r['significant_share_holm'])}</td>"
                f"<td>{_fmt(r['significant_share_bh'])}</td><td>{_fmt(r['eta2'], '.3f')}</td>"
                f"<td>{_fmt(r.get('eta2_null'), '.3f')}</td><td>{_fmt(r.get('inertia'), '.4g')}</td>"
                f"<td>{_fmt(r.get('noise_fraction'), '.1%')}</td>"
                f"<td>{_fmt(r['stability_ari'])}</td></tr>")
        out.append("</table>")
        out += _figures(plot_files, e)
    m = report.get("interactive_map") or {}
    out.append("<h2>Files</h2><ul><li><a href='report.json'>report.json</a> (every number, schema in "
               "the README)</li><li><a href='clusters.csv'>clusters.csv</a> (one row per cluster)</li>"
               + (f"<li><a href='{esc(m['file'])}'>{esc(m['file'])}</a> (the interactive map, for "
                  "chemiscope)</li>" if m.get("file") else "")
               + (f"<li><a href='{esc(ff)}'>{esc(ff)}</a> (the suggested SF set, input.nn lines)</li>"
                  if (ff := (report.get("elimination") or {}).get("fragment_file")) else "") + "</ul>")
    t = report["timings"]
    out.append("<p>Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()) + "</p>")
    out.append("</body></html>")
    return "\n".join(out)
