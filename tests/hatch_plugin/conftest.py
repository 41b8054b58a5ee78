"""Fixtures for the Hatch hook tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hatch_demo_project import write_project


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "demo", hook='paths = ["demoapp"]\n')
