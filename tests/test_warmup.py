"""``distatomenv warmup`` fills numba's cache so that a later compute compiles nothing.

Two fresh processes share an empty NUMBA_CACHE_DIR: the first runs the warm-up,
the second computes a store from data the warm-up never saw (the generated
water set, its own input.nn) while listening to numba's compile events.  Not
one distatomenv function may be compiled in the second process.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

#: another SF set than the warm-up's: only the types of n2p2's water example
NN = """elements H O
number_of_elements 2
cutoff_type 2
use_short_forces
symfunction_short H 2 H 0.01 0.0 5.0
symfunction_short H 2 O 0.2 1.0 5.0
symfunction_short O 2 H 0.01 0.0 5.0
symfunction_short H 3 O O 0.1 -1.0 4.0 5.0
symfunction_short O 3 H H 0.05 1.0 1.0 5.0
symfunction_short O 9 H O 0.05 1.0 2.0 5.0
"""

PROBE = "NN = " + repr(NN) + textwrap.dedent("""
    import sys
    from numba.core import event
    compiled = []

    class Listener(event.Listener):
        def on_start(self, ev):
            compiled.append(ev.data["dispatcher"].py_func.__module__ + "."
                            + ev.data["dispatcher"].py_func.__qualname__)

        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())
    from pathlib import Path
    import distatomenv
    from distatomenv.tools.warmup import _structures
    d = Path(sys.argv[1]) / "data"
    d.mkdir()
    _structures(d / "input.data", n_structures=3, cell=7.0, seed=11)
    (d / "input.nn").write_text(NN)
    distatomenv.compute(d / "input.data", neighbors="2 2 2 2", out=d / "s.zarr")
    print("COMPILED", sorted({c for c in compiled if c.startswith("distatomenv.")}))
""")


def test_warmup_leaves_nothing_to_compile(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "distatomenv.cli", "warmup"], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "compiled: compute" in r.stdout
    assert any((tmp_path / "cache").rglob("*.nbi"))
    r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("COMPILED")][-1]
    assert line == "COMPILED []", line
