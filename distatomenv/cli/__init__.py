"""The ``distatomenv`` command line: argument parsing only.

One module per subcommand (:mod:`.compute`, :mod:`.export`, :mod:`.verify`,
:mod:`.info`, :mod:`.scaling`, :mod:`.neighbors`, :mod:`.demo`,
:mod:`.warmup`, :mod:`.analyze`, :mod:`.coarse_grain`, :mod:`.convert`,
:mod:`.synth`), each delegating to the public Python API; defaults the API
defines are taken from it (:mod:`.common`), progress bars come from one
builder (:func:`.progress.progress_bar`).  Errors of type DistatomenvError,
and the OS's refusals, are printed as one line (``distatomenv: error:
FILE:LINE: ...``, control characters escaped) with the exit status of their
class (:func:`distatomenv.errors.describe`: 2 usage, 3 bad input, 4 I/O,
5 damaged store, 130 interrupted; README "Failures").
"""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import describe
from . import (analyze, coarse_grain, compute, convert, demo, export, info, neighbors, scaling,
               synth, verify, warmup)

#: The subcommands, in the order of ``distatomenv --help``.
SUBCOMMANDS = (compute, export, verify, info, scaling, neighbors, demo, warmup, analyze,
               coarse_grain, convert, synth)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="distatomenv",
        description="Atomic environment descriptors (n2p2 symmetry functions) at any scale: "
                    "compute them into a Zarr store, export n2p2's nnp-atomenv files.")
    p.add_argument("--version", action="version", version=f"distatomenv {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add(sub)
    return p


def entry() -> int:
    """The console command: :func:`main`, then the process ends.

    Before it ends, every object is moved out of the garbage collector's
    reach (``gc.freeze``): the interpreter's shutdown otherwise walks the
    whole heap of numba, llvmlite and zarr several times, 0.15-0.25 s per
    process measured here (paid again by every MPI rank), to free memory
    the OS takes back anyway.  Files are closed and buffers flushed by then.
    """
    try:
        return main()
    finally:
        import gc
        gc.freeze()


def main(argv=None) -> int:
    from ..interrupt import watching
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with watching():                 # Ctrl-C ends even a long numba loop
            return args.func(args)
    except BrokenPipeError:              # stdout closed early (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except BaseException as exc:         # noqa: B036 - only the known classes are handled
        known = describe(exc)
        if known is None:                # a bug: keep the traceback for the report
            raise
        message, status = known
        prefix = "distatomenv: " if status == 130 else "distatomenv: error: "
        print(prefix + message, file=sys.stderr)
        return status
