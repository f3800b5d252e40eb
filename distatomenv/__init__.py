"""distatomenv: do your atomic environment descriptors carry the forces?

n2p2's atomic-environment analysis (nnp-atomenv) at any scale: symmetry
functions and derivatives of every atom into one Zarr store, exported token
for token in n2p2's formats.

Public API::

    import distatomenv
    store = distatomenv.compute("input.data", neighbors="6 2 4 4", out="run.zarr")
    print(distatomenv.info("run.zarr"))
    distatomenv.export("run.zarr", "out/")
    report = distatomenv.verify("run.zarr")                # every chunk checked: report.ok
    reader = distatomenv.open_store("run.zarr")
    survey = distatomenv.survey_neighbors("input.data")     # before compute: --neighbors?
    result = distatomenv.analyze("run.zarr", "report/")   # clusters + statistics + plots
"""
__version__ = "0.1.0"

#: The public functions and the modules defining them, imported on first use:
#: ``import distatomenv`` stays cheap, and so does ``import ase.io``, which
#: imports ``distatomenv.io.ase_format`` (input.data as an ASE I/O format).
_LAZY = {"compute": "engine.run", "export": "engine.run", "info": "engine.run",
         "verify": "engine.run", "open_store": "store.reader", "survey_neighbors": "tools.survey"}


def __getattr__(name):
    import importlib
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):                 # a submodule: distatomenv.engine, ...
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def analyze(store, out_dir, **params):
    """Cluster the store's environments, test each cluster's forces and write
    the report into ``out_dir``; see :func:`distatomenv.analysis.run.analyze`."""
    from .analysis.run import analyze as _analyze

    return _analyze(store, out_dir, **params)


def coarse_grain(data, out, **params):
    """One site per molecule (centre of mass, summed forces) from an atomistic
    input.data; see :func:`distatomenv.tools.cg.coarse_grain`."""
    from .tools.cg import coarse_grain as _coarse_grain

    return _coarse_grain(data, out, **params)


__all__ = ["__version__", "analyze", "coarse_grain", "compute", "export", "info", "open_store", "verify",
           "survey_neighbors"]
