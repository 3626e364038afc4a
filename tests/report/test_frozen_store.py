"""The report of a frozen, real store is byte-identical to its golden copy: any change to what ``peftsum
aggregate`` writes (a table, a number's format, a figure's pixels, results.csv/json) shows here as a diff.

``tests/report/frozen_store/frozen/`` is what ``launcher run tests/report/frozen_store/frozen.yaml`` left in its
store (7 cells: tiny-gpt2 and tiny-t5 × full, LoRA and none, plus the model-free lead), cut down to the files the
report reads: ``grid.json``, each cell's ``_SUCCESS`` and its attempt's ``result.json``, ``predictions.jsonl`` and
``eda.json``. The adapters, logs, ``spec.json`` and ``status.json`` were dropped, and each ``_SUCCESS`` lists only
the files kept (with their sizes and SHA-256 as written), so every cell still reads as done.
``tests/report/frozen_golden/`` is the report built from it: index.html, report.md, results.csv, results.json and
figures/*.png.

After an intended change to the report, regenerate the golden copy with
``PEFTSUM_REGEN_GOLDEN=1 pytest tests/report/test_frozen_store.py`` and review the diff before committing it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from peftsum.report import aggregate
from peftsum.store import open_store

STORE = Path(__file__).with_name("frozen_store")
GOLDEN = Path(__file__).with_name("frozen_golden")
GRID = "frozen"
REGEN = os.environ.get("PEFTSUM_REGEN_GOLDEN") == "1"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _build(tmp_path: Path, workers: int) -> dict[str, bytes]:
    """The report of a fresh copy of the frozen store, as {path under report/: bytes}."""
    shutil.copytree(STORE / GRID, tmp_path / GRID)
    aggregate(open_store(str(tmp_path)), GRID, workers=workers)
    return _files(tmp_path / GRID / "report")


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "worker-pool"])
def test_frozen_store_report_matches_golden(tmp_path: Path, workers: int) -> None:
    built = _build(tmp_path, workers)
    assert {"index.html", "report.md", "results.csv", "results.json"} <= set(built)
    assert sum(name.startswith("figures/") for name in built) == 5  # quality, pareto, curves, lengths, boxes
    if REGEN and workers == 0:
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, data in built.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_bytes(data)
    golden = _files(GOLDEN)
    assert golden, f"missing golden report {GOLDEN}; run with PEFTSUM_REGEN_GOLDEN=1"
    assert sorted(built) == sorted(golden), "the report writes other files than the golden copy holds"
    differ = [name for name in golden if built[name] != golden[name]]
    assert not differ, f"differ from {GOLDEN}: {differ}; if intended, regenerate with PEFTSUM_REGEN_GOLDEN=1"


def test_frozen_store_is_read_only_input(tmp_path: Path) -> None:
    """Building the report adds report/ and nothing else to the store, and changes none of its files."""
    before = _files(STORE / GRID)
    _build(tmp_path, 0)
    after = {k: v for k, v in _files(tmp_path / GRID).items() if not k.startswith("report/")}
    assert after == before
