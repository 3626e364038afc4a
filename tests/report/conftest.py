"""Fixtures for the report tests. ``fake_cells`` is tests/report/fake_cells.py, loaded by path so it imports the
same way under every pytest import mode (tests/ has no __init__.py files)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def fake_cells() -> ModuleType:
    """The fake-grid helpers: ``fake_cells.write_fake_grid(store_root, grid, n_cells, seeds=1, seed=0, *,
    with_failures=False, n_examples=30) -> [cell ids]``."""
    name = "peftsum_tests_fake_cells"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_cells.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def fake_grid(tmp_path: Path, fake_cells: ModuleType) -> tuple[Path, str, list[str]]:
    """A finished 12-cell grid with failures in a fresh local store: (store root, grid name, every cell id)."""
    root = tmp_path / "store"
    ids = fake_cells.write_fake_grid(root, "fake", 12, seed=0, with_failures=True)
    return root, "fake", ids
