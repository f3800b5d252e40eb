"""n2p2's input.data as the ASE I/O format ``"n2p2"``.

Registered through ASE's entry-point group ``ase.ioformats`` (pyproject.toml),
so that once distatomenv is installed::

    import ase.io
    frames = ase.io.read("input.data", index=":")            # or format="n2p2"
    ase.io.write("out.input.data", frames, format="n2p2")

The reader and writer are :func:`distatomenv.io.ase.read_n2p2` and
:func:`~distatomenv.io.ase.write_n2p2`.  ASE imports this module whenever it
builds its table of formats, so it imports nothing but ASE's plugin type
(``distatomenv`` and ``distatomenv.io`` import their submodules lazily).
"""
from ase.utils.plugins import ExternalIOFormat

#: Many structures per file ("+"), read from and written to binary files ("B").
N2P2_FORMAT = ExternalIOFormat(desc="n2p2 input.data", code="+B", module="distatomenv.io.ase",
                               glob=["input.data", "*.input.data"])
