"""Readers and writers of n2p2's input files.

* :mod:`.data` -- ``input.data`` (structures): :func:`index_file`,
  :func:`read_structure`, :func:`read_structures`, :func:`write_structures`.
* :mod:`.settings` -- ``input.nn`` (elements, symmetry functions, cutoff,
  scaling mode, units): :func:`read_settings`.
* :mod:`.scaling` -- ``scaling.data`` (SF statistics) and the scaling maps:
  :func:`read_scaling`, :func:`write_scaling`, :class:`ScalingTable`.
* :mod:`.ase` -- ASE both ways (trajectories to input.data, input.data to
  ase.Atoms); :mod:`.ase_format` registers input.data as ASE's ``n2p2`` format.

Submodules are imported on first use, so that importing one of them (ASE
imports :mod:`.ase_format`) does not import the others.
"""
_LAZY = {
    "DataIndex": "data", "Structure": "data", "count_newlines": "data", "index_file": "data",
    "read_structure": "data", "read_structures": "data", "write_structures": "data",
    "SCALING_MODES": "scaling", "ScalingTable": "scaling", "read_scaling": "scaling",
    "write_scaling": "scaling",
    "Settings": "settings", "read_settings": "settings",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
