"""Fixtures for the report tests: ``fake_cells`` (tests/report/fake_cells.py) and grids written with it."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def fake_cells() -> ModuleType:
    """The fake-grid helpers: ``fake_cells.write_fake_grid(store_root, grid, n_cells, seeds=1, seed=0, *,
    with_failures=False, n_examples=30) -> [cell ids]``."""
    from tests.report import fake_cells as module

    return module


@pytest.fixture
def fake_grid(tmp_path: Path, fake_cells: ModuleType) -> tuple[Path, str, list[str]]:
    """A finished 12-cell grid with failures in a fresh local store: (store root, grid name, every cell id)."""
    root = tmp_path / "store"
    ids = fake_cells.write_fake_grid(root, "fake", 12, seed=0, with_failures=True)
    return root, "fake", ids
