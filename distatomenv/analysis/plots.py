"""PNG plots of an analysis (matplotlib, Agg backend; no display needed).

Each function takes a fitted :class:`~.analyze.Analyzer` (or its pieces)
and a file name, draws one figure and returns the file name.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_forces", "plot_cluster_histograms", "plot_share", "plot_map", "plot_parity",
           "plot_learning_curve", "plot_importance", "plot_elimination", "plot_saturation",
           "plot_comparison"]

SIG_COLOR = "#2e9a3c"      # green: cluster forces differ from the rest
NONSIG_COLOR = "#c8332b"   # red: they do not
REST_COLOR = "#7f7f7f"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _force_name(comp) -> str:
    """"Fx" for a Cartesian component, "|F|" for the magnitude ("norm")."""
    return "|F|" if comp == "norm" else f"F{comp}"


def _k_axis(ax, ks, max_labels: int = 12):
    """x axis of a sweep over k: the k values as plain tick labels at evenly
    spaced positions (a log axis crowds 100, 150, 200 and labels its own
    decades instead); returns the positions to plot at.  With more than
    ``max_labels`` values every m-th is labelled (first and last kept)."""
    from matplotlib.ticker import NullLocator

    ks = [int(k) for k in ks]
    x = np.arange(len(ks), dtype=float)
    ax.set_xticks(x)
    step = max(1, int(np.ceil(len(ks) / max_labels)))
    ax.set_xticklabels([str(k) if (i % step == 0 or i == len(ks) - 1) else ""
                        for i, k in enumerate(ks)])
    ax.xaxis.set_minor_locator(NullLocator())
    if len(ks) == 1:
        ax.set_xlim(-1.0, 1.0)
    else:
        ax.set_xlim(-0.4, len(ks) - 0.6)
    return x


def _density(counts, edges):
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    width = np.diff(edges)
    return counts / (total * width) if total > 0 else counts


def plot_forces(element, hists, filename):
    """Distribution of each force component of ``element``.

    hists : list of (component name, edges (bins+1,), counts (bins,))
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(hists), figsize=(4.2 * len(hists), 3.4), squeeze=False)
    for ax, (comp, edges, counts) in zip(axes[0], hists):
        ax.stairs(_density(counts, edges), edges, fill=True, color="#4878a8", alpha=0.85)
        ax.set_xlabel(_force_name(comp))
        ax.set_ylabel("density")
        what = "force magnitude |F|" if comp == "norm" else f"force {comp}"
        ax.set_title(f"{element}: {what} ({int(counts.sum())} atoms)")
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


def plot_cluster_histograms(entry, edges, counts, filename, max_panels: int = 30):
    """Each cluster's force histogram against the rest's (densities), green
    where the cluster differs significantly (p < alpha), red where not.

    entry : a ``results`` entry (clusters with id, size, p, significant)
    counts : (groups, bins) histogram of the same clustering (noise last for HDBSCAN)
    """
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    clusters = [c for c in entry["clusters"] if c["size"] > 0]
    clusters.sort(key=lambda c: -c["size"])
    shown = clusters[:max_panels]
    if entry.get("noise") and entry["noise"]["size"] > 0:
        shown = shown + [entry["noise"]]
    ncol = min(5, max(1, len(shown)))
    nrow = max(1, int(np.ceil(len(shown) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 2.3 * nrow), squeeze=False,
                             sharex=True)
    total = counts.sum(axis=0)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, c in zip(axes.ravel(), shown):
        ax.set_visible(True)
        row = counts[-1] if c["id"] == -1 else counts[c["id"]]
        rest = total - row
        if c["id"] == -1:
            color = REST_COLOR
        else:
            color = SIG_COLOR if c["significant"] else NONSIG_COLOR
        ax.stairs(_density(rest, edges), edges, fill=True, color=REST_COLOR, alpha=0.35, label="rest")
        ax.stairs(_density(row, edges), edges, color=color, lw=1.6, label="cluster")
        p = c["p"]
        ptxt = "p n/a" if p is None else f"p={p:.1e}"
        name = "noise" if c["id"] == -1 else f"cluster {c['id']}"
        ax.set_title(f"{name} (n={c['size']})\n{ptxt}", fontsize=8, color=color)
        ax.set_yticks([])                       # densities: the shapes matter, not the numbers
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=7, labelbottom=True)
    hidden = len(clusters) - min(len(clusters), max_panels)
    note = f" (the {hidden} smallest clusters not shown)" if hidden > 0 else ""
    fig.suptitle(f"{entry['element']} {_force_name(entry['component'])} by {entry['descriptor']} clusters, "
                 f"k={entry['k']}: {entry['n_significant']}/{entry['n_tested']} significant{note}",
                 fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=1 - 0.9 / (2.3 * nrow),
                        hspace=0.75, wspace=0.3)
    fig.savefig(filename, dpi=80)
    plt.close(fig)
    return filename


def plot_share(element, entries, alpha, filename):
    """Significant share against k for each component of ``element``, with
    the permutation band (chance level) and the Holm-corrected share."""
    plt = _plt()
    comps = sorted({(e["component"], e["descriptor"]) for e in entries})
    fig, axes = plt.subplots(1, len(comps), figsize=(4.4 * len(comps), 3.6), squeeze=False)
    for ax, (comp, desc) in zip(axes[0], comps):
        es = sorted((e for e in entries if e["component"] == comp and e["descriptor"] == desc),
                    key=lambda e: e["k"])
        k = _k_axis(ax, [e["k"] for e in es])      # positions; the labels are the k values
        share = np.array([np.nan if e["significant_share"] is None else e["significant_share"] for e in es])
        holm = np.array([np.nan if e["significant_share_holm"] is None else e["significant_share_holm"]
                         for e in es])
        lo = np.array([np.nan if e["null_low"] is None else e["null_low"] for e in es])
        hi = np.array([np.nan if e["null_high"] is None else e["null_high"] for e in es])
        if np.isfinite(lo).any():
            if len(k) > 1:
                ax.fill_between(k, lo, hi, color="#bbbbbb", alpha=0.6, label="chance (permutation 95%)")
            else:
                ax.errorbar(k, 0.5 * (lo + hi), yerr=0.5 * (hi - lo), fmt="none", ecolor="#999999",
                            capsize=6, label="chance (permutation 95%)")
        ax.plot(k, share, "o-", color="#1f5fa8", label=f"p < {alpha:.2g}")
        ax.plot(k, holm, "s--", color="#d07a12", ms=4, label="Holm-corrected")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("number of clusters k (the sweep, evenly spaced)")
        ax.set_ylabel("share of clusters significant")
        ax.set_title(f"{element}: {_force_name(comp)} vs {desc}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


def plot_map(element, descriptor, mp, key, filename):
    """The sample in the first two principal components of descriptor space
    (and t-SNE when computed), coloured by cluster (noise grey)."""
    plt = _plt()
    labels = np.asarray(mp["labels"][key])
    panels = [("PCA", mp["pca"], labels)]
    if "tsne" in mp:
        panels.append(("t-SNE", mp["tsne"], labels[mp["tsne_index"]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    for ax, (name, xy, lab) in zip(axes[0], panels):
        noise = lab < 0
        if noise.any():
            ax.scatter(xy[noise, 0], xy[noise, 1], s=3, c="#bbbbbb", label="noise", rasterized=True)
        ax.scatter(xy[~noise, 0], xy[~noise, 1], s=3, c=lab[~noise], cmap="tab20", rasterized=True)
        if name == "PCA":
            ev = mp.get("pca_explained", [np.nan, np.nan])
            ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f} % of variance)")
            ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f} % of variance)")
        else:
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
        kname = "HDBSCAN" if key == "hdbscan" else f"k={key}"
        ax.set_title(f"{element} {descriptor}: {len(lab)} sampled rows, {kname}", fontsize=9)
        if noise.any():
            ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


#: Colours of the force components in the parity plot.
COMPONENT_COLORS = {"x": "#1f5fa8", "y": "#d07a12", "z": "#2e9a3c"}
#: Line styles of the readout tiers in the learning-curve plot.
#: (per-component fits: thin dotted lines in the component's colour)
TIER_STYLES = {"linear": ("o-", "#222222"), "g_weighted": ("s-", "#8c2d9c"),
               "reference_knn": ("^--", "#7f7f7f")}


def sample_r2(forces, predicted):
    """R² of ``predicted`` against ``forces`` (both (m, 3), force units), the
    three components pooled as the readout pools them: 1 - SS_res / SS_tot,
    SS_tot about the mean of all values (``r2_score`` of the pooled rows).
    None when undefined (fewer than 2 rows, no variance)."""
    f = np.asarray(forces, dtype=np.float64).reshape(len(forces), -1)
    p = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)
    ok = np.isfinite(f).all(axis=1) & np.isfinite(p).all(axis=1)
    f, p = f[ok], p[ok]
    if len(f) < 2:
        return None
    ss_tot = float(((f - f.mean()) ** 2).sum())
    if ss_tot <= 0:
        return None
    return 1.0 - float(((f - p) ** 2).sum()) / ss_tot


def plot_parity(element, sample, filename, r2=None, max_points: int = 20000):
    """Held-out predicted force against the reference force of a sample of
    atoms of ``element``, the three components in one panel, with the
    diagonal (a perfect readout).

    sample : dict with ``forces`` (m, 3) and ``predicted`` (m, 3), force units
        (the held-out prediction: each atom predicted by the fold that did not
        see its structure)
    r2 : float or None
        The cross-validated R² of the tier the prediction comes from, shown in
        the title with the R² of the points drawn.
    """
    plt = _plt()
    f = np.asarray(sample["forces"], dtype=np.float64).reshape(-1, 3)
    p = np.asarray(sample["predicted"], dtype=np.float64).reshape(-1, 3)
    m = len(f)
    if m > max_points:                      # deterministic thinning
        keep = np.linspace(0, m - 1, max_points).astype(np.intp)
        f, p = f[keep], p[keep]
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    alpha = 0.6 if len(f) < 2000 else 0.25
    for j, comp in enumerate("xyz"):
        ax.scatter(f[:, j], p[:, j], s=4, alpha=alpha, color=COMPONENT_COLORS[comp],
                   label=f"F{comp}", rasterized=True, linewidths=0)
    vals = np.concatenate([f.ravel(), p.ravel()])
    vals = vals[np.isfinite(vals)]
    if len(vals):
        lo, hi = float(vals.min()), float(vals.max())
        pad = 0.03 * (hi - lo) if hi > lo else 1.0
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = -1.0, 1.0
    ax.plot([lo, hi], [lo, hi], "-", color="black", lw=1, label="predicted = true")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("reference force")
    ax.set_ylabel("predicted force (held out by structure)")
    rs = sample_r2(f, p)
    parts = []
    if r2 is not None:
        parts.append(f"CV R² = {r2:.3f}")
    parts.append("sample R² = n/a" if rs is None else f"sample R² = {rs:.3f}")
    ax.set_title(f"{element}: held-out parity ({m} atoms)\n" + ", ".join(parts), fontsize=10)
    ax.grid(alpha=0.3)
    leg = ax.legend(fontsize=7, loc="upper left", markerscale=3)
    for h in getattr(leg, "legend_handles", getattr(leg, "legendHandles", [])):
        h.set_alpha(1.0)
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


def plot_learning_curve(element, entries, filename):
    """Cross-validated R² against the fraction of the structures used for
    training, one line per readout tier (and components) that has a learning
    curve.  A curve still rising at 100 % says more data would help.

    entries : ``readout`` entries of ``element`` (dicts with ``tier``,
        ``components`` and ``learning_curve`` = list of {fraction, r2})
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    fractions = set()
    drawn = 0
    for e in entries:
        lc = [pt for pt in (e.get("learning_curve") or []) if pt.get("fraction") is not None]
        if not lc:
            continue
        lc.sort(key=lambda pt: pt["fraction"])
        x = np.array([100.0 * pt["fraction"] for pt in lc])
        y = np.array([np.nan if pt.get("r2") is None else pt["r2"] for pt in lc], dtype=float)
        fractions.update(x.tolist())
        style, color = TIER_STYLES.get(e.get("tier"), ("o-", None))
        comps = "".join(e.get("components") or [])
        label = f"{e.get('tier')} ({'F' + comps if len(comps) == 1 else 'x,y,z pooled'})"
        if len(comps) == 1:                 # per-component fits: thin, coloured by component
            ax.plot(x, y, style[0] + ":", color=COMPONENT_COLORS.get(comps, color), label=label,
                    ms=3, lw=1)
        else:
            ax.plot(x, y, style, color=color, label=label, ms=5, lw=2)
        drawn += 1
    ax.axhline(0.0, color="#999999", lw=0.8)
    if fractions:
        ticks = sorted(fractions)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_xlabel("structures used for training (%)")
    ax.set_ylabel("held-out R²")
    ax.set_title(f"{element}: learning curve", fontsize=10)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no learning curve computed", ha="center", va="center",
                transform=ax.transAxes, color="#777777")
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


# ----------------------------------------------------------------------------- design advice
#: Colours of elements (SF elements, central elements, neighbour elements) in
#: the design-advice plots, in the order the elements are listed.
ELEMENT_COLORS = ["#1f5fa8", "#d07a12", "#2e9a3c", "#8c2d9c", "#c8332b", "#17a2b8", "#7f7f7f",
                  "#b5a000"]


def _num(x) -> float:
    """A float for plotting (None -> NaN)."""
    return np.nan if x is None else float(x)


def _color(i: int) -> str:
    return ELEMENT_COLORS[i % len(ELEMENT_COLORS)]


def _element_order(elements) -> list:
    """Elements in atomic-number order (unknown symbols last, alphabetically),
    so that an element has the same colour in every plot."""
    from distatomenv.elements import ATOMIC_NUMBER

    return sorted((e for e in elements if e is not None),
                  key=lambda e: (ATOMIC_NUMBER.get(e, 10 ** 6), str(e)))


def store_labels(paths) -> list:
    """Short names of stores for legends: "1: name.zarr", with the parent
    folder added where two names would read the same."""
    import os

    paths = [os.fspath(p).rstrip("/\\") for p in paths]
    base = [os.path.basename(p) or p for p in paths]
    out = []
    for i, (p, b) in enumerate(zip(paths, base)):
        if base.count(b) > 1:
            parent = os.path.basename(os.path.dirname(p))
            b = f"{parent}/{b}" if parent else b
        out.append(f"{i + 1}: {b}")
    return out


def plot_importance(element, entry, filename, max_bars: int = 30):
    """ΔR² of each symmetry function for the forces on ``element``: the held-out
    R² of the linear readout lost when that SF is removed from input.nn,
    largest first, bars coloured by the SF's element, labelled with its
    parameters (the ``max_bars`` largest when there are more).

    entry : ``importance[element]`` of report.json ({"r2_full", "sfs": [{sf_element,
        sf_index, label, r2_without, delta_r2}, ...]})
    """
    plt = _plt()
    sfs = sorted(entry.get("sfs") or [], key=lambda d: -_num(d.get("delta_r2"))
                 if d.get("delta_r2") is not None else np.inf)
    n_all = len(sfs)
    shown = sfs[:max_bars]
    n = len(shown)
    fig, ax = plt.subplots(figsize=(8.8, 1.3 + 0.24 * max(n, 3)))
    sf_elements = _element_order({d.get("sf_element") for d in sfs})
    y = np.arange(n)[::-1]                    # the largest at the top
    vals = np.array([_num(d.get("delta_r2")) for d in shown], dtype=float)
    colors = [_color(sf_elements.index(d.get("sf_element"))) for d in shown]
    bars = ax.barh(y, np.nan_to_num(vals), color=colors, height=0.7)
    for b, v in zip(bars, vals):
        if np.isfinite(v) and v < 0:            # removing it helps: pale
            b.set_alpha(0.45)
    ax.set_yticks(y)
    ax.set_yticklabels([str(d.get("label", "?")) for d in shown], fontsize=7)
    ax.axvline(0.0, color="black", lw=0.8)
    finite = vals[np.isfinite(vals)]
    span = float(np.ptp(np.append(finite, 0.0))) if len(finite) else 1.0
    span = span if span > 0 else 1.0
    for yi, v in zip(y, vals):
        if np.isfinite(v):
            ax.text(v + (0.01 if v >= 0 else -0.01) * span, yi, f"{v:+.2g}", va="center",
                    ha="left" if v >= 0 else "right", fontsize=6, color="#333333")
    if len(finite):
        lo, hi = min(0.0, float(finite.min())), max(0.0, float(finite.max()))
        ax.set_xlim(lo - (0.14 if lo < 0 else 0.02) * span, hi + 0.14 * span)
    if n:
        ax.set_ylim(-0.7, n - 0.3)
    from matplotlib.patches import Patch

    handles = [Patch(color=_color(i), label=f"SF of {x}") for i, x in enumerate(sf_elements)]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_xlabel("ΔR²: held-out R² lost when the SF is removed (linear tier, x, y, z pooled)",
                  fontsize=8)
    r2 = entry.get("r2_full")
    which = f"the {n} largest of {n_all} SFs" if n < n_all else f"{n_all} SFs"
    r2txt = "" if r2 is None else f"; R² with all SFs {r2:.3f}"
    ax.set_title(f"Forces on {element}: importance of each symmetry function\n({which}{r2txt})",
                 fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    if not n:
        ax.text(0.5, 0.5, "no symmetry functions", ha="center", va="center",
                transform=ax.transAxes, color="#777777")
    fig.tight_layout()
    fig.savefig(filename, dpi=90, bbox_inches="tight")      # long SF labels: keep them whole
    plt.close(fig)
    return filename


def plot_elimination(elim, filename):
    """The greedy backward elimination: held-out R² of each element against
    the number of symmetry functions kept (all on the left, one per element on
    the right), each element's tolerance band below its full R², and the
    suggested size marked.  Two panels: the whole path, and zoomed on the band.

    elim : ``elimination`` of report.json ({"tolerance", "path": [{n_sf, r2: {element: r2}}],
        "suggested": {element: [SF indices]}, "r2_full": {element: r2}})
    """
    plt = _plt()
    path = sorted(elim.get("path") or [], key=lambda st: -st["n_sf"])
    full = elim.get("r2_full") or (path[0]["r2"] if path else {})
    elements = _element_order(full)
    tol = elim.get("tolerance")
    tol = 0.0 if tol is None else float(tol)
    n_sug = sum(len(v) for v in (elim.get("suggested") or {}).values())
    x = np.array([st["n_sf"] for st in path], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0), squeeze=False)
    allv = []
    for panel, ax in enumerate(axes[0]):
        for i, e in enumerate(elements):
            yv = np.array([_num((st.get("r2") or {}).get(e)) for st in path], dtype=float)
            allv.extend(yv[np.isfinite(yv)].tolist())
            f = _num(full.get(e))
            if np.isfinite(f):
                ax.axhspan(f - tol, f, color=_color(i), alpha=0.12, lw=0)
                ax.axhline(f - tol, color=_color(i), ls=":", lw=0.9)
            ax.plot(x, yv, "o-", color=_color(i), ms=3 if len(x) < 60 else 1.5, lw=1.5,
                    label=f"{e} (all SFs: {f:.3f})" if np.isfinite(f) else e)
        if n_sug:
            ax.axvline(n_sug, color="black", ls="--", lw=1,
                       label=f"suggested: {n_sug} SFs (within {tol:g} of the full R²)")
        if len(x):
            ax.set_xlim(x.max() + 0.5, max(x.min() - 0.5, 0.0))      # SFs leave left to right
        ax.set_xlabel("symmetry functions kept (all elements)")
        ax.set_ylabel("held-out R² (linear tier)")
        ax.grid(alpha=0.3)
    fulls = [_num(v) for v in full.values() if v is not None]
    if fulls and allv:
        lo = min(fulls) - 4 * max(tol, 1e-3)
        hi = max(max(allv), max(fulls)) + max(tol, 1e-3)
        axes[0][1].set_ylim(lo, hi)
    axes[0][0].set_title("Backward elimination: R² against the SFs kept", fontsize=9)
    axes[0][1].set_title("Zoomed on the tolerance band (shaded: within the tolerance)", fontsize=9)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


def plot_saturation(element, sat, filename, tolerance=None):
    """Held-out R² of the forces on ``element`` against the number of
    neighbour blocks kept (nearest first), one line per neighbour element
    (the other pairs at their stored count), the knee marked.

    sat : ``saturation["elements"][element]`` of report.json ({neighbour element:
        {"curve": [{blocks, r2}], "knee", "stored"}})
    tolerance : float, optional
        Draws the band below the full R² (the last point of each curve).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    xmax = 0
    full = np.nan
    for i, en in enumerate(_element_order(sat or {})):
        d = sat[en]
        curve = sorted(d.get("curve") or [], key=lambda c: c["blocks"])
        if not curve:
            continue
        xb = np.array([c["blocks"] for c in curve], dtype=float)
        yv = np.array([_num(c.get("r2")) for c in curve], dtype=float)
        xmax = max(xmax, int(xb.max()))
        ax.plot(xb, yv, "o-", color=_color(i), ms=4, lw=1.6,
                label=f"{element}-{en} neighbours (stored {d.get('stored')}, knee {d.get('knee')})")
        knee = d.get("knee")
        if knee is not None and knee in xb:
            ax.plot([knee], [yv[list(xb).index(knee)]], "*", color=_color(i), ms=15, mec="black",
                    mew=0.7, zorder=5)
        if not np.isfinite(full):
            full = yv[-1]                   # every curve ends at the full set
    if tolerance is not None and np.isfinite(full):
        ax.axhspan(full - tolerance, full, color="#999999", alpha=0.15, lw=0,
                   label=f"within {tolerance:g} of the full R²")
    if sat:
        ax.set_xticks(np.arange(0, xmax + 1))
        ax.plot([], [], "*", color="#555555", ms=12, mec="black", mew=0.7, ls="none",
                label="knee: fewest blocks within the tolerance")
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no neighbour blocks stored", ha="center", va="center",
                transform=ax.transAxes, color="#777777")
    ax.set_xlabel("neighbour blocks kept (nearest first)")
    ax.set_ylabel("held-out R² (linear tier)")
    ax.set_title(f"Forces on {element}: neighbour saturation", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename


def plot_comparison(comparison, filename):
    """Stores of the same data side by side: held-out R² of each element per
    store with its 95 % interval, and ΔR² against the first store with the
    paired interval (same folds, same groups of structures).

    comparison : ``comparison`` of report.json ({"stores", "elements": {element:
        [{store, r2, r2_low, r2_high, delta_r2, delta_low, delta_high}, ...]}})
    """
    plt = _plt()
    stores = list(comparison.get("stores") or [])
    labels = store_labels(stores)
    elements = list(comparison.get("elements") or {})
    ns = max(len(stores), 1)
    width = 0.7 / ns
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), squeeze=False)
    ax_r2, ax_d = axes[0]

    def bar(lo, mid, hi):
        return [[max(mid - lo, 0.0)], [max(hi - mid, 0.0)]] if np.isfinite([lo, mid, hi]).all() else None

    for j, (store, label) in enumerate(zip(stores, labels)):
        for i, e in enumerate(elements):
            rows = [r for r in comparison["elements"][e] if r.get("store") == store]
            if not rows:
                continue
            r = rows[0]
            xpos = i + (j - (ns - 1) / 2) * width
            mid = _num(r.get("r2"))
            err = bar(_num(r.get("r2_low")), mid, _num(r.get("r2_high")))
            ax_r2.errorbar([xpos], [mid], yerr=err, fmt="o", color=_color(j), capsize=4, ms=6,
                           label=label if i == 0 else None)
            if j > 0 and r.get("delta_r2") is not None:
                d = _num(r.get("delta_r2"))
                err = bar(_num(r.get("delta_low")), d, _num(r.get("delta_high")))
                ax_d.errorbar([xpos], [d], yerr=err, fmt="s", color=_color(j), capsize=4, ms=6,
                              label=label if i == 0 else None)
            elif j > 0 and r.get("note"):
                ax_d.annotate("unpaired", (xpos, 0.0), fontsize=7, color=_color(j), ha="center",
                              rotation=90, va="bottom")
    for ax in (ax_r2, ax_d):
        ax.set_xticks(np.arange(len(elements)))
        ax.set_xticklabels(elements)
        ax.set_xlim(-0.6, max(len(elements), 1) - 0.4)
        ax.set_xlabel("element")
        ax.grid(alpha=0.3, axis="y")
    ax_d.axhline(0.0, color="black", lw=0.8)
    ax_r2.set_ylabel("held-out R² (linear tier), 95 % interval")
    ax_d.set_ylabel(f"ΔR² against {labels[0] if labels else 'the first store'}")
    ax_r2.set_title("R² per element and store", fontsize=9)
    ax_d.set_title("ΔR² against the first store (paired 95 % interval)", fontsize=9)
    if stores:
        ax_r2.legend(fontsize=7, loc="lower left")
    if ax_d.get_legend_handles_labels()[0]:
        ax_d.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(filename, dpi=90)
    plt.close(fig)
    return filename
