"""The package's layers: every import points downward.

Bottom to top (README, "Code map"):

    base        errors, parallel, elements, interrupt, numba_setup (and the package's __version__)
    stats       stats/
    descriptors descriptors/     (the SF model, cutoffs, kernels, neighbour search, --neighbors)
    io          io/              (input.data, input.nn, scaling.data, histograms, n2p2, ASE)
    store       store/
    executors   executors/       (serial, MPI, Dask: they import nothing of the engine)
    engine      engine/          (a run: job, plan, scaling pass, worker, compute/export)
    analysis    analysis/
    tools       tools/           (survey, coarse-graining, synth/, demo, warm-up)
    api         distatomenv/__init__.py (the public functions, imported lazily)
    cli         cli/

A module may import its own layer and the layers below it, never one above.
Every import is checked: module level and inside functions, absolute and
relative, ``from X import Y`` with Y a submodule.  Besides:

* only executors import mpi4py or distributed;
* the numerical kernels (descriptors/kernels.py, descriptors/cutoff.py,
  descriptors/vmath.py) import only numpy, numba and math (kernels.py also
  the cutoff functions and vmath, cutoff.py also vmath).
"""
from __future__ import annotations

import ast
import pathlib
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "distatomenv"

LAYERS = ["base", "stats", "descriptors", "io", "store", "executors", "engine", "analysis",
          "tools", "api", "cli"]
#: Modules of the base layer (dotted, without the package name); the package of the tools layer.
BASE = {"errors", "parallel", "elements", "interrupt", "numba_setup"}
TOOLS = {"tools"}
#: Packages (first component) that are a layer of their own name.
PACKAGES = {"stats", "descriptors", "io", "store", "executors", "engine", "analysis", "cli"}

ONLY_IN_EXECUTORS = {"mpi4py", "distributed"}
KERNEL_MODULES = {"descriptors.kernels": {"descriptors.cutoff", "descriptors.vmath"},
                  "descriptors.cutoff": {"descriptors.vmath"}, "descriptors.vmath": set()}
KERNEL_LIBRARIES = {"numpy", "numba", "math", "__future__"}


def modules():
    """(dotted name without the package, path, is a package __init__) of every module."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        init = parts[-1] == "__init__"
        if init:
            parts = parts[:-1]
        yield ".".join(parts), path, init


ALL = {name for name, _, _ in modules()}


def layer(name: str) -> str:
    """The layer of module ``name`` (dotted, without the package; "" is the package)."""
    if name == "":
        return "api"
    first = name.split(".")[0]
    if first in BASE:
        return "base"
    if first in TOOLS:
        return "tools"
    if first in PACKAGES:
        return first
    raise AssertionError(f"distatomenv.{name} belongs to no layer: add it to tests/test_layers.py")


def imports(name: str, path: pathlib.Path, init: bool):
    """(line, imported name) of every import in the module, absolute names;
    for ``from X import Y`` the name is X.Y when that is a module of the package."""
    package = name if init else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["distatomenv"] + (package.split(".") if package else [])
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                inner = sub.split(".", 1)[1] if sub.startswith("distatomenv.") else None
                yield node.lineno, sub if inner in ALL else module


def internal(target: str):
    """The imported module of the package (dotted, without the package), or None."""
    if target == "distatomenv":
        return ""
    if target.startswith("distatomenv."):
        return target[len("distatomenv."):]
    return None


def violations():
    out = []
    for name, path, init in modules():
        here = layer(name)
        rel = path.relative_to(PACKAGE.parent)
        for line, target in imports(name, path, init):
            top = target.split(".")[0]
            if top in ONLY_IN_EXECUTORS and here != "executors":
                out.append(f"{rel}:{line}: imports {target}: only executors may")
            if name in KERNEL_MODULES:
                allowed = {f"distatomenv.{m}" for m in KERNEL_MODULES[name]}
                if top not in KERNEL_LIBRARIES and target not in allowed:
                    out.append(f"{rel}:{line}: imports {target}: the kernels import only "
                               "numpy, numba and math")
            mod = internal(target)
            if mod is None:
                continue
            if mod == "" and here != "api":
                # ``from distatomenv import __version__``: a constant of the package
                # itself, no layer; anything else of the package is the API's
                names = _imported_names(path, line)
                if names <= {"__version__"}:
                    continue
            there = layer(mod)
            if here == "executors" and there == "engine":
                out.append(f"{rel}:{line}: imports distatomenv.{mod}: executors never import "
                           "the engine (the job and the worker are handed in)")
            elif LAYERS.index(there) > LAYERS.index(here):
                out.append(f"{rel}:{line}: imports distatomenv.{mod or '__init__'} "
                           f"({there}) from the layer {here} below it")
    return sorted(set(out))


def _imported_names(path, line) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {a.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.lineno == line for a in node.names}


def test_every_module_has_a_layer():
    for name, _, _ in modules():
        assert layer(name) in LAYERS


def test_imports_point_downward():
    bad = violations()
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_walker_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The check itself: function-level, relative and ``from . import module``
    imports upward are all caught."""
    pkg = tmp_path / "distatomenv"
    (pkg / "store").mkdir(parents=True)
    (pkg / "engine").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "engine" / "__init__.py").write_text("")
    (pkg / "engine" / "run.py").write_text("")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "a.py").write_text("def f():\n    from ..engine import run\n")
    (pkg / "store" / "b.py").write_text("import distatomenv.engine.run\n")
    (pkg / "store" / "c.py").write_text("from distatomenv import engine\n")
    (pkg / "store" / "d.py").write_text("def f():\n    import mpi4py\n")
    (pkg / "store" / "ok.py").write_text("from .. import __version__\nfrom . import a\n")
    me = sys.modules[__name__]
    monkeypatch.setattr(me, "PACKAGE", pkg)
    monkeypatch.setattr(me, "ALL", {n for n, _, _ in modules()})
    bad = violations()
    assert len([b for b in bad if "from the layer store" in b]) == 3, bad
    assert any("mpi4py" in b for b in bad), bad
    assert not [b for b in bad if "ok.py" in b], bad


@pytest.mark.parametrize("module", sorted(KERNEL_MODULES))
def test_kernel_modules_exist(module):
    assert module in ALL
