"""Readers and writers of n2p2's input files.

* :mod:`.structure` -- the structure model: :class:`Structure`,
  :class:`DataIndex`, :func:`remap_positions`.
* :mod:`.inputdata` -- ``input.data`` parsed and written: :func:`index_file`,
  :func:`read_structure`, :func:`read_structures`, :func:`write_structures`.
* :mod:`.index` -- the parallel index in fixed blocks and the data file's
  checksum: :func:`index_data`, :func:`file_digest`.
* :mod:`.files` -- atomic writes (:func:`~.files.replacing`) and path checks.
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
    "DataIndex": "structure", "Structure": "structure", "remap_positions": "structure",
    "count_newlines": "inputdata", "index_file": "inputdata", "read_structure": "inputdata",
    "read_structures": "inputdata", "write_structures": "inputdata",
    "index_data": "index", "file_digest": "index",
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
