"""Synthetic data sets with exact forces.

* :mod:`.lj` -- periodic binary Lennard-Jones liquid (Ar/Kr by default) as an
  n2p2 ``input.data`` plus a matching ``input.nn``: :func:`generate_lj`,
  :func:`lj_settings_text`, :func:`write_lj_dataset`, :class:`LJMixture`.
* :mod:`.md` -- molecular dynamics (velocity Verlet, Langevin thermostat) of a
  flexible water-like liquid, written as atomistic and coarse-grained
  input.data + input.nn: :func:`write_water_dataset` (small, for the demo and
  tests), :func:`write_water_fast` (>= 10^7 atoms for benchmarks),
  :func:`generate_water`, :class:`WaterMD`, :class:`WaterModel`.
* :mod:`.fast` -- large benchmark inputs from a few samples (cube symmetries,
  translations, jitter, exact forces recomputed): :func:`write_lj_fast`,
  :func:`write_replicas`, :func:`format_atoms_fixed`.
"""
from .lj import (DEFAULT_DENSITY, DEFAULT_ELEMENTS, DEFAULT_RC_LJ, DEFAULT_SF_CUTOFF,
                 DEFAULT_TEMPERATURE, KB_EV, LJ_PARAMETERS, LJMixture, box_length, generate_lj,
                 lj_settings_text, write_lj_dataset)
from .fast import format_atoms_fixed, write_lj_fast, write_replicas
from .md import (WaterMD, WaterModel, cg_settings_text, generate_water, water_settings_text,
                 write_water_dataset, write_water_fast)

__all__ = [
    "generate_lj", "lj_settings_text", "write_lj_dataset", "LJMixture", "box_length",
    "LJ_PARAMETERS", "KB_EV", "DEFAULT_ELEMENTS", "DEFAULT_TEMPERATURE", "DEFAULT_DENSITY",
    "DEFAULT_RC_LJ", "DEFAULT_SF_CUTOFF",
    "WaterMD", "WaterModel", "generate_water", "water_settings_text", "cg_settings_text",
    "write_water_dataset", "write_water_fast", "write_lj_fast", "write_replicas",
    "format_atoms_fixed",
]
