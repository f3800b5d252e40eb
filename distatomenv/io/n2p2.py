"""Writers of n2p2's ``nnp-atomenv`` output files.

* ``atomic-env.G`` and ``atomic-env.dGdx/dGdy/dGdz``: one line per atom, all
  atoms of structure 1 in input order, then structure 2, ...; the element
  symbol as ``%2s``, then each value as ``" %16.8E"``.  Neighbour blocks are
  in n2p2's layout: interleaved by distance (the store keeps them grouped by
  element; ``nb_order`` maps one to the other).
* ``neighbor-list.data``: per structure a line with the atom count, then per
  atom: Z, the number of neighbour entries of each element (atomic-number
  order), and the 0-based atom indices of all entries in distance order.
"""
from __future__ import annotations

import os

import numpy as np

#: File names per array name.
FILES = {"G": "atomic-env.G", "dGdx": "atomic-env.dGdx", "dGdy": "atomic-env.dGdy",
         "dGdz": "atomic-env.dGdz"}


def n2p2_columns(nb_order, own, block_start, block_width):
    """Column index array that puts canonical rows into n2p2's block order.

    Parameters
    ----------
    nb_order : int (n, nblk)  canonical block at each n2p2 position.
    own : number of own columns (they come first in both layouts).
    block_start, block_width : int (nblk,)  canonical column start/width of
        each block.
    Returns int64 (n, width) for ``np.take_along_axis(rows, idx, axis=1)``.
    """
    nb_order = np.asarray(nb_order, dtype=np.int64)
    n, nblk = nb_order.shape
    width = own + int(np.sum(block_width))
    idx = np.empty((n, width), dtype=np.int64)
    idx[:, :own] = np.arange(own)
    if nblk == 0 or n == 0:
        return idx
    starts = block_start[nb_order].ravel()
    widths = block_width[nb_order].ravel()
    # flat position q of segment k holds column starts[k] + (q - first[k])
    first = np.cumsum(widths) - widths
    flat = np.repeat(starts - first, widths) + np.arange(widths.sum())
    idx[:, own:] = flat.reshape(n, -1)
    return idx


class AtomEnvWriter:
    """Streams nnp-atomenv files, one block of structures at a time.

    Parameters
    ----------
    out_dir : directory (must exist).
    names : arrays to write, e.g. ["G", "dGdx", "dGdy", "dGdz"].
    columns : per element symbol, per array name, ``(own, block_start,
        block_width)`` describing the canonical column layout.
    elements : symbols in atomic-number order; zs : their atomic numbers.
    """

    def __init__(self, out_dir, names, columns, elements, zs):
        self.names = list(names)
        self.columns = columns
        self.elements = list(elements)
        self.zs = list(zs)
        self.paths = [os.path.join(out_dir, FILES[n]) for n in self.names]
        self.paths.append(os.path.join(out_dir, "neighbor-list.data"))
        self._files = [open(p, "w", newline="\n") for p in self.paths]

    def write_block(self, rows, neighbor_lists):
        """Write the atoms of consecutive structures.

        rows : element -> dict with ``structure``, ``atom``, ``nb_order`` and
            the canonical arrays of ``names``, rows of these structures only.
        neighbor_lists : per structure of the block, in order, (elem int (n,),
            NeighborList of all its atoms).
        """
        keys, lines = [], {n: [] for n in self.names}
        for e in self.elements:
            r = rows.get(e)
            if r is None or len(r["atom"]) == 0:
                continue
            keys.append(np.asarray(r["structure"], dtype=np.int64) * (1 << 32) + r["atom"])
            label = "%2s" % e
            for n in self.names:
                own, bstart, bwidth = self.columns[e][n]
                idx = n2p2_columns(r["nb_order"], own, bstart, bwidth)
                m = np.take_along_axis(np.asarray(r[n], dtype=np.float64), idx, axis=1)
                fmt = label + " %16.8E" * m.shape[1] + "\n"
                lines[n].extend(fmt % tuple(row) for row in m.tolist())
        if keys:
            order = np.argsort(np.concatenate(keys), kind="stable")
            for f, n in zip(self._files, self.names):
                ln = lines[n]
                f.write("".join(ln[k] for k in order))
        nf = self._files[-1]
        ne = len(self.elements)
        for elem, nl in neighbor_lists:
            out = [f"{elem.shape[0]}\n"]
            for i in range(elem.shape[0]):
                sl = nl.of(i)
                js = nl.j[sl]
                cnt = np.bincount(elem[js], minlength=ne)
                out.append(" ".join([str(self.zs[elem[i]])] + [str(c) for c in cnt]
                                    + [str(j) for j in js.tolist()]) + "\n")
            nf.write("".join(out))

    def close(self):
        for f in self._files:
            f.close()
