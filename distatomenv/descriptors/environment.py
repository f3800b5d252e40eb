"""Atomic environment vectors: an atom's own SFs plus those of its neighbours.

For a central atom i of element e the environment vector holds (n2p2's
``nnp-atomenv``):

* G row: i's scaled SFs, then for each neighbour element en the scaled SF
  vectors of the ``ncut[e][en]`` nearest entries of element en.
* dG rows (x, y, z): dG_i/dr_i of i's scaled SFs (images held fixed), then
  for each of those neighbour entries j the derivative of j's scaled SFs
  with respect to the position of i, restricted to the SFs of j that can
  depend on an atom of element e ("relevant subset"), taken on the first
  entry of j's own sorted neighbour list that refers to atom i.

In the store, neighbour blocks are in the **canonical layout**: grouped by
neighbour element (atomic-number order), nearest first.  ``nb_order`` keeps
n2p2's interleaved-by-distance order for export: block position p of n2p2's
row holds canonical block ``nb_order[p]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from .. import interrupt
from ..elements import atomic_number
from ..errors import CoincidentAtomsError, NeighborListTooLargeError, NotEnoughNeighborsError
from .forcematch import FORCE_MATCHING, ForceMatchingSums
from .kernels import no_sinks, sf_values
from .neighbors import ENTRY_BYTES, memory_budget, neighbor_list
from .tables import pack_tables

_jit = nb.njit(cache=True, error_model="numpy")

#: Two atoms (or an atom and a periodic image) closer than this fraction of the
#: largest SF cutoff are refused as coincident: at distance 0 the symmetry
#: functions are NaN, just above it they are meaningless (1e-4 x a 6 A cutoff
#: is 0.0006 A).
MIN_DISTANCE_FRACTION = 1e-4


def check_neighbor_budget(natoms, lattice, periodic, sfset, *, settings_path=None,
                          data_path=None) -> None:
    """Refuse, before anything is computed, a cutoff whose neighbour lists
    cannot fit the memory budget (:func:`~.neighbors.memory_budget`).

    natoms : int (S,); lattice : float (S, 3, 3) (input length unit); periodic :
    bool (S,) -- the index of input.data, so no structure is read.  Only periodic
    structures are estimated (:func:`~.neighbors.estimate_entries`: the count of
    a structure's atoms within the cutoff, periodic images included, at its
    mean density); the others are bounded when they are computed.

    Raises NeighborListTooLargeError ``input.nn:LINE: structure S ... would
    hold about N entries (B bytes) ... budget``, LINE being the line of the SF
    with the largest cutoff.
    """
    periodic = np.asarray(periodic, dtype=bool)
    if not periodic.any():
        return
    rc = float(sfset.max_cutoff())
    natoms = np.asarray(natoms, dtype=np.float64)[periodic]
    volume = np.abs(np.linalg.det(np.asarray(lattice, dtype=np.float64)[periodic]))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        est = natoms * natoms / volume * (4.0 / 3.0) * np.pi * rc ** 3
    est = np.where(np.isnan(est), np.inf, est)
    k = int(np.argmax(est))
    limit = memory_budget() // ENTRY_BYTES
    if not est[k] > limit:
        return
    s = int(np.flatnonzero(periodic)[k])
    line = next((f.line for f in sfset.functions if f.rc == rc and f.line), None)
    where = "" if settings_path is None else \
        f"{settings_path}:{line}: " if line else f"{settings_path}: "
    data = f" of {data_path}" if data_path is not None else ""
    raise NeighborListTooLargeError(
        est[k], limit, ENTRY_BYTES,
        f"{where}structure {s + 1}{data} (1-based; {int(natoms[k])} atoms in a cell of volume "
        f"{volume[k]:.4g}): ", f"the largest cutoff {rc:g}", estimated=True)


# ----------------------------------------------------------------------------- layout
@dataclass
class EnvironmentLayout:
    """Column layout of the environment rows of every element.

    Attributes
    ----------
    elements : element symbols, atomic-number order.
    ncut : int (n_el, n_el)  neighbours of element en for central element e.
    nsf : int (n_el,)  SFs per element.
    relevant : relevant[e][en] = SF indices of element en that depend on an
        atom of element e (the columns of an en block in an e row's dG).
    derivatives : whether dG rows are computed.
    """

    elements: list
    ncut: np.ndarray
    nsf: np.ndarray
    relevant: list
    derivatives: bool = True

    @classmethod
    def from_sfset(cls, sfset, ncut, derivatives=True):
        els = list(sfset.elements)
        rel = [[sfset.relevant(en, e) for en in els] for e in els]
        return cls(els, np.asarray(ncut, dtype=np.int64),
                   np.array([sfset.n_sf(e) for e in els], dtype=np.int64), rel, derivatives)

    def nblocks(self, e: int) -> int:
        return int(self.ncut[e].sum())

    def block_element(self, e: int) -> np.ndarray:
        """Neighbour element of each canonical block of an e row."""
        return np.repeat(np.arange(len(self.elements)), self.ncut[e])

    def g_width(self, e: int) -> int:
        return int(self.nsf[e] + (self.ncut[e] * self.nsf).sum())

    def dg_width(self, e: int) -> int:
        return int(self.nsf[e] + sum(self.ncut[e, en] * len(self.relevant[e][en])
                                     for en in range(len(self.elements))))

    def g_block_columns(self, e: int) -> list[slice]:
        """Column slice of each canonical block in the G row."""
        return self._columns(e, [int(n) for n in self.nsf])

    def dg_block_columns(self, e: int) -> list[slice]:
        """Column slice of each canonical block in the dG rows."""
        return self._columns(e, [len(r) for r in self.relevant[e]])

    def _columns(self, e, widths):
        out, pos = [], int(self.nsf[e])
        for en in range(len(self.elements)):
            for _ in range(int(self.ncut[e, en])):
                out.append(slice(pos, pos + widths[en]))
                pos += widths[en]
        return out

    def to_dict(self) -> dict:
        return {"elements": list(self.elements), "ncut": self.ncut.tolist(),
                "nsf": self.nsf.tolist(), "relevant": self.relevant,
                "derivatives": self.derivatives}

    @classmethod
    def from_dict(cls, d):
        return cls(list(d["elements"]), np.array(d["ncut"], dtype=np.int64),
                   np.array(d["nsf"], dtype=np.int64), [[list(x) for x in r] for r in d["relevant"]],
                   bool(d["derivatives"]))


# ----------------------------------------------------------------------------- selection
@_jit
def _select_blocks(atoms, elem, start, nbj, ncut_e, n_elem, blk_entry, nb_order, found):
    """Walk each atom's sorted entries and pick n2p2's neighbour blocks.

    blk_entry (n, nblk): global entry index of each canonical block;
    nb_order (n, nblk): canonical block at each n2p2 position;
    found (n, n_elem): entries of each element within the cutoff.
    Returns True if every atom has enough neighbours.
    """
    off = np.zeros(n_elem + 1, dtype=np.int64)
    for a in range(n_elem):
        off[a + 1] = off[a] + ncut_e[a]
    ok = True
    for r in range(atoms.shape[0]):
        i = atoms[r]
        cnt = np.zeros(n_elem, dtype=np.int64)
        p = 0
        for q in range(start[i], start[i + 1]):
            en = elem[nbj[q]]
            if cnt[en] < ncut_e[en]:
                b = off[en] + cnt[en]
                blk_entry[r, b] = q
                nb_order[r, p] = b
                p += 1
            cnt[en] += 1
        for a in range(n_elem):
            found[r, a] = cnt[a]
            if cnt[a] < ncut_e[a]:
                ok = False
    return ok


@_jit
def _first_entry_of(atoms_j, target_i, start, nbj):
    """For each (j, i): global index of the first entry of j's list that is atom i."""
    out = np.empty(atoms_j.shape[0], dtype=np.int64)
    for p in range(atoms_j.shape[0]):
        j = atoms_j[p]
        out[p] = -1
        for q in range(start[j], start[j + 1]):
            if nbj[q] == target_i[p]:
                out[p] = q
                break
    return out


# ----------------------------------------------------------------------------- computation
class EnvironmentCalculator:
    """Computes environment rows of structures for one SF set and neighbour spec.

    Parameters
    ----------
    sfset : SymmetryFunctionSet
    ncut : int (n_el, n_el)  from :func:`~.spec.parse_neighbor_spec`.
    scaling : (shift, factor, offset) per element symbol, each float64
        (nSF,): Gs = (G - shift) * factor + offset and dGs = dG * factor.
    conv_length : n2p2 length normalisation (1.0 when absent).
    derivatives : compute the dG rows.
    force_matching : "none", "linear" or "quadratic": also the force-matching
        features (:mod:`.forcematch`; needs derivatives).
    """

    def __init__(self, sfset, ncut, scaling, conv_length=1.0, derivatives=True,
                 force_matching="none"):
        if force_matching not in FORCE_MATCHING:
            raise ValueError(f"force_matching must be one of {FORCE_MATCHING}, got {force_matching!r}")
        self.force_matching = force_matching if derivatives else "none"
        self.sfset = sfset
        self.layout = EnvironmentLayout.from_sfset(sfset, ncut, derivatives)
        self.conv_length = float(conv_length)
        self.tables = pack_tables(sfset, self.conv_length)
        self.rc_max = sfset.max_cutoff() * self.conv_length
        ne = sfset.n_elements
        max_sf = self.tables[0].shape[1]
        self.z = np.array([atomic_number(e) for e in sfset.elements], dtype=np.float64)
        self.shift = np.zeros((ne, max_sf))
        self.factor = np.ones((ne, max_sf))
        self.offset = np.zeros((ne, max_sf))
        for a, e in enumerate(sfset.elements):
            sh, fa, of = scaling[e]
            n = sfset.n_sf(e)
            self.shift[a, :n], self.factor[a, :n], self.offset[a, :n] = sh, fa, of

    def neighbors(self, positions, lattice, atoms=None):
        """Neighbour list in normalised units (positions/lattice in input units,
        already remapped into the cell).  A list beyond the memory budget is
        refused before it is allocated; Ctrl-C ends the search (see
        :mod:`distatomenv.interrupt`)."""
        L = self.conv_length
        lat = None if lattice is None else np.asarray(lattice) * L
        return neighbor_list(np.asarray(positions) * L, lat, self.rc_max, atoms,
                             max_entries=memory_budget() // ENTRY_BYTES, stop=interrupt.STOP)

    def check_distances(self, nl, atoms, structure_index=0, path=None, atom_lines=None):
        """Refuse coincident atoms: the closest entry of ``atoms`` in ``nl``
        must be at least MIN_DISTANCE_FRACTION x the largest cutoff away.

        Raises CoincidentAtomsError naming the structure (1-based), both atoms
        (1-based, with their lines when ``atom_lines`` is given) and the
        distance in the input's length unit."""
        if nl.d.size == 0:
            return
        k = int(np.argmin(nl.d))
        limit = MIN_DISTANCE_FRACTION * self.rc_max
        if not nl.d[k] < limit:
            return
        i = int(np.searchsorted(nl.start, k, side="right") - 1)
        j = int(nl.j[k])
        a, b = sorted((i, j))
        unit = 1.0 / self.conv_length
        image = "" if not nl.shift[k].any() else \
            f" (atom {j + 1} in the periodic image {tuple(int(v) for v in nl.shift[k])})"
        lines = ""
        line = None
        if atom_lines is not None:
            line = int(atom_lines[b])
            lines = f" (lines {int(atom_lines[a])} and {line})"
        same = " (the same atom and its periodic image: the cell is far too small)" if i == j \
            else ""
        raise CoincidentAtomsError(
            path, line,
            f"structure {structure_index + 1} (1-based): atoms {a + 1} and {b + 1}{lines} are "
            f"{nl.d[k] * unit:.6g} apart{image}{same}, closer than {limit * unit:.3g} "
            f"({MIN_DISTANCE_FRACTION:g} x the largest cutoff {self.rc_max * unit:g}); two atoms "
            "at one place have no defined symmetry functions; remove the duplicate")

    def compute(self, elements_idx, positions, lattice, owned=None, structure_index=0, path=None,
                atom_lines=None, threads=None):
        """Environment rows of the owned atoms of one structure.

        Parameters
        ----------
        elements_idx : int64 (n,)  element index (atomic-number order) per atom.
        positions : float64 (n, 3)  remapped positions, input length unit.
        lattice : float64 (3, 3) rows = lattice vectors, or None.
        owned : bool (n,) atoms whose rows are wanted (default all).
        structure_index, path : 0-based structure number and input file, for error messages.
        atom_lines : int (n,) the atoms' lines in the file, for error messages (optional).
        threads : threads the SF kernel splits the atoms over (default: numba's
            thread count of the calling thread); results do not depend on it.

        Returns
        -------
        dict element symbol -> dict with ``atom`` int32 (rows,), ``G``,
        ``dGdx``/``dGdy``/``dGdz`` (if derivatives), ``nb_atom`` int32 and
        ``nb_order`` int16 (rows, nblocks), ``nb_count`` int32 (rows, n_el):
        neighbours of each element within the cutoff.  Rows in input atom order.
        """
        lay = self.layout
        elem = np.ascontiguousarray(elements_idx, dtype=np.int64)
        n = elem.shape[0]
        owned_idx = np.arange(n) if owned is None else np.flatnonzero(owned)
        try:
            nl = self.neighbors(positions, lattice, owned_idx)
        except NeighborListTooLargeError as exc:
            where = f"{path}: " if path is not None else ""
            raise NeighborListTooLargeError(
                exc.entries, exc.limit, exc.entry_bytes,
                f"{where}structure {structure_index + 1} (1-based, {n} atoms): ",
                f"the largest cutoff {self.rc_max / self.conv_length:g}") from None
        self.check_distances(nl, owned_idx, structure_index, path, atom_lines)
        ne = len(lay.elements)
        sel = {}
        counts = {}
        for a in range(ne):
            atoms_a = owned_idx[elem[owned_idx] == a]
            nblk = lay.nblocks(a)
            blk_entry = np.zeros((atoms_a.size, nblk), dtype=np.int64)
            nb_order = np.zeros((atoms_a.size, nblk), dtype=np.int16)
            found = np.zeros((atoms_a.size, ne), dtype=np.int64)
            ok = _select_blocks(atoms_a, elem, nl.start, nl.j, lay.ncut[a], ne, blk_entry,
                                nb_order, found)
            if not ok:
                bad = np.argwhere(found < lay.ncut[a][None, :])[0]
                raise NotEnoughNeighborsError(structure_index + 1, int(atoms_a[bad[0]]) + 1,
                                              lay.elements[a], lay.elements[bad[1]],
                                              int(found[bad[0], bad[1]]),
                                              int(lay.ncut[a, bad[1]]), path=path)
            sel[a] = (atoms_a, blk_entry, nb_order)
            counts[a] = found.astype(np.int32)
        nb_atoms = np.concatenate([nl.j[s[1]].ravel() for s in sel.values()] + [owned_idx])
        if self.force_matching != "none" and owned_idx.size:   # every neighbour's list: ∂G_j/∂r_i for all j
            nb_atoms = np.concatenate([nb_atoms, nl.j[nl.start[owned_idx[0]]:nl.start[owned_idx[-1] + 1]]])
        needed = np.unique(nb_atoms.astype(np.int64))
        if needed.size != owned_idx.size:      # neighbours outside the owned set
            nl = self.neighbors(positions, lattice, needed)
            # entry indices changed: redo the selection on the new list
            for a in range(ne):
                atoms_a = sel[a][0]
                _select_blocks(atoms_a, elem, nl.start, nl.j, lay.ncut[a], ne, sel[a][1],
                               sel[a][2], np.zeros((atoms_a.size, ne), dtype=np.int64))
        max_sf = self.tables[0].shape[1]
        G = np.zeros((n, max_sf))
        dG = np.zeros((n, max_sf, 3))
        Gs = np.zeros((n, max_sf))
        # neighbour blocks, every block of every row (elements in order): the
        # atom j and the first entry of i in j's list; blk receives their entry
        # derivatives, element a's blocks in rows blk_rows[a]
        jatom, entry, blk_rows = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], {}
        if lay.derivatives:
            for a, (atoms_a, blk_entry, _) in sel.items():
                if blk_entry.shape[1] and atoms_a.size:
                    jj = nl.j[blk_entry].ravel().astype(np.int64)
                    ii = np.repeat(atoms_a, blk_entry.shape[1]).astype(np.int64)
                    lo = sum(x.size for x in entry)
                    blk_rows[a] = slice(lo, lo + jj.size)
                    jatom.append(jj)
                    entry.append(_first_entry_of(jj, ii, nl.start, nl.j))
        jatom, entry = np.concatenate(jatom), np.concatenate(entry)
        blk = np.zeros((entry.size, max_sf, 3))
        fm = None
        if self.force_matching != "none" and lay.derivatives:
            fm = ForceMatchingSums(self.force_matching, owned_idx, n, elem, self.tables[2],
                                   self.factor)
        threads = nb.get_num_threads() if threads is None else int(threads)
        if _serial(needed, threads) and (fm is None or fm.mode == "linear"):
            # one serial pass: the kernel copies the blocks' entry derivatives
            # and adds the force-matching sums while they are in cache
            self._run_fused(needed, elem, nl, G, dG, jatom, entry, blk, fm)
            self._scale(needed, elem, G, Gs)
        else:
            self._run_batches(needed, elem, nl, G, dG, Gs, entry, blk, fm, threads)
        if fm is not None:
            fm = fm.finish(Gs, dG)
        out = {}
        for a, (atoms_a, blk_entry, nb_order) in sel.items():
            e = lay.elements[a]
            nsf_a = int(lay.nsf[a])
            blk_atom = nl.j[blk_entry]
            rows = {"atom": atoms_a.astype(np.int32), "nb_atom": blk_atom.astype(np.int32),
                    "nb_order": nb_order, "nb_count": counts[a]}
            benum = lay.block_element(a)
            parts = [Gs[atoms_a, :nsf_a]]
            for b in range(blk_atom.shape[1]):
                parts.append(Gs[blk_atom[:, b], :int(lay.nsf[benum[b]])])
            rows["G"] = np.concatenate(parts, axis=1) if parts else np.zeros((0, 0))
            if lay.derivatives:
                dparts = [dG[atoms_a, :nsf_a, :] * self.factor[a, None, :nsf_a, None]]
                if a in blk_rows:
                    dparts += self._neighbor_derivatives(a, atoms_a, blk_atom, benum, elem,
                                                         blk[blk_rows[a]])
                dcat = np.concatenate(dparts, axis=1)
                rows["dGdx"] = np.ascontiguousarray(dcat[:, :, 0])
                rows["dGdy"] = np.ascontiguousarray(dcat[:, :, 1])
                rows["dGdz"] = np.ascontiguousarray(dcat[:, :, 2])
            if fm is not None:
                at = np.searchsorted(owned_idx, atoms_a)
                for prefix, feat in (("fm", fm[0]), ("fmq", fm[1])):
                    if feat is not None:
                        for k, c in enumerate("xyz"):
                            rows[f"{prefix}_d{c}"] = np.ascontiguousarray(feat[at, :, k])
            out[e] = rows
        # derivatives are with respect to normalised coordinates, as n2p2 writes them
        return out

    def _scale(self, atoms, elem, G, Gs):
        """Gs[atoms] = the scaled G of ``atoms``, (G - shift) * factor + offset."""
        eb = elem[atoms]
        Gs[atoms] = (G[atoms] - self.shift[eb]) * self.factor[eb] + self.offset[eb]

    def _run_fused(self, atoms, elem, nl, G, dG, jatom, entry, blk, fm):
        """The SF kernel over ``atoms`` (increasing) on this thread, taking the
        entry derivatives of the neighbour blocks (atom jatom[k], global entry
        entry[k], into blk[k]) and the linear force-matching sums (into ``fm``)
        as it goes: no array of every entry's derivatives is written."""
        max_sf = self.tables[0].shape[1]
        n = elem.shape[0]
        sinks = list(no_sinks(max_sf))
        if fm is not None:
            sinks[:4] = fm.row_of, fm.layout.d_offset, self.factor, fm.D
        if entry.size:
            rows = np.flatnonzero(entry >= 0)      # -1: i not in j's list; the row stays 0
            by_atom = rows[np.argsort(jatom[rows], kind="stable")]
            dst_ptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(jatom[rows], minlength=n), out=dst_ptr[1:])
            sinks[4:] = dst_ptr, entry[by_atom] - nl.start[jatom[by_atom]], by_atom, blk
        sf_values(atoms, elem, self.z, nl.start, nl.j, nl.dx, nl.dy, nl.dz, nl.d, *self.tables,
                  G, dG, np.full(n, -1, dtype=np.int64), np.zeros((0, max_sf, 3)), *sinks,
                  interrupt.STOP)
        interrupt.check()

    def _run_batches(self, needed, elem, nl, G, dG, Gs, entry, blk, fm, threads):
        """The SF kernel over ``needed`` in batches whose entry derivatives
        (all entries of their atoms) fit BATCH_BYTES, on ``threads`` threads;
        the blocks (global entry entry[k] into blk[k]) and the force-matching
        sums are taken from each batch's entry derivatives."""
        max_sf = self.tables[0].shape[1]
        n = elem.shape[0]
        want_entries = entry.size > 0 or fm is not None
        for batch in _batches(needed, nl.start, max_sf if want_entries else 0):
            e0 = int(nl.start[batch[0]])
            e1 = int(nl.start[batch[-1] + 1])
            ebase = np.full(n, -1, dtype=np.int64)
            if want_entries:
                ebase[batch] = nl.start[batch] - e0
            dGe = np.zeros((e1 - e0 if want_entries else 0, max_sf, 3))
            self._run_kernel(batch, elem, nl, G, dG, ebase, dGe, threads)
            self._scale(batch, elem, G, Gs)
            inb = (entry >= e0) & (entry < e1)
            blk[inb] = dGe[entry[inb] - e0]
            if fm is not None:
                fm.add_batch(batch, nl.start, nl.j, e0, Gs, dGe)

    def _run_kernel(self, atoms, elem, nl, G, dG, ebase, dGe, threads=None):
        """The SF kernel over ``atoms`` on ``threads`` threads (default numba's
        thread count): threads take disjoint slices of atoms, so results do
        not depend on it."""
        args = (elem, self.z, nl.start, nl.j, nl.dx, nl.dy, nl.dz, nl.d, *self.tables, G, dG,
                ebase, dGe, *no_sinks(self.tables[0].shape[1]), interrupt.STOP)
        threads = nb.get_num_threads() if threads is None else int(threads)
        if _serial(atoms, threads):
            sf_values(atoms, *args)
        else:
            parts = np.array_split(atoms, min(atoms.size, 4 * threads))
            list(_pool(threads).map(lambda part: sf_values(part, *args), parts))
        interrupt.check()

    def _neighbor_derivatives(self, a, atoms_a, blk_atom, benum, elem, dGe_blocks):
        """The scaled neighbour blocks of element a's rows from the gathered
        entry derivatives dGe_blocks (rows x blocks, max_sf, 3): each block
        keeps the relevant SFs of its neighbour's element."""
        lay = self.layout
        nblk = blk_atom.shape[1]
        out = dGe_blocks.reshape(atoms_a.size, nblk, -1, 3)
        parts = []
        for b in range(nblk):
            rel = np.asarray(lay.relevant[a][benum[b]], dtype=np.int64)
            fac = self.factor[elem[blk_atom[:, b]][:, None], rel[None, :]]
            parts.append(out[:, b][:, rel, :] * fac[:, :, None])
        return parts


#: entry-derivative rows (x max_sf x 3 floats) of one batch of the SF kernel
BATCH_BYTES = 256 << 20


def _serial(atoms, threads) -> bool:
    """Whether the kernel runs over ``atoms`` on the calling thread alone."""
    return threads == 1 or atoms.size < 2 * threads


def _batches(atoms, start, max_sf):
    """Split ``atoms`` (increasing) into runs whose entry derivatives stay
    within BATCH_BYTES (one run when none are wanted)."""
    if max_sf == 0 or atoms.size == 0:
        return [atoms] if atoms.size else []
    per_row = max_sf * 3 * 8
    counts = np.cumsum(start[atoms + 1] - start[atoms])
    out = []
    lo = 0
    base = 0
    while lo < atoms.size:
        hi = int(np.searchsorted(counts, base + max(1, BATCH_BYTES // per_row), side="right"))
        hi = max(hi, lo + 1)
        out.append(atoms[lo:hi])
        base = int(counts[hi - 1])
        lo = hi
    return out


_POOLS: dict = {}


def _pool(threads):
    """A thread pool of ``threads`` workers, one per thread count, kept."""
    import concurrent.futures
    if threads not in _POOLS:
        _POOLS[threads] = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="distatomenv-sf")
    return _POOLS[threads]
