"""Reader of n2p2 ``input.nn`` settings files (the parts nnp-atomenv uses).

Only the keywords that change the atomic environments are interpreted:
``number_of_elements``, ``elements``, ``cutoff_type``, the scaling keywords,
``mean_energy``/``conv_energy``/``conv_length`` (unit normalisation),
``use_short_forces`` and ``symfunction_short`` (or its other name
``symfunction``, as n2p2 reads it; one file uses one of the two).  Training and network
keywords that n2p2 knows (:data:`IGNORED_KEYWORDS`) are skipped silently; any
other keyword is reported once with :func:`warnings.warn` and listed in
:attr:`Settings.warnings`, because it is probably a typo.

Comments start at ``#`` or ``!`` anywhere on a line.  Lengths stay in the
units of the file; angles of compact SFs stay in degrees.  Every problem is a
:class:`~distatomenv.errors.SettingsError` whose message starts with
``FILE:LINE:``.

``symfunction_short`` syntax (n2p2's)::

    <ec>  2 <e1> <eta> <rs> <rc>
    <ec>  3 <e1> <e2> <eta> <lambda> <zeta> <rc> [<rs>]      (also type 9)
    <ec> 12 <eta> <rs> <rc>
    <ec> 13 <eta> <rs> <lambda> <zeta> <rc>
    <ec> 20 <e1> <rl> <rc> <subtype>
    <ec> 21 <e1> <e2> <rl> <rc> <angleLeft> <angleRight> <subtype>   (also 22)
    <ec> 23 <rl> <rc> <subtype>
    <ec> 24 <rl> <rc> <angleLeft> <angleRight> <subtype>             (also 25)
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings as _warnings
from dataclasses import dataclass, field

from ..descriptors.symfuncs import (CUTOFF_TYPES, SymmetryFunction, SymmetryFunctionSet,
                                    compact_core)
from ..elements import ATOMIC_NUMBER, sort_by_atomic_number
from ..errors import SettingsError
from .fields import finite_float, integer
from .scaling import SCALING_MODES

__all__ = ["Settings", "read_settings", "IGNORED_KEYWORDS", "SCALING_MODES", "SF_SYNTAX"]

#: n2p2 keywords that do not affect atomic environments; skipped without a warning.
IGNORED_KEYWORDS = frozenset("""
    atom_energy global_hidden_layers_short global_nodes_short global_activation_short
    normalize_nodes random_seed nnp_type nnp_generation
    global_hidden_layers_electrostatic global_nodes_electrostatic global_activation_electrostatic
    epochs updater_type parallel_mode jacobian_mode update_strategy selection_mode
    task_batch_size_energy task_batch_size_force task_batch_size_charge
    memorize_symfunc_results test_fraction force_weight charge_weight
    short_energy_fraction short_force_fraction short_energy_error_threshold
    short_force_error_threshold rmse_threshold rmse_threshold_trials
    use_old_weights_short use_old_weights_charge weights_min weights_max
    precondition_weights nguyen_widrow_weights_short nguyen_widrow_weights_charge
    write_trainpoints write_trainforces write_traincharges write_weights_epoch
    write_neuronstats write_trainlog main_error_metric repeated_energy_update
    force_energy_ratio free_memory
    gradient_type gradient_eta gradient_adam_eta gradient_adam_beta1
    gradient_adam_beta2 gradient_adam_epsilon
    kalman_type kalman_epsilon kalman_q0 kalman_qtau kalman_qmin kalman_eta
    kalman_etatau kalman_etamax kalman_lambda_short kalman_nue_short
""".split())

#: Expected fields after ``symfunction_short`` per SF type (for error messages).
SF_SYNTAX = {
    2: "<ec> 2 <e1> <eta> <rs> <rc>",
    3: "<ec> 3 <e1> <e2> <eta> <lambda> <zeta> <rc> [<rs>]",
    9: "<ec> 9 <e1> <e2> <eta> <lambda> <zeta> <rc> [<rs>]",
    12: "<ec> 12 <eta> <rs> <rc>",
    13: "<ec> 13 <eta> <rs> <lambda> <zeta> <rc>",
    20: "<ec> 20 <e1> <rl> <rc> <subtype>",
    21: "<ec> 21 <e1> <e2> <rl> <rc> <angleLeft> <angleRight> <subtype>",
    22: "<ec> 22 <e1> <e2> <rl> <rc> <angleLeft> <angleRight> <subtype>",
    23: "<ec> 23 <rl> <rc> <subtype>",
    24: "<ec> 24 <rl> <rc> <angleLeft> <angleRight> <subtype>",
    25: "<ec> 25 <rl> <rc> <angleLeft> <angleRight> <subtype>",
}

# Parameter names after "<ec> <type>", per type; "e" marks an element, "s" the subtype.
_PARAMS = {
    2: ("e1", "eta", "rs", "rc"),
    3: ("e1", "e2", "eta", "lambda_", "zeta", "rc", "rs"),
    9: ("e1", "e2", "eta", "lambda_", "zeta", "rc", "rs"),
    12: ("eta", "rs", "rc"),
    13: ("eta", "rs", "lambda_", "zeta", "rc"),
    20: ("e1", "rl", "rc", "subtype"),
    21: ("e1", "e2", "rl", "rc", "angle_left", "angle_right", "subtype"),
    22: ("e1", "e2", "rl", "rc", "angle_left", "angle_right", "subtype"),
    23: ("rl", "rc", "subtype"),
    24: ("rl", "rc", "angle_left", "angle_right", "subtype"),
    25: ("rl", "rc", "angle_left", "angle_right", "subtype"),
}
_OPTIONAL_RS = {3, 9}
_FLAGS = ("scale_symmetry_functions", "center_symmetry_functions",
          "scale_symmetry_functions_sigma", "use_short_forces")
_NORMALIZATION = ("mean_energy", "conv_energy", "conv_length")
#: The SF keyword and its other name (n2p2 reads both; its 4G examples use
#: ``symfunction``); a file may use only one of them, as in n2p2.
SF_KEYWORDS = ("symfunction_short", "symfunction")


@dataclass
class Settings:
    """The settings of an input.nn file that matter for atomic environments.

    Attributes
    ----------
    path : the file read.
    elements : element symbols in atomic-number order.
    sfset : every element's SFs in n2p2's order (lengths in input units).
    cutoff_type : n2p2 cutoff type 0-8 of the exponential SF types.
    cutoff_alpha : inner-cutoff fraction in [0, 1).
    scaling : one of :data:`SCALING_MODES`.
    scale_min, scale_max : target range Smin, Smax of the scaling.
    normalize : whether mean_energy/conv_energy/conv_length are given.
    mean_energy, conv_energy : energy normalisation (0.0 and 1.0 when absent).
    conv_length : length normalisation factor (1.0 when absent): n2p2 multiplies
        lengths by it, so derivatives are per normalised length.
    use_short_forces : whether derivative files are written.
    warnings : messages about unknown keywords and duplicate SFs.
    sha256 : hex digest of the file's bytes.
    """

    path: str
    elements: list[str]
    sfset: SymmetryFunctionSet
    cutoff_type: int
    cutoff_alpha: float = 0.0
    scaling: str = "none"
    scale_min: float = 0.0
    scale_max: float = 1.0
    normalize: bool = False
    mean_energy: float = 0.0
    conv_energy: float = 1.0
    conv_length: float = 1.0
    use_short_forces: bool = False
    warnings: list[str] = field(default_factory=list)
    sha256: str = ""

    def to_dict(self) -> dict:
        """A JSON-able dict (for store attributes); inverse of :meth:`from_dict`."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["sfset"] = self.sfset.to_dict()
        d["elements"] = list(self.elements)
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        d = dict(d)
        d["sfset"] = SymmetryFunctionSet.from_dict(d["sfset"])
        d["elements"] = list(d["elements"])
        d["warnings"] = list(d.get("warnings", []))
        return cls(**d)


class _Reader:
    """Parses one input.nn file; keeps the path for error messages."""

    def __init__(self, path):
        self.path = path

    def error(self, line, message):
        return SettingsError(self.path, line, message)

    def number(self, toks, k, name, line) -> float:
        """Float in token k (column k+1 of the line, counting the keyword)."""
        return finite_float(toks[k], SettingsError, self.path, line, k + 1, name)

    def integer(self, toks, k, name, line) -> int:
        return integer(toks[k], SettingsError, self.path, line, k + 1, name)

    def nargs(self, toks, n, line, syntax):
        if len(toks) - 1 != n:
            raise self.error(line, f"'{toks[0]}' takes {n} value(s) ({syntax}), "
                                   f"found {len(toks) - 1}")


def _lines(text: str):
    """(line number, tokens) of the non-empty lines, comments removed."""
    for lineno, raw in enumerate(text.split("\n"), start=1):
        cut = min((i for i in (raw.find("#"), raw.find("!")) if i >= 0), default=len(raw))
        toks = raw[:cut].split()
        if toks:
            yield lineno, toks


def _parse_sf(rd: _Reader, toks, line, elements) -> SymmetryFunction:
    """One ``symfunction_short`` (or ``symfunction``) line (toks[0] is the keyword)."""
    if len(toks) < 3:
        raise rd.error(line, f"'{toks[0]}' needs at least <ec> <type>, found "
                             f"{len(toks) - 1} value(s)")
    ec = toks[1]
    if ec not in elements:
        raise rd.error(line, f"central element '{ec}' (column 2) is not declared in 'elements' "
                             f"({' '.join(elements)})")
    sftype = rd.integer(toks, 2, "type", line)
    if sftype not in _PARAMS:
        raise rd.error(line, f"unknown symmetry function type {sftype}; supported types: "
                             f"{', '.join(map(str, sorted(_PARAMS)))}")
    names = _PARAMS[sftype]
    values = toks[3:]
    nmin = len(names) - (1 if sftype in _OPTIONAL_RS else 0)
    if not nmin <= len(values) <= len(names):
        want = f"{nmin} or {len(names)}" if nmin != len(names) else str(nmin)
        raise rd.error(line, f"type {sftype} takes {want} values after the type "
                             f"({SF_SYNTAX[sftype]}), found {len(values)}")
    kw = {}
    for k, (name, tok) in enumerate(zip(names, values), start=3):
        if name in ("e1", "e2"):
            if tok not in elements:
                raise rd.error(line, f"neighbour element '{tok}' (column {k + 1}) is not declared "
                                     f"in 'elements' ({' '.join(elements)})")
            kw[name] = tok
        elif name == "subtype":
            if compact_core(tok) is None:
                raise rd.error(line, f"unknown subtype '{tok}' (column {k + 1}); expected p1, p2, "
                                     "p3, p4 (polynomials), p1a, p2a, p3a, p4a (asymmetric) or "
                                     "e (exponential; n2p2 also reads e plus up to two "
                                     "characters, such as ea, as e)")
            kw[name] = tok
        else:
            kw[name] = rd.number(toks, k, name.rstrip("_"), line)
    if kw["rc"] <= 0:
        raise rd.error(line, f"cutoff radius rc = {kw['rc']:g} must be > 0")
    if kw.get("eta", 0.0) < 0:
        raise rd.error(line, f"eta = {kw['eta']:g} must be >= 0")
    if sftype in (3, 9, 13) and kw["zeta"] == 0:
        # n2p2 accepts zeta = 0 but writes NaN for every derivative of such an SF
        # (asked of nnp-atomenv); its angular factor is the constant 1 anyway
        raise rd.error(line, "zeta = 0 makes the angular factor (1 + lambda cos)^zeta the "
                             "constant 1 (n2p2 accepts it but writes NaN derivatives); use a "
                             "radial SF, or a zeta other than 0 (negative is allowed)")
    if sftype >= 20 and kw["rl"] >= kw["rc"]:
        raise rd.error(line, f"rl = {kw['rl']:g} must be smaller than rc = {kw['rc']:g}")
    if "angle_left" in kw:
        al, ar = kw["angle_left"], kw["angle_right"]
        if al >= ar:
            raise rd.error(line, f"angleLeft = {al:g} must be smaller than angleRight = {ar:g}")
        # n2p2's rule: a window reaching outside [0, 180] must be centred on 0 or
        # 180 degrees and stay within [-180, 360] (it then wraps around theta = 0
        # or 180); nnp-scaling refuses anything else.
        centre = 0.5 * (al + ar)
        if (al < 0.0 or ar > 180.0) and not (
                (centre == 0.0 and al >= -180.0) or (centre == 180.0 and ar <= 360.0)):
            raise rd.error(line, f"the angle window ({al:g}, {ar:g}) reaches outside [0, 180] "
                                 f"degrees, so its centre ({centre:g}) must be 0 or 180 and it "
                                 "must lie within [-180, 360]")
    if "e2" in kw and ATOMIC_NUMBER[kw["e1"]] > ATOMIC_NUMBER[kw["e2"]]:
        kw["e1"], kw["e2"] = kw["e2"], kw["e1"]
    return SymmetryFunction(element=ec, type=sftype, line=line, **kw)


def read_settings(path) -> Settings:
    """Read an n2p2 input.nn file.

    Returns
    -------
    Settings, with the SF set sorted in n2p2's order.

    Raises
    ------
    SettingsError naming the file and line for anything malformed or missing.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        from ..errors import os_error
        raise os_error(exc, path, "cannot read the settings (input.nn)") from None
    rd = _Reader(path)
    text = raw.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):        # a UTF-8 byte order mark is not part of line 1
        text = text[1:]

    seen: dict[str, int] = {}          # single-use keyword -> first line
    values: dict[str, list] = {}
    sf_lines = []
    sf_keyword: dict[str, int] = {}      # SF keyword used -> first line
    messages: list[str] = []
    unknown: set[str] = set()
    for line, toks in _lines(text):
        kw = toks[0]
        if kw in SF_KEYWORDS:
            sf_keyword.setdefault(kw, line)
            for name, first in sf_keyword.items():
                if name != kw:
                    raise rd.error(line, f"'{kw}' and '{name}' (line {first}) are two names of "
                                         "the same keyword; use only one of them in a file "
                                         "(n2p2 refuses both)")
            sf_lines.append((line, toks))
            continue
        if kw in IGNORED_KEYWORDS:
            continue
        if kw not in ("number_of_elements", "elements", "cutoff_type", "scale_min_short",
                      "scale_max_short", *_FLAGS, *_NORMALIZATION):
            if kw not in unknown:
                unknown.add(kw)
                from ..errors import clean, quote
                msg = f"{clean(path)}:{line}: unknown keyword '{quote(kw)}' ignored"
                messages.append(msg)
                _warnings.warn(msg, stacklevel=2)
            continue
        if kw in seen:
            raise rd.error(line, f"keyword '{kw}' appears again (first at line {seen[kw]})")
        seen[kw] = line
        values[kw] = toks

    # -- elements ------------------------------------------------------------
    if "elements" not in values:
        raise rd.error(None, "missing keyword 'elements'")
    eline, etoks = seen["elements"], values["elements"]
    if len(etoks) < 2:
        raise rd.error(eline, "'elements' needs at least one element symbol")
    for k, sym in enumerate(etoks[1:], start=2):
        if sym not in ATOMIC_NUMBER:
            raise rd.error(eline, f"'{sym}' (column {k}) is not a chemical element symbol")
    if len(set(etoks[1:])) != len(etoks) - 1:
        raise rd.error(eline, f"'elements' lists an element twice: {' '.join(etoks[1:])}")
    elements = sort_by_atomic_number(etoks[1:])
    if "number_of_elements" in values:
        toks, line = values["number_of_elements"], seen["number_of_elements"]
        rd.nargs(toks, 1, line, "N")
        n = rd.integer(toks, 1, "N", line)
        if n != len(elements):
            raise rd.error(line, f"number_of_elements is {n} but 'elements' (line {eline}) lists "
                                 f"{len(elements)}: {' '.join(etoks[1:])}")

    # -- cutoff ----------------------------------------------------------------
    if "cutoff_type" not in values:
        raise rd.error(None, "missing keyword 'cutoff_type'")
    toks, line = values["cutoff_type"], seen["cutoff_type"]
    if len(toks) not in (2, 3):
        raise rd.error(line, f"'cutoff_type' takes 1 or 2 values (T [alpha]), found {len(toks) - 1}")
    cutoff_type = rd.integer(toks, 1, "T", line)
    if cutoff_type not in CUTOFF_TYPES:
        raise rd.error(line, f"cutoff_type {cutoff_type} is not one of 0-8")
    cutoff_alpha = rd.number(toks, 2, "alpha", line) if len(toks) == 3 else 0.0
    if not 0.0 <= cutoff_alpha < 1.0:
        raise rd.error(line, f"cutoff alpha {cutoff_alpha:g} must be in [0, 1)")

    # -- scaling -------------------------------------------------------------
    scale = "scale_symmetry_functions" in seen
    center = "center_symmetry_functions" in seen
    sigma = "scale_symmetry_functions_sigma" in seen
    # n2p2's precedence (the scaling type its nnp-atomenv log reports for each of
    # the eight combinations): scale and center together give scalecenter, then
    # scale, then center; the sigma keyword counts only when it is alone.
    scaling = ("scalecenter" if scale and center else "scale" if scale else
               "center" if center else "sigma" if sigma else "none")
    smin_smax = []
    for kw, default in (("scale_min_short", 0.0), ("scale_max_short", 1.0)):
        if kw in values:
            rd.nargs(values[kw], 1, seen[kw], "value")
            smin_smax.append(rd.number(values[kw], 1, kw, seen[kw]))
        else:
            smin_smax.append(default)
    scale_min, scale_max = smin_smax
    if scale_max <= scale_min:
        raise rd.error(seen.get("scale_max_short", seen.get("scale_min_short")),
                       f"scale_max_short ({scale_max:g}) must be larger than scale_min_short "
                       f"({scale_min:g})")

    # -- normalisation ---------------------------------------------------------
    present = [k for k in _NORMALIZATION if k in values]
    norm = {"mean_energy": 0.0, "conv_energy": 1.0, "conv_length": 1.0}
    if present and len(present) != 3:
        missing = [k for k in _NORMALIZATION if k not in values]
        raise rd.error(min(seen[k] for k in present), f"normalisation needs all of mean_energy, conv_energy "
                                         f"and conv_length; missing: {', '.join(missing)}")
    for kw in present:
        rd.nargs(values[kw], 1, seen[kw], "value")
        norm[kw] = rd.number(values[kw], 1, kw, seen[kw])
    if norm["conv_length"] <= 0:
        raise rd.error(seen["conv_length"], f"conv_length = {norm['conv_length']:g} must be > 0")

    # -- symmetry functions ----------------------------------------------------
    functions = []
    first_line: dict[SymmetryFunction, int] = {}
    for line, toks in sf_lines:
        sf = _parse_sf(rd, toks, line, elements)
        key = dataclasses.replace(sf, line=0)
        if key in first_line:
            msg = (f"{path}:{line}: symmetry function identical to the one at line "
                   f"{first_line[key]} ({sf.describe()}); both are kept, as n2p2 does")
            messages.append(msg)
            _warnings.warn(msg, stacklevel=2)
        else:
            first_line[key] = line
        functions.append(sf)
    for e in elements:
        if not any(sf.element == e for sf in functions):
            raise rd.error(eline, f"element {e} has no '{next(iter(sf_keyword), SF_KEYWORDS[0])}' "
                                  "lines")

    sfset = SymmetryFunctionSet(elements=elements, functions=functions,
                                cutoff_type=cutoff_type, cutoff_alpha=cutoff_alpha)
    return Settings(
        path=path, elements=elements, sfset=sfset, cutoff_type=cutoff_type,
        cutoff_alpha=cutoff_alpha, scaling=scaling, scale_min=scale_min, scale_max=scale_max,
        normalize=bool(present), mean_energy=norm["mean_energy"],
        conv_energy=norm["conv_energy"], conv_length=norm["conv_length"],
        use_short_forces="use_short_forces" in seen, warnings=messages,
        sha256=hashlib.sha256(raw).hexdigest())


def format_sf_line(sf) -> str:
    """The ``symfunction_short`` line of ``sf`` (a SymmetryFunction) in n2p2's
    notation, lengths in input units: what :func:`read_settings` reads back
    as the same SF."""
    vals = []
    for name in _PARAMS[sf.type]:
        v = getattr(sf, name)
        if name in ("e1", "e2", "subtype"):
            vals.append(str(v))
        else:
            vals.append(repr(float(v)) if float(v) != int(v) or abs(v) >= 1e15 else str(int(v)))
    return " ".join(["symfunction_short", sf.element, str(sf.type)] + vals)
