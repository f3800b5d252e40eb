"""Readers and writers of n2p2's input files.

* :mod:`.data` -- ``input.data`` (structures): :func:`index_file`,
  :func:`read_structure`, :func:`read_structures`, :func:`write_structures`.
* :mod:`.settings` -- ``input.nn`` (elements, symmetry functions, cutoff,
  scaling mode, units): :func:`read_settings`.
* :mod:`.scaling` -- ``scaling.data`` (SF statistics) and the scaling maps:
  :func:`read_scaling`, :func:`write_scaling`, :class:`ScalingTable`.
"""
from .data import (DataIndex, Structure, count_newlines, index_file, read_structure,
                   read_structures, write_structures)
from .scaling import SCALING_MODES, ScalingTable, read_scaling, write_scaling
from .settings import Settings, read_settings

__all__ = [
    "DataIndex", "Structure", "count_newlines", "index_file", "read_structure",
    "read_structures", "write_structures",
    "SCALING_MODES", "ScalingTable", "read_scaling", "write_scaling",
    "Settings", "read_settings",
]
