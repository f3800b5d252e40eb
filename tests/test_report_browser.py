"""report.html in a real headless browser: the page renders, with its plots.

Chromium (Debian's ``chromium``; ``chromium-browser``, ``google-chrome`` or
``DISTATOMENV_BROWSER`` also work) takes a 1200 x 2000 screenshot of the page
of a small end-to-end analysis.  The screenshot must not be blank: text,
several colours, and the parity plot's colours (so the images loaded).

Without a browser the test is skipped, unless ``DISTATOMENV_REQUIRE_BROWSER=1``
(CI), where it fails.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

import distatomenv
from distatomenv.analysis.plots import COMPONENT_COLORS

from analysis_stores import blobs, write_store

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _browser():
    exe = os.environ.get("DISTATOMENV_BROWSER")
    if exe:
        return shutil.which(exe) or exe
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = (f"no headless browser found (looked for {', '.join(BROWSERS)} on PATH; "
               "install Debian's chromium: apt-get install chromium, or set DISTATOMENV_BROWSER)")
    if os.environ.get("DISTATOMENV_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _screenshot(browser, page, png, tmp_path, size=(1200, 2000)):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and png.exists(), (
        f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")


def _rgb(hex_color):
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0


def test_report_html_renders_in_a_headless_browser(tmp_path):
    browser = _browser()
    import matplotlib.image as mpimg

    X, _ = blobs(2000, n_centers=6, dim=6, seed=21)
    rng = np.random.default_rng(22)
    F = np.column_stack([2.0 * X[:, 0], X[:, 2] - X[:, 3], X[:, 4]]) + 0.1 * rng.standard_normal((2000, 3))
    store = write_store(tmp_path / "s.zarr", X, F, chunk_rows=500, derivatives=True)
    res = distatomenv.analyze(store, tmp_path / "report", clusters=[5, 10], seeds=1,
                              permutations=0, sample=1000)
    page = tmp_path / "report" / "report.html"
    assert res.report["readout"] and (tmp_path / "report" / "parity_H.png").exists()

    png = tmp_path / "screenshot.png"
    _screenshot(browser, page, png, tmp_path)
    img = mpimg.imread(png)[..., :3]                      # floats in [0, 1]
    assert img.shape[:2] == (2000, 1200), img.shape
    pixels = img.reshape(-1, 3)
    white = (pixels > 0.98).all(axis=1)
    dark = (pixels < 0.3).all(axis=1)
    colours = np.unique((pixels * 255).round().astype(np.uint8), axis=0)
    assert white.mean() < 0.97, f"{white.mean():.1%} of the screenshot is white"
    assert dark.mean() > 0.003, f"too little text: {dark.mean():.2%} dark pixels"
    assert len(colours) > 50, f"only {len(colours)} distinct colours"
    # the parity plot (just below the readout table) rendered: its component colours show
    for comp, hex_color in COMPONENT_COLORS.items():
        near = (np.abs(pixels - _rgb(hex_color)) < 0.08).all(axis=1).sum()
        assert near > 20, f"F{comp}'s colour {hex_color} not on the page ({near} pixels)"
