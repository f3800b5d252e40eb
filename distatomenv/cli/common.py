"""What the subcommands share: the recorded command line, the executor
options (--backend, --workers, --scheduler, --threads) and options whose
defaults are the Python API's.

An option with the API's default is declared with :func:`api_option`: it is
not set unless given (``argparse.SUPPRESS``), the subcommand passes only the
options given (:func:`given`), and ``--help`` shows the API's default, read
from the function's signature or the named constant when the help is printed
(so that building the parser imports nothing heavy).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import shlex
import sys

from ..executors import EXECUTORS
from ..executors.launcher import detect_backend

#: The scheduler address that ``--backend dask`` joins when neither --workers
#: nor --scheduler is given (set by the dask-kubernetes operator in DaskJobs).
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


def command_line() -> str:
    """This command line as recorded in stores and reports."""
    return "distatomenv " + " ".join(shlex.quote(a) for a in sys.argv[1:])


# ----------------------------------------------------------------------------- API defaults
def api_default(source):
    """The default that ``source`` names: ``"module:function.parameter"`` (a
    parameter of a function or class) or ``"module:CONSTANT"``."""
    module, name = source.split(":")
    target, _, param = name.partition(".")
    obj = getattr(importlib.import_module(module), target)
    if not param:
        return obj
    return inspect.signature(obj).parameters[param].default


def _shown(value, fmt=None) -> str:
    if fmt is not None:
        return fmt.format(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


class APIDefaultsFormatter(argparse.HelpFormatter):
    """Help in which ``{default}`` is the API's default of the option."""

    def _expand_help(self, action):
        source = getattr(action, "api_default", None)
        text = super()._expand_help(action)
        if source is not None:
            text = text.replace("{default}", _shown(api_default(source), action.api_format))
        return text


def api_option(parser, *flags, source, fmt=None, unset=argparse.SUPPRESS, **kwargs):
    """Add an option whose default is the API's ``source`` (see :func:`api_default`);
    its help may show it as ``{default}`` (formatted with ``fmt``, e.g. "{:.2g}").
    ``unset``: the value when not given (default: none, the option is left out;
    None where the API takes None for its default)."""
    action = parser.add_argument(*flags, default=unset, **kwargs)
    action.api_default, action.api_format = source, fmt
    return action


def given(args, *names) -> dict:
    """The options among ``names`` that were given (the API holds the others' defaults)."""
    return {k: getattr(args, k) for k in names if hasattr(args, k)}


def add_parser(sub, name, **kwargs):
    """A subcommand's parser, with help that shows the API's defaults."""
    return sub.add_parser(name, formatter_class=APIDefaultsFormatter, **kwargs)


# ----------------------------------------------------------------------------- executors
def backend_options(args):
    """(executor name, its options) from --backend/--workers/--scheduler."""
    backend = args.backend
    if backend is None:
        backend = "dask" if (args.workers or args.scheduler) else detect_backend()
    if backend == "dask":
        scheduler = args.scheduler
        if scheduler is None and args.workers is None:
            # a Dask operator's DaskJob (and dask's own config) name the cluster here
            scheduler = os.environ.get(SCHEDULER_ENV) or None
        return backend, {"workers": args.workers, "scheduler": scheduler}
    return backend, {}


def add_backend_arguments(p):
    p.add_argument("--threads", type=int, help="numba threads per process (default: all cores "
                                                "of this process, divided among ranks/workers)")
    p.add_argument("--backend", choices=list(EXECUTORS), default=None,
                   help="where the work runs (default: mpi when started under mpiexec, "
                        "else serial)")
    p.add_argument("--workers", type=int,
                   help="dask: start a local cluster of this many worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask: join an existing cluster, e.g. tcp://HOST:8786 (with --backend "
                        f"dask and no --workers: default ${SCHEDULER_ENV}, which the Dask "
                        "Kubernetes operator sets in a DaskJob)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--progress", action="store_true",
                   help="show progress bars even when stderr is not a terminal "
                        "(default: only on a terminal)")
