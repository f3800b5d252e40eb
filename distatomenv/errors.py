"""One exception hierarchy for distatomenv.

Every error that bad input can cause is a :class:`DistatomenvError`.  Errors
about a file carry the file name and, where it applies, the 1-based line
number, and their message starts with ``FILE:LINE:`` so a user can jump
straight to the place.  Each class also subclasses the closest built-in
exception so that generic ``except ValueError`` code keeps working.
"""
from __future__ import annotations

import os
import unicodedata

#: Exit statuses of the command line, one per class of failure (README "Failures").
EXIT_USAGE = 2          # the command cannot run as given: options, existing outputs, store state
EXIT_INPUT = 3          # bad input: input.data, input.nn, scaling.data (file, line, what)
EXIT_IO = 4             # the operating system refused: missing, unreadable, read-only, disk full
EXIT_DAMAGED = 5        # a damaged store: a chunk fails its checksum, is missing or truncated
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)

#: Characters of an offending token quoted in a message (the rest is counted).
QUOTE_LIMIT = 80
#: Longest message of an input error; longer ones are cut, the length is said.
MESSAGE_LIMIT = 600


def _escaped(text: str, keep: str = "") -> str:
    """``text`` with control, format (a BOM, bidi overrides, zero-width) and
    separator characters written as ``\\xNN``/``\\uNNNN`` (those in ``keep`` stay)."""
    if text.isprintable() and not keep:
        return text
    out = []
    for c in text:
        if c in keep or not unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(c)
        else:
            n = ord(c)
            out.append(f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000
                       else f"\\U{n:08x}")
    return "".join(out)


def quote(token, limit: int = QUOTE_LIMIT) -> str:
    """An offending token (str or bytes) safe to show inside a message.

    Bytes are decoded as UTF-8 (invalid bytes shown as ``\\xNN``); control and
    invisible characters are escaped (a terminal escape sequence cannot act,
    a BOM shows as ``\\ufeff``); at most ``limit`` characters of the token are
    kept, followed by ``...`` and its length.  No quotes are added.
    """
    text = token.decode("utf-8", errors="backslashreplace") if isinstance(token, bytes) \
        else str(token)
    if len(text) > limit:
        return _escaped(text[:limit]) + f"... ({len(text)} characters)"
    return _escaped(text)


def clean(message: str, limit: int | None = None) -> str:
    """A whole message safe for a terminal: control and invisible characters
    escaped except newlines; with ``limit``, cut to that many characters."""
    message = _escaped(str(message), keep="\n")
    if limit is not None and len(message) > limit:
        message = message[:limit] + f"... (message cut, {len(message)} characters)"
    return message


class DistatomenvError(Exception):
    """Base class of every error raised on purpose by distatomenv.

    ``exit_status`` is the command line's exit status for it (README "Failures").
    """

    exit_status = EXIT_USAGE


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
        What was found and what was expected.  Control characters in the
        path and message are escaped and a very long message is cut, so an
        error never acts on the user's terminal (quote tokens with :func:`quote`).
    """

    exit_status = EXIT_INPUT

    def __init__(self, path, line, message):
        self.path = os.fspath(path) if path is not None else "<input>"
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{clean(where)}: {clean(message, MESSAGE_LIMIT)}")

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

    exit_status = EXIT_INPUT

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


class CoincidentAtomsError(DataFileError):
    """Two atoms of a structure (or an atom and a periodic image) closer than
    :data:`distatomenv.descriptors.environment.MIN_DISTANCE_FRACTION` times the
    largest cutoff: their symmetry functions would be NaN or meaningless."""


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"`` (any size, up to YiB and beyond as a float)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} YiB"


#: Environment variable of the memory budget of one neighbour list (bytes,
#: or with a suffix K, M, G, T: powers of 1024).
MEMORY_BUDGET_ENV = "DISTATOMENV_MEMORY_BUDGET"


class NeighborListTooLargeError(DistatomenvError, MemoryError):
    """A neighbour list that would not fit the memory budget (a cutoff far too
    large for the data).  ``entries`` (counted or estimated), ``limit`` (the
    most entries the budget allows) and ``entry_bytes``; ``where`` says which
    structure, ``what`` names the cutoff."""

    exit_status = EXIT_INPUT

    def __init__(self, entries, limit, entry_bytes=48, where="", what="the cutoff",
                 estimated=False):
        self.entries, self.limit, self.entry_bytes = float(entries), int(limit), int(entry_bytes)
        self.where, self.what, self.estimated = where, what, estimated
        verb = "would hold about" if estimated else "would hold"
        super().__init__(clean(
            f"{where}the neighbour list within {what} {verb} {self.entries:.3g} entries "
            f"({human_bytes(self.entries * self.entry_bytes)} at {self.entry_bytes} bytes each), "
            f"more than the memory budget allows ({self.limit:.3g} entries, "
            f"{human_bytes(self.limit * self.entry_bytes)}; {MEMORY_BUDGET_ENV}); the cutoff is "
            f"far too large for the data: check its value and unit"))

    def __reduce__(self):
        return (type(self), (self.entries, self.limit, self.entry_bytes, self.where, self.what,
                             self.estimated))


class FileAccessError(DistatomenvError, OSError):
    """The operating system refused a file operation: a missing file, a folder
    where a file was expected, no permission, a read-only folder, a full disk.

    The message names the path and the OS's reason; ``errno`` is the OS's error
    number when there is one.
    """

    exit_status = EXIT_IO

    def __init__(self, message, errno=None, path=None):
        DistatomenvError.__init__(self, clean(message))
        self.errno = errno
        self.filename = path

    def __str__(self):
        return self.args[0]

    def __reduce__(self):
        return (type(self), (self.args[0], self.errno, self.filename))


def os_error(exc: OSError, path=None, doing: str | None = None) -> FileAccessError:
    """A :class:`FileAccessError` for an OSError: ``PATH: [doing: ]REASON``.

    ``path`` is used when the OS did not name the file (a write that fails on a
    full disk names none)."""
    if isinstance(exc, DistatomenvError):      # already ours (StoreExistsError is an OSError)
        return exc
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    text = (f"{os.fspath(where)}: " if where is not None else "") + \
        (f"{doing}: " if doing else "") + reason
    return FileAccessError(text, exc.errno, where)


class StoreDamagedError(StoreError):
    """A store whose data fails its checks: a chunk with a wrong checksum, a
    truncated or missing chunk.  ``chunks`` lists the damaged chunks' keys."""

    exit_status = EXIT_DAMAGED

    def __init__(self, message, chunks=()):
        super().__init__(clean(message))
        self.chunks = list(chunks)

    def __reduce__(self):
        return (type(self), (self.args[0], self.chunks))


class StoreLockedError(StoreError):
    """Another process is writing the store (it holds the store's lock)."""


class RankFailedError(DistatomenvError, RuntimeError):
    """Another MPI rank failed while running its units (the MPI backend).

    Attributes
    ----------
    failures : list of (rank, unit id or None, exception type name, message).
    """

    def __init__(self, message, failures=()):
        super().__init__(message)
        self.failures = list(failures)

    @property
    def exit_status(self):
        """The command line's exit status: that of the first failing rank's error."""
        return exit_status_of(self.failures[0][2] if self.failures else "")


class UnitFailedError(DistatomenvError, RuntimeError):
    """A work unit failed on a Dask worker after its retries (the Dask backend).

    Attributes
    ----------
    unit : the unit id.
    error_type : name of the original exception's type.
    worker : address of the worker it failed on (None if unknown).
    """

    def __init__(self, message, unit=None, error_type=None, worker=None):
        super().__init__(message)
        self.unit = unit
        self.error_type = error_type
        self.worker = worker

    def __reduce__(self):                # picklable whatever the signature
        return (type(self), (str(self), self.unit, self.error_type, self.worker))

    @property
    def exit_status(self):
        """The command line's exit status: that of the original error's class."""
        return exit_status_of(self.error_type or "")


def is_input_error(exc) -> bool:
    """Whether an exception (or the name of its type, as sent between
    processes) means bad input: the run cannot succeed until the input changes."""
    if isinstance(exc, str):
        names = {c.__name__ for c in _subclasses(InputFileError)} | {
            "NotEnoughNeighborsError"}
        return exc in names
    return isinstance(exc, (InputFileError, NotEnoughNeighborsError))


def exit_status_of(type_name: str) -> int:
    """The exit status for an error known only by its type's name (an error
    sent from another MPI rank or Dask worker): bad input 3, the OS's refusal
    4, a damaged store 5, anything else 1 (not the user's doing)."""
    if is_input_error(type_name) or type_name == "NeighborListTooLargeError":
        return EXIT_INPUT
    if type_name == "StoreDamagedError":
        return EXIT_DAMAGED
    import builtins
    cls = getattr(builtins, type_name, None)
    if type_name == "FileAccessError" or (isinstance(cls, type) and issubclass(cls, OSError)):
        return EXIT_IO
    return 1


def _subclasses(cls):
    out = {cls}
    for sub in cls.__subclasses__():
        out |= _subclasses(sub)
    return out


def describe(exc: BaseException) -> tuple[str, int] | None:
    """(one message safe for a terminal, exit status) for a failure the
    command line reports without a traceback; None for anything else (a bug)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, DistatomenvError):
        status = getattr(exc, "exit_status", EXIT_USAGE)
        return clean(str(exc)), int(status)
    if isinstance(exc, OSError):
        return clean(str(os_error(exc))), EXIT_IO
    return None
