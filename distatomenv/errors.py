"""One exception hierarchy for distatomenv.

Every error that bad input can cause is a :class:`DistatomenvError`.  Errors
about a file carry the file name and, where it applies, the 1-based line
number, and their message starts with ``FILE:LINE:`` so a user can jump
straight to the place.  Each class also subclasses the closest built-in
exception so that generic ``except ValueError`` code keeps working.
"""
from __future__ import annotations

import os


class DistatomenvError(Exception):
    """Base class of every error raised on purpose by distatomenv."""


class InputFileError(DistatomenvError, ValueError):
    """A malformed input file (input.data, input.nn, scaling.data, ...).

    Parameters
    ----------
    path : str or os.PathLike
        The file the problem is in.
    line : int or None
        1-based line number, or ``None`` when the problem is not on one line
        (an empty file, a missing ``end`` at end of file, ...).
    message : str
        What was found and what was expected.
    """

    def __init__(self, path, line, message):
        self.path = os.fspath(path) if path is not None else "<input>"
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):        # picklable (sent between MPI ranks and Dask workers)
        return (type(self), (self.path, self.line, self.message))


class DataFileError(InputFileError):
    """Error in an n2p2 ``input.data`` file."""


class SettingsError(InputFileError):
    """Error in an n2p2 ``input.nn`` settings file."""


class ScalingFileError(InputFileError):
    """Error in an n2p2 ``scaling.data`` file or a scaling that does not fit the settings."""


class MoleculesFileError(InputFileError):
    """Error in a molecules file (``distatomenv coarse-grain --molecules``)."""


class CoarseGrainError(InputFileError):
    """A structure that cannot be coarse-grained as asked: an atom in no
    molecule or in two, a molecule of unexpected composition, a molecule
    bonded to its own periodic image.  ``path``/``line`` name the data file
    and the structure's ``begin`` line."""


class ConversionError(InputFileError):
    """A trajectory that cannot be converted to input.data (no forces, a
    partly periodic cell, ...); ``line`` is None, the message names the frame."""


class MissingDependencyError(DistatomenvError, ImportError):
    """An optional dependency (for example ``ase``) is not installed."""


class NeighborSpecError(DistatomenvError, ValueError):
    """A ``--neighbors`` specification that cannot be understood."""


class NotEnoughNeighborsError(DistatomenvError, ValueError):
    """An atom has fewer neighbours of an element than the environment asks for."""

    def __init__(self, structure, atom, central, neighbor, found, requested, path=None):
        self.structure = structure
        self.atom = atom
        self.central = central
        self.neighbor = neighbor
        self.found = found
        self.requested = requested
        self.path = path
        where = f"{os.fspath(path)}: " if path is not None else ""
        super().__init__(
            f"{where}structure {structure} (1-based), atom {atom} (1-based, element {central}) "
            f"has only {found} {neighbor} neighbour(s) within the cutoff, but {requested} were "
            f"requested for the pair {central}-{neighbor}; reduce --neighbors for {central}-{neighbor}"
        )

    def __reduce__(self):
        return (type(self), (self.structure, self.atom, self.central, self.neighbor,
                             self.found, self.requested, self.path))


class StoreError(DistatomenvError, RuntimeError):
    """A store that is missing, incomplete, incompatible or would be overwritten."""


class StoreIncompleteError(StoreError):
    """The store was not finished (its run died or is still running)."""


class StoreExistsError(StoreError, FileExistsError):
    """Refusing to overwrite a complete store without ``overwrite=True``."""


class AnalysisError(DistatomenvError, ValueError):
    """Analysis options that do not fit the store: an unknown element, a
    derivative descriptor in a store without derivatives, more clusters than
    rows, non-finite forces, an unknown method or component, ..."""


class HistoFileError(InputFileError):
    """Error in a histogram file written by distatomenv (``*.histo``, ``rdf.dat``)."""
