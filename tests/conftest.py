"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The n2p2 reference cases (``shared/reference`` next to the checkout).

    Override the location with ``DISTATOMENV_REFERENCE``.  When the folder is
    absent the test is skipped, or fails if ``DISTATOMENV_REQUIRE_REFERENCE=1``.
    Tests only read these files in place; never copy them into the project.
    """
    default = Path(__file__).resolve().parents[2] / "shared" / "reference"
    path = Path(os.environ.get("DISTATOMENV_REFERENCE") or default)
    if not path.is_dir():
        message = (f"reference data not found at {path} "
                   "(set DISTATOMENV_REFERENCE to its location)")
        if os.environ.get("DISTATOMENV_REQUIRE_REFERENCE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path
