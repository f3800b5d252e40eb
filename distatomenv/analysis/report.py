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
           "AnalysisResult"]

REPORT_FORMAT = "distatomenv-analysis"
REPORT_VERSION = 1

CSV_FIELDS = ["element", "component", "descriptor", "method", "k", "cluster", "size", "mean", "std",
              "t", "df", "p", "p_holm", "p_bh", "hedges_g", "significant"]


class AnalysisResult:
    """What :func:`distatomenv.analyze` returns.

    Attributes
    ----------
    out_dir : str
    report : dict
        The content of report.json.
    results : list of dict
        ``report["results"]``: one entry per element, component and k.
    files : dict name -> path
        report.json, clusters.csv, report.html and every plot.
    timings : dict phase -> seconds
    analyzer : the fitted :class:`~distatomenv.analysis.Analyzer`
    """

    def __init__(self, out_dir, report, files, analyzer):
        self.out_dir = out_dir
        self.report = report
        self.results = report["results"]
        self.files = files
        self.timings = report["timings"]
        self.analyzer = analyzer

    def summary(self) -> str:
        """The concise table printed by the CLI."""
        return summary_table(self.report)

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
        "results": analyzer.results_,
        "timings": {k: round(v, 3) for k, v in analyzer.timings_.items()},
    }


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
                           ["" if c["significant"] is None else int(c["significant"])])


def _fmt(x, spec=".2f"):
    return "  n/a" if x is None else format(x, spec)


def summary_table(report) -> str:
    """One line per element, component and k: share, chance band, Holm share, eta2, ARI."""
    head = (f"{'element':<8} {'F':<2} {'descr':<5} {'k':>4} {'signif.':>9} {'share':>6} "
            f"{'chance 95%':>12} {'Holm':>6} {'eta2':>6} {'ARI':>5}")
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        band = ("n/a" if r["null_low"] is None
                else f"{r['null_low']:.2f}-{r['null_high']:.2f}")
        lines.append(
            f"{r['element']:<8} {r['component']:<2} {r['descriptor']:<5} {r['k']:>4} "
            f"{r['n_significant']:>4}/{r['n_tested']:<4} {_fmt(r['significant_share']):>6} "
            f"{band:>12} {_fmt(r['significant_share_holm']):>6} {_fmt(r['eta2'], '.3f'):>6} "
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
    key = analyzer.map_key()
    plot_files = []          # (section element, title, file)

    for e in report["elements"]:
        hs = []
        for comp in ("x", "y", "z"):
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

    report["plots"] = [os.path.basename(f) for _, _, f in plot_files]
    files["report.json"] = os.path.join(out_dir, "report.json")
    with open(files["report.json"], "w") as fh:
        json.dump(report, fh, indent=1, allow_nan=False)
    files["clusters.csv"] = os.path.join(out_dir, "clusters.csv")
    _write_csv(results, files["clusters.csv"])
    files["report.html"] = os.path.join(out_dir, "report.html")
    with open(files["report.html"], "w") as fh:
        fh.write(_html(report, plot_files, analyzer))
    for _, _, f in plot_files:
        files[os.path.basename(f)] = f
    return AnalysisResult(out_dir, report, files, analyzer)


_GUIDE = """
<h2>How to read this report</h2>
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
sum of squares / total).  It grows with k; compare it with the same k elsewhere.</li>
<li><b>ARI</b>: adjusted Rand index between the labelling and those of other seeds on the
sample: 1 = the clustering is reproducible, near 0 = it is arbitrary.</li>
<li>In the per-cluster histograms a cluster is <span style="color:#2e9a3c">green</span> when
its forces differ significantly from the rest (p &lt; alpha), <span style="color:#c8332b">red</span>
when not; the grey bars are the rest.</li>
</ul>
"""


def _html(report, plot_files, analyzer) -> str:
    p = report["parameters"]
    esc = html.escape
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>distatomenv analysis</title>",
           "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
           "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;"
           "text-align:right}img{max-width:100%;border:1px solid #eee;margin:4px 0}</style></head><body>",
           "<h1>Descriptor analysis</h1>",
           f"<p>Store <code>{esc(report['store']['path'])}</code>; method <b>{esc(p['method'])}</b>; "
           f"alpha {p['alpha']:.4g}; {p['permutations']} permutation rounds; "
           f"standardize {p['standardize']}; seeds {p['stability_seeds']}; "
           f"distatomenv {esc(report['distatomenv_version'])}, {esc(report['created'])}.</p>",
           _GUIDE]
    if report.get("noise_handling"):
        out.append(f"<p><i>{esc(report['noise_handling'])}</i></p>")
    for e in report["elements"]:
        out.append(f"<h2>Element {esc(e)} ({report['elements'][e]['n_rows']} atoms)</h2>")
        out.append("<table><tr><th>F</th><th>descriptor</th><th>k</th><th>significant</th>"
                   "<th>share</th><th>chance 95%</th><th>Holm</th><th>BH</th><th>&eta;&sup2;</th>"
                   "<th>ARI</th></tr>")
        for r in report["results"]:
            if r["element"] != e:
                continue
            band = "n/a" if r["null_low"] is None else f"{r['null_low']:.2f}&ndash;{r['null_high']:.2f}"
            out.append(
                f"<tr><td>{r['component']}</td><td>{r['descriptor']}</td><td>{r['k']}</td>"
                f"<td>{r['n_significant']}/{r['n_tested']}</td><td>{_fmt(r['significant_share'])}</td>"
                f"<td>{band}</td><td>{_fmt(r['significant_share_holm'])}</td>"
                f"<td>{_fmt(r['significant_share_bh'])}</td><td>{_fmt(r['eta2'], '.3f')}</td>"
                f"<td>{_fmt(r['stability_ari'])}</td></tr>")
        out.append("</table>")
        for pe, title, f in plot_files:
            if pe == e:
                out.append(f"<h3>{esc(title)}</h3><img src='{esc(os.path.basename(f))}' alt='{esc(title)}'>")
    out.append("<h2>Files</h2><ul><li><a href='report.json'>report.json</a> (every number, schema in "
               "the README)</li><li><a href='clusters.csv'>clusters.csv</a> (one row per cluster)</li></ul>")
    t = report["timings"]
    out.append("<p>Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()) + "</p>")
    out.append("</body></html>")
    return "\n".join(out)
