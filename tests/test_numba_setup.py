"""numba's set-up without scipy.linalg (distatomenv/numba_setup.py): a run
never imports scipy.linalg, and numba's linear algebra still works after."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_neighbour_search_does_not_import_scipy_linalg_and_numba_linalg_still_works():
    out = _run("""
        import sys
        import numpy as np
        from distatomenv.descriptors.neighbors import neighbor_list
        nl = neighbor_list(np.random.default_rng(0).random((20, 3)) * 5, np.eye(3) * 5, 2.0)
        assert nl.start[-1] > 0
        print("scipy.linalg" in sys.modules)
        import numba
        @numba.njit
        def f(a, b):
            return np.dot(a, b), np.linalg.solve(a, b), np.convolve(b, b)
        a = np.array([[2.0, 1.0], [0.0, 4.0]]); b = np.array([1.0, 2.0])
        d, x, c = f(a, b)
        assert np.allclose(d, a @ b) and np.allclose(a @ x, b) and np.allclose(c, [1, 4, 4])
        print("ok")
    """)
    assert out.split() == ["False", "ok"]


def test_nothing_changes_where_scipy_linalg_is_loaded_first():
    out = _run("""
        import scipy.linalg
        from distatomenv.numba_setup import load_numpy_support
        load_numpy_support()
        import numba.np.arraymath as am
        print(am._HAVE_BLAS)
    """)
    assert out.split() == ["True"]
