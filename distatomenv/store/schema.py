"""The layout of a distatomenv store: read this module to learn the store.

A store is ONE Zarr v3 directory tree holding the per-atom environment vectors
of a whole run, written by many processes at once (MPI ranks, Dask workers)
and read lazily by the analysis.  Everything a reader needs to interpret it is
in the store itself.

Where
-----
A store is a local directory or an fsspec URL such as ``s3://bucket/run.zarr``
(:mod:`.fs`: every file operation outside zarr goes through it; credentials
come from the environment and are never stored).

Tree
----
::

    store.zarr/
      zarr.json                     root group; attributes (JSON):
                                      format          "distatomenv-store"
                                      format_version  1
                                      status          "creating" | "incomplete" | "complete"
                                      layout          StoreLayout.to_dict()
                                      meta            caller's metadata (SF definitions,
                                                      settings, scaling, units, neighbour
                                                      counts, input checksums under
                                                      meta["inputs"], version, command)
                                      n_units         number of planned work units (or null)
                                      error           message of the last failure (only
                                                      while a failure is unresolved)
                                      failed_on       "input" when that failure was bad
                                                      input (the next run replaces the
                                                      store without --overwrite)
                                      history         list of {event, time, ...}
      elements/<E>/                 one group per element, in the caller's order
        G          (n_rows, nG)     float  scaled SFs: own block, then neighbour blocks
        dGdx|y|z   (n_rows, ndG)    float  derivatives (only if layout.derivatives)
        fm_dx|dy|dz (n_rows, n_fm)  float  force-matching features D_i = Σ_j ∂G_j/∂r_i over
                                           every atom j within the cutoff, one column per SF
                                           of every element (elements in order, SFs in
                                           n2p2's order); scaled and per normalised length
                                           like dG (layout.force_matching linear/quadratic)
        fmq_dx|dy|dz (n_rows, n_fmq) float Σ_j ∂(G_j,s G_j,t)/∂r_i, s <= t per element
                                           (layout.force_matching quadratic); see
                                           descriptors/forcematch.py
        forces     (n_rows, 3)      float64 reference forces of the atom
        positions  (n_rows, 3)      float64 raw input positions
        structure  (n_rows,)        int64  0-based structure index
        atom       (n_rows,)        int32  0-based atom index within its structure
        nb_atom    (n_rows, nblocks) int32 atom index of each neighbour block
                                           (canonical layout, see below)
        nb_order   (n_rows, nblocks) int16 n2p2's interleaved order of the blocks
        nb_count   (n_rows, n_elements) int32 neighbours of each element within the
                                           largest cutoff (periodic images count
                                           separately), whatever --neighbors keeps
      structures/                   written once by the coordinator, length S
        natoms     (S,)             int64
        periodic   (S,)             bool
        lattice    (S, 3, 3)        float64, NaN when not periodic
        energy     (S,)             float64
        charge     (S,)             float64
        first_row  (S, n_elements)  int64  row in elements/<E> of the structure's
                                           first atom of E (exclusive prefix sum of counts)
        counts     (S, n_elements)  int64  atoms of each element in the structure
      stats/<E>/                    histograms (only when layout.hist_bins > 0)
        sf_hist_units (n_units, n_sf, bins+2) int64  each unit's counts of its rows'
                                           scaled own SFs; column 0 counts values below
                                           the range, column bins+1 those above; chunk
                                           = one unit (the unit owns it)
        sf_hist    (n_sf, bins+2)   int64  the sum over units (written at the end)
        sf_edges   (n_sf, bins+1)   float64 bin edges: the scaled range of each SF
                                           (scaling table min/max), split evenly
        nb_hist    (n_elements, max+1) int64 [b, n]: atoms of E with exactly n
                                           neighbours of element b within the cutoff
      units/<id:08d>/zarr.json      one marker group per finished work unit; its
                                    attributes are the unit's info (atoms, seconds,
                                    host, ...) and ``rows``: element -> [start, stop),
                                    the rows (whole chunks) it wrote.  Written last,
                                    after the unit's data.
      analysis/<run>/               written by ``distatomenv analyze --write-labels [RUN]``
                                    (store/labels.py), never by compute; attributes:
                                    the analysis parameters and time
        <E>/<descriptor>/           attributes: method, clusters, seed, standardize,
                                    feature_mean/feature_scale of the clustered space
          labels_k<k>  (n_rows,)    int32  k-means cluster of each row of elements/<E>
          labels_hdbscan (n_rows,)  int32  HDBSCAN cluster, -1 = noise
          centers_k<k> (k, p)       float64 k-means centres (clustered space)
                                    Label arrays are chunked like elements/<E> and
                                    written in whole chunks (same ownership rule);
                                    the root group is not touched, so a complete
                                    store stays complete.

Rows
----
Row r of every array of ``elements/<E>`` describes the same atom.  Rows are in
global order: structure 0's atoms of element E in input order, then
structure 1's, and so on.  The float dtype of G and dG is ``layout.dtype``
(float64 by default, float32 on request); forces and positions are always
float64.  Unwritten rows read as NaN (float arrays) or -1 (integer arrays),
which is the fill value.

Dimension names
---------------
Every array declares zarr 3 ``dimension_names`` (:func:`dimension_names`), so
that ``xarray.open_zarr(store, group="elements/H", consolidated=False)`` opens a
group as one Dataset (or :func:`distatomenv.store.to_xarray`).  Within a group
a name always has the same length: ``row`` (the element's atoms), ``G_column``,
``dG_column``, ``fm_column``, ``fmq_column``, ``nb_block``, ``xyz`` (3) and
``element`` (the store's elements); ``structure``, ``lattice_vector`` and
``xyz`` in ``structures/``; ``unit``, ``sf``, ``sf_bin``, ``sf_edge``, ``element`` and
``neighbor_count`` in ``stats/<E>``.  Stores made before the names existed
(no names, or ``('row', 'column')``) read the same with distatomenv.

Neighbour blocks are stored in the *canonical* layout: grouped by neighbour
element in atomic-number order, nearest first within each element, so that a
column means the same thing in every row.  ``nb_order`` records n2p2's
distance-interleaved order so that export can reproduce n2p2's rows exactly.

Chunks and the ownership rule
-----------------------------
Every array of an element is chunked along rows only, ``layout.chunk_rows``
rows per chunk, all columns in one chunk.  A chunk is the unit of ownership:

    **No two writers ever write the same chunk.**

Zarr v3 writes a partly covered chunk by read-modify-write, so two writers
touching one chunk silently lose data (zarr-python issue #3682).  Hence a
writer may only write a row range [start, stop) with ``start`` a multiple of
``chunk_rows`` and ``stop`` a multiple of ``chunk_rows`` or equal to
``n_rows``; :meth:`StoreLayout.check_rows` enforces it and the writer calls it
on every write.  The plan must cut work units on chunk boundaries.  Sharding
is not used (a shard would become the unit of ownership).

Codecs and precision
--------------------
Every array's codecs are in its own ``zarr.json``, so a store made with other
codecs (an older version) reads the same.  The per-element float arrays are
compressed with Blosc zstd level 1, byte shuffle, 4 MiB blocks (fast enough
to run beside the kernels), the derivative rows dGd* (half to two thirds of
the bytes) with Blosc lz4 level 1, bit shuffle, 4 MiB blocks (faster still,
for a few per cent more bytes); the integer and per-structure arrays with
``layout.compression_level`` (:meth:`StoreLayout.compressors`).

``layout.precision`` (root attribute ``layout``) says whether the descriptor
arrays are exact: ``"full"`` (default, lossless) or ``"n2p2"`` (``distatomenv
compute --precision n2p2``): **lossy**, G, dGd*, fm_d* and fmq_d* rounded to
33 mantissa bits (relative error <= 5.8e-11) by a ``numcodecs.bitround`` filter
in their metadata, below the 9 significant digits that n2p2's text output
keeps, so the n2p2 export matches n2p2 within +-1 in the last printed digit.
float64 only.  ``distatomenv info`` and ``verify`` print it.

Checksums and damage
--------------------
Every array's chunks end in a ``crc32c`` checksum (zarr v3's codec, after the
compressor), and the writers store every chunk of ``elements/`` even when it
equals the fill value, so in a complete store each of those chunks exists and
was written by the unit whose marker's ``rows`` cover it.  A flipped bit or a
truncated chunk fails its checksum when read; a deleted chunk is found by
listing (:mod:`.integrity`, ``distatomenv verify``).  Export and analyze refuse
a damaged store, naming the chunk.  A second writer is refused by a lock file
beside the store (``STORE.lock``, :mod:`.lock`).

Status and markers
------------------
Only the coordinator writes the root group: ``creating`` while it creates the
metadata, ``incomplete`` once every array exists, ``complete`` after it has
checked that every work unit's marker exists.  A unit's marker is its own
group ``units/<id>``, written after all its rows, so writers never share an
object.  Markers, chunks and metadata (through zarr's LocalStore, and
:mod:`.chunks` for the rows of a local store) are written atomically: temporary file, then rename on a local file system, one
whole-object PUT on an object store; an existing marker is a whole
marker, and a writer killed mid-chunk leaves no marker, so resume redoes it.  A run that dies leaves ``incomplete``
and the markers of the units it finished: re-running with resume redoes only
the missing units.  Readers refuse a store that is not ``complete`` unless
asked explicitly.
"""
from __future__ import annotations

import json
import math
import numbers
import warnings
from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np

from distatomenv.errors import StoreError

from .fs import location

# Stores made with precision="n2p2" declare numcodecs' bitround filter in their
# arrays' metadata; zarr warns each time it parses such metadata that numcodecs
# codecs are outside the Zarr v3 specification.  The store documents it
# (StoreLayout.precision), and the warning would repeat on every read.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 "
                                          "specification", category=UserWarning)

# ----------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------
FORMAT_NAME = "distatomenv-store"
FORMAT_VERSION = 1

STATUS_CREATING = "creating"
STATUS_INCOMPLETE = "incomplete"
STATUS_COMPLETE = "complete"
STATUSES = (STATUS_CREATING, STATUS_INCOMPLETE, STATUS_COMPLETE)
#: Root attribute set by ``mark_failed(..., input_error=True)``: the run failed on
#: its input, and the next run replaces the store without --overwrite.
FAILED_ON = "failed_on"
FAILED_ON_INPUT = "input"

ELEMENTS_GROUP = "elements"
STRUCTURES_GROUP = "structures"
UNITS_GROUP = "units"
#: Top-level entries a store may hold; anything else means "not ours" and the
#: store is never deleted (LocalStore's interrupted temporary files end in
#: ``.partial`` and are allowed too).
STATS_GROUP = "stats"
ANALYSIS_GROUP = "analysis"
TOP_LEVEL_ENTRIES = ("zarr.json", ELEMENTS_GROUP, STRUCTURES_GROUP, UNITS_GROUP, STATS_GROUP,
                     ANALYSIS_GROUP)

# per-element arrays
G = "G"
DGDX, DGDY, DGDZ = "dGdx", "dGdy", "dGdz"
FORCES = "forces"
POSITIONS = "positions"
STRUCTURE = "structure"
ATOM = "atom"
NB_ATOM = "nb_atom"
NB_ORDER = "nb_order"
NB_COUNT = "nb_count"
DERIVATIVE_ARRAYS = (DGDX, DGDY, DGDZ)
#: force-matching features (descriptors/forcematch.py): linear, quadratic
FM_ARRAYS = ("fm_dx", "fm_dy", "fm_dz")
FMQ_ARRAYS = ("fmq_dx", "fmq_dy", "fmq_dz")
FORCE_MATCHING_MODES = ("none", "linear", "quadratic")
#: The per-element array names every layout may have, in the order they are
#: listed (the force-matching arrays come after them, when the layout has them).
ELEMENT_ARRAYS = (G, DGDX, DGDY, DGDZ, FORCES, POSITIONS, STRUCTURE, ATOM, NB_ATOM, NB_ORDER,
                  NB_COUNT)

# per-element statistics (stats/<E>/...)
SF_HIST_UNITS = "sf_hist_units"
SF_HIST = "sf_hist"
SF_EDGES = "sf_edges"
NB_HIST = "nb_hist"

# per-structure arrays
NATOMS = "natoms"
PERIODIC = "periodic"
LATTICE = "lattice"
ENERGY = "energy"
CHARGE = "charge"
FIRST_ROW = "first_row"
COUNTS = "counts"
STRUCTURE_ARRAYS = (NATOMS, PERIODIC, LATTICE, ENERGY, CHARGE, FIRST_ROW, COUNTS)

FLOAT_DTYPES = ("float64", "float32")
#: ``StoreLayout.precision``: "full" stores every bit (lossless, the default);
#: "n2p2" rounds the descriptor arrays (G, dGd*, fm_d*, fmq_d*) to
#: ``N2P2_KEEPBITS`` mantissa bits before compression (lossy, float64 only).
PRECISIONS = ("full", "n2p2")
#: Mantissa bits kept by ``precision="n2p2"``.  n2p2 prints ``%16.8E``: 9
#: significant digits, so one unit in the last digit is at least 1e-9 of the
#: value (mantissa 9.99...).  Rounding to 33 bits moves a value by at most
#: 2**-34 = 5.8e-11 of itself, under 0.06 of that unit: the export stays within
#: +-1 in the last digit of n2p2 wherever the lossless store is within 0.94.
#: (30 bits would be the bare minimum, 2**-31 < 1e-9 with no margin.)
N2P2_KEEPBITS = 33
#: Per-element arrays written with the fast codec (see StoreLayout.compressors).
ROW_FLOAT_ARRAYS = (G, DGDX, DGDY, DGDZ) + FM_ARRAYS + FMQ_ARRAYS + (FORCES, POSITIONS)
#: The descriptor arrays that ``precision="n2p2"`` rounds.
ROUNDED_ARRAYS = (G, DGDX, DGDY, DGDZ) + FM_ARRAYS + FMQ_ARRAYS
#: Blosc compressor and shuffle of the derivative rows dGd*, whatever the
#: layout's ``compressor`` and ``shuffle`` (unless "none"): the bulk of the
#: store, compressed beside the kernels, where speed counts most
#: (StoreLayout.compressors).
DERIVATIVE_CODEC = ("lz4", "bitshuffle")
#: Blosc inner compressors accepted in ``StoreLayout.compressor`` (or "none").
COMPRESSORS = ("zstd", "lz4", "lz4hc", "blosclz", "zlib", "none")
SHUFFLES = ("shuffle", "bitshuffle", "noshuffle")

#: Fill values: what unwritten rows read as.
FLOAT_FILL = float("nan")
INT_FILL = -1

#: Chunk length of the (small) per-structure arrays.
STRUCTURE_CHUNK = 65536

#: zarr 3 ``dimension_names`` of every array, per group (see "Dimension names"
#: in the module docstring): a name has one length within its group.
ROW_DIMENSION = "row"
ELEMENT_COLUMN_DIMENSIONS = {
    G: "G_column", **{n: "dG_column" for n in DERIVATIVE_ARRAYS},
    **{n: "fm_column" for n in FM_ARRAYS}, **{n: "fmq_column" for n in FMQ_ARRAYS},
    FORCES: "xyz", POSITIONS: "xyz", NB_ATOM: "nb_block", NB_ORDER: "nb_block",
    NB_COUNT: "element",
}
STRUCTURE_DIMENSIONS = {
    NATOMS: ("structure",), PERIODIC: ("structure",),
    LATTICE: ("structure", "lattice_vector", "xyz"), ENERGY: ("structure",),
    CHARGE: ("structure",), FIRST_ROW: ("structure", "element"),
    COUNTS: ("structure", "element"),
}
STATS_DIMENSIONS = {
    SF_HIST_UNITS: ("unit", "sf", "sf_bin"), SF_HIST: ("sf", "sf_bin"),
    SF_EDGES: ("sf", "sf_edge"), NB_HIST: ("element", "neighbor_count"),
}


def dimension_names(group: str, name: str) -> tuple[str, ...]:
    """The ``dimension_names`` of array ``name`` of ``group``: ``"elements"``
    (the per-element arrays), ``"structures"`` or ``"stats"``."""
    if group == ELEMENTS_GROUP:
        if name in ELEMENT_COLUMN_DIMENSIONS:
            return (ROW_DIMENSION, ELEMENT_COLUMN_DIMENSIONS[name])
        if name in (STRUCTURE, ATOM):
            return (ROW_DIMENSION,)
    elif group == STRUCTURES_GROUP and name in STRUCTURE_DIMENSIONS:
        return STRUCTURE_DIMENSIONS[name]
    elif group == STATS_GROUP and name in STATS_DIMENSIONS:
        return STATS_DIMENSIONS[name]
    raise StoreError(f"no array {name!r} in the store's {group}/ groups")


def unit_key(unit_id: int) -> str:
    """Store key (group path) of the marker of work unit ``unit_id``."""
    return f"{UNITS_GROUP}/{int(unit_id):08d}"


def list_done_units(path) -> set[int]:
    """Ids of the work units whose marker exists in the store at ``path``
    (a path or an fsspec URL, see :mod:`.fs`).

    Reads only the ``units/`` listing (locally one ``stat`` per marker; on an
    object store one recursive listing), so it is cheap even with 10^5 units.
    A marker counts only when its ``zarr.json`` exists; markers are written
    atomically, so such a file is complete.
    """
    return {int(name) for name in location(path).marked_groups(UNITS_GROUP) if name.isdigit()}


def read_root_attrs(path) -> dict | None:
    """Root attributes of the distatomenv store at ``path``, or None when
    ``path`` holds no distatomenv store (absent, a file, another Zarr tree, ...).

    Reads ``zarr.json`` directly, so it never creates or changes anything.
    """
    try:
        doc = json.loads(location(path).read_bytes("zarr.json"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("node_type") != "group":
        return None
    attrs = doc.get("attributes")
    if not isinstance(attrs, dict) or attrs.get("format") != FORMAT_NAME:
        return None
    return attrs


def load_root_attrs(path) -> dict:
    """Like :func:`read_root_attrs`, but raise a clear :class:`StoreError`.

    Raises
    ------
    StoreError
        If ``path`` does not exist, is not a distatomenv store, or was written
        by a newer, unknown format version.
    """
    loc = location(path)
    path = loc.path
    if not loc.exists():
        raise StoreError(f"{path}: no such store (the path does not exist)")
    attrs = read_root_attrs(loc)
    if attrs is None:
        raise StoreError(
            f"{path}: not a distatomenv store (expected a Zarr v3 group whose zarr.json "
            f"has the attribute format={FORMAT_NAME!r})"
        )
    version = attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(
            f"{path}: store format_version is {version!r}, but this distatomenv reads "
            f"format_version {FORMAT_VERSION}; use the distatomenv version that wrote it"
        )
    return attrs


def read_unit_info(path, unit_id: int) -> dict | None:
    """The info dict recorded by the marker of ``unit_id``, or None if it has none."""
    try:
        return json.loads(location(path).read_bytes(unit_key(unit_id), "zarr.json")).get(
            "attributes", {})
    except FileNotFoundError:
        return None


def format_id_ranges(ids, limit: int = 20) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``; at most ``limit`` ranges shown."""
    ids = sorted(set(int(i) for i in ids))
    ranges = []
    for i in ids:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges]
    if len(parts) > limit:
        parts = parts[:limit] + [f"... ({len(parts) - limit} more ranges)"]
    return ", ".join(parts)


def _count(value, what: str, *, positive: bool = False) -> int:
    """A non-negative (or positive) integer, as a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise StoreError(f"invalid store layout: {what} must be an integer, got {value!r}")
    value = int(value)
    if value < 0 or (positive and value == 0):
        raise StoreError(
            f"invalid store layout: {what} must be {'positive' if positive else '>= 0'}, got {value}"
        )
    return value


@dataclass
class StoreLayout:
    """Shape of a store: everything needed to create or interpret its arrays.

    Parameters
    ----------
    elements : list of str
        Element symbols, in the order of the ``elements/`` groups and of the
        columns of ``structures/first_row`` and ``structures/counts``.
    n_rows : dict str -> int
        Number of atoms (rows) of each element in the whole data set.
    nG : dict str -> int
        Columns of ``G`` per element (own SFs + neighbour blocks).
    ndG : dict str -> int
        Columns of ``dGdx/dGdy/dGdz`` per element (ignored when
        ``derivatives`` is False, but must still be given, e.g. 0).
    nblocks : dict str -> int
        Neighbour blocks per row (columns of ``nb_atom`` and ``nb_order``); may be 0.
    derivatives : bool
        Whether the ``dGd*`` arrays exist.
    n_structures : int
        Number of structures S (length of the ``structures/`` arrays).
    chunk_rows : int
        Rows per chunk, the same for every array of every element.  A chunk is
        the unit of write ownership (see the module docstring).
    dtype : {"float64", "float32"}
        dtype of ``G`` and ``dGd*``.
    compressor : str
        Blosc inner compressor (``"zstd"``, ``"lz4"``, ``"lz4hc"``, ``"blosclz"``,
        ``"zlib"``) or ``"none"``, of every array but dGd*, which take
        :data:`DERIVATIVE_CODEC` unless this is ``"none"``.  Default zstd: on
        n2p2 environment vectors it stores float64 at ~1.3x and float32 at ~2x
        compression, where lz4 gives ~1.25x/1.5x.
    compression_level : int
        Blosc clevel, 0..9 (default 5; 9 gains ~8 % and is ~10x slower).
    shuffle : {"shuffle", "bitshuffle", "noshuffle"}
        Blosc pre-filter (not of dGd*); byte shuffle suits floats best.
    hist_bins : int
        Bins of the scaled-SF histograms in ``stats/`` (0: no histograms).
    n_sf : dict str -> int or None
        Own symmetry functions per element (needed when ``hist_bins`` > 0).
    force_matching : {"none", "linear", "quadratic"}
        Which force-matching feature arrays exist (``fm_d*``: linear;
        ``fmq_d*`` too: quadratic; they need derivatives).
    n_fm, n_fmq : int
        Their columns: Σ_e nSF(e) and Σ_e nSF(e)(nSF(e)+1)/2 (the same for
        every element).
    precision : {"full", "n2p2"}
        "full" (default): lossless.  "n2p2": **lossy**, G, dGd*, fm_d* and
        fmq_d* are rounded to ``N2P2_KEEPBITS`` (33) mantissa bits, relative
        error <= 2**-34 = 5.8e-11, by a ``numcodecs.bitround`` filter declared
        in each array's zarr metadata (any zarr-python >= 3.1.3 with numcodecs
        reads it); n2p2's text keeps 9 significant digits, so the export still
        matches n2p2 within +-1 in the last printed digit.  Needs float64
        (float32 keeps only 24 bits, fewer than n2p2's text).  Forces,
        positions and the integer arrays are never rounded.
    """

    elements: list[str]
    n_rows: dict[str, int]
    nG: dict[str, int]
    ndG: dict[str, int]
    nblocks: dict[str, int]
    derivatives: bool
    n_structures: int
    chunk_rows: int
    dtype: str = "float64"
    compressor: str = "zstd"
    compression_level: int = 5
    shuffle: str = "shuffle"
    hist_bins: int = 0
    n_sf: dict | None = None
    force_matching: str = "none"
    n_fm: int = 0
    n_fmq: int = 0
    precision: str = "full"

    def __post_init__(self):
        self.validate()

    # -- validation ---------------------------------------------------------
    def validate(self) -> None:
        """Check and normalise every field (ints become Python ints).

        Raises
        ------
        StoreError
            Naming the field, the value found and what was expected.
        """
        if isinstance(self.elements, str) or not all(
            isinstance(e, str) and e for e in self.elements
        ):
            raise StoreError(
                f"invalid store layout: elements must be a list of non-empty strings, got {self.elements!r}"
            )
        self.elements = list(self.elements)
        if not self.elements:
            raise StoreError("invalid store layout: elements is empty; a store needs at least one element")
        if len(set(self.elements)) != len(self.elements):
            raise StoreError(f"invalid store layout: duplicate element in {self.elements}")
        for field in ("n_rows", "nG", "ndG", "nblocks"):
            given = getattr(self, field)
            if not isinstance(given, dict) or set(given) != set(self.elements):
                keys = sorted(given) if isinstance(given, dict) else given
                raise StoreError(
                    f"invalid store layout: {field} must have one entry per element "
                    f"{self.elements}, got {keys!r}"
                )
            setattr(self, field, {e: _count(given[e], f"{field}[{e!r}]") for e in self.elements})
        if not isinstance(self.derivatives, (bool, np.bool_)):
            raise StoreError(
                f"invalid store layout: derivatives must be True or False, got {self.derivatives!r}"
            )
        self.derivatives = bool(self.derivatives)
        self.n_structures = _count(self.n_structures, "n_structures")
        self.chunk_rows = _count(self.chunk_rows, "chunk_rows", positive=True)
        if self.dtype not in FLOAT_DTYPES:
            raise StoreError(
                f"invalid store layout: dtype must be one of {FLOAT_DTYPES}, got {self.dtype!r}"
            )
        if self.compressor not in COMPRESSORS:
            raise StoreError(
                f"invalid store layout: compressor must be one of {COMPRESSORS}, got {self.compressor!r}"
            )
        level = _count(self.compression_level, "compression_level")
        if level > 9:
            raise StoreError(f"invalid store layout: compression_level must be 0..9, got {level}")
        self.compression_level = level
        if self.shuffle not in SHUFFLES:
            raise StoreError(
                f"invalid store layout: shuffle must be one of {SHUFFLES}, got {self.shuffle!r}"
            )
        self.hist_bins = _count(self.hist_bins, "hist_bins")
        if self.n_sf is not None or self.hist_bins:
            if not isinstance(self.n_sf, dict) or set(self.n_sf) != set(self.elements):
                raise StoreError(
                    f"invalid store layout: n_sf must have one entry per element "
                    f"{self.elements} when hist_bins > 0, got {self.n_sf!r}"
                )
            self.n_sf = {e: _count(self.n_sf[e], f"n_sf[{e!r}]") for e in self.elements}
        if self.force_matching not in FORCE_MATCHING_MODES:
            raise StoreError(f"invalid store layout: force_matching must be one of "
                             f"{FORCE_MATCHING_MODES}, got {self.force_matching!r}")
        if self.force_matching != "none" and not self.derivatives:
            raise StoreError("invalid store layout: force-matching features need derivatives")
        self.n_fm = _count(self.n_fm, "n_fm")
        self.n_fmq = _count(self.n_fmq, "n_fmq")
        if self.precision not in PRECISIONS:
            raise StoreError(f"invalid store layout: precision must be one of {PRECISIONS}, "
                             f"got {self.precision!r}")
        if self.precision == "n2p2" and self.dtype != "float64":
            raise StoreError(
                f"precision 'n2p2' rounds float64 to {N2P2_KEEPBITS} mantissa bits and needs "
                f"dtype float64; {self.dtype} keeps only {np.finfo(self.dtype).nmant + 1} bits "
                "(about 7 significant digits), already fewer than n2p2's text (9): use "
                "--dtype float32 or --precision n2p2, not both")

    # -- (de)serialisation --------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-able dict (stored as the root attribute ``layout``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StoreLayout":
        """Inverse of :meth:`to_dict`; refuses missing or unknown keys."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        unknown = set(d) - names
        missing = required - set(d)
        if unknown or missing:
            raise StoreError(
                "invalid store layout: "
                + "; ".join(
                    s
                    for s in (
                        f"unknown keys {sorted(unknown)}" if unknown else "",
                        f"missing keys {sorted(missing)}" if missing else "",
                    )
                    if s
                )
            )
        return cls(**d)

    # -- array specs --------------------------------------------------------
    def array_names(self) -> tuple[str, ...]:
        """Names of the per-element arrays present in this layout."""
        fm = {"none": (), "linear": FM_ARRAYS, "quadratic": FM_ARRAYS + FMQ_ARRAYS}[self.force_matching]
        return tuple(n for n in ELEMENT_ARRAYS if self.derivatives or n not in DERIVATIVE_ARRAYS) + fm

    def columns(self, element: str, name: str) -> int | None:
        """Number of columns of array ``name`` of ``element`` (None for 1-D arrays)."""
        if name == G:
            return self.nG[element]
        if name in DERIVATIVE_ARRAYS:
            return self.ndG[element]
        if name in FM_ARRAYS:
            return self.n_fm
        if name in FMQ_ARRAYS:
            return self.n_fmq
        if name in (FORCES, POSITIONS):
            return 3
        if name in (NB_ATOM, NB_ORDER):
            return self.nblocks[element]
        if name == NB_COUNT:
            return len(self.elements)
        return None

    def widest_row_bytes(self) -> int:
        """Bytes of one row of the widest array of any element (one chunk of
        it holds ``chunk_rows`` times as many)."""
        return max((max(self.columns(e, n) or 1, 1) * np.dtype(self.array_dtype(n)).itemsize
                    for e in self.elements for n in self.array_names()), default=1)

    def array_dtype(self, name: str) -> str:
        """dtype (numpy name) of per-element array ``name``."""
        if name == G or name in DERIVATIVE_ARRAYS or name in FM_ARRAYS + FMQ_ARRAYS:
            return self.dtype
        return {
            FORCES: "float64",
            POSITIONS: "float64",
            STRUCTURE: "int64",
            ATOM: "int32",
            NB_ATOM: "int32",
            NB_ORDER: "int16",
            NB_COUNT: "int32",
        }[name]

    def array_shape(self, element: str, name: str) -> tuple[int, ...]:
        ncols = self.columns(element, name)
        n = self.n_rows[element]
        return (n,) if ncols is None else (n, ncols)

    def array_chunks(self, element: str, name: str) -> tuple[int, ...]:
        """Zarr chunk shape: ``chunk_rows`` rows, all columns (at least 1: zarr
        needs positive chunk lengths, a 0-width array simply has no data)."""
        ncols = self.columns(element, name)
        return (self.chunk_rows,) if ncols is None else (self.chunk_rows, max(ncols, 1))

    @staticmethod
    def fill_value(dtype: str):
        return FLOAT_FILL if np.dtype(dtype).kind == "f" else INT_FILL

    def n_chunks(self, element: str) -> int:
        """Number of row chunks of ``element``."""
        return math.ceil(self.n_rows[element] / self.chunk_rows)

    def check_rows(self, element: str, row_start: int, row_stop: int) -> None:
        """Enforce the ownership rule for a write of rows [row_start, row_stop).

        Raises
        ------
        StoreError
            If the range is out of bounds, or does not start on a chunk
            boundary, or does not end on one or at ``n_rows``.
        """
        n = self.n_rows[element]
        c = self.chunk_rows
        if row_start < 0 or row_stop < row_start or row_stop > n:
            raise StoreError(
                f"rows [{row_start}, {row_stop}) of element {element} are out of range: "
                f"the element has {n} rows"
            )
        if row_start % c != 0:
            raise StoreError(
                f"rows [{row_start}, {row_stop}) of element {element}: start {row_start} is not a "
                f"multiple of chunk_rows={c}; a writer must own whole chunks (two writers in one "
                f"chunk lose data, zarr-python #3682)"
            )
        if row_stop % c != 0 and row_stop != n:
            raise StoreError(
                f"rows [{row_start}, {row_stop}) of element {element}: stop {row_stop} is neither a "
                f"multiple of chunk_rows={c} nor n_rows={n}; a writer must own whole chunks (two "
                f"writers in one chunk lose data, zarr-python #3682)"
            )

    def structure_spec(self, name: str) -> tuple[tuple[int, ...], str]:
        """(shape, dtype) of ``structures/<name>``."""
        s, ne = self.n_structures, len(self.elements)
        return {
            NATOMS: ((s,), "int64"),
            PERIODIC: ((s,), "bool"),
            LATTICE: ((s, 3, 3), "float64"),
            ENERGY: ((s,), "float64"),
            CHARGE: ((s,), "float64"),
            FIRST_ROW: ((s, ne), "int64"),
            COUNTS: ((s, ne), "int64"),
        }[name]

    def compressors(self, name: str | None = None):
        """The zarr bytes-to-bytes codecs of array ``name``: the compressor
        (none with ``compressor="none"``), then a ``crc32c`` checksum of the
        stored bytes, so a flipped bit or a truncated chunk is an error when it
        is read instead of a silently different number (``distatomenv verify``
        reads every chunk).  crc32c runs at about 9 GiB/s here: no measurable cost.

        The per-element float arrays (G, dGd*, fm_d*, fmq_d*, forces,
        positions; ``ROW_FLOAT_ARRAYS``) get Blosc level 1 (at most
        ``compression_level``) with blocks of up to 4 MiB instead of Blosc's
        default (a few hundred KiB): a row's neighbour blocks repeat other
        rows' own SFs, usually within the same structure, and a block that
        holds the whole structure lets zstd find them; and zstd's per-block
        start-up is paid once per chunk.  The compression runs beside the
        kernels, so its speed is what matters most.  Measured on one core on
        jittered H2O rows (benchmarks/bench_codecs.py, table in
        benchmarks/README.md): G ratio 3.6 at 880 MB/s (level 5 default
        blocks: 3.05 at 130 MB/s).  The derivative rows dGd*, the bulk of
        the bytes, take :data:`DERIVATIVE_CODEC` (lz4, bit shuffle) at the
        same level and blocks: ratio 1.11 at 2,600 MB/s on H2O and 1.13 at
        2,700 MB/s on CG water, where zstd level 1 gives 1.18 at 830 and
        1.19 at 950 MB/s; two processes on two cores then write CG water x
        100 in 3-4 % less time, for 9-12 % larger dG.  The integer and
        per-structure arrays are small and keep ``compression_level`` with
        Blosc's default blocks.
        """
        from zarr.codecs import BloscCodec, Crc32cCodec

        if self.compressor == "none":
            return [Crc32cCodec()]
        if name in ROW_FLOAT_ARRAYS:
            cname, shuffle = (DERIVATIVE_CODEC if name in DERIVATIVE_ARRAYS
                              else (self.compressor, self.shuffle))
            return [BloscCodec(cname=cname, clevel=min(1, self.compression_level),
                               shuffle=shuffle, blocksize=1 << 22), Crc32cCodec()]
        return [BloscCodec(cname=self.compressor, clevel=self.compression_level,
                           shuffle=self.shuffle), Crc32cCodec()]

    @property
    def keepbits(self) -> int | None:
        """Mantissa bits the descriptor arrays keep (None: all, lossless)."""
        return N2P2_KEEPBITS if self.precision == "n2p2" else None

    def filters(self, name: str | None = None) -> list:
        """The zarr array-to-array codecs of array ``name``: with
        ``precision="n2p2"`` a ``numcodecs.bitround`` filter (``keepbits``
        mantissa bits) on the descriptor arrays, else none.  The filter is in
        the array's metadata, so readers need nothing from the layout; reading
        only reinterprets the bytes (no cost)."""
        if self.keepbits is None or name not in ROUNDED_ARRAYS:
            return []
        from zarr.codecs.numcodecs import BitRound
        return [BitRound(keepbits=self.keepbits)]

    def describe_precision(self) -> str:
        if self.keepbits is None:
            return "full (lossless)"
        return (f"n2p2 (LOSSY: {', '.join(n for n in self.array_names() if n in ROUNDED_ARRAYS)} "
                f"rounded to {self.keepbits} mantissa bits, relative error <= "
                f"{2.0 ** -(self.keepbits + 1):.1e}; n2p2's text keeps 9 digits)")

    def describe_compressor(self) -> str:
        lossy = "" if self.keepbits is None else f"; precision {self.describe_precision()}"
        if self.compressor == "none":
            return "none (crc32c checksums)" + lossy
        return (f"blosc {self.compressor} level {self.compression_level} ({self.shuffle}), "
                "crc32c checksums" + lossy)
