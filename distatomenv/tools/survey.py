"""The neighbour survey: how many neighbours do the atoms have, before compute?

``--neighbors`` must not ask for more neighbours of an element than some atom
has within the global maximum SF cutoff, or compute stops.  The survey reads
input.nn and input.data (structure by structure, from the index: memory does
not grow with the file) and reports, per element pair (central C, neighbour N):

* the histogram of the number of neighbour entries of element N that an atom
  of element C has within the cutoff (periodic images counted separately, as
  compute and n2p2 count them), its minimum, mean and maximum, and the
  suggested ``--neighbors`` (per pair the minimum: the largest value every
  atom satisfies);
* the radial distribution function g_CN(r) up to ``rmax`` (default: the
  cutoff), averaged over the periodic structures::

      g_CN(r_k) = sum_s n_CN,s(k) / sum_s N_C,s * rho_N,s * V_shell(k),
      rho_N,s = (N_N,s - [C == N]) / V_s,

  where n_CN,s(k) counts the entries of element N at distance in bin k around
  the atoms of element C in structure s and V_shell(k) = 4/3 pi (r_k+1^3 -
  r_k^3).  Non-periodic structures have no volume: they count towards the
  neighbour counts but not towards g(r).

Distances are in the length unit of input.data.  The counts are computed in
n2p2's normalised units exactly as compute does (positions, cell and cutoff
multiplied by conv_length), so an atom on the cutoff is counted the same way.

Python::

    survey = distatomenv.survey_neighbors("input.data")
    print(survey.table())
    survey.suggested            # e.g. "6 2 4 4"
    survey.write("neighbors-survey")   # neighbors.histo, rdf.dat, neighbors.png
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..descriptors.neighbors import cell_grid
from ..descriptors.rdf import count_histograms, rdf_ideal_counts, shell_volumes, survey_search
from ..descriptors.environment import check_neighbor_budget
from ..descriptors.spec import suggest_neighbors
from ..errors import DistatomenvError
from ..io.files import check_readable
from ..io.histo import NEIGHBORS_HISTO_NAME, pair_name, summarize_counts, write_neighbors_histo
from ..io.index import index_data
from ..io.inputdata import read_structure
from ..io.settings import read_settings
from ..parallel import set_threads

__all__ = ["NeighborSurvey", "survey_neighbors", "write_rdf", "plot_survey",
           "DEFAULT_SURVEY_BINS", "DEFAULT_SURVEY_DIR"]

DEFAULT_SURVEY_BINS = 200
DEFAULT_SURVEY_DIR = "neighbors-survey"
#: Structures with fewer atoms are surveyed on one thread (no parallel region).
PARALLEL_MIN_ATOMS = 4096
RDF_NAME = "rdf.dat"
PLOT_NAME = "neighbors.png"


@dataclass
class NeighborSurvey:
    """Result of :func:`survey_neighbors`.

    Attributes
    ----------
    elements : symbols, atomic-number order.
    cutoff : global maximum SF cutoff (length unit of input.data).
    counts : dict (central, neighbour) -> int64 (nmax + 1,): h[n] = atoms of the
        central element with exactly n neighbour entries of that element.
    atoms, min, mean, max : dicts per pair (None for min/mean/max where the
        central element has no atoms).
    min_at : dict per pair -> (structure, atom), both 1-based: the first atom
        (in file order) that has the minimum count; None where no atom.
    suggested : the ``--neighbors`` string (per pair the minimum).
    rmax : largest distance of g(r); edges float64 (bins + 1,), r float64
        (bins,) the bin centres.
    g : dict (central, neighbour) -> float64 (bins,), NaN where undefined (no
        periodic structure, or no other atom of the element); None when no
        structure is periodic.
    n_structures, n_atoms, n_periodic : what was surveyed.
    data, settings : the files read.
    """

    elements: list
    cutoff: float
    counts: dict
    atoms: dict
    min: dict
    mean: dict
    max: dict
    min_at: dict
    suggested: str
    rmax: float
    edges: np.ndarray
    r: np.ndarray
    g: dict | None
    n_structures: int
    n_atoms: int
    n_periodic: int
    data: str = ""
    settings: str = ""
    timings: dict = field(default_factory=dict)

    @property
    def pairs(self) -> list:
        """(central, neighbour) pairs in n2p2's row-major order."""
        return [(a, b) for a in self.elements for b in self.elements]

    def table(self) -> str:
        """The per-pair summary and the suggestion, as printed by the CLI."""
        lines = [f"neighbour entries within the cutoff {self.cutoff:g} (length unit of "
                 f"input.data; periodic images counted separately), {self.n_atoms} atoms in "
                 f"{self.n_structures} structure(s), {self.n_periodic} periodic",
                 f"{'pair':<10s} {'atoms':>10s} {'min':>6s} {'mean':>9s} {'max':>6s} "
                 f"{'suggested':>9s}  fewest at (structure, atom)"]
        for p in self.pairs:
            name = pair_name(*p)
            if not self.atoms[p]:
                lines.append(f"{name:<10s} {0:10d} {'-':>6s} {'-':>9s} {'-':>6s} {0:9d}")
                continue
            s, a = self.min_at[p]
            lines.append(f"{name:<10s} {self.atoms[p]:10d} {self.min[p]:6d} {self.mean[p]:9.2f} "
                         f"{self.max[p]:6d} {self.min[p]:9d}  {s}, {a}")
        lines.append(f'suggested: --neighbors "{self.suggested}"  (the most every atom has; '
                     "order " + ", ".join(pair_name(*p) for p in self.pairs) + ")")
        if self.g is None:
            lines.append("g(r): no periodic structure, so no radial distribution function "
                         "(it needs a volume)")
        elif self.n_periodic < self.n_structures:
            lines.append(f"g(r): averaged over the {self.n_periodic} periodic structure(s); "
                         f"{self.n_structures - self.n_periodic} non-periodic one(s) skipped")
        return "\n".join(lines)

    def write(self, directory, plot=True) -> dict:
        """Write ``neighbors.histo``, ``rdf.dat`` and (plot=True) ``neighbors.png``
        into ``directory`` (created if missing).  Returns {name: path}."""
        d = Path(os.fspath(directory))
        d.mkdir(parents=True, exist_ok=True)
        out = {NEIGHBORS_HISTO_NAME: d / NEIGHBORS_HISTO_NAME, RDF_NAME: d / RDF_NAME}
        write_neighbors_histo(out[NEIGHBORS_HISTO_NAME], self.elements, self.counts,
                              cutoff=self.cutoff)
        write_rdf(out[RDF_NAME], self)
        if plot:
            out[PLOT_NAME] = d / PLOT_NAME
            plot_survey(self, out[PLOT_NAME])
        return out


def _positive(value, name, kind=float):
    try:
        v = kind(value)
    except (TypeError, ValueError):
        raise DistatomenvError(f"{name} must be a positive number, got {value!r}") from None
    if not (v > 0) or not np.isfinite(v) or (kind is int and v != value):
        raise DistatomenvError(f"{name} must be a positive {'integer' if kind is int else 'number'}"
                               f", got {value!r}")
    return v


def survey_neighbors(data, settings=None, bins=DEFAULT_SURVEY_BINS, rmax=None, structures=None,
                     threads=None, progress=None) -> NeighborSurvey:
    """Count every atom's neighbours per element within the cutoff, and g(r).

    Parameters
    ----------
    data : input.data.
    settings : input.nn (default: input.nn beside ``data``); gives the
        elements, the cutoff (largest SF cutoff) and conv_length.
    bins : number of g(r) bins in [0, rmax).
    rmax : largest distance of g(r), length unit of input.data (default: the cutoff).
    structures : survey only the first N structures (default: all).
    threads : numba threads (default: all cores of this process).
    progress : callable (structures done, atoms done) called after each structure.

    Returns
    -------
    NeighborSurvey.  Raises DistatomenvError subclasses for missing or
    malformed files and bad options.
    """
    import time
    import numba

    t0 = time.perf_counter()
    data = os.fspath(data)
    bins = int(_positive(bins, "bins", int))
    if rmax is not None:
        rmax = _positive(rmax, "rmax")
    if structures is not None:
        structures = int(_positive(structures, "structures", int))
    check_readable(data, "input.data")
    settings_path = os.fspath(settings) if settings is not None else \
        os.fspath(Path(data).resolve().parent / "input.nn")
    check_readable(settings_path, "input.nn" if settings is not None else
                   "input.nn (the default: beside the data; give another with --settings)")
    st = read_settings(settings_path)
    elements = list(st.elements)
    n_el = len(elements)
    cutoff = float(st.sfset.max_cutoff())
    L = float(st.conv_length)
    rmax = cutoff if rmax is None else float(rmax)
    rc_n = st.sfset.max_cutoff() * L                 # as EnvironmentCalculator.rc_max
    rc2 = rc_n * rc_n
    dr_n = rmax * L / bins
    search = max(rc_n, rmax * L)
    edges = np.linspace(0.0, rmax, bins + 1)
    shells = shell_volumes(edges)

    nthreads = set_threads(threads)
    nchunk = 4 * nthreads
    index = index_data(data, elements)
    check_neighbor_budget(index.natoms, index.lattice, index.periodic, st.sfset,
                          settings_path=settings_path, data_path=data)
    t1 = time.perf_counter()
    n_total = index.n_structures if structures is None else min(structures, index.n_structures)
    hist = np.zeros((nchunk, n_el, n_el, bins), dtype=np.int64)
    ideal = np.zeros((n_el, n_el, bins))
    hists = None
    first_min = {}                    # (a, b) -> (count, structure, atom)
    n_atoms = n_periodic = 0
    lookup = {e: k for k, e in enumerate(elements)}
    for s in range(n_total):
        struct = read_structure(data, index, s)
        sym, inv = np.unique(struct.elements, return_inverse=True)
        elem = np.array([lookup[x] for x in sym], dtype=np.int64)[inv.ravel()]
        pos = struct.remapped_positions() * L
        lattice = None if struct.lattice is None else struct.lattice * L
        grid = cell_grid(pos, lattice, search)
        periodic = grid.periodic
        counts = np.zeros((struct.natoms, n_el), dtype=np.int64)
        # a parallel region costs more than it saves on a small structure
        numba.set_num_threads(1 if struct.natoms < PARALLEL_MIN_ATOMS else nthreads)
        try:
            survey_search(*grid, elem, rc2, dr_n, periodic, counts, hist)
        finally:
            numba.set_num_threads(nthreads)
        hists = count_histograms(counts, elem, n_el, hists)
        for a in range(n_el):
            idx = np.flatnonzero(elem == a)
            if idx.size == 0:
                continue
            for b in range(n_el):
                k = int(np.argmin(counts[idx, b]))
                c = int(counts[idx[k], b])
                if (a, b) not in first_min or c < first_min[(a, b)][0]:
                    first_min[(a, b)] = (c, s + 1, int(idx[k]) + 1)
        if periodic:
            n_periodic += 1
            nat = np.bincount(elem, minlength=n_el)
            ideal += rdf_ideal_counts(nat, abs(np.linalg.det(struct.lattice)), shells)
        n_atoms += struct.natoms
        if progress is not None:
            progress(s + 1, n_atoms)
    t2 = time.perf_counter()

    counts_by_name, atoms, mins, means, maxs, min_at = {}, {}, {}, {}, {}, {}
    for a in range(n_el):
        for b in range(n_el):
            p = (elements[a], elements[b])
            h = hists[(a, b)] if hists is not None else np.zeros(0, dtype=np.int64)
            counts_by_name[p] = h
            atoms[p], mins[p], means[p], maxs[p] = summarize_counts(h)
            min_at[p] = first_min[(a, b)][1:] if (a, b) in first_min else None
    suggested = suggest_neighbors(mins, elements)
    g = None
    if n_periodic:
        total = hist.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(ideal > 0, total / np.where(ideal > 0, ideal, 1.0), np.nan)
        g = {(elements[a], elements[b]): ratio[a, b] for a in range(n_el) for b in range(n_el)}
    return NeighborSurvey(
        elements=elements, cutoff=cutoff, counts=counts_by_name, atoms=atoms, min=mins,
        mean=means, max=maxs, min_at=min_at, suggested=suggested, rmax=rmax, edges=edges,
        r=0.5 * (edges[:-1] + edges[1:]), g=g, n_structures=n_total, n_atoms=n_atoms,
        n_periodic=n_periodic, data=os.path.abspath(data), settings=os.path.abspath(settings_path),
        timings={"index": t1 - t0, "survey": t2 - t1})


def write_rdf(path, survey: NeighborSurvey):
    """Write ``rdf.dat``: r (bin centre) and g(r) per pair, with a documented header.

    Without periodic structures the g columns are ``nan`` and the header says why.
    """
    names = [pair_name(*p) for p in survey.pairs]
    lines = [
        "# distatomenv radial distribution functions per element pair",
        "# format: distatomenv rdf 1",
        f"# elements: {' '.join(survey.elements)}",
        f"# cutoff: {survey.cutoff:.16E}",
        f"# rmax: {survey.rmax:.16E}",
        f"# bins: {survey.r.size}",
        f"# structures: {survey.n_structures} ({survey.n_periodic} periodic)",
        f"# columns: r {' '.join('g(' + n + ')' for n in names)}",
        "# r: bin centre, length unit of input.data; bin k is [k dr, (k+1) dr), dr = rmax / bins.",
        "# g(C<-N)(r): entries of element N (periodic images included) at distance r from the",
        "# atoms of element C, divided by the ideal-gas expectation N_C * rho_N * 4/3 pi",
        "# (r_k+1^3 - r_k^3) with rho_N = (N_N - [C == N]) / V, both summed over the periodic",
        "# structures (a weighted average). nan: undefined (no other atom of N).",
    ]
    if survey.g is None:
        lines.append("# No structure is periodic: g(r) needs a volume, so every g column is nan.")
    elif survey.n_periodic < survey.n_structures:
        lines.append(f"# {survey.n_structures - survey.n_periodic} non-periodic structure(s) "
                     "are not in g(r).")
    lines.append("#" + f"{'r':>23s}" + "".join(f" {'g(' + n + ')':>24s}" for n in names))
    for k in range(survey.r.size):
        vals = [survey.g[p][k] if survey.g is not None else np.nan for p in survey.pairs]
        lines.append(f"{survey.r[k]:24.16E}" + "".join(
            f" {v:24.16E}" if np.isfinite(v) else f" {'nan':>24s}" for v in vals))
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def plot_survey(survey: NeighborSurvey, path):
    """PNG with two panels: g(r) per pair (cutoff marked) and the neighbour-count
    histograms per pair (suggested minimum marked).  Uses the Agg canvas only."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax_g, ax_n = fig.subplots(1, 2)
    colors = [f"C{k % 10}" for k in range(len(survey.pairs))]
    if survey.g is not None:
        for p, c in zip(survey.pairs, colors):
            ax_g.plot(survey.r, survey.g[p], color=c, lw=1.2, label=pair_name(*p))
        ax_g.axhline(1.0, color="0.6", lw=0.8, ls=":")
    else:
        ax_g.text(0.5, 0.5, "no periodic structure:\ng(r) needs a volume", ha="center",
                  va="center", transform=ax_g.transAxes)
    if survey.cutoff <= survey.rmax:
        ax_g.axvline(survey.cutoff, color="k", ls="--", lw=1, label=f"cutoff {survey.cutoff:g}")
    ax_g.set_xlim(0, survey.rmax)
    ax_g.set_xlabel("r (length unit of input.data)")
    ax_g.set_ylabel("g(r)")
    ax_g.set_title(f"radial distribution ({survey.n_periodic} periodic structure(s))")
    ax_g.legend(fontsize="small")
    for p, c in zip(survey.pairs, colors):
        h = survey.counts[p]
        if not survey.atoms[p]:
            continue
        n = np.arange(h.size)
        ax_n.step(n, h / h.sum(), where="mid", color=c,
                  label=f"{pair_name(*p)} (min {survey.min[p]})")
        ax_n.axvline(survey.min[p], color=c, ls="--", lw=1)
    shown = [p for p in survey.pairs if survey.atoms[p]]
    if shown:
        ax_n.set_xlim(max(0, min(survey.min[p] for p in shown) - 3),
                      max(survey.max[p] for p in shown) + 3)
    ax_n.set_xlabel("neighbour entries within the cutoff")
    ax_n.set_ylabel("fraction of central atoms")
    ax_n.set_title(f'neighbour counts; suggested --neighbors "{survey.suggested}"')
    ax_n.legend(fontsize="small")
    fig.savefig(path, dpi=110)
