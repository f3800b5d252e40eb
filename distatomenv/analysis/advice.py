"""Design advice from the readout: which symmetry functions and how many
neighbours the forces need, and descriptor sets side by side.

Everything here comes from the statistics of the readout's one pass
(:class:`.readout.ReadoutStats`): dropping a feature is removing its rows and
columns of XᵀX and Xᵀy and solving a smaller system, with the same folds and
the same λ of each fold as the full linear tier.  No second pass over the
store.

A *feature* is one symmetry function of input.nn: SF ``s`` (n2p2's order) of
element ``X``.  In the dG rows of a central element ``e`` it owns one column
in the own block (when X = e) and one in every neighbour block of element X
where it is relevant; removing it removes all of them.

- :func:`importance`: per central element, the held-out ΔR² of the pooled
  linear tier when one SF is removed.
- :func:`elimination`: greedy backward elimination of all SFs at once (an
  SF of X sits in the rows of every element), judged by the worst element's
  loss of R², down to one SF per element; the suggested set is the smallest
  whose every element stays within ``tolerance`` of its full R².
- :func:`saturation`: per element pair, R² against the neighbour blocks kept
  (nearest first) and the knee.
- :func:`compare`: readouts of several stores of the same data, paired over
  the same groups of structures.
"""
from __future__ import annotations

import numpy as np

from distatomenv.errors import AnalysisError

from .readout import BOOTSTRAP_ROUNDS, group_sst

__all__ = ["ColumnMap", "HeldOut", "importance", "elimination", "saturation", "compare",
           "DEFAULT_TOLERANCE", "sf_line"]

#: R² a suggestion may lose against the full set.
DEFAULT_TOLERANCE = 0.01


class ColumnMap:
    """What every dG column of a central element's rows is.

    Attributes (arrays over the columns)
    ------------------------------------
    sf_element : int  index (store order) of the element whose SF the column is
    sf_index : int    the SF's index in n2p2's order within its element
    block_element : int  neighbour element of the column's block (-1: own block)
    block_rank : int     rank of the block within its neighbour element (0 nearest; -1 own)
    """

    def __init__(self, reader, element: str):
        els = list(reader.elements)
        a = els.index(element)
        env = (reader.meta or {}).get("environment")
        p = reader.layout.columns(element, "dGdx")
        if env:
            nsf, ncut, relevant = env["nsf"], env["ncut"], env["relevant"]
            cols = [(a, i, -1, -1) for i in range(int(nsf[a]))]
            for en in range(len(els)):
                for b in range(int(ncut[a][en])):
                    cols += [(en, int(s), en, b) for s in relevant[a][en]]
            self.ncut = {els[en]: int(ncut[a][en]) for en in range(len(els))}
        else:                                # no environment: own SFs only
            cols = [(a, i, -1, -1) for i in range(p)]
            self.ncut = {}
        if len(cols) != p:
            raise AnalysisError(f"{reader.path}: element {element}: the environment layout gives "
                                f"{len(cols)} dG columns, the store has {p}")
        c = np.array(cols, dtype=np.int64).reshape(-1, 4)
        self.sf_element, self.sf_index, self.block_element, self.block_rank = c.T
        self.elements = els

    def features(self) -> list[tuple[int, int]]:
        """The (SF element, SF index) pairs present, sorted."""
        return sorted(set(zip(self.sf_element.tolist(), self.sf_index.tolist())))

    def without(self, removed) -> np.ndarray:
        """Column indices kept when the (element, SF) pairs ``removed`` are dropped."""
        keep = np.ones(len(self.sf_element), bool)
        for x, s in removed:
            keep &= ~((self.sf_element == x) & (self.sf_index == s))
        return np.flatnonzero(keep)


class HeldOut:
    """Held-out SSE of the pooled linear tier on any subset of columns, from
    the readout's statistics, with each fold's λ fixed."""

    def __init__(self, stats, n_groups: int, n_levels: int, folds: int, lambda_folds):
        p = stats.p
        A = stats.A[0].reshape(n_groups, n_levels, p, p).sum(axis=1)
        b = stats.b[0].reshape(n_groups, n_levels, p).sum(axis=1)
        sc = {k: getattr(stats, k)[0].reshape(n_groups, n_levels).sum(axis=1) for k in ("yy", "sy", "n")}
        g_fold = np.arange(n_groups) % folds
        self.sst_groups = group_sst(sc["yy"], sc["sy"], sc["n"])
        self.sst = float(self.sst_groups.sum())
        self.folds = []
        for k in range(folds):
            tr, te = g_fold != k, g_fold == k
            self.folds.append({"A": A[tr].sum(axis=0), "b": b[tr].sum(axis=0), "n": float(sc["n"][tr].sum()),
                               "At": A[te].sum(axis=0), "bt": b[te].sum(axis=0),
                               "yy": float(sc["yy"][te].sum()), "lam": float(lambda_folds[k])})
        self.p = p

    @staticmethod
    def _system(f, keep):
        """Fold f's training system on the columns ``keep``, RMS-scaled, with
        its ridge penalty: (M, s), M v = (Xᵀy/n)/s, w = v/s."""
        ix = np.ix_(keep, keep)
        d = np.diag(f["A"])[keep] / f["n"]
        s = np.sqrt(np.where(d > 0, d, 1.0))
        M = f["A"][ix] / f["n"] / np.outer(s, s)
        M[np.diag_indices_from(M)] += f["lam"]
        return M, s

    def sse(self, keep) -> float:
        from scipy.linalg import cho_factor, cho_solve

        keep = np.asarray(keep)
        if keep.size == 0:
            return float(sum(f["yy"] for f in self.folds))
        total = 0.0
        ix = np.ix_(keep, keep)
        for f in self.folds:
            M, s = self._system(f, keep)
            v = cho_solve(cho_factor(M), f["b"][keep] / f["n"] / s)
            w = v / s
            total += f["yy"] - 2.0 * (w @ f["bt"][keep]) + w @ (f["At"][ix] @ w)
        return float(total)

    def r2(self, keep) -> float:
        return 1.0 - self.sse(keep) / self.sst

    def removal_sse(self, keep, removals) -> np.ndarray:
        """Held-out SSE after removing each of ``removals`` (arrays of
        positions within ``keep``) from the columns ``keep``.

        One factorisation per fold serves every removal: dropping the
        variables R from M v = r leaves v' = v − C[:, R] C[R, R]⁻¹ v[R]
        (C = M⁻¹) on the others.  O(p³ + m·p²) per fold for m removals,
        instead of O(m·p³).
        """
        from scipy.linalg import cho_factor, cho_solve

        keep = np.asarray(keep)
        out = np.zeros(len(removals))
        ix = np.ix_(keep, keep)
        for f in self.folds:
            M, s = self._system(f, keep)
            cf = cho_factor(M)
            C = cho_solve(cf, np.eye(len(keep)))
            v = C @ (f["b"][keep] / f["n"] / s)
            bt, At = f["bt"][keep] / s, f["At"][ix] / np.outer(s, s)      # test stats, scaled
            for i, R in enumerate(removals):
                R = np.asarray(R)
                if R.size == 0:
                    vv = v
                else:
                    vv = v - C[:, R] @ np.linalg.solve(C[np.ix_(R, R)], v[R])
                    vv[R] = 0.0
                out[i] += f["yy"] - 2.0 * (vv @ bt) + vv @ (At @ vv)
        return out


def _label(sf) -> str:
    return sf.describe() if sf is not None else "?"


def sf_line(sf) -> str:
    """The ``symfunction_short`` line of an SF in n2p2's notation."""
    from distatomenv.io.settings import format_sf_line

    return format_sf_line(sf)


def importance(held: HeldOut, cmap: ColumnMap, sfs) -> list[dict]:
    """ΔR² of removing each SF present in the rows, largest first.

    sfs : dict element -> list of SymmetryFunction (n2p2 order) or None
    """
    full = held.r2(np.arange(held.p))
    out = []
    for x, s in cmap.features():
        r2 = held.r2(cmap.without([(x, s)]))
        el = cmap.elements[x]
        sf = sfs.get(el, [None] * (s + 1))[s] if sfs else None
        out.append({"sf_element": el, "sf_index": int(s), "label": _label(sf) if sf else f"{el} SF {s + 1}",
                    "r2_without": r2, "delta_r2": full - r2})
    out.sort(key=lambda d: -d["delta_r2"])
    return out


def elimination(helds: dict, cmaps: dict, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Greedy backward elimination over every SF of every element at once.

    Removing an SF of element X removes its columns from the rows of every
    central element, so the SFs are eliminated jointly: each step removes the
    SF whose removal costs the least in the worst element (largest min over
    central elements of R²_e − R²_e,full; ties: the mean), never the last SF
    of an element, down to one SF per element.

    helds, cmaps : central element -> HeldOut / ColumnMap.
    Returns {"path": [{n_sf, r2 (per element), worst_loss, removed}],
    "suggested": [(x, s) kept], "dropped": [...], "r2_full", "r2_suggested"}.
    """
    users = list(helds)
    cand = sorted({f for e in cmaps for f in cmaps[e].features()})
    full = {e: helds[e].r2(np.arange(helds[e].p)) for e in users}

    def score(r):
        losses = [r[e] - full[e] for e in users]
        return (min(losses), float(np.mean(losses)))

    removed: list[tuple[int, int]] = []
    path = [{"n_sf": len(cand), "r2": full, "worst_loss": 0.0, "removed": None}]
    left = list(cand)
    while True:
        per_el = {}
        for x, _ in left:
            per_el[x] = per_el.get(x, 0) + 1
        options = [f for f in left if per_el[f[0]] > 1]
        if not options:
            break
        r2_of = {f: {} for f in options}
        for e in users:
            cm, keep = cmaps[e], cmaps[e].without(removed)
            pos = [np.flatnonzero((cm.sf_element[keep] == x) & (cm.sf_index[keep] == k)) for x, k in options]
            sse = helds[e].removal_sse(keep, pos)
            for f, v in zip(options, sse):
                r2_of[f][e] = 1.0 - v / helds[e].sst
        (worst, _), best = max(((score(r2_of[f]), f) for f in options),
                               key=lambda t: (t[0], (-t[1][0], -t[1][1])))
        removed.append(best)
        left.remove(best)
        # the path records R² refitted on the kept columns (not the downdate)
        r = {e: helds[e].r2(cmaps[e].without(removed)) for e in users}
        path.append({"n_sf": len(left), "r2": r, "worst_loss": -score(r)[0], "removed": best})
    keep_n = min(st["n_sf"] for st in path if st["worst_loss"] <= tolerance)
    dropped = [st["removed"] for st in path[1:]][:len(cand) - keep_n]
    kept = [f for f in cand if f not in dropped]
    return {"path": path, "suggested": kept, "dropped": dropped, "r2_full": full,
            "r2_suggested": next(st["r2"] for st in path if st["n_sf"] == keep_n)}


def saturation(held: HeldOut, cmap: ColumnMap, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """R² against the neighbour blocks kept per neighbour element (nearest
    first, the other pairs at full), and the knee of each curve."""
    full = held.r2(np.arange(held.p))
    out = {}
    for en, n in cmap.ncut.items():
        if n == 0:
            continue
        x = cmap.elements.index(en)
        curve = []
        for kept in range(n + 1):
            drop = (cmap.block_element == x) & (cmap.block_rank >= kept)
            curve.append({"blocks": kept, "r2": held.r2(np.flatnonzero(~drop))})
        knee = next(c["blocks"] for c in curve if c["r2"] >= full - tolerance)
        out[en] = {"curve": curve, "knee": knee, "stored": n}
    return out


def compare(entries: list[dict]) -> list[dict]:
    """Paired comparison of readouts of the same data.

    entries : one per store, {"store", "element", "r2", "r2_low", "r2_high",
        "sse_groups", "sst_groups"} of the pooled linear tier (same groups of
        structures in every store).  ΔR² against the first store, with a 95 %
        paired bootstrap interval over the groups (the same draws for both).
    """
    base = entries[0]
    out = []
    for i, e in enumerate(entries):
        row = {k: e[k] for k in ("store", "element", "r2", "r2_low", "r2_high", "n_features")}
        if i == 0:
            row.update(delta_r2=0.0, delta_low=0.0, delta_high=0.0)
        else:
            a, b = np.asarray(base["sse_groups"]), np.asarray(e["sse_groups"])
            sa, sb = np.asarray(base["sst_groups"]), np.asarray(e["sst_groups"])
            if a.shape != b.shape:
                raise AnalysisError("compare: the stores' readouts have different groups of "
                                    "structures; they are not from the same data")
            draws = np.random.default_rng(31).integers(len(a), size=(BOOTSTRAP_ROUNDS, len(a)))
            d = (1 - b[draws].sum(1) / sb[draws].sum(1)) - (1 - a[draws].sum(1) / sa[draws].sum(1))
            lo, hi = np.percentile(d, [2.5, 97.5])
            row.update(delta_r2=e["r2"] - base["r2"], delta_low=float(lo), delta_high=float(hi))
        out.append(row)
    return out


def _sf_table(reader):
    """element -> list of SymmetryFunction in n2p2's order (None without settings)."""
    st = ((reader.meta or {}).get("settings") or {}).get("sfset")
    if not st:
        return None
    from distatomenv.descriptors.symfuncs import SymmetryFunctionSet

    return SymmetryFunctionSet.from_dict(st).by_element


def design_advice(reader, readout, tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """Importance, elimination and neighbour saturation of every element of a
    fitted :class:`.readout.Readout` (from its statistics; no pass over the store).

    Returns the ``importance``, ``elimination`` and ``saturation`` sections of
    report.json (see the README).
    """
    from distatomenv.descriptors.spec import suggest_neighbors

    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1):
        raise AnalysisError(f"advice tolerance must be a number in [0, 1), got {tolerance!r}")
    sfs = _sf_table(reader)
    helds, cmaps = {}, {}
    for e, st in readout.stats_.items():
        helds[e] = HeldOut(st["linear"], st["n_groups"], st["n_levels"], st["folds"],
                           st["result"]["lambda_folds"])
        cmaps[e] = ColumnMap(reader, e)
    els = list(reader.elements)

    def name(f):
        X, k = els[f[0]], f[1]
        return sfs[X][k].describe() if sfs else f"{X} SF {k + 1}"

    imp = {e: {"r2_full": helds[e].r2(np.arange(helds[e].p)), "sfs": importance(helds[e], cmaps[e], sfs)}
           for e in helds}
    r = elimination(helds, cmaps, tolerance)
    kept_by = {}
    for x, k in r["suggested"]:
        kept_by.setdefault(els[x], []).append(k)
    elim = {
        "tolerance": tolerance,
        "path": [{"n_sf": st["n_sf"], "r2": st["r2"], "worst_loss": st["worst_loss"],
                  "removed": None if st["removed"] is None else
                  {"element": els[st["removed"][0]], "sf_index": int(st["removed"][1]),
                   "label": name(st["removed"])}} for st in r["path"]],
        "n_sf": r["path"][0]["n_sf"],
        "suggested": {X: ks for X, ks in kept_by.items()},
        "r2_full": r["r2_full"],
        "r2_suggested": r["r2_suggested"],
        "fragment": [sf_line(sfs[els[x]][k]) for x, k in r["suggested"]] if sfs else None,
    }
    sat, knees, stored = {}, {}, {}
    for e in helds:
        sat[e] = saturation(helds[e], cmaps[e], tolerance)
        for en, d in sat[e].items():
            knees[(e, en)], stored[(e, en)] = d["knee"], d["stored"]
    stats = getattr(reader, "statistics", None) or {}
    nb = stats.get("neighbors") or {}
    survey = suggest_neighbors({(a, b): d["min"] for a, per in nb.items() for b, d in per.items()},
                               els) if nb else None
    return {
        "importance": imp,
        "elimination": elim,
        "saturation": {"tolerance": tolerance, "elements": sat,
                       "suggested_neighbors": suggest_neighbors(knees, els) if knees else None,
                       "stored_neighbors": suggest_neighbors(stored, els) if stored else None,
                       "survey_neighbors": survey},
    }


def _data_checksum(reader):
    return (((reader.meta or {}).get("inputs") or {}).get("data") or {}).get("checksum")


def compare_stores(reader, readout, others, runner, *, allow_different_data=False, progress=False):
    """The readouts of ``others`` (paths or readers) beside ``readout`` (of
    ``reader``), same folds and seed, paired when the data are the same.

    Returns the ``comparison`` section of report.json: {"stores": [...],
    "same_data": [...], "elements": {element: [rows of :func:`compare`]}}.
    """
    from distatomenv.store.reader import StoreReader, open_store

    from .readout import Readout

    if isinstance(others, (str, bytes)) or hasattr(others, "__fspath__") or isinstance(others, StoreReader):
        others = [others]
    base_sum = _data_checksum(reader)
    readers = [reader] + [o if isinstance(o, StoreReader) else open_store(o) for o in others]
    same = [True]
    for rd in readers[1:]:
        s = _data_checksum(rd)
        ok = base_sum is not None and s == base_sum and rd.layout.n_structures == reader.layout.n_structures
        if not ok and not allow_different_data:
            raise AnalysisError(
                f"{rd.path} was not made from the same input data as {reader.path} (data checksum "
                f"{s or 'unknown'} against {base_sum or 'unknown'}): a paired comparison needs the "
                f"same structures; compare_different_data=True (--compare-different-data) shows "
                f"them side by side, unpaired and marked")
        same.append(bool(ok))
    fits = [readout]
    for rd in readers[1:]:
        fits.append(Readout(elements=[e for e in readout.stats_ if e in rd.elements], folds=readout.folds_,
                            tiers=["linear"], seed=readout.seed, sample=0,
                            progress=progress).fit(rd, runner))
    elements = {}
    for e in readout.stats_:
        rows = []
        for rd, ro, ok in zip(readers, fits, same):
            if e not in ro.stats_:
                continue
            res = ro.stats_[e]["result"]
            entry = next(r for r in ro.results_ if r["element"] == e and r["tier"] == "linear"
                         and len(r["components"]) == 3)
            rows.append({"store": str(rd.path), "element": e, "r2": res["r2"], "r2_low": res["r2_low"],
                         "r2_high": res["r2_high"], "n_features": entry["n_features"],
                         "sse_groups": res["sse_groups"], "sst_groups": res["sst_groups"], "paired": ok})
        paired = [r for r in rows if r["paired"]]
        out = compare(paired) if len(paired) > 1 else [
            {k: r[k] for k in ("store", "element", "r2", "r2_low", "r2_high", "n_features")} for r in paired]
        for r in rows:
            if not r["paired"]:
                out.append({**{k: r[k] for k in ("store", "element", "r2", "r2_low", "r2_high", "n_features")},
                            "delta_r2": None, "delta_low": None, "delta_high": None,
                            "note": "different input data: not paired"})
        elements[e] = out
    return {"stores": [str(rd.path) for rd in readers], "same_data": same, "elements": elements}
