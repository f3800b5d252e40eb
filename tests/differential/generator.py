"""Seeded generator of random, valid n2p2 inputs (input.nn, input.data, args).

``generate(seed)`` returns a :class:`Case`; the same seed always gives the same
case (only :mod:`random` with its own ``Random(seed)`` is used), so a failing
case is reproduced from its seed alone.  :func:`shrink` (in ``harness.py``)
makes a failing case small by dropping structures, atoms and SF lines.

What is drawn (issue 13):

* input.nn: 1-5 elements (declared in a random order); 2-6 SF lines per element,
  and one of every type (2, 3, 9, 12, 13, 20-25) for one element when
  ``all_types`` is set; every compact subtype n2p2 accepts (p1-p4, p1a-p4a, e,
  and the ``e`` variants ``ea``/``e1`` that n2p2 evaluates as ``e``); zeta
  negative, integer and not (not 0: see test_differential); lambda +-1 and not; windows inside
  [0, 180] and wrapping around 0 or 180 degrees; cutoff types 0-8 with and
  without alpha; any subset of the three scaling keywords; scale_min/max or
  not; the normalisation keywords or not; ``symfunction_short`` or
  ``symfunction``; use_short_forces (almost always).
* input.data: 1-3 structures, each a periodic cell (cubic, orthorhombic or
  strongly skewed, optionally rotated, lengths from 0.45 to 2 rc_max, atoms
  inside and outside the cell) or a non-periodic cluster (sometimes with an
  isolated atom); coordinates printed with 17 significant digits so that no
  two distances tie (except the +-T self-images, which always do); sometimes
  a declared element without atoms.
* args: per element pair a count between 0 and the smallest number of such
  neighbours any atom has (a brute-force count over images, independent of
  distatomenv); with ``reject`` one pair asks for one more, which n2p2 refuses.
"""
from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field

ELEMENT_POOL = ("H", "He", "Li", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "S", "Cl",
                "Ar", "Ti", "Fe", "Cu", "Zn", "Br")
Z = {s: z for s, z in zip(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn "
    "Ga Ge As Se Br".split(), range(1, 36))}

SF_TYPES = (2, 3, 9, 12, 13, 20, 21, 22, 23, 24, 25)
COMPACT_TYPES = (20, 21, 22, 23, 24, 25)
EXP_TYPES = (2, 3, 9, 12, 13)
#: Subtypes n2p2 accepts (asked of nnp-scaling: "p" + 1-4 + optional "a", or "e"
#: plus up to two characters); the "e" variants evaluate as "e".
SUBTYPES = ("p1", "p2", "p3", "p4", "e", "p1a", "p2a", "p3a", "p4a")
E_VARIANTS = ("ea", "e1")
SCALING_KEYWORDS = ("scale_symmetry_functions", "center_symmetry_functions",
                    "scale_symmetry_functions_sigma")
NETWORK = ("global_hidden_layers_short 1", "global_nodes_short 3",
           "global_activation_short t l", "random_seed 1")


def scaling_mode(flags) -> str:
    """The scaling n2p2 applies for a set of scaling keywords (its log's
    ST_* for each of the eight combinations)."""
    scale, center, sigma = (k in flags for k in SCALING_KEYWORDS)
    if scale and center:
        return "scalecenter"
    if scale:
        return "scale"
    if center:
        return "center"
    return "sigma" if sigma else "none"


@dataclass
class Structure:
    """lattice: three vectors (rows) or None (cluster); atoms: (x, y, z, element)."""

    lattice: list | None
    atoms: list
    kind: str = ""


@dataclass
class Case:
    """One generated input set.  ``sfs`` are the SF lines after the keyword."""

    seed: int
    elements: list                    # declared, in file order
    cutoff_type: int
    alpha: float | None
    flags: tuple
    smin: float | None
    smax: float | None
    norm: tuple | None                # (mean_energy, conv_energy, conv_length)
    sf_keyword: str
    sfs: list
    structures: list
    ncut: list                        # flattened, atomic-number order
    use_short_forces: bool = True
    reject: bool = False              # args ask for more neighbours than exist
    note: str = ""
    extra: dict = field(default_factory=dict)
    nn_text: str | None = None        # input.nn as read from a file (regression cases)

    # -- derived ---------------------------------------------------------------
    @property
    def zorder(self) -> list:
        return sorted(self.elements, key=Z.__getitem__)

    @property
    def scaling(self) -> str:
        return scaling_mode(self.flags)

    def sf_types(self) -> set:
        return {int(line.split()[1]) for line in self.sfs}

    def subtypes(self) -> set:
        """(type, subtype) of the compact SF lines."""
        return {(int(line.split()[1]), line.split()[-1]) for line in self.sfs
                if int(line.split()[1]) >= 20}

    def rc_max(self) -> float:
        return max(_rc(line) for line in self.sfs)

    # -- files -----------------------------------------------------------------
    def input_nn(self) -> str:
        if self.nn_text is not None:
            return self.nn_text
        out = [f"# distatomenv differential case, seed {self.seed}" +
               (f" ({self.note})" if self.note else "")]
        if self.norm:
            out += [f"mean_energy {self.norm[0]!r}", f"conv_energy {self.norm[1]!r}",
                    f"conv_length {self.norm[2]!r}"]
        out += [f"number_of_elements {len(self.elements)}",
                "elements " + " ".join(self.elements),
                f"cutoff_type {self.cutoff_type}" + ("" if self.alpha is None else f" {self.alpha}")]
        out += list(self.flags)
        if self.smin is not None:
            out.append(f"scale_min_short {self.smin}")
        if self.smax is not None:
            out.append(f"scale_max_short {self.smax}")
        out += list(NETWORK)
        if self.use_short_forces:
            out.append("use_short_forces")
        out += [f"{self.sf_keyword} {line}" for line in self.sfs]
        return "\n".join(out) + "\n"

    def input_data(self, perturb: float = 0.0, rng=None) -> str:
        """input.data; ``perturb``: move every coordinate and lattice component
        by a relative amount of +-perturb (random signs from ``rng``), for the
        rounding check."""
        out = []
        for k, s in enumerate(self.structures):
            out += ["begin", f"comment seed {self.seed} structure {k + 1} {s.kind}"]
            for v in s.lattice or ():
                if perturb:
                    v = [c * (1.0 + perturb * rng.choice((-1.0, 1.0))) for c in v]
                out.append("lattice " + " ".join(repr(float(x)) for x in v))
            for n, (x, y, z, el) in enumerate(s.atoms):
                if perturb:
                    x, y, z = (c * (1.0 + perturb * rng.choice((-1.0, 1.0))) for c in (x, y, z))
                f = [round(math.sin(1.7 * n + m + k), 6) for m in range(3)]
                out.append(f"atom {x!r} {y!r} {z!r} {el} 0.0 0.0 {f[0]} {f[1]} {f[2]}")
            out += [f"energy {-1.5 * len(s.atoms) + 0.25 * k}", "charge 0.0", "end"]
        return "\n".join(out) + "\n"

    def args(self) -> str:
        return " ".join(str(n) for n in self.ncut)

    def describe(self) -> str:
        kinds = ",".join(s.kind for s in self.structures)
        return (f"seed {self.seed}: {len(self.elements)} elements, {len(self.sfs)} SFs "
                f"(types {sorted(self.sf_types())}), cutoff {self.cutoff_type} "
                f"alpha {self.alpha}, {self.scaling}, norm {bool(self.norm)}, "
                f"{self.sf_keyword}, structures {kinds}, args '{self.args()}'"
                + (", expects rejection" if self.reject else ""))

    def replace(self, **kw) -> "Case":
        return dataclasses.replace(self, **kw)


def _rc(line) -> float:
    """rc of one SF line (after the keyword)."""
    t = line.split()
    typ = int(t[1])
    pos = {2: 5, 3: 7, 9: 7, 12: 4, 13: 6, 20: 4, 21: 5, 22: 5, 23: 3, 24: 3, 25: 3}[typ]
    return float(t[pos])


# ----------------------------------------------------------------------------- SF lines
def _num(x, digits=6) -> str:
    return f"{x:.{digits}g}"


def _zeta(rng) -> str:
    u = rng.random()
    if u < 0.35:
        return rng.choice(("1", "2", "4", "16"))
    if u < 0.65:
        return _num(rng.uniform(0.3, 8.0), 4)
    # negative: n2p2 accepts and evaluates it.  (zeta = 0 is refused by
    # distatomenv: n2p2 writes NaN derivatives for it; see test_differential.)
    return rng.choice(("-1", "-2", "-0.5")) if rng.random() < 0.5 else _num(-rng.uniform(0.2, 4), 3)


def _lambda(rng) -> str:
    return rng.choice(("1", "-1")) if rng.random() < 0.85 else _num(rng.uniform(-1, 1), 3)


def _window(rng) -> tuple[str, str]:
    """Angle window in degrees, as n2p2 accepts it."""
    u = rng.random()
    if u < 0.15:
        return "0", "180"
    if u < 0.6:
        al = rng.uniform(0, 150)
        return _num(al, 5), _num(rng.uniform(al + 5, 180), 5)
    w = rng.randint(10, 180) + rng.choice((0, 0.5))
    if u < 0.8:
        return _num(-w, 6), _num(w, 6)
    return _num(180 - w, 6), _num(180 + w, 6)


def _subtype(rng) -> str:
    return rng.choice(E_VARIANTS) if rng.random() < 0.06 else rng.choice(SUBTYPES)


def _radial_window(rng, rc) -> str:
    u = rng.random()
    if u < 0.4:
        return _num(-rc, 6)
    if u < 0.85:
        return _num(rng.uniform(0, 0.7) * rc, 5)
    return _num(-rng.uniform(0.05, 1.3) * rc, 5)


def sf_line(rng, typ, ec, present, rc) -> str:
    """One SF line (after the keyword) of type ``typ`` for central element ``ec``."""
    e1, e2 = rng.choice(present), rng.choice(present)
    rcs = _num(rc, 6)
    eta = "0" if rng.random() < 0.15 else _num(rng.uniform(0.001, 1.5), 4)
    rs = "0" if rng.random() < 0.5 else _num(rng.uniform(0, 0.6) * rc, 4)
    if typ == 2:
        return f"{ec} 2 {e1} {eta} {rs} {rcs}"
    if typ in (3, 9):
        tail = f" {rs}" if rng.random() < 0.4 else ""
        return f"{ec} {typ} {e1} {e2} {eta} {_lambda(rng)} {_zeta(rng)} {rcs}{tail}"
    if typ == 12:
        return f"{ec} 12 {eta} {rs} {rcs}"
    if typ == 13:
        return f"{ec} 13 {eta} {rs} {_lambda(rng)} {_zeta(rng)} {rcs}"
    rl = _radial_window(rng, rc)
    if typ == 20:
        return f"{ec} 20 {e1} {rl} {rcs} {_subtype(rng)}"
    al, ar = _window(rng)
    if typ in (21, 22):
        return f"{ec} {typ} {e1} {e2} {rl} {rcs} {al} {ar} {_subtype(rng)}"
    if typ == 23:
        return f"{ec} 23 {rl} {rcs} {_subtype(rng)}"
    return f"{ec} {typ} {rl} {rcs} {al} {ar} {_subtype(rng)}"


# ----------------------------------------------------------------------------- structures
def _det(m):
    return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))


def _cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def _norm(v):
    return math.sqrt(sum(x * x for x in v))


def heights(lat):
    """Distances between opposite faces of the cell (a, b, c)."""
    vol = abs(_det(lat))
    return [vol / _norm(_cross(lat[1], lat[2])), vol / _norm(_cross(lat[2], lat[0])),
            vol / _norm(_cross(lat[0], lat[1]))]


def _rotation(rng):
    """A random rotation matrix (from a random unit quaternion)."""
    q = [rng.gauss(0, 1) for _ in range(4)]
    n = _norm(q)
    a, b, c, d = (x / n for x in q)
    return [[a*a + b*b - c*c - d*d, 2 * (b*c - a*d), 2 * (b*d + a*c)],
            [2 * (b*c + a*d), a*a - b*b + c*c - d*d, 2 * (c*d - a*b)],
            [2 * (b*d - a*c), 2 * (c*d + a*b), a*a - b*b - c*c + d*d]]


def _matvec(m, v):
    return [sum(m[i][k] * v[k] for k in range(3)) for i in range(3)]


def _images(lat, rc):
    """Lattice translations that can bring an image within rc of a cell point."""
    if lat is None:
        return [(0.0, 0.0, 0.0)]
    n = [int(math.ceil(rc / h)) + 1 for h in heights(lat)]
    out = []
    for a in range(-n[0], n[0] + 1):
        for b in range(-n[1], n[1] + 1):
            for c in range(-n[2], n[2] + 1):
                out.append(tuple(a * lat[0][k] + b * lat[1][k] + c * lat[2][k] for k in range(3)))
    return out


def _min_image_distance(p, q, shifts):
    return min(math.sqrt(sum((q[k] + t[k] - p[k]) ** 2 for k in range(3))) for t in shifts)


def structure(rng, elements, rc_max, kind) -> Structure:
    """One structure of ``kind`` (cubic, orthorhombic, skewed, cluster) with
    atoms drawn from ``elements`` (each listed element at least once if room)."""
    if kind == "cluster":
        lat = None
        n = rng.randint(1, 7)
        radius = rng.uniform(0.6, 1.2) * rc_max
    else:
        if kind == "cubic":
            L = rng.uniform(0.5, 2.0) * rc_max
            lat = [[L, 0.0, 0.0], [0.0, L, 0.0], [0.0, 0.0, L]]
        elif kind == "orthorhombic":
            lat = [[rng.uniform(0.5, 2.0) * rc_max, 0, 0], [0, rng.uniform(0.5, 2.0) * rc_max, 0],
                   [0, 0, rng.uniform(0.5, 2.0) * rc_max]]
        else:
            la, lb, lc = (rng.uniform(0.6, 2.0) * rc_max for _ in range(3))
            g = math.radians(rng.uniform(45, 135))
            lat = [[la, 0.0, 0.0], [lb * math.cos(g), lb * math.sin(g), 0.0],
                   [rng.uniform(-0.7, 0.7) * lc, rng.uniform(-0.7, 0.7) * lc,
                    rng.uniform(0.6, 1.0) * lc]]
        if rng.random() < 0.5:
            rot = _rotation(rng)
            lat = [_matvec(rot, v) for v in lat]
        h = min(heights(lat))
        if h < 0.45 * rc_max:          # keep the number of images modest
            f = 0.45 * rc_max / h
            lat = [[x * f for x in v] for v in lat]
        vol = abs(_det(lat))
        n = max(1, min(6, int(rng.uniform(0.3, 1.0) * vol / 4.0) + 1))
    shifts = _images(lat, 1.0)
    if lat is not None and _min_image_distance([0, 0, 0], [0, 0, 0], [t for t in shifts if any(t)]) < 0.8:
        lat = [[x * 2 for x in v] for v in lat]      # self-images closer than 0.8: grow
        shifts = _images(lat, 1.0)
    atoms = []
    tries = 0
    while len(atoms) < n and tries < 400:
        tries += 1
        if lat is None:
            while True:
                p = [rng.uniform(-radius, radius) for _ in range(3)]
                if _norm(p) <= radius:
                    break
        else:
            out = rng.random() < 0.3
            f = [rng.uniform(-0.25, 1.25) if out else rng.random() for _ in range(3)]
            p = [sum(f[k] * lat[k][i] for k in range(3)) for i in range(3)]
        if all(_min_image_distance(p, q, shifts) >= 0.8 for q in atoms):
            atoms.append(p)
    els = list(elements)
    rng.shuffle(els)
    atoms = [(p[0], p[1], p[2], els[k] if k < len(els) else rng.choice(elements))
             for k, p in enumerate(atoms)]
    if lat is None and rng.random() < 0.12:       # an isolated atom, no neighbours
        d = 3.0 * rc_max
        atoms.append((d + rng.random(), rng.random(), rng.random(), rng.choice(elements)))
    return Structure(lattice=lat, atoms=atoms, kind=kind)


def neighbor_counts(structures, zorder, rc) -> dict:
    """Smallest number of neighbours of element en that any atom of element e has
    within rc (images included, inclusive), brute force: {(e, en): count};
    absent central elements are missing from the dict."""
    low = {}
    for s in structures:
        shifts = _images(s.lattice, rc)
        for i, (x, y, z, e) in enumerate(s.atoms):
            count = dict.fromkeys(zorder, 0)
            for j, (x2, y2, z2, en) in enumerate(s.atoms):
                for t in shifts:
                    if i == j and not any(t):
                        continue
                    d2 = (x2 + t[0] - x) ** 2 + (y2 + t[1] - y) ** 2 + (z2 + t[2] - z) ** 2
                    if d2 <= rc * rc:
                        count[en] += 1
            for en in zorder:
                low[(e, en)] = min(low.get((e, en), count[en]), count[en])
    return low


# ----------------------------------------------------------------------------- cases
def case_from_files(folder) -> Case:
    """A stored regression case: ``folder`` holds input.nn, input.data and args."""
    from pathlib import Path
    folder = Path(folder)
    nn = (folder / "input.nn").read_text()
    structures, lat, atoms = [], [], []
    for line in (folder / "input.data").read_text().splitlines():
        t = line.split()
        if not t:
            continue
        if t[0] == "begin":
            lat, atoms = [], []
        elif t[0] == "lattice":
            lat.append([float(x) for x in t[1:4]])
        elif t[0] == "atom":
            atoms.append((float(t[1]), float(t[2]), float(t[3]), t[4]))
        elif t[0] == "end":
            structures.append(Structure(lattice=lat or None, atoms=atoms, kind="stored"))
    keyword = "symfunction" if any(ln.split()[:1] == ["symfunction"] for ln in nn.splitlines()) \
        else "symfunction_short"
    sfs = [ln.split(None, 1)[1].split("#")[0].strip() for ln in nn.splitlines()
           if ln.split()[:1] == [keyword]]
    elements = next((ln.split()[1:] for ln in nn.splitlines() if ln.split()[:1] == ["elements"]), [])
    flags = tuple(k for k in SCALING_KEYWORDS if any(ln.split()[:1] == [k] for ln in nn.splitlines()))
    return Case(seed=folder.name, elements=elements, cutoff_type=-1, alpha=None, flags=flags,
                smin=None, smax=None, norm=None, sf_keyword=keyword, sfs=sfs,
                structures=structures, ncut=[int(x) for x in (folder / "args").read_text().split()],
                nn_text=nn)


def generate(seed: int, *, cutoff_type=None, flags=None, all_types=None,
             reject=None, max_count: int = 3, subtype_offset=None) -> Case:
    """The case of ``seed``.  Keyword arguments force one property (the CI
    subset uses them to cover every cutoff type x scaling mode, and
    ``subtype_offset`` to rotate the subtypes of the all-types element so that
    every compact type meets every subtype); the rest is drawn from the seed."""
    rng = random.Random(seed)
    ne = rng.choices((1, 2, 3, 4, 5), weights=(3, 5, 4, 2, 1))[0]
    elements = rng.sample(ELEMENT_POOL, ne)
    zorder = sorted(elements, key=Z.__getitem__)
    absent = []
    if ne >= 2 and rng.random() < 0.25:
        absent = [rng.choice(elements)]
    present = [e for e in zorder if e not in absent]
    R = round(rng.uniform(3.0, 6.0), 3)
    all_types = rng.random() < 0.6 if all_types is None else all_types
    sfs = []
    for k, ec in enumerate(zorder):
        types = list(SF_TYPES) if (all_types and k == 0) else []
        forced = len(types)
        types += rng.choices(SF_TYPES, k=rng.randint(1 if types else 2, 5))
        for m, typ in enumerate(types):
            rc = R if rng.random() < 0.3 else rng.uniform(0.5, 1.0) * R
            line = sf_line(rng, typ, ec, zorder, rc)
            if subtype_offset is not None and m < forced and typ >= 20:
                sub = SUBTYPES[(subtype_offset + COMPACT_TYPES.index(typ)) % len(SUBTYPES)]
                line = line.rsplit(None, 1)[0] + " " + sub
            sfs.append(line)
    # families: copies of a line with another subtype, window or zeta/lambda;
    # n2p2 evaluates such SFs in one group (shared r_jk factor of types 21/24)
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        t = rng.choice(sfs).split()
        typ = int(t[1])
        if typ >= 20:
            t[-1] = _subtype(rng)
            if typ in (21, 22, 24, 25) and rng.random() < 0.5:
                t[-3], t[-2] = _window(rng)
        elif typ in (3, 9, 13):
            k = 6 if typ in (3, 9) else 5
            t[k] = _zeta(rng)
            t[k - 1] = _lambda(rng)
        else:
            continue
        sfs.append(" ".join(t))
    rng.shuffle(sfs)
    if cutoff_type is None:
        cutoff_type = rng.randint(0, 8)
    alpha = None if rng.random() < 0.3 else (0.0 if rng.random() < 0.2 else
                                             round(rng.uniform(0.0, 0.9), 4))
    if flags is None:
        flags = tuple(k for k in SCALING_KEYWORDS if rng.random() < 0.5)
    flags = tuple(flags)
    smin = smax = None
    u = rng.random()
    if u < 0.3:
        smin = rng.choice((-1.0, 0.0, round(rng.uniform(-2, 0.5), 3)))
        smax = round(smin + rng.uniform(0.5, 3.0), 3)
    elif u < 0.4:
        smin = round(rng.uniform(-2, 0.9), 3)
    elif u < 0.5:
        smax = round(rng.uniform(0.1, 3), 3)
    norm = None
    if rng.random() < 0.4:
        norm = (rng.uniform(-100, 100), rng.uniform(0.1, 300.0), rng.uniform(0.3, 5.0))
    sf_keyword = "symfunction" if rng.random() < 0.3 else "symfunction_short"
    rc_max = max(_rc(line) for line in sfs)
    structures = []
    for _ in range(rng.choices((1, 2, 3), weights=(4, 3, 2))[0]):
        kind = rng.choice(("cubic", "orthorhombic", "skewed", "skewed", "cluster"))
        structures.append(structure(rng, present, rc_max, kind))
    # every present element in the data at least once
    have = {a[3] for s in structures for a in s.atoms}
    for e in present:
        if e not in have:
            s = structures[-1]
            x, y, z, _ = s.atoms[0]
            s.atoms[0] = (x, y, z, e)
            have = {a[3] for s_ in structures for a in s_.atoms}
    low = neighbor_counts(structures, zorder, rc_max)
    ncut = []
    pairs = []
    for e in zorder:
        for en in zorder:
            if (e, en) in low:
                hi = min(low[(e, en)], max_count)
                ncut.append(hi if rng.random() < 0.6 else rng.randint(0, hi))
                pairs.append((e, en))
            else:
                ncut.append(rng.randint(0, 2))   # no atom of e: never checked
    reject = rng.random() < 0.04 if reject is None else reject
    if reject and pairs:
        e, en = rng.choice(pairs)
        ncut[zorder.index(e) * ne + zorder.index(en)] = low[(e, en)] + 1
    else:
        reject = False
    use_forces = rng.random() < 0.92
    return Case(seed=seed, elements=elements, cutoff_type=cutoff_type, alpha=alpha, flags=flags,
                smin=smin, smax=smax, norm=norm, sf_keyword=sf_keyword, sfs=sfs,
                structures=structures, ncut=ncut, use_short_forces=use_forces, reject=reject,
                extra={"absent": absent})


def ci_cases(tries: int = 8):
    """The CI subset: one case per (cutoff type, scaling keywords) of
    :func:`coverage_plan`, every SF type in each, the subtypes rotated.  Seeds
    are fixed (700000 + 100 k + attempt); ``tries`` alternatives per entry
    are yielded in order (the test takes the first one n2p2 does not crash on)."""
    for k, (ct, flags) in enumerate(coverage_plan()):
        yield k, [generate(700000 + 100 * k + a, cutoff_type=ct, flags=flags, all_types=True,
                           reject=False, subtype_offset=k) for a in range(tries)]


def coverage_plan(n_cutoff=9):
    """(cutoff_type, flags) for the CI subset: every cutoff type with every
    scaling mode (each mode through one of its keyword sets, the sets rotating
    so that all eight combinations occur)."""
    combos = [(), ("scale_symmetry_functions",), ("center_symmetry_functions",),
              ("scale_symmetry_functions", "center_symmetry_functions"),
              ("scale_symmetry_functions_sigma",)]
    extra = [("scale_symmetry_functions", "scale_symmetry_functions_sigma"),
             ("center_symmetry_functions", "scale_symmetry_functions_sigma"),
             SCALING_KEYWORDS]
    plan = []
    for ct in range(n_cutoff):
        for m, flags in enumerate(combos):
            # rotate the other keyword sets in where they give the same mode
            if ct % 3 == 1 and m == 1:
                flags = extra[0]
            elif ct % 3 == 2 and m == 2:
                flags = extra[1]
            elif ct % 3 == 0 and m == 3:
                flags = extra[2]
            plan.append((ct, flags))
    return plan
