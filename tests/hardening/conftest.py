"""The hardening tests' fixture; their helpers are in ``_cli.py`` (``from hardening._cli import …``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d
