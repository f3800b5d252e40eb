"""Tools around the core: they use the engine and the lower layers, nothing
uses them but the public functions and the command line.

* :mod:`.survey` -- the neighbour survey before compute (``distatomenv neighbors``);
* :mod:`.cg` -- coarse-graining, one site per molecule (``distatomenv coarse-grain``);
* :mod:`.synth` -- synthetic data sets with exact forces (``distatomenv synth``);
* :mod:`.demo` -- the whole story on generated data (``distatomenv demo``);
* :mod:`.warmup` -- every numba kernel compiled ahead (``distatomenv warmup``).
"""
