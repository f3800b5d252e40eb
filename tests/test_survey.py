"""The neighbour survey (distatomenv neighbors / distatomenv.survey_neighbors).

Counts are checked against a brute-force loop over explicit periodic images in
plain numpy, against compute's own neighbour lists, and against compute
itself (the suggested --neighbors works, one more fails).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import distatomenv
from distatomenv.cli import main
from distatomenv.descriptors.neighbors import neighbor_list
from distatomenv.errors import DataFileError, DistatomenvError, FileAccessError, \
    NotEnoughNeighborsError
from distatomenv.io.inputdata import read_structures, write_structures
from distatomenv.io.structure import Structure
from distatomenv.io.histo import read_neighbors_histo
from distatomenv.io.settings import read_settings
from distatomenv.tools.synth import lj_settings_text, write_lj_dataset


# ----------------------------------------------------------------------------- helpers
def brute_force(structure, elements, rc, r_edges=None):
    """Per atom, entries of each element within rc, by explicit images (numpy only).

    Returns counts int (n, n_el) and, with r_edges, the pair-distance histogram
    (n_el, n_el, bins) of all entries with r_edges[0] <= d < r_edges[-1].
    """
    pos = structure.remapped_positions()
    elem = np.array([elements.index(e) for e in structure.elements])
    n, ne = len(pos), len(elements)
    rmax = rc if r_edges is None else max(rc, r_edges[-1])
    if structure.lattice is None:
        shifts = np.zeros((1, 3))
    else:
        lat = structure.lattice
        vol = abs(np.linalg.det(lat))
        h = [vol / np.linalg.norm(np.cross(lat[(a + 1) % 3], lat[(a + 2) % 3])) for a in range(3)]
        k = [int(math.ceil(rmax / h[a])) + 1 for a in range(3)]
        shifts = np.array(list(itertools.product(*[range(-x, x + 1) for x in k]))) @ lat
    counts = np.zeros((n, ne), dtype=np.int64)
    hist = None if r_edges is None else np.zeros((ne, ne, len(r_edges) - 1), dtype=np.int64)
    for i in range(n):
        d = np.linalg.norm(pos[None, :, :] + shifts[:, None, :] - pos[i], axis=2)   # (S, n)
        d[np.all(shifts == 0, axis=1), i] = np.inf                                 # i itself
        for b in range(ne):
            db = d[:, elem == b]
            counts[i, b] = np.count_nonzero(db <= rc)
            if hist is not None:
                hist[elem[i], b] += np.histogram(db[np.isfinite(db)], bins=r_edges)[0]
    return counts, elem, hist


def histograms(counts, elem, elements):
    out = {}
    for a, ea in enumerate(elements):
        for b, eb in enumerate(elements):
            out[(ea, eb)] = np.bincount(counts[elem == a, b]) if np.any(elem == a) else \
                np.zeros(0, dtype=np.int64)
    return out


def assert_same_histograms(got, want):
    assert set(got) == set(want)
    for p in want:
        g, w = np.asarray(got[p]), np.asarray(want[p])
        m = max(g.size, w.size)
        assert np.array_equal(np.pad(g, (0, m - g.size)), np.pad(w, (0, m - w.size))), p


def write_case(d, structures, elements=("Ar", "Kr"), cutoff=4.0):
    d.mkdir(parents=True, exist_ok=True)
    write_structures(d / "input.data", structures)
    (d / "input.nn").write_text(lj_settings_text(list(elements), cutoff=cutoff))
    return d / "input.data"


def random_structure(rng, n, lattice, symbols=("Ar", "Kr"), index=0):
    lattice = None if lattice is None else np.asarray(lattice, dtype=float)
    if lattice is None:
        pos = rng.uniform(0, 6, size=(n, 3))
    else:
        pos = rng.uniform(-0.2, 1.2, size=(n, 3)) @ lattice        # some atoms outside the cell
    return Structure(index=index, line=0, comment="random", lattice=lattice, positions=pos,
                     elements=rng.choice(symbols, size=n), charges=np.zeros(n),
                     atom_energies=np.zeros(n), forces=np.zeros((n, 3)))


# ----------------------------------------------------------------------------- counts
def test_counts_equal_brute_force_on_small_triclinic_cells(tmp_path):
    """Cells smaller than the cutoff (many images, self-images) and a non-periodic one."""
    rng = np.random.default_rng(3)
    cells = [[[3.1, 0, 0], [0.7, 3.4, 0], [-0.5, 0.9, 2.9]],
             [[5.5, 0, 0], [0, 6.0, 0], [0, 0, 9.0]], None]
    structs = [random_structure(rng, 9 + 4 * k, c, index=k) for k, c in enumerate(cells)]
    data = write_case(tmp_path, structs, cutoff=4.0)
    edges = np.linspace(0, 5.0, 26)
    survey = distatomenv.survey_neighbors(data, bins=25, rmax=5.0)
    elements = ["Ar", "Kr"]
    total = {p: np.zeros(0, dtype=np.int64) for p in itertools.product(elements, elements)}
    want_hist = np.zeros((2, 2, 25), dtype=np.int64)
    for s in read_structures(data):
        c, elem, h = brute_force(s, elements, 4.0, edges)
        for p, v in histograms(c, elem, elements).items():
            m = max(v.size, total[p].size)
            total[p] = np.pad(total[p], (0, m - total[p].size)) + np.pad(v, (0, m - v.size))
        if s.lattice is not None:
            want_hist += h
    assert_same_histograms(survey.counts, total)
    assert survey.n_structures == 3 and survey.n_periodic == 2 and survey.n_atoms == 9 + 13 + 17
    assert survey.elements == elements and survey.cutoff == 4.0 and survey.rmax == 5.0
    # g(r) * ideal = the brute-force pair histogram of the periodic structures
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    ideal = np.zeros((2, 2, 25))
    for s in read_structures(data)[:2]:
        nat = np.array([np.sum(s.elements == e) for e in elements], dtype=float)
        rho = (nat[None, :] - np.eye(2)) / abs(np.linalg.det(s.lattice))
        ideal += nat[:, None, None] * rho[:, :, None] * shells
    for a, b in itertools.product(range(2), range(2)):
        g = survey.g[(elements[a], elements[b])]
        np.testing.assert_allclose(g * ideal[a, b], want_hist[a, b], rtol=1e-12, atol=1e-9)
    assert np.allclose(survey.r, 0.5 * (edges[1:] + edges[:-1]))


def test_flat_nonperiodic_structure(tmp_path):
    """Collinear / planar molecules (zero extent along an axis) still find their neighbours."""
    rng = np.random.default_rng(0)
    pos = np.zeros((5, 3))
    pos[:, 0] = [0.0, 1.0, 2.5, 3.0, 7.0]
    line = Structure(index=0, line=0, comment="", lattice=None, positions=pos,
                     elements=["Ar", "Kr", "Ar", "Ar", "Kr"], charges=np.zeros(5),
                     atom_energies=np.zeros(5), forces=np.zeros((5, 3)))
    flat = random_structure(rng, 8, None, index=1)
    flat.positions[:, 2] = 1.0
    data = write_case(tmp_path, [line, flat], cutoff=4.0)
    survey = distatomenv.survey_neighbors(data)
    want = {}
    for s in read_structures(data):
        c, elem, _ = brute_force(s, ["Ar", "Kr"], 4.0)
        for p, v in histograms(c, elem, ["Ar", "Kr"]).items():
            w = want.get(p, np.zeros(0, dtype=np.int64))
            m = max(v.size, w.size)
            want[p] = np.pad(w, (0, m - w.size)) + np.pad(v, (0, m - v.size))
    assert_same_histograms(survey.counts, want)
    assert survey.g is None and survey.n_periodic == 0
    assert "no periodic structure" in survey.table()


def test_h2o_reference_counts(reference_dir):
    """The H2O reference (conv_length != 1): brute force in input units, compute's
    own neighbour lists in normalised units, and n2p2's neighbor-list.data."""
    import gzip
    case = reference_dir / "H2O_RPBE-D3"
    st = read_settings(case / "input.nn")
    assert st.conv_length != 1.0
    survey = distatomenv.survey_neighbors(case / "input.data")
    assert survey.elements == ["H", "O"] and survey.cutoff == pytest.approx(12.0)
    assert survey.n_atoms == 336 and survey.n_structures == 4
    structs = read_structures(case / "input.data")
    brute, lists = [], []
    L = st.conv_length
    for s in structs:
        c, elem, _ = brute_force(s, st.elements, survey.cutoff)
        brute.append(c)
        nl = neighbor_list(s.remapped_positions() * L, s.lattice * L, st.sfset.max_cutoff() * L)
        lc = np.zeros_like(c)
        for i in range(s.natoms):
            lc[i] = np.bincount(elem[nl.j[nl.of(i)]], minlength=2)
        lists.append(lc)
        assert np.array_equal(lc, c)
    elem_all = np.concatenate([[st.elements.index(e) for e in s.elements] for s in structs])
    assert_same_histograms(survey.counts, histograms(np.concatenate(brute), elem_all, st.elements))
    # n2p2's neighbour counts per element (columns 2, 3 of neighbor-list.data)
    rows = [line.split() for line in gzip.open(case / "expected" / "neighbor-list.data.gz", "rt")]
    n2p2 = np.array([[int(r[1]), int(r[2])] for r in rows if len(r) > 1])
    assert_same_histograms(survey.counts, histograms(n2p2, elem_all, st.elements))
    assert survey.suggested == " ".join(str(int(n2p2[elem_all == a, b].min()))
                                        for a in range(2) for b in range(2))


def test_smallbox_matches_compute_neighbour_lists(reference_dir):
    """A triclinic cell smaller than 2 rc: self-images, exact ties, atoms outside the cell."""
    case = reference_dir / "H2O_smallbox"
    st = read_settings(case / "input.nn")
    s = read_structures(case / "input.data")[0]
    L = st.conv_length
    nl = neighbor_list(s.remapped_positions() * L, s.lattice * L, st.sfset.max_cutoff() * L)
    elem = np.array([st.elements.index(e) for e in s.elements])
    lc = np.array([np.bincount(elem[nl.j[nl.of(i)]], minlength=2) for i in range(s.natoms)])
    survey = distatomenv.survey_neighbors(case / "input.data", rmax=30.0, bins=50)
    assert_same_histograms(survey.counts, histograms(lc, elem, st.elements))
    c, _, _ = brute_force(s, st.elements, survey.cutoff)
    assert np.array_equal(c, lc)


def test_cg_water_range_and_threads(reference_dir, monkeypatch):
    """The reference README: 22 to 39 neighbour entries per atom; any thread count
    (the parallel path forced on for these 360-atom structures)."""
    import distatomenv.tools.survey
    data = reference_dir / "CG_water_inputs_only" / "input.data"
    survey = distatomenv.survey_neighbors(data, structures=5, threads=1)
    monkeypatch.setattr(distatomenv.tools.survey, "PARALLEL_MIN_ATOMS", 0)
    full = distatomenv.survey_neighbors(data, threads=2)
    p = ("Cm", "Cm")
    assert full.min[p] == 22 and full.max[p] == 39 and full.suggested == "22"
    assert full.atoms[p] == 6840 and survey.atoms[p] == 5 * 360 and survey.n_structures == 5
    s, a = full.min_at[p]
    assert 1 <= s <= 19 and 1 <= a <= 360
    one = distatomenv.survey_neighbors(data, structures=5, threads=2)
    assert_same_histograms(one.counts, survey.counts)
    for q in survey.g:
        assert np.array_equal(one.g[q], survey.g[q], equal_nan=True)


def test_rmax_beyond_cutoff_keeps_counts(reference_dir):
    data = reference_dir / "H2O_RPBE-D3" / "input.data"
    a = distatomenv.survey_neighbors(data, bins=40)
    b = distatomenv.survey_neighbors(data, bins=100, rmax=20.0)
    assert_same_histograms(a.counts, b.counts)
    assert b.r.size == 100 and b.edges[-1] == 20.0 and a.edges[-1] == a.cutoff
    # the first 12/20 of b's bins are a's bins, split differently: compare g on common bins
    c = distatomenv.survey_neighbors(data, bins=60, rmax=a.cutoff * 1.5)
    for p in a.g:
        np.testing.assert_allclose(c.g[p][:40], a.g[p], rtol=1e-12, equal_nan=True)


# ----------------------------------------------------------------------------- g(r)
def test_ideal_gas_rdf_is_one(tmp_path):
    """Uniform random positions: g(r) = 1 within statistics.

    5 cubic boxes of 1200 atoms (Ar/Kr 50/50, rho = 0.15 / A^3), rmax = 6 A, 30
    bins.  Expected entries per pair per bin at r ~ 5 A are ~ 2e4, so relative
    noise ~ 1 %: we require |g - 1| < 0.06 in every bin with r > 2 A, and the
    mean of g over 3 A < r < 6 A within 0.01 of 1.
    """
    rng = np.random.default_rng(7)
    edge = (1200 / 0.15) ** (1 / 3)
    structs = []
    for k in range(5):
        s = random_structure(rng, 1200, np.eye(3) * edge, index=k)
        s.positions = rng.uniform(0, edge, size=(1200, 3))
        structs.append(s)
    data = write_case(tmp_path, structs, cutoff=6.0)
    survey = distatomenv.survey_neighbors(data, bins=30)
    for p, g in survey.g.items():
        far = survey.r > 2.0
        assert np.all(np.abs(g[far] - 1) < 0.06), (p, g)
        assert abs(g[survey.r > 3.0].mean() - 1) < 0.01, (p, g)
    # counts: Poisson-like around rho_b * 4/3 pi rc^3 = 0.075 * 904.8 = 67.9
    for p in survey.pairs:
        assert abs(survey.mean[p] - 0.075 * 4 / 3 * np.pi * 6.0 ** 3) < 1.0


# ----------------------------------------------------------------------------- against compute
@pytest.fixture(scope="module")
def lj_small(tmp_path_factory):
    d = tmp_path_factory.mktemp("lj")
    paths = write_lj_dataset(d, n_structures=3, n_atoms=64, seed=11)
    from distatomenv.io.scaling import write_scaling
    from distatomenv.engine.scaling import scaling_pass
    st = read_settings(paths["input.nn"])
    write_scaling(d / "scaling.data", scaling_pass(paths["input.data"], settings=st), st.sfset)
    return paths["input.data"]


def test_suggested_neighbors_are_the_most_compute_accepts(lj_small, tmp_path):
    survey = distatomenv.survey_neighbors(lj_small)
    counts = np.array(survey.suggested.split(), dtype=int)
    assert np.all(counts > 0)
    store = distatomenv.compute(lj_small, neighbors=survey.suggested, out=tmp_path / "ok.zarr")
    assert sum(store.n_rows(e) for e in store.elements) == 3 * 64
    for k, p in enumerate(survey.pairs):
        more = counts.copy()
        more[k] += 1
        spec = " ".join(str(v) for v in more)
        with pytest.raises(NotEnoughNeighborsError, match=rf"has only {counts[k]} {p[1]} "
                                                          rf"neighbour\(s\).*pair {p[0]}-{p[1]}"):
            distatomenv.compute(lj_small, neighbors=spec, out=tmp_path / f"fail{k}.zarr")


# ----------------------------------------------------------------------------- files and CLI
def test_write_files(lj_small, tmp_path):
    survey = distatomenv.survey_neighbors(lj_small, bins=50)
    paths = survey.write(tmp_path / "out")
    assert set(paths) == {"neighbors.histo", "rdf.dat", "neighbors.png"}
    h = read_neighbors_histo(paths["neighbors.histo"])
    assert h.suggested == survey.suggested and h.cutoff == survey.cutoff
    assert_same_histograms(h.counts, survey.counts)
    rdf = np.loadtxt(paths["rdf.dat"])
    assert rdf.shape == (50, 5)
    np.testing.assert_array_equal(rdf[:, 0], survey.r)
    np.testing.assert_array_equal(rdf[:, 1:], np.array([survey.g[p] for p in survey.pairs]).T)
    text = paths["rdf.dat"].read_text()
    assert "# columns: r g(Ar<-Ar) g(Ar<-Kr) g(Kr<-Ar) g(Kr<-Kr)" in text
    assert paths["neighbors.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_writes_files_and_prints_suggestion(lj_small, tmp_path, capsys):
    out = tmp_path / "survey"
    assert main(["neighbors", str(lj_small), "-o", str(out), "--bins", "40", "--rmax", "7"]) == 0
    text = capsys.readouterr().out
    survey = distatomenv.survey_neighbors(lj_small)
    assert f'suggested: --neighbors "{survey.suggested}"' in text
    assert "Ar<-Kr" in text and "neighbors.png" in text
    for name in ("neighbors.histo", "rdf.dat", "neighbors.png"):
        assert (out / name).stat().st_size > 0
    assert np.loadtxt(out / "rdf.dat").shape == (40, 5)
    assert main(["neighbors", str(lj_small), "-o", str(out), "-q", "--structures", "1"]) == 0
    assert capsys.readouterr().out.strip() == \
        distatomenv.survey_neighbors(lj_small, structures=1).suggested


def test_cli_nonperiodic_reference(reference_dir, tmp_path, capsys):
    out = tmp_path / "lj"
    assert main(["neighbors", str(reference_dir / "LJ" / "input.data"), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert 'suggested: --neighbors "1"' in text and "no periodic structure" in text
    assert "every g column is nan" in (out / "rdf.dat").read_text()


@pytest.mark.parametrize("args, match, status", [
    (["{missing}"], r"missing\.data: cannot read input\.data: No such file or directory", 4),
    (["{data}", "--settings", "{missing}"],
     r"missing\.data: cannot read input\.nn: No such file or directory", 4),
    (["{data}", "--bins", "0"], r"bins must be a positive integer, got 0", 2),
    (["{data}", "--rmax", "0"], r"rmax must be a positive number, got 0\.0", 2),
    (["{data}", "--rmax", "-2.5"], r"rmax must be a positive number, got -2\.5", 2),
    (["{data}", "--rmax", "nan"], r"rmax must be a positive number, got nan", 2),
    (["{data}", "--structures", "0"], r"structures must be a positive integer, got 0", 2),
])
def test_cli_errors(lj_small, tmp_path, capsys, args, match, status):
    args = [a.format(missing=tmp_path / "missing.data", data=lj_small) for a in args]
    assert main(["neighbors", *args, "-o", str(tmp_path / "o")]) == status
    err = capsys.readouterr().err
    assert err.startswith("distatomenv: error: ")
    import re
    assert re.search(match, err), err
    assert not (tmp_path / "o").exists()


def test_api_errors(tmp_path, lj_small):
    with pytest.raises(FileAccessError, match=r"nothing\.data: cannot read input\.data: No such"):
        distatomenv.survey_neighbors(tmp_path / "nothing.data")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "input.data").write_bytes(open(lj_small, "rb").read())
    with pytest.raises(FileAccessError, match=r"input\.nn: cannot read input\.nn \(the default"):
        distatomenv.survey_neighbors(alone / "input.data")
    with pytest.raises(DistatomenvError, match="bins must be a positive integer"):
        distatomenv.survey_neighbors(lj_small, bins=2.5)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "input.nn").write_text(lj_settings_text(["Ar", "Kr"], cutoff=4.0))
    (bad / "input.data").write_text("begin\natom 0 0 0 Xe 0 0 0 0 0\nend\n")
    with pytest.raises(DataFileError, match=r"input\.data:2: .*Xe"):
        distatomenv.survey_neighbors(bad / "input.data")
