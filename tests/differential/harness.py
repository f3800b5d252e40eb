"""Run one case through n2p2 (the oracle) and distatomenv, and compare.

The oracle is n2p2's own ``nnp-scaling`` and ``nnp-atomenv``
(``../shared/tools/n2p2`` beside the checkout, or ``DISTATOMENV_N2P2``); they are
called in place, never copied.  For a case, in a fresh directory:

1. ``n2p2/``: input.nn and input.data; ``nnp-scaling 10`` writes scaling.data,
   then ``nnp-atomenv 10 <args>`` the five files.  An ``ERROR:`` line and a
   non-zero exit mean n2p2 rejects the case.
2. distatomenv: ``distatomenv.scaling`` on the same files (compared with n2p2's
   scaling.data), then ``compute`` with n2p2's own scaling.data (exactly the
   files n2p2 read, as in ../shared/reference) and ``export``.
3. Every token is compared with the rule of ../shared/reference/README.md
   (+-1 in the 9th significant digit; neighbor-list.data identical; scaling.data
   min/max to 1e-13, mean 1e-12, sigma 1e-9 relative).

Tokens outside the rule are classified; only the last class is a divergence:

* ``degenerate``: n2p2 wrote NaN/INF in a column whose SF has a degenerate
  scaling row (max == min, or sigma 0 or NaN): n2p2 divides by zero, we keep
  the factor 1 (io/scaling.py); any other non-finite token is a divergence.
* ``collinear``: a token of a compact angular SF (types 21, 22, 24, 25) in a
  periodic structure with a lattice translation T shorter than the SF's
  cutoff.  The self-images i+T, i-T (and i+2T) are exactly collinear with i,
  and n2p2 leaves such a pair out when its rounded cos theta is exactly +-1
  but keeps it when rounding lands inside (-1, 1): which one depends on the
  rounding of n2p2's geometry (asked of nnp-atomenv with one atom in cells
  along random directions: about half of them each way).  distatomenv leaves
  the pair out when its own cos theta is +-1, so axis-aligned cells match.
  The same class holds the angular types 3, 9 and 13 in such cells: a
  collinear pair contributes (1 + lambda cos theta)^zeta with 1 + lambda cos
  theta = 0 up to rounding, so whatever the rounding gives: a value of 1e-79
  against n2p2's exact 0 (seed 1046, zeta 4; visible only where nothing else
  contributes), or, for zeta < 0 where the term is singular, anything (seed
  1073: n2p2 -1.96, distatomenv 6.1e16).
* ``tie``: a dG block of a self-image of the central atom.  The +T and -T
  images are at exactly the same distance, and which one n2p2's unstable sort
  puts first decides the block (../shared/reference/README.md, "Sorting and
  ties"); we order ties by image shift.
* ``cancel`` (dG only): a derivative token that is a sum of much larger terms
  (for example the +T and -T self-images, whose contributions cancel): it
  may differ by up to 1e-11 of the largest |value| of its row, the rule
  tests/test_reference.py applies to n2p2's reference files.
* ``noise``: n2p2's own rounding.  The case is run by n2p2 again with every
  coordinate and lattice component moved by a relative 1e-15 (three times,
  random signs, five more times while tokens remain unexplained); a token is
  noise when ours is within NOISE_FACTOR (4) times the largest distance n2p2's
  own token moved (a few draws underestimate the spread of rounding noise;
  4x keeps it at the noise floor of that token).  Same for scaling.data
  (nnp-scaling rerun on the moved input).  n2p2 even disagrees with itself
  there: nnp-scaling and nnp-atomenv print the same G of one atom up to 5e-6
  apart near a compact window's edge (seed 1007, type 23 p4a).
* ``sigma-cancel`` (scaling.data only): sigma of an SF that is constant to
  about 8 digits, where n2p2's sum-of-squares formula cancels (it even takes
  the root of a negative variance and writes -NAN); accepted when both are
  within 1e-7 of the row's largest |value|.
* ``divergence``: everything else.

A case where n2p2 itself crashes (a signal, no ERROR line) has status
``n2p2-crash``: it is no verdict on distatomenv, and is counted apart.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import random
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILES = ("atomic-env.G", "atomic-env.dGdx", "atomic-env.dGdy", "atomic-env.dGdz")
NEIGHBORS = "neighbor-list.data"
NBINS = "10"
PERTURB = 1e-15
N_PERTURB = 3          # perturbed n2p2 runs first ...
N_PERTURB_MORE = 5     # ... and more while some tokens remain unexplained
NOISE_FACTOR = 4.0
ORACLE_ENV = "DISTATOMENV_N2P2"


def oracle_dir() -> Path:
    """Where n2p2's binaries are: ``DISTATOMENV_N2P2`` or ../shared/tools/n2p2
    beside the checkout."""
    default = Path(__file__).resolve().parents[3] / "shared" / "tools" / "n2p2"
    return Path(os.environ.get(ORACLE_ENV) or default)


def oracle_problem(path: Path | None = None) -> str | None:
    """Why the oracle cannot run here (None when it can)."""
    path = path or oracle_dir()
    for name in ("nnp-scaling", "nnp-atomenv"):
        if not os.access(path / name, os.X_OK):
            return f"n2p2 oracle not found: {path / name} (set {ORACLE_ENV} to its folder)"
    try:
        out = subprocess.run(["ldd", str(path / "nnp-atomenv")], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    if "not found" in out:
        return (f"n2p2 oracle at {path} lacks runtime libraries (run "
                f"bash {path / 'setup.sh'}): {out.strip().splitlines()[0]}")
    return None


def _env():
    # one rank, no launcher: OpenMPI's isolated mode starts in half the time
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="self", OMPI_MCA_pml="ob1", OMPI_MCA_plm="isolated",
               OMP_NUM_THREADS="1")
    return env


def run_n2p2(folder: Path, args: str, oracle: Path | None = None) -> tuple[str | None, str]:
    """nnp-scaling then nnp-atomenv in ``folder`` (holding input.nn and
    input.data).  Returns (the ERROR line or None, which step)."""
    oracle = oracle or oracle_dir()
    for step, cmd in (("nnp-scaling", [str(oracle / "nnp-scaling"), NBINS]),
                      ("nnp-atomenv", [str(oracle / "nnp-atomenv"), NBINS, *args.split()])):
        p = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=_env(),
                           timeout=600)
        (folder / f"{step}.stdout").write_text(p.stdout + p.stderr)
        text = p.stdout + "\n" + p.stderr
        if p.returncode != 0 and "ERROR" not in text:
            return f"n2p2 crashed (exit status {p.returncode}) in {step}", "crash"
        if p.returncode != 0:
            lines = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
            crit = [ln.strip() for ln in text.splitlines() if "CRITICAL" in ln]
            return ((lines + crit + [f"exit status {p.returncode}"])[0]
                    .replace("what():", "").strip()), step
    return None, ""


def run_ours(n2p2: Path, ours: Path, args: str) -> tuple[str | None, str]:
    """distatomenv scaling (into ours/scaling.data), compute with n2p2's
    scaling.data and export into ours/out/.  Returns (our error or None, step)."""
    import distatomenv
    from distatomenv.errors import DistatomenvError
    from distatomenv.engine.scaling import scaling
    ours.mkdir(parents=True, exist_ok=True)
    steps = [("scaling", lambda: scaling(n2p2 / "input.data", ours / "scaling.data",
                                         settings=n2p2 / "input.nn", threads=1))]
    if (n2p2 / "scaling.data").exists():
        steps += [("compute", lambda: distatomenv.compute(
                      n2p2 / "input.data", settings=n2p2 / "input.nn",
                      scaling=n2p2 / "scaling.data", neighbors=args, out=ours / "store.zarr",
                      threads=1, overwrite=True)),
                  ("export", lambda: distatomenv.export(ours / "store.zarr", ours / "out"))]
    for step, fn in steps:
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                fn()
        except DistatomenvError as exc:
            return f"{type(exc).__name__}: {exc}", step
    return None, ""


# ----------------------------------------------------------------------------- comparison
def read_tokens(path: Path) -> list[list[str]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return [line.split() for line in f]


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference rule: |a - b| <= 10^(e - 8), e the larger decimal exponent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ex = np.maximum(np.floor(np.log10(np.abs(a))), np.floor(np.log10(np.abs(b))))
    ex[~np.isfinite(ex)] = -300
    same = np.abs(a - b) <= 10.0 ** (ex - 8) * (1 + 1e-6)
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & (a == b)
    return same | both_nan | same_inf


@dataclass
class Token:
    file: str
    row: int          # 1-based line
    col: int          # 1-based token (the element symbol is token 1)
    n2p2: str
    ours: str
    element: str = ""     # the SF's element
    sf: int = 0           # 1-based SF index of that element
    sftype: int = 0
    cls: str = "divergence"

    def __str__(self):
        return (f"{self.file}:{self.row}:{self.col} n2p2 {self.n2p2} ours {self.ours} "
                f"({self.element} SF {self.sf}, type {self.sftype}, {self.cls})")


@dataclass
class Result:
    """What one case gave."""

    seed: int | str
    status: str = "match"     # match | both-reject | divergence | n2p2-crash
    n2p2_error: str | None = None
    our_error: str | None = None
    tokens: int = 0
    classes: dict = field(default_factory=dict)     # class -> count
    by_type: dict = field(default_factory=dict)     # "type T class" -> count
    divergences: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("match", "both-reject")

    def summary(self) -> str:
        cls = ", ".join(f"{k} {v}" for k, v in sorted(self.classes.items()))
        out = f"case {self.seed}: {self.status}, {self.tokens} tokens" + (f" ({cls})" if cls else "")
        if self.n2p2_error or self.our_error:
            out += f"\n  n2p2: {self.n2p2_error}\n  ours: {self.our_error}"
        for t in self.divergences[:12]:
            out += f"\n  {t}"
        for n in self.notes:
            out += f"\n  note: {n}"
        return out


class Layout:
    """Maps each token of the atomic-env files to (element, SF index) with the
    SF set (our reading of input.nn) and n2p2's neighbor-list.data."""

    def __init__(self, settings_path: Path, neighbor_rows, ncut, table, mode, short=None):
        from distatomenv.io.settings import read_settings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = read_settings(settings_path)
        self.st = st
        self.els = list(st.elements)
        self.zel = {_z(e): e for e in self.els}
        self.ncut = ncut
        self.rows = []          # per atom: (element, [(nb element, nb atom)] in distance order)
        self.structure = []     # per atom: its structure (0-based)
        self.short = short or []    # per structure: shortest lattice translation (or inf)
        k = 0
        while k < len(neighbor_rows):
            n = int(neighbor_rows[k][0])
            block = neighbor_rows[k + 1:k + 1 + n]
            for i, r in enumerate(block):
                e = self.zel[int(r[0])]
                js = [int(x) for x in r[1 + len(self.els):]]
                self.rows.append((e, i, [(self.zel[int(block[j][0])], j) for j in js]))
            k += 1 + n
        # structure index of each row: count the blocks
        idx, k, s_ = [], 0, 0
        while k < len(neighbor_rows):
            n = int(neighbor_rows[k][0])
            idx += [s_] * n
            s_ += 1
            k += 1 + n
        self.structure = idx
        self.degenerate = {}
        for e in self.els:
            if mode in ("scale", "scalecenter"):
                bad = ~(np.asarray(table.max[e]) - np.asarray(table.min[e]) > 0)
            elif mode == "sigma":
                bad = ~(np.asarray(table.sigma[e]) > 0)
            else:
                bad = np.zeros(st.sfset.n_sf(e), dtype=bool)
            self.degenerate[e] = bad

    def columns(self, row: int, derivative: bool):
        """[(element, 0-based SF index, self-image block?)] of the tokens after
        the symbol in 0-based row ``row``."""
        e, i, nbs = self.rows[row]
        a = self.els.index(e)
        sfset = self.st.sfset
        cols = [(e, s, False) for s in range(sfset.n_sf(e))]
        written = dict.fromkeys(self.els, 0)
        for en, j in nbs:
            b = self.els.index(en)
            if written[en] < self.ncut[a][b]:
                written[en] += 1
                sfs = sfset.relevant(en, e) if derivative else range(sfset.n_sf(en))
                cols += [(en, s, j == i) for s in sfs]
        return cols


def _z(e):
    from distatomenv.elements import atomic_number
    return atomic_number(e)


CANCEL_REL = 1e-11


def _collinear_prone(sf) -> bool:
    """SFs whose value for an exactly collinear pair depends on rounding."""
    return sf.type in (21, 22, 24, 25, 3, 9, 13)


def compare_atomenv(name, exp, act, layout: Layout | None, out: Result):
    """Token comparison of one atomic-env file; appends to ``out``."""
    derivative = name != "atomic-env.G"
    if len(exp) != len(act):
        out.divergences.append(f"{name}: {len(act)} lines, n2p2 {len(exp)}")
        return []
    cands = []
    for r, (e, a) in enumerate(zip(exp, act)):
        if len(e) != len(a) or e[:1] != a[:1]:
            out.divergences.append(f"{name}:{r + 1}: {len(a)} tokens ({a[:1]}), n2p2 {len(e)} "
                                   f"({e[:1]})")
            continue
        ev = np.array(e[1:], dtype=float)
        av = np.array(a[1:], dtype=float)
        out.tokens += ev.size
        bad = np.flatnonzero(~_close(ev, av))
        if not len(bad):
            continue
        cols = layout.columns(r, derivative) if layout else None
        for k in bad:
            t = Token(name, r + 1, k + 2, e[k + 1], a[k + 1])
            if cols is not None and k < len(cols):
                el, s, self_image = cols[k]
                sf = layout.st.sfset.by_element[el][s]
                t.element, t.sf, t.sftype = el, s + 1, sf.type
                short = layout.short[layout.structure[r]] if layout.short else math.inf
                if not math.isfinite(ev[k]) and layout.degenerate[el][s]:
                    t.cls = "degenerate"
                elif _collinear_prone(sf) and short < sf.rc:
                    t.cls = "collinear"
                elif derivative and self_image:
                    t.cls = "tie"
            if t.cls == "divergence" and derivative and math.isfinite(ev[k]) and \
                    abs(ev[k] - av[k]) <= CANCEL_REL * np.nanmax(np.abs(ev[np.isfinite(ev)])):
                t.cls = "cancel"
            cands.append(t)
    return cands


def scaling_rows(p):
    return [ln.split() for ln in open(p) if ln.strip() and not ln.lstrip().startswith("#")]


def compare_scaling(exp_path: Path, act_path: Path, out: Result, layout=None):
    """scaling.data: index columns exactly, numbers to the README's tolerances.
    Returns the tokens outside them (class divergence, collinear or sigma-cancel)."""
    exp, act = scaling_rows(exp_path), scaling_rows(act_path)
    cands = []
    if len(exp) != len(act):
        out.divergences.append(f"scaling.data: {len(act)} rows, n2p2 {len(exp)}")
        return cands
    rtol = (1e-13, 1e-13, 1e-12, 1e-9)
    for r, (e, a) in enumerate(zip(exp, act), start=1):
        if e[:2] != a[:2]:
            out.divergences.append(f"scaling.data row {r}: index {a[:2]}, n2p2 {e[:2]}")
            continue
        ev = np.array(e[2:], dtype=float)
        av = np.array(a[2:], dtype=float)
        scale = np.nanmax(np.abs(ev[:2])) if np.isfinite(ev[:2]).all() else 0.0
        out.tokens += 4
        for k in range(4):
            x, y = ev[k], av[k]
            if (math.isnan(x) and math.isnan(y)) or x == y:
                continue
            if abs(x - y) <= rtol[k] * max(abs(x), abs(y)) or (k == 2 and abs(x - y) <= 1e-12 * scale):
                continue
            t = Token("scaling.data", r, k + 3, e[k + 2], a[k + 2], cls="divergence")
            if k == 3 and math.isfinite(y) and (math.isfinite(x) or scale > 0) \
                    and max(abs(y), 0 if math.isnan(x) else abs(x)) <= 1e-7 * scale:
                t.cls = "sigma-cancel"
            elif layout is not None:
                el = layout.els[int(e[0]) - 1]
                sf = layout.st.sfset.by_element[el][int(e[1]) - 1]
                t.element, t.sf, t.sftype = el, int(e[1]), sf.type
                if _collinear_prone(sf) and min(layout.short, default=math.inf) < sf.rc:
                    t.cls = "collinear"
            cands.append(t)
    return cands


def shortest_translation(lattice) -> float:
    """Length of the shortest lattice translation (inf for a cluster)."""
    if lattice is None:
        return math.inf
    L = np.asarray(lattice, dtype=float)
    n = np.array([(a, b, c) for a in range(-3, 4) for b in range(-3, 4) for c in range(-3, 4)
                  if (a, b, c) != (0, 0, 0)], dtype=float)
    return float(np.sqrt(((n @ L) ** 2).sum(axis=1)).min())


def _perturbed_tokens(case, folder: Path, k: int, oracle: Path, scaling=True, atomenv=True):
    """n2p2's files for the case's input moved by 1e-15 (run k): nnp-scaling's
    scaling.data, and the atomic-env files made with the original scaling.data
    (each only where asked for)."""
    d = folder / f"perturbed{k}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    shutil.copy(folder / "n2p2" / "input.nn", d / "input.nn")
    (d / "input.data").write_text(case.input_data(PERTURB, random.Random(1000 + k)))
    out = {}
    if scaling:
        p = subprocess.run([str(oracle / "nnp-scaling"), NBINS], cwd=d, capture_output=True,
                           text=True, env=_env(), timeout=600)
        if p.returncode != 0:
            return None
        out["scaling.data"] = scaling_rows(d / "scaling.data")
    if not atomenv:
        return out
    shutil.copy(folder / "n2p2" / "scaling.data", d / "scaling.data")
    p = subprocess.run([str(oracle / "nnp-atomenv"), NBINS, *case.args().split()], cwd=d,
                       capture_output=True, text=True, env=_env(), timeout=600)
    if p.returncode != 0:
        return None
    out.update({name: read_tokens(d / name) for name in FILES if (d / name).exists()})
    return out


def run_case(case, folder: Path, *, oracle: Path | None = None, perturb: bool = True,
             keep: bool = False) -> Result:
    """Run ``case`` (a generator.Case) in ``folder`` (created, emptied) and
    compare.  ``perturb``: run the rounding check where tokens differ."""
    from distatomenv.io.scaling import read_scaling
    oracle = oracle or oracle_dir()
    t0 = time.perf_counter()
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    n2 = folder / "n2p2"
    n2.mkdir(parents=True)
    (n2 / "input.nn").write_text(case.input_nn())
    (n2 / "input.data").write_text(case.input_data())
    (folder / "args").write_text(case.args() + "\n")
    res = Result(seed=case.seed)
    res.n2p2_error, n2_step = run_n2p2(n2, case.args(), oracle)
    res.our_error, our_step = run_ours(n2, folder / "ours", case.args())
    if n2_step == "crash":
        res.status = "n2p2-crash"
        res.seconds = time.perf_counter() - t0
        return res
    if res.n2p2_error or res.our_error:
        if res.n2p2_error and res.our_error:
            res.status = "both-reject"
            # n2p2's nnp-scaling failing means our scaling must fail too
            if n2_step == "nnp-scaling" and our_step != "scaling":
                res.status = "divergence"
                res.divergences.append(f"n2p2 rejects in {n2_step}, we only in {our_step}")
        else:
            res.status = "divergence"
            who = "n2p2" if res.n2p2_error else "distatomenv"
            res.divergences.append(f"only {who} rejects the case")
        res.seconds = time.perf_counter() - t0
        return res
    ours = folder / "ours" / "out"
    nb_exp, nb_act = read_tokens(n2 / NEIGHBORS), read_tokens(ours / NEIGHBORS)
    if nb_exp != nb_act:
        res.divergences.append("neighbor-list.data differs")
    layout = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from distatomenv.io.settings import read_settings
            st = read_settings(n2 / "input.nn")
            table = read_scaling(n2 / "scaling.data", st.sfset)
            ne = len(st.elements)
            ncut = [[int(v) for v in case.args().split()[a * ne:(a + 1) * ne]] for a in range(ne)]
            layout = Layout(n2 / "input.nn", nb_exp, ncut, table, st.scaling,
                            [shortest_translation(s.lattice) for s in case.structures])
    except Exception as exc:                       # layout is for labels only
        res.notes.append(f"no column labels: {type(exc).__name__}: {exc}")
    cands = compare_scaling(n2 / "scaling.data", folder / "ours" / "scaling.data", res, layout)
    names = [n for n in FILES if (n2 / n).exists()]
    ours_names = [n for n in FILES if (ours / n).exists()]
    if names != ours_names:
        res.divergences.append(f"files: ours {ours_names}, n2p2 {names}")
    exp_all = {}
    for name in names:
        if name not in ours_names:
            continue
        exp_all[name] = read_tokens(n2 / name)
        cands += compare_atomenv(name, exp_all[name], read_tokens(ours / name), layout, res)
    open_cands = [t for t in cands if t.cls == "divergence"]
    if open_cands and perturb:
        moved = {}
        for k in range(N_PERTURB + N_PERTURB_MORE):
            if k == N_PERTURB:
                still = [t for t in open_cands if abs(float(t.n2p2) - float(t.ours)) >
                         NOISE_FACTOR * moved.get((t.file, t.row, t.col), 0.0)]
                if not still:
                    break
            want = {t.file for t in open_cands}
            pert = _perturbed_tokens(case, folder, k, oracle, "scaling.data" in want,
                                     bool(want - {"scaling.data"}))
            if pert is None:
                res.notes.append("perturbed n2p2 run failed")
                continue
            for t in open_cands:
                try:
                    v = float(pert[t.file][t.row - 1][t.col - 1])
                except (KeyError, IndexError, ValueError):
                    continue
                key = (t.file, t.row, t.col)
                moved[key] = max(moved.get(key, 0.0), abs(v - float(t.n2p2)))
        for t in open_cands:
            a, b = float(t.n2p2), float(t.ours)
            if math.isfinite(a) and abs(a - b) <= NOISE_FACTOR * moved.get((t.file, t.row, t.col), 0.0):
                t.cls = "noise"
    for t in cands:
        res.classes[t.cls] = res.classes.get(t.cls, 0) + 1
        key = f"type {t.sftype} {t.cls}"
        res.by_type[key] = res.by_type.get(key, 0) + 1
        if t.cls == "divergence":
            res.divergences.append(t)
    res.classes.pop("divergence", None)
    if res.divergences:
        res.status = "divergence"
    res.seconds = time.perf_counter() - t0
    if not keep and res.ok:
        shutil.rmtree(folder, ignore_errors=True)
    return res


# ----------------------------------------------------------------------------- shrinking
def _candidates(case):
    """Smaller variants of a case, biggest cuts first."""
    for k in range(len(case.structures)):
        if len(case.structures) > 1:
            yield case.replace(structures=case.structures[:k] + case.structures[k + 1:])
    for k, s in enumerate(case.structures):
        for a in range(len(s.atoms)):
            if len(s.atoms) > 1:
                atoms = s.atoms[:a] + s.atoms[a + 1:]
                st = [x if m != k else type(s)(lattice=s.lattice, atoms=atoms, kind=s.kind)
                      for m, x in enumerate(case.structures)]
                yield case.replace(structures=st)
    for k, line in enumerate(case.sfs):
        ec = line.split()[0]
        if sum(1 for x in case.sfs if x.split()[0] == ec) > 1:
            yield case.replace(sfs=case.sfs[:k] + case.sfs[k + 1:])
    for k, n in enumerate(case.ncut):
        if n:
            yield case.replace(ncut=case.ncut[:k] + [0] + case.ncut[k + 1:])
    if case.norm:
        yield case.replace(norm=None)
    if case.smin is not None or case.smax is not None:
        yield case.replace(smin=None, smax=None)
    for f in case.flags:
        yield case.replace(flags=tuple(x for x in case.flags if x != f))
    if case.alpha is not None:
        yield case.replace(alpha=None)


def shrink(case, still_fails, max_steps: int = 400):
    """Greedy shrinking: keep any smaller variant for which ``still_fails(case)``
    is true, until none is.  Returns the smallest case found."""
    steps = 0
    improved = True
    while improved and steps < max_steps:
        improved = False
        for cand in _candidates(case):
            steps += 1
            if still_fails(cand):
                case = cand
                improved = True
                break
            if steps >= max_steps:
                break
    return case
