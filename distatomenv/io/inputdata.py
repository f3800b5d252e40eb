"""Indexer, reader and writer of n2p2 ``input.data`` files.

File format
-----------
A file is a sequence of records::

    begin
    comment <free text>                       (any number, optional)
    lattice ax ay az                          (exactly 3 lines, or none)
    atom x y z element charge energy fx fy fz (one line per atom, at least one)
    energy E                                  (optional)
    charge Q                                  (optional)
    end

Keywords may be indented, lines may end in CRLF, fields may be separated by
tabs, and blank lines may appear anywhere.  Numbers use Python's float syntax
(``1.0E+00``, ``-3``, ``.5``); anything else, and any non-finite value, is an
error.  Lengths are in the units of the file (no conversion happens here).

How the file is read
--------------------
:func:`index_file` makes one cheap pass over the file (or over a byte range of
it, so that ranks or workers can index a large file in parallel) and records,
per structure, where its record lies and how many atoms of each element it
has.  It validates the structure-level syntax, so a malformed file fails
before any computation, but by default it does not convert the atom
coordinates.  :func:`read_structure` then seeks to one record and parses only
that record.  Every error is a :class:`~distatomenv.errors.DataFileError`
whose message starts with ``FILE:LINE:``.

n2p2 defects that are *not* copied: n2p2 turns an unparsable number into 0.0
and stumbles over blank lines; here the first is an error naming the file,
line, column and text, and the second is accepted.
"""
from __future__ import annotations

import hashlib
import io
import math
import os

import numpy as np

from ..elements import SYMBOLS
from ..errors import DataFileError, quote
from .fields import finite_float
from .structure import PERIODIC_CHARGE_TOL, SINGULAR_CELL_TOL, DataIndex, Structure

__all__ = [
    "index_file",
    "count_newlines",
    "read_structure",
    "read_structures",
    "iter_structures",
    "write_structures",
]

#: Bytes read per chunk while scanning.
_CHUNK = 1 << 22
#: A UTF-8 byte order mark; accepted (and skipped) at the very start of a file.
BOM = b"\xef\xbb\xbf"

#: Names of the 9 fields after ``atom`` (column k+2 of the line holds field k).
ATOM_FIELDS = ("x", "y", "z", "element", "charge", "energy", "fx", "fy", "fz")
_ATOM_NUMERIC = (1, 2, 3, 5, 6, 7, 8, 9)   # token positions of the 8 numbers
_RECORD_KEYWORDS = "atom, lattice, energy, charge, comment, end"
_ALL_SYMBOLS = {s.encode("ascii"): i for i, s in enumerate(SYMBOLS)}


# ----------------------------------------------------------------------------
# Scanning
# ----------------------------------------------------------------------------
def _text(tok: bytes) -> str:
    """A token for a message: control characters escaped, at most 80 characters."""
    return quote(tok)


def _number(tok: bytes, col: int, name: str, path, lineno: int) -> float:
    """float(tok) or a DataFileError naming line, column and text."""
    return finite_float(tok, DataFileError, path, lineno, col, name)


def _numbers(toks, names, path, lineno) -> list[float]:
    """The numbers after a keyword (``toks[0]``), with a count check."""
    kw = _text(toks[0])
    if len(toks) - 1 != len(names):
        raise DataFileError(path, lineno, f"'{kw}' line has {len(toks) - 1} value(s), expected "
                                          f"{len(names)} ({' '.join(names)})")
    return [_number(t, k + 2, n, path, lineno) for k, (t, n) in enumerate(zip(toks[1:], names))]


class _Record:
    """State of one record while its lines are scanned."""

    __slots__ = ("path", "offset", "line", "counts", "atoms", "atom_lines", "natoms",
                 "lattice", "lattice_lines", "energy", "energy_line", "charge",
                 "charge_line", "comments")

    def __init__(self, path, offset, line, n_elements):
        self.path = path
        self.offset = offset
        self.line = line
        self.counts = [0] * n_elements
        self.atoms = []            # token lists of the atom lines (full parse only)
        self.atom_lines = []
        self.natoms = 0
        self.lattice = []
        self.lattice_lines = []
        self.energy = math.nan
        self.energy_line = 0
        self.charge = 0.0
        self.charge_line = 0
        self.comments = []

    def keyword(self, toks, raw: bytes, lineno: int):
        """Handle a line other than ``atom`` and ``end`` inside the record."""
        kw = toks[0]
        path = self.path
        if kw == b"lattice":
            if len(self.lattice) == 3:
                raise DataFileError(path, lineno, f"4th 'lattice' line in the record starting at "
                                                  f"line {self.line}; n2p2 needs 0 or 3 lattice lines")
            self.lattice.append(_numbers(toks, ("ax", "ay", "az"), path, lineno))
            self.lattice_lines.append(lineno)
        elif kw == b"comment":
            text = raw.decode("utf-8", errors="replace").strip()
            self.comments.append(text[len("comment"):].strip())
        elif kw == b"energy" or kw == b"charge":
            name = kw.decode()
            seen = self.energy_line if kw == b"energy" else self.charge_line
            if seen:
                raise DataFileError(path, lineno, f"second '{name}' line in the record "
                                                  f"(the first is at line {seen})")
            (value,) = _numbers(toks, (name,), path, lineno)
            if kw == b"energy":
                self.energy, self.energy_line = value, lineno
            else:
                self.charge, self.charge_line = value, lineno
        elif kw == b"begin":
            raise DataFileError(path, lineno, f"'begin' inside the record that starts at line "
                                              f"{self.line} (missing 'end'?)")
        else:
            raise DataFileError(path, lineno, f"unknown keyword '{_text(kw)}' in a record; "
                                              f"expected one of: {_RECORD_KEYWORDS}")

    def finish(self, end_line: int):
        """End-of-record checks; returns the lattice as (3, 3) array or None."""
        path = self.path
        if self.natoms == 0:
            raise DataFileError(path, self.line, f"the record starting here (ending at line "
                                                 f"{end_line}) has no 'atom' lines")
        nlat = len(self.lattice)
        if nlat not in (0, 3):
            raise DataFileError(path, self.line, f"the record starting here has {nlat} 'lattice' "
                                                 "line(s); n2p2 needs 0 (non-periodic) or 3")
        if nlat == 0:
            return None
        cell = np.array(self.lattice, dtype=np.float64)
        det = float(np.linalg.det(cell))
        scale = float(np.prod(np.linalg.norm(cell, axis=1)))
        if not abs(det) > SINGULAR_CELL_TOL * scale:
            raise DataFileError(path, self.lattice_lines[0],
                                f"the cell is singular (|det| = {abs(det):.6g}, product of the "
                                f"lattice vector lengths = {scale:.6g}); the 3 lattice vectors must "
                                "be linearly independent")
        if abs(self.charge) > PERIODIC_CHARGE_TOL:
            raise DataFileError(path, self.charge_line,
                                f"periodic structure with non-zero total charge {self.charge!r}; "
                                "n2p2 refuses charged periodic structures")
        return cell

    def atom_arrays(self):
        """Convert the stored atom lines (full parse): (n, 8) float64 and symbols."""
        path = self.path
        try:
            flat = [float(t) for toks in self.atoms for t in
                    (toks[1], toks[2], toks[3], toks[5], toks[6], toks[7], toks[8], toks[9])]
            values = np.array(flat, dtype=np.float64).reshape(-1, 8)
            ok = bool(np.isfinite(values).all())
        except ValueError:
            ok = False
        if not ok:       # find the first offending token for the message
            for toks, lineno in zip(self.atoms, self.atom_lines):
                for k in _ATOM_NUMERIC:
                    _number(toks[k], k + 1, ATOM_FIELDS[k - 1], path, lineno)
        symbols = np.array([t[4].decode("ascii") for t in self.atoms])
        return values, symbols


class _RangeDigest:
    """sha256 and newline count of the bytes [start, stop) of a file, fed with
    the buffers a scan reads anyway (``stop=None``: to the end of the file)."""

    def __init__(self, start: int, stop: int | None):
        self.start, self.stop = start, stop
        self.sha = hashlib.sha256()
        self.newlines = 0
        self.end = start              # bytes [start, end) are in the digest

    def update(self, pos: int, buf: bytes):
        if pos != self.end:           # buffers arrive in order, without gaps
            return
        hi = len(buf) if self.stop is None else min(self.stop - pos, len(buf))
        if hi > 0:
            part = buf[:hi] if hi < len(buf) else buf
            self.sha.update(part)
            self.newlines += part.count(b"\n")
            self.end += hi

    def complete(self, path, file_size: int):
        """Read whatever of [start, stop) the scan did not (it may stop early)."""
        stop = file_size if self.stop is None else min(self.stop, file_size)
        if self.end >= stop:
            return
        with open(path, "rb") as f:
            f.seek(self.end)
            while self.end < stop:
                buf = f.read(min(_CHUNK, stop - self.end))
                if not buf:
                    break
                self.update(self.end, buf)


def _lines(f, pos: int, lineno: int, hasher=None):
    """Yield (byte offset, 1-based line number, line without b"\\n") from f's position.

    ``hasher``: a :class:`_RangeDigest` fed with every buffer read."""
    rest = b""
    while True:
        at = f.tell()
        buf = f.read(_CHUNK)
        if not buf:
            break
        if hasher is not None:
            hasher.update(at, buf)
        if at == 0 and buf.startswith(BOM):     # a byte order mark: not part of line 1
            buf = buf[len(BOM):]
            pos += len(BOM)
        parts = (rest + buf).split(b"\n")
        rest = parts.pop()
        for line in parts:
            yield pos, lineno, line
            pos += len(line) + 1
            lineno += 1
    if rest:
        yield pos, lineno, rest


def _scan(path, lines, eidx: dict, *, stop=None, resync=False, full=False):
    """Yield (record, lattice, end_offset_after_newline, end_line) for each record.

    ``lines`` yields (offset, line number, bytes).  Records whose ``begin`` is
    at an offset >= ``stop`` are not scanned.  With ``resync`` the lines
    before the first ``begin`` are skipped (they belong to the range before).
    Lines outside records must be blank.  ``full`` keeps the atom tokens for
    :meth:`_Record.atom_arrays`.
    """
    n_el = len(set(eidx.values()))
    rec = None
    syncing = resync
    for pos, lineno, line in lines:
        toks = line.split()
        if not toks:
            continue
        kw = toks[0]
        if rec is not None:
            if kw == b"atom":
                if len(toks) != 10:
                    raise DataFileError(path, lineno, f"'atom' line has {len(toks) - 1} value(s), "
                                                      "expected 9 (x y z element charge energy fx fy fz)")
                e = eidx.get(toks[4])
                if e is None:
                    raise DataFileError(path, lineno, _element_message(toks[4], eidx))
                rec.counts[e] += 1
                rec.natoms += 1
                if full:
                    rec.atoms.append(toks)
                    rec.atom_lines.append(lineno)
            elif kw == b"end":
                if len(toks) > 1:
                    raise DataFileError(path, lineno, f"unexpected text after 'end': "
                                                      f"'{_text(b' '.join(toks[1:]))}'")
                lattice = rec.finish(lineno)
                yield rec, lattice, pos + len(line) + 1, lineno
                rec = None
            else:
                rec.keyword(toks, line, lineno)
        elif kw == b"begin":
            if stop is not None and pos >= stop:
                return
            if len(toks) > 1:
                raise DataFileError(path, lineno, f"unexpected text after 'begin': "
                                                  f"'{_text(b' '.join(toks[1:]))}'")
            syncing = False
            rec = _Record(path, pos, lineno, n_el)
        elif not syncing:
            raise DataFileError(path, lineno, f"'{_text(kw)}' outside a 'begin' ... 'end' record")
    if rec is not None:
        raise DataFileError(path, rec.line, "the record starting here has no 'end' before the "
                                            "end of the file")


def _element_message(tok: bytes, eidx: dict) -> str:
    if eidx is _ALL_SYMBOLS:
        return f"'{_text(tok)}' in column 5 (element) is not a chemical element symbol"
    known = ", ".join(e.decode() for e in eidx)
    return (f"element '{_text(tok)}' (column 5) is not one of the elements of the settings "
            f"({known})")


def _element_map(elements) -> dict:
    elements = [str(e) for e in elements]
    if not elements:
        raise ValueError("elements must not be empty")
    if len(set(elements)) != len(elements):
        raise ValueError(f"elements must be unique, got {elements}")
    return {e.encode("ascii"): i for i, e in enumerate(elements)}


# ----------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------
def count_newlines(path, start: int = 0, stop: int | None = None) -> int:
    """Number of b"\\n" bytes in the byte range [start, stop) of a file.

    ``index_file(..., start=s, line_offset=count_newlines(path, 0, s))`` gives
    correct line numbers for a range.  A parallel driver can instead count the
    newlines of each range concurrently and pass the prefix sums.
    """
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        left = None if stop is None else max(stop - start, 0)
        while left is None or left > 0:
            buf = f.read(_CHUNK if left is None else min(_CHUNK, left))
            if not buf:
                break
            n += buf.count(b"\n")
            if left is not None:
                left -= len(buf)
    return n


def index_file(path, elements, *, start: int = 0, stop: int | None = None,
               line_offset: int | None = None, validate_atoms: bool = False,
               _track: list | None = None) -> DataIndex:
    """Index the records of an input.data file whose ``begin`` lies in [start, stop).

    Parameters
    ----------
    path : the input.data file.
    elements : element symbols allowed in the file; the columns of ``counts``
        follow this order (callers pass atomic-number order).
    start, stop : byte range (``stop=None``: end of file).  A record belongs to
        the range that holds the first byte of its ``begin`` line; the scan
        skips ahead to the first ``begin`` at or after ``start`` and reads past
        ``stop`` to finish its last record (and to check the blank gap up to
        the next ``begin``).  Ranges that partition the file give indices whose
        :meth:`DataIndex.merge` equals the whole-file index.
    line_offset : number of newlines before ``start``, for line numbers.
        When None and ``start > 0`` it is counted with :func:`count_newlines`
        (one extra sequential read of [0, start)).
    validate_atoms : also convert every atom's numbers (a full syntax check,
        about as costly as reading every structure).  By default the numbers
        of ``atom`` lines are checked only when a structure is read.

    Returns
    -------
    DataIndex, with ``sha256`` set only for a whole-file scan (start == 0 and
    stop is None or past the end of the file).

    Raises
    ------
    DataFileError for malformed records and for a whole file with no records.
    """
    path = os.fspath(path)
    eidx = _element_map(elements)
    track = _track is not None
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"invalid byte range [{start}, {stop})")
    file_size = os.path.getsize(path)
    whole = start == 0 and (stop is None or stop >= file_size)
    if line_offset is None:
        line_offset = count_newlines(path, 0, start) if start > 0 else 0
    hasher = _RangeDigest(start, stop) if (whole or track) else None

    offsets, nbytes, lines, natoms, counts = [], [], [], [], []
    periodic, lattices, energies, charges = [], [], [], []
    nan_cell = np.full((3, 3), np.nan)
    with open(path, "rb") as f:
        mid_line = False
        if start > 0:
            f.seek(start - 1)
            mid_line = f.read(1) != b"\n"
        f.seek(start)
        it = _lines(f, start, line_offset + 1, hasher)
        if mid_line:
            next(it, None)      # the tail of a line that starts before the range
        for rec, cell, end_pos, _ in _scan(path, it, eidx, stop=stop, resync=start > 0,
                                           full=validate_atoms):
            if validate_atoms:
                rec.atom_arrays()
            offsets.append(rec.offset)
            nbytes.append(min(end_pos, file_size) - rec.offset)
            lines.append(rec.line)
            natoms.append(rec.natoms)
            counts.append(rec.counts)
            periodic.append(cell is not None)
            lattices.append(nan_cell if cell is None else cell)
            energies.append(rec.energy)
            charges.append(rec.charge)
    if whole and not offsets:
        raise DataFileError(path, None, "no structures found (the file is empty or has only "
                                        "blank lines)")
    if track:
        hasher.complete(path, file_size)
        _track.append(hasher)
    n_el = len(eidx)
    return DataIndex(
        offset=np.array(offsets, dtype=np.int64),
        nbytes=np.array(nbytes, dtype=np.int64),
        line=np.array(lines, dtype=np.int64),
        natoms=np.array(natoms, dtype=np.int64),
        counts=np.array(counts, dtype=np.int64).reshape(-1, n_el),
        periodic=np.array(periodic, dtype=bool),
        lattice=np.array(lattices, dtype=np.float64).reshape(-1, 3, 3),
        energy=np.array(energies, dtype=np.float64),
        charge=np.array(charges, dtype=np.float64),
        path=path,
        elements=[e.decode() for e in eidx],
        file_size=file_size,
        sha256=hasher.sha.hexdigest() if whole else None,
    )


def _structure(rec: _Record, cell, index: int) -> Structure:
    values, symbols = rec.atom_arrays()
    return Structure(
        index=index, line=rec.line, comment="\n".join(rec.comments), lattice=cell,
        positions=np.ascontiguousarray(values[:, 0:3]), elements=symbols,
        charges=np.ascontiguousarray(values[:, 3]),
        atom_energies=np.ascontiguousarray(values[:, 4]),
        forces=np.ascontiguousarray(values[:, 5:8]),
        energy=rec.energy, charge=rec.charge, path=rec.path,
        atom_lines=np.array(rec.atom_lines, dtype=np.int64) if rec.atom_lines else None)


def read_structure(path, index: DataIndex, i: int) -> Structure:
    """Read structure ``i`` (0-based) of an indexed file, parsing only its record.

    Raises DataFileError when the record is malformed (naming the real file
    line) or when the file no longer matches the index.
    """
    path = os.fspath(path)
    n = index.n_structures
    if not -n <= i < n:
        raise IndexError(f"structure index {i} out of range for {n} structures")
    i = int(i) % n
    size = os.path.getsize(path)
    if size != index.file_size:
        raise DataFileError(path, None, f"the file has {size} bytes but the index was made for "
                                        f"{index.file_size}; re-index the file")
    offset, nb, line0 = int(index.offset[i]), int(index.nbytes[i]), int(index.line[i])
    with open(path, "rb") as f:
        f.seek(offset)
        buf = f.read(nb)
    first = buf.split(b"\n", 1)[0].split()
    if not first or first[0] != b"begin":
        raise DataFileError(path, line0, f"no 'begin' at byte offset {offset}; the file does not "
                                         "match its index (was it modified?); re-index the file")
    eidx = {e.encode("ascii"): k for k, e in enumerate(index.elements)}
    # the slice starts with 'begin', so the scan yields its record or raises
    rec, cell, _, _ = next(_scan(path, _lines(io.BytesIO(buf), offset, line0), eidx, full=True))
    return _structure(rec, cell, i)


def read_structures(path, elements=None) -> list[Structure]:
    """Read every structure of an input.data file.

    ``elements`` restricts the allowed element symbols (default: any chemical
    element).  Prefer :func:`index_file` + :func:`read_structure` for large files.
    """
    path = os.fspath(path)
    eidx = _ALL_SYMBOLS if elements is None else _element_map(elements)
    with open(path, "rb") as f:
        out = [_structure(rec, cell, k) for k, (rec, cell, _, _) in
               enumerate(_scan(path, _lines(f, 0, 1), eidx, full=True))]
    if not out:
        raise DataFileError(path, None, "no structures found (the file is empty or has only "
                                        "blank lines)")
    return out


def iter_structures(path, elements=None):
    """Yield the structures of an input.data file one at a time, in file order.

    Like :func:`read_structures` but streaming: only one record is held in
    memory, so memory does not grow with the file.  ``elements`` restricts the
    allowed element symbols (default: any chemical element).  A file without
    any structure is a DataFileError (raised when the end is reached).
    ``path`` may also be a binary file object open for reading at its start
    (a gzip file, for instance); it is read to its end and not closed.
    """
    eidx = _ALL_SYMBOLS if elements is None else _element_map(elements)
    k = 0
    if hasattr(path, "read"):
        f = path
        name = getattr(f, "name", None)
        path = os.fspath(name) if isinstance(name, (str, os.PathLike)) else "<input.data>"
        if isinstance(f, io.TextIOBase):
            raise TypeError(f"{path}: open input.data in binary mode ('rb') to read it")
        for rec, cell, _, _ in _scan(path, _lines(f, 0, 1), eidx, full=True):
            yield _structure(rec, cell, k)
            k += 1
    else:
        path = os.fspath(path)
        with open(path, "rb") as f:
            for rec, cell, _, _ in _scan(path, _lines(f, 0, 1), eidx, full=True):
                yield _structure(rec, cell, k)
                k += 1
    if k == 0:
        raise DataFileError(path, None, "no structures found (the file is empty or has only "
                                        "blank lines)")


def _format_structure(s: Structure) -> str:
    for name in ("positions", "charges", "atom_energies", "forces"):
        if not np.isfinite(getattr(s, name)).all():
            raise ValueError(f"structure {s.index}: {name} holds non-finite values")
    if s.lattice is not None and not np.isfinite(s.lattice).all():
        raise ValueError(f"structure {s.index}: lattice holds non-finite values")
    if not math.isfinite(s.charge):
        raise ValueError(f"structure {s.index}: charge is not finite")
    out = ["begin\n"]
    out.extend(f"comment {c}\n" for c in s.comment.split("\n") if c.strip())
    if s.lattice is not None:
        out.extend("lattice {:24.16E} {:24.16E} {:24.16E}\n".format(*v) for v in s.lattice)
    fmt = "atom {:24.16E} {:24.16E} {:24.16E} {:<2s} {:24.16E} {:24.16E} {:24.16E} {:24.16E} {:24.16E}\n"
    for r, e, q, ea, fr in zip(s.positions, s.elements, s.charges, s.atom_energies, s.forces):
        out.append(fmt.format(r[0], r[1], r[2], str(e), q, ea, fr[0], fr[1], fr[2]))
    if math.isfinite(s.energy):
        out.append(f"energy {s.energy:24.16E}\n")
    out.append(f"charge {s.charge:24.16E}\n")
    out.append("end\n")
    return "".join(out)


def write_structures(path_or_file, structures) -> None:
    """Write structures in n2p2's input.data format.

    Numbers are written with ``%24.16E`` (17 significant digits), so reading
    the file back gives bit-identical arrays.  An ``energy`` line is written
    only when the energy is finite; multi-line comments become several
    ``comment`` lines.  ``path_or_file`` is a path or an open text file.
    """
    if hasattr(path_or_file, "write"):
        for s in structures:
            path_or_file.write(_format_structure(s))
        return
    with open(path_or_file, "w", encoding="utf-8", newline="\n") as f:
        write_structures(f, structures)

