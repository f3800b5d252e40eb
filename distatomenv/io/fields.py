"""Numbers in text input files, with errors that name the file, line and column.

Shared by the readers of input.data, input.nn and scaling.data so that every
one of them reports a bad field the same way:
``FILE:LINE: found 'abc' in column 3 (x), expected a number``.
"""
from __future__ import annotations

import math

from ..errors import quote


def _shown(tok) -> str:
    """A token for a message: control characters escaped, at most 80 characters."""
    return quote(tok)


def finite_float(tok, error, path, line, column, name) -> float:
    """``float(tok)``, or ``error(path, line, message)`` raised for text that is not
    a finite number (``error`` is an InputFileError subclass)."""
    try:
        value = float(tok)
    except ValueError:
        raise error(path, line, f"found '{_shown(tok)}' in column {column} ({name}), "
                                "expected a number") from None
    if not math.isfinite(value):
        raise error(path, line, f"found '{_shown(tok)}' in column {column} ({name}), "
                                "expected a finite number")
    return value


def integer(tok, error, path, line, column, name) -> int:
    """``int(tok)``, or ``error(path, line, message)`` raised for anything else."""
    try:
        return int(tok)
    except ValueError:
        raise error(path, line, f"found '{_shown(tok)}' in column {column} ({name}), "
                                "expected an integer") from None
