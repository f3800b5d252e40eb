"""PNG plots of an analysis (matplotlib, Agg backend; no display needed).

Each function takes a fitted :class:`~.analyze.Analyzer` (or its pieces)
and a file name, draws one figure and returns the file name.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_forces", "plot_cluster_histograms", "plot_share", "plot_map"]

SIG_COLOR = "#2e9a3c"      # green: cluster forces differ from the rest
NONSIG_COLOR = "#c8332b"   # red: they do not
REST_COLOR = "#7f7f7f"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


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
        ax.set_xlabel(f"F{comp}")
        ax.set_ylabel("density")
        ax.set_title(f"{element}: force {comp} ({int(counts.sum())} atoms)")
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
    fig.suptitle(f"{entry['element']} F{entry['component']} by {entry['descriptor']} clusters, "
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
        k = np.array([e["k"] for e in es], dtype=float)
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
        if len(k) > 1 and k.max() / max(k.min(), 1) > 10:
            ax.set_xscale("log")
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel("share of clusters significant")
        ax.set_title(f"{element}: F{comp} vs {desc}")
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
