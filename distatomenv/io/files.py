"""Files on the local file system, whole or not at all: :func:`replacing`
(the one atomic write of the files written outside the store; the store's
markers use zarr's LocalStore, which writes the same way), and the checks of
input paths and output folders made before any work.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from ..errors import FileAccessError, os_error

__all__ = ["replacing", "check_readable", "check_folder_target", "beside"]


@contextlib.contextmanager
def replacing(path, mode="w", *, part=None):
    """Write a file as a whole or not at all: yields a file open on ``part``
    (default ``PATH.part``), renamed to ``path`` when the block ends normally
    and removed when it raises, so a failed run never leaves a half-written or
    lost file.  ``mode`` "w" (UTF-8 text, newlines as ``\\n``) or "wb"; writers
    that may race for the same path give each its own ``part`` name."""
    path = os.fspath(path)
    part = path + ".part" if part is None else os.fspath(part)
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n"}
    try:
        with open(part, mode, **text) as f:
            yield f
        os.replace(part, path)
    except BaseException:
        try:
            os.remove(part)
        except OSError:
            pass
        raise


def check_readable(path, what="input.data") -> None:
    """Refuse, with the OS's reason, a path that is not a readable file.

    Raises FileAccessError ``PATH: cannot read WHAT: REASON`` (no such file,
    a directory, no permission, ...)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise os_error(exc, path, f"cannot read {what}") from None


def check_folder_target(path, what) -> None:
    """Refuse an output folder that exists as something else (a file)."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise FileAccessError(f"{path}: {what} exists and is not a folder (a file?); choose "
                              "another path or remove it", errno.ENOTDIR, path)


def beside(data, given, name):
    """``given`` as a path, or by default the file ``name`` in the folder of ``data``."""
    if given is not None:
        return os.fspath(given)
    return os.fspath(Path(data).resolve().parent / name)
