"""Histogram text files (distatomenv.io.histo): round trips and malformed files."""
from __future__ import annotations

import numpy as np
import pytest

from distatomenv.errors import HistoFileError, InputFileError
from distatomenv.descriptors.spec import suggest_neighbors
from distatomenv.io.histo import (read_neighbors_histo, read_sf_histo, sf_histo_name,
                                  summarize_counts, write_neighbors_histo, write_sf_histo)

COUNTS = {("H", "H"): np.array([0, 0, 3, 1]), ("H", "O"): np.array([0, 4]),
          ("O", "H"): np.array([0, 0, 0, 0, 2]), ("O", "O"): np.array([1, 1])}


def test_sf_histo_name():
    assert sf_histo_name("H", 1) == "sf-scaled.001.0001.histo"
    assert sf_histo_name("Cm", 12) == "sf-scaled.096.0012.histo"
    assert sf_histo_name("O", 1234) == "sf-scaled.008.1234.histo"


def test_sf_histo_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    edges = np.sort(rng.normal(size=41))          # awkward floats: must read back bit for bit
    counts = rng.integers(0, 10 ** 12, size=40)
    p = tmp_path / sf_histo_name("O", 7)
    write_sf_histo(p, edges, counts, element="O", index=7, description="G2 O-H\neta=0.1",
                   underflow=3, overflow=5)
    h = read_sf_histo(p)
    assert h.element == "O" and h.index == 7
    assert h.description == "G2 O-H eta=0.1"       # one line
    assert np.array_equal(h.edges, edges) and h.edges.dtype == np.float64
    assert np.array_equal(h.counts, counts) and h.counts.dtype == np.int64
    assert (h.underflow, h.overflow, h.values) == (3, 5, int(counts.sum()) + 8)
    assert np.allclose(h.centres, 0.5 * (edges[1:] + edges[:-1]))
    text = p.read_text()
    assert "# element: O" in text and "# sf_index: 7" in text and "# underflow: 3" in text


@pytest.mark.parametrize("kwargs, match", [
    (dict(edges=[0.0, 1.0], counts=[1, 2]), "counts must have shape"),
    (dict(edges=[1.0, 0.0], counts=[1]), "strictly increasing"),
    (dict(edges=[0.0, 1.0], counts=[-1]), "non-negative"),
    (dict(edges=[0.0, 1.0], counts=[1], element="Xx"), "unknown element"),
    (dict(edges=[0.0, 1.0], counts=[1], index=0), "index must be >= 1"),
])
def test_write_sf_histo_rejects_bad_arguments(tmp_path, kwargs, match):
    args = dict(element="H", index=1) | kwargs
    with pytest.raises(ValueError, match=match):
        write_sf_histo(tmp_path / "x.histo", args.pop("edges"), args.pop("counts"), **args)


def _good_sf(tmp_path):
    p = tmp_path / "sf.histo"
    write_sf_histo(p, [0.0, 0.5, 1.0], [2, 3], element="H", index=2, underflow=1)
    return p, p.read_text().splitlines()


def _data_line(lines, k):
    return [i for i, s in enumerate(lines) if s.strip() and not s.startswith("#")][k]


@pytest.mark.parametrize("edit, match", [
    (lambda L: [s for s in L if not s.startswith("# element:")], r"sf\.histo: missing header line '# element"),
    (lambda L: [s.replace("sf-histo 1", "sf-histo 9") for s in L], r"sf\.histo:2: format"),
    (lambda L: [s.replace("# element: H", "# element: Hx") for s in L], r"sf\.histo:3: unknown element symbol 'Hx'"),
    (lambda L: [s.replace("# sf_index: 2", "# sf_index: two") for s in L], r"sf\.histo:4: found 'two' for sf_index"),
    (lambda L: [s.replace("# values: 6", "# values: 7") for s in L], r"sf\.histo:6: values 7 differ"),
    (lambda L: [s.replace("# bins: 2", "# bins: 3") for s in L], r"found 2 data line\(s\), expected 3"),
    (lambda L: L[:_data_line(L, 1)] + [L[_data_line(L, 1)] + " 9"], r"sf\.histo:19: found 5 column"),
    (lambda L: L[:_data_line(L, 1)] + [L[_data_line(L, 1)].replace("3", "x", 1)], r"sf\.histo:19: found '.*x.*' for"),
    (lambda L: L[:_data_line(L, 1)] + [L[_data_line(L, 1)].rsplit(None, 1)[0] + " -3"], r"sf\.histo:19: found -3 for count"),
    (lambda L: L[:_data_line(L, 1)] + [L[_data_line(L, 1)].replace("5.0000000000000000E-01", "6.0000000000000000E-01", 1)],
     r"sf\.histo:19: left edge .* differs from the right edge"),
])
def test_read_sf_histo_errors_name_file_and_line(tmp_path, edit, match):
    p, lines = _good_sf(tmp_path)
    assert read_sf_histo(p).values == 6
    p.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(HistoFileError, match=match) as exc:
        read_sf_histo(p)
    assert isinstance(exc.value, InputFileError) and exc.value.path == str(p)


def test_read_missing_histo(tmp_path):
    with pytest.raises(HistoFileError, match=r"nope\.histo: file not found"):
        read_sf_histo(tmp_path / "nope.histo")
    with pytest.raises(HistoFileError, match=r"nope\.histo: file not found"):
        read_neighbors_histo(tmp_path / "nope.histo")


def test_neighbors_histo_round_trip(tmp_path):
    p = tmp_path / "neighbors.histo"
    suggested = write_neighbors_histo(p, ["H", "O"], COUNTS, cutoff=12.0)
    assert suggested == "2 1 4 0"
    h = read_neighbors_histo(p)
    assert h.elements == ["H", "O"] and h.cutoff == 12.0 and h.suggested == "2 1 4 0"
    for pair, c in COUNTS.items():       # read back padded to the longest column (n = 0..4)
        assert np.array_equal(h.counts[pair][:c.size], c) and not h.counts[pair][c.size:].any()
        assert h.counts[pair].size == 5
    assert h.atoms == {("H", "H"): 4, ("H", "O"): 4, ("O", "H"): 2, ("O", "O"): 2}
    assert h.min[("H", "H")] == 2 and h.max[("H", "H")] == 3 and h.mean[("H", "H")] == 2.25
    assert h.mean[("O", "O")] == 0.5
    text = p.read_text()
    assert "# columns: n H<-H H<-O O<-H O<-O" in text
    assert "# summary: H<-H atoms=4 min=2 mean=2.250000 max=3" in text
    assert "# suggested: 2 1 4 0" in text


def test_neighbors_histo_missing_pair_counts_no_atom(tmp_path):
    p = tmp_path / "neighbors.histo"
    write_neighbors_histo(p, ["Ar", "Kr"], {("Ar", "Ar"): np.array([0, 0, 5]),
                                            ("Ar", "Kr"): np.array([5])})
    h = read_neighbors_histo(p)
    assert h.cutoff is None and h.suggested == "2 0 0 0"
    assert h.atoms[("Kr", "Ar")] == 0 and h.min[("Kr", "Ar")] is None
    assert "# summary: Kr<-Ar atoms=0 min=- mean=- max=-" in p.read_text()


@pytest.mark.parametrize("elements, counts, match", [
    (["O", "H"], {}, "atomic-number order"),
    (["H", "H"], {}, "distinct"),
    (["H", "O"], {("H", "C"): [1]}, "not a pair"),
    (["H", "O"], {("H", "O"): [1, -1]}, "non-negative"),
])
def test_write_neighbors_histo_rejects_bad_arguments(tmp_path, elements, counts, match):
    with pytest.raises(ValueError, match=match):
        write_neighbors_histo(tmp_path / "n.histo", elements, counts)


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("# elements: H O", "# elements: O H"), r"n\.histo:3: .*atomic-number order"),
    (lambda t: t.replace("# columns: n H<-H H<-O", "# columns: n H-H H<-O"), r"n\.histo:4: columns .* expected 'n H<-H"),
    (lambda t: t.replace("# suggested: 2 1 4 0", "# suggested: 3 1 4 0"), r"n\.histo:\d+: suggested '3 1 4 0' does not match"),
    (lambda t: t.replace("# format: distatomenv neighbors-histo 1\n", ""), r"n\.histo: missing header line '# format"),
    (lambda t: t.rstrip("\n") + " 7\n", r"n\.histo:\d+: found 6 column"),
    (lambda t: t.replace("\n       3       1", "\n       7       1"), r"n\.histo:\d+: found n = 7, expected 3"),
    (lambda t: t.replace("\n       3       1", "\n       3     1.5"), r"n\.histo:\d+: found '1.5' for H<-H"),
    (lambda t: "\n".join(s for s in t.splitlines() if s.startswith("#")) + "\n", r"n\.histo: no data lines"),
])
def test_read_neighbors_histo_errors(tmp_path, edit, match):
    p = tmp_path / "n.histo"
    write_neighbors_histo(p, ["H", "O"], COUNTS)
    p.write_text(edit(p.read_text()))
    with pytest.raises(HistoFileError, match=match):
        read_neighbors_histo(p)


def test_suggest_neighbors_and_summary():
    assert suggest_neighbors({("H", "H"): 6, ("H", "O"): 2, ("O", "H"): 4, ("O", "O"): 4},
                             ["H", "O"]) == "6 2 4 4"
    assert suggest_neighbors({("O", "H"): 3}, ["H", "O"]) == "0 0 3 0"
    with pytest.raises(ValueError, match="not in"):
        suggest_neighbors({("H", "C"): 1}, ["H", "O"])
    assert summarize_counts([0, 2, 0, 2]) == (4, 1, 2.0, 3)
    assert summarize_counts([0, 0]) == (0, None, None, None)
