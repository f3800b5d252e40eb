"""What a store holds, as data: :func:`store_info` (``distatomenv.info``).

:class:`StoreInfo` gathers the facts ``distatomenv info`` prints: status and
work units, the layout, every array's shape, chunks and stored size, the
settings and symmetry functions the store was computed with, the neighbour
counts within the cutoff with the ``--neighbors`` they allow, and the
provenance.  ``str(info)`` (:meth:`StoreInfo.text`) is the command's text;
:meth:`StoreInfo.to_dict` a JSON-able dict.  Works on incomplete stores too.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .fs import location
from .reader import StoreReader, _human, open_store
from .schema import ELEMENTS_GROUP, format_id_ranges

__all__ = ["ArrayInfo", "ElementInfo", "SymmetryFunctionInfo", "SettingsInfo", "StoreInfo",
           "store_info", "suggested_neighbors"]


@dataclass
class ArrayInfo:
    """One array of ``elements/<E>``: ``nbytes`` uncompressed, ``stored_bytes``
    as stored (compressed, with checksums)."""

    name: str
    shape: tuple
    dtype: str
    chunks: tuple
    nbytes: int
    stored_bytes: int

    @property
    def ratio(self) -> float | None:
        """Compression ratio (None for an empty array)."""
        return self.nbytes / self.stored_bytes if self.nbytes and self.stored_bytes else None


@dataclass
class ElementInfo:
    """One element's group: rows (atoms), columns and arrays."""

    element: str
    rows: int
    nG: int
    ndG: int
    nblocks: int
    arrays: list[ArrayInfo] = field(default_factory=list)


@dataclass
class SymmetryFunctionInfo:
    """One symmetry function: n2p2's description and its line in input.nn."""

    description: str
    line: int


@dataclass
class SettingsInfo:
    """The settings the store was computed with (from input.nn and --neighbors)."""

    cutoff_type: int
    cutoff_name: str
    cutoff_alpha: float
    rc_max: float
    scaling: str
    scale_min: float
    scale_max: float
    normalize: bool
    conv_length: float
    derivatives: bool
    elements: list[str]
    ncut: list[list[int]]
    neighbors_spec: str
    symmetry_functions: dict[str, list[SymmetryFunctionInfo]]


@dataclass
class StoreInfo:
    """Facts about a store (see the module docstring); ``str()`` is
    ``distatomenv info``'s text.

    Attributes
    ----------
    path, status, error : the store, its status, the last failure (or None).
    n_units, done_units, missing_units : work units planned (None if not
        recorded), finished, and the ids of those missing (None if unknown).
    n_structures, elements, derivatives, dtype, chunk_rows : the layout.
    compressor : the codecs, in words.
    element_info : per element, rows, columns and arrays.
    stored_bytes : the whole store as stored.
    settings : None for a store made without them (tests, old stores).
    neighbor_counts : central -> neighbour -> {min, mean, max, atoms}: the
        neighbours within the largest cutoff (empty before the run completes).
    suggested_neighbors : the ``--neighbors`` every atom allows (None without counts).
    hist_bins : bins of the scaled-SF histograms in ``stats/`` (None or 0: none).
    provenance : version, host, created, command, inputs, units (None without metadata).
    """

    path: str
    status: str
    error: str | None
    n_units: int | None
    done_units: int
    missing_units: list[int] | None
    n_structures: int
    elements: list[str]
    derivatives: bool
    dtype: str
    chunk_rows: int
    compressor: str
    element_info: list[ElementInfo]
    stored_bytes: int
    settings: SettingsInfo | None = None
    neighbor_counts: dict = field(default_factory=dict)
    suggested_neighbors: str | None = None
    hist_bins: int | None = None
    provenance: dict | None = None

    def to_dict(self) -> dict:
        """A JSON-able dict of every field."""
        return asdict(self)

    # -- text ---------------------------------------------------------------
    def units_text(self) -> str:
        if self.n_units is None:
            return f"{self.done_units} work units finished (number planned not recorded)"
        if not self.missing_units:
            return f"all {self.n_units} work units finished"
        return (f"{len(self.missing_units)} of {self.n_units} work units missing: units "
                f"{format_id_ranges(self.missing_units)}")

    def summary_lines(self) -> list[str]:
        """The store part of the text (also :meth:`StoreReader.summary`)."""
        lines = [f"distatomenv store {self.path}"]
        lines.append(f"status: {self.status} ({self.units_text()})")
        if self.error:
            lines.append(f"error: {self.error}")
        lines.append(
            f"structures: {self.n_structures}; elements: {', '.join(self.elements)}; "
            f"derivatives: {'yes' if self.derivatives else 'no'}"
        )
        lines.append(
            f"float dtype: {self.dtype}; chunk_rows: {self.chunk_rows}; compressor: "
            f"{self.compressor}"
        )
        total_raw = total_stored = 0
        for el in self.element_info:
            lines.append("")
            lines.append(
                f"element {el.element}: {el.rows} rows, nG {el.nG}, "
                + (f"ndG {el.ndG}, " if self.derivatives else "")
                + f"{el.nblocks} neighbour blocks"
            )
            lines.append(
                f"  {'array':<10} {'shape':<16} {'dtype':<8} {'chunks':<14} {'stored':>10} {'ratio':>6}"
            )
            for a in el.arrays:
                total_raw += a.nbytes
                total_stored += a.stored_bytes
                ratio = f"{a.ratio:.2f}" if a.ratio is not None else "-"
                lines.append(
                    f"  {a.name:<10} {str(a.shape):<16} {a.dtype:<8} "
                    f"{str(a.chunks):<14} {_human(a.stored_bytes):>10} {ratio:>6}"
                )
        ratio = f", compression ratio {total_raw / total_stored:.2f}" if total_stored and total_raw else ""
        lines.append("")
        lines.append(
            f"total on disk: {_human(self.stored_bytes)}; element arrays {_human(total_raw)} "
            f"uncompressed{ratio}"
        )
        return lines

    def text(self) -> str:
        """``distatomenv info``'s text."""
        lines = self.summary_lines()
        st = self.settings
        if st is not None:
            lines += ["", "settings:"]
            lines.append(f"  cutoff: type {st.cutoff_type} ({st.cutoff_name}), "
                         f"alpha {st.cutoff_alpha:g}; largest SF cutoff {st.rc_max:g}")
            scale = st.scaling
            if scale in ("scale", "scalecenter", "sigma"):
                scale += f" to [{st.scale_min:g}, {st.scale_max:g}]"
            lines.append(f"  scaling: {scale}; normalisation: "
                         + (f"conv_length {st.conv_length!r}" if st.normalize else "none")
                         + f"; derivatives: {'yes' if st.derivatives else 'no'}")
            pairs = ", ".join(f"{a}-{b}={st.ncut[i][j]}" for i, a in enumerate(st.elements)
                              for j, b in enumerate(st.elements))
            lines.append(f"  neighbours: {pairs}  (--neighbors \"{st.neighbors_spec}\")")
            for e in st.elements:
                mine = st.symmetry_functions.get(e, [])
                lines.append(f"  symmetry functions of {e} ({len(mine)}, n2p2 order):")
                for k, f in enumerate(mine, 1):
                    lines.append(f"    {k:3d}  {f.description}  (input.nn line {f.line})")
        nb = self.neighbor_counts
        if nb:
            lines += ["", "neighbour counts within the largest cutoff (per atom; periodic "
                          "images count):"]
            for a in self.elements:
                for b in self.elements:
                    d = (nb.get(a) or {}).get(b)
                    if d:
                        lines.append(f"  {a}-{b}: min {d['min']}, mean {d['mean']:.2f}, "
                                     f"max {d['max']} ({d['atoms']} atoms)")
            lines.append(f"  suggested --neighbors \"{self.suggested_neighbors}\" "
                         "(per pair the smallest count that every atom has)")
            if self.hist_bins:
                lines.append(f"  scaled-SF histograms: {self.hist_bins} bins per SF in stats/ "
                             "(export writes them as sf-scaled.ZZZ.SSSS.histo)")
        prov = self.provenance
        if prov is not None:
            lines += ["", "provenance:"]
            lines.append(f"  made by distatomenv {prov.get('version')} on {prov.get('host')} at "
                         f"{prov.get('created')}")
            lines.append(f"  command: {prov.get('command')}")
            for name, d in (prov.get("inputs") or {}).items():
                if d.get("computed"):
                    lines.append(f"  {name}: computed from the data (scaling pass)")
                elif d.get("checksum"):
                    lines.append(f"  {name}: {d.get('path')}  checksum {d.get('checksum')} "
                                 f"({d.get('checksum_type')})")
                else:
                    lines.append(f"  {name}: {d.get('path')}  sha256 {d.get('sha256')}")
            for k, v in (prov.get("units") or {}).items():
                lines.append(f"  unit of {k}: {v}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def suggested_neighbors(statistics, elements) -> str | None:
    """The ``--neighbors`` string that every atom of the data allows: per pair
    the smallest neighbour count within the cutoff (None without statistics)."""
    from ..descriptors.spec import suggest_neighbors
    nb = (statistics or {}).get("neighbors")
    if not nb:
        return None
    return suggest_neighbors({(a, b): d["min"] for a, per in nb.items()
                              for b, d in per.items()}, elements)


def layout_info(rd) -> StoreInfo:
    """The store part of :class:`StoreInfo` (status, layout, arrays, sizes) of
    an open :class:`~.reader.StoreReader`; no settings, counts or provenance."""
    lay = rd.layout
    done = rd.done_units()
    loc = location(rd.path)
    elements = []
    for e in lay.elements:
        arrays = []
        for name in lay.array_names():
            arr = rd.array(e, name)
            arrays.append(ArrayInfo(name=name, shape=tuple(arr.shape), dtype=str(arr.dtype),
                                    chunks=tuple(arr.chunks), nbytes=int(arr.nbytes),
                                    stored_bytes=int(loc.size(ELEMENTS_GROUP, e, name))))
        elements.append(ElementInfo(element=e, rows=lay.n_rows[e], nG=lay.nG[e],
                                    ndG=lay.ndG[e], nblocks=lay.nblocks[e], arrays=arrays))
    return StoreInfo(
        path=rd.path, status=rd.status, error=rd.error, n_units=rd.n_units,
        done_units=len(done),
        missing_units=None if rd.n_units is None else sorted(set(range(rd.n_units)) - done),
        n_structures=lay.n_structures, elements=list(lay.elements),
        derivatives=lay.derivatives, dtype=lay.dtype, chunk_rows=lay.chunk_rows,
        compressor=lay.describe_compressor(), element_info=elements,
        stored_bytes=int(rd.nbytes_stored()))


def _settings_info(meta) -> SettingsInfo | None:
    st = meta.get("settings")
    if not st:
        return None
    from ..descriptors.symfuncs import CUTOFF_TYPES, SymmetryFunction
    funcs = [SymmetryFunction.from_dict(f) for f in st["sfset"]["functions"]]
    return SettingsInfo(
        cutoff_type=st["cutoff_type"], cutoff_name=CUTOFF_TYPES[st["cutoff_type"]],
        cutoff_alpha=st["cutoff_alpha"], rc_max=meta["neighbors"]["rc_max"],
        scaling=st["scaling"], scale_min=st["scale_min"], scale_max=st["scale_max"],
        normalize=st["normalize"], conv_length=st["conv_length"],
        derivatives=st["use_short_forces"], elements=list(st["elements"]),
        ncut=meta["neighbors"]["ncut"], neighbors_spec=meta["neighbors"]["spec"],
        symmetry_functions={e: [SymmetryFunctionInfo(f.describe(), f.line) for f in funcs
                                if f.element == e] for e in st["elements"]})


def store_info(store) -> StoreInfo:
    """Everything ``distatomenv info`` reports about the store at ``store`` (a
    path, an fsspec URL or a StoreReader), also for an incomplete store."""
    rd = store if isinstance(store, StoreReader) else open_store(store, allow_incomplete=True)
    info = layout_info(rd)
    meta = rd.meta or {}
    info.settings = _settings_info(meta)
    stats = rd.statistics or {}
    info.neighbor_counts = stats.get("neighbors") or {}
    info.suggested_neighbors = suggested_neighbors(stats, rd.elements)
    info.hist_bins = stats.get("hist_bins")
    if meta:
        info.provenance = {k: meta.get(k) for k in ("version", "host", "created", "command")}
        info.provenance.update(inputs=meta.get("inputs", {}), units=meta.get("units", {}))
    return info
