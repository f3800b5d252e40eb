"""numba's one-time set-up in a process, without importing scipy.linalg.

The first jitted call of a process (a compile or a load from the cache)
imports numba's implementations of numpy, ``numba.np.arraymath``.  That
module asks once, at import, whether scipy's BLAS is there, by importing
``scipy.linalg.cython_blas``, which runs all of ``scipy.linalg``: measured,
0.08-0.15 s and about 15 MB of memory in every process (every MPI rank and
Dask worker), and part of the peak memory of a first compile.  The answer
only chooses how numba compiles ``np.correlate`` and ``np.convolve`` (BLAS
or a loop), which no function of this package uses; ``np.dot`` and
``np.linalg`` inside a jitted function import scipy themselves when such a
function is compiled, so they keep working.

:func:`load_numpy_support` imports ``numba.np.arraymath`` with that one
import refused (on the calling thread only); the modules whose jitted
functions a run calls first (``descriptors/neighbors.py``) call it at import.
Where scipy.linalg is already loaded nothing changes.
"""
from __future__ import annotations

import sys
import threading

__all__ = ["load_numpy_support"]


class _RefuseScipyLinalg:
    """A meta-path finder that refuses ``scipy.linalg`` to one thread."""

    def __init__(self):
        self.thread = threading.get_ident()

    def find_spec(self, name, path=None, target=None):
        if name == "scipy.linalg" and threading.get_ident() == self.thread:
            raise ImportError("scipy.linalg is not imported for numba's BLAS probe "
                              "(distatomenv.numba_setup)")
        return None


def load_numpy_support() -> None:
    """Import ``numba.np.arraymath`` without its scipy BLAS probe (see the
    module's note); nothing when it is already imported."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    finder = _RefuseScipyLinalg()
    sys.meta_path.insert(0, finder)
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        sys.meta_path.remove(finder)
