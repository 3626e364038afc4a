"""`launcher run`: a failing cell is reported with its reason while the other cells still run, and the report
lists it instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from peftsum.spec import load_grid
from peftsum.store import layout, open_store

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it


def test_failed_cell_is_reported_and_others_finish(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(f"""
name: mixed
axes: {{model: [tiny-gpt2], method: [none], dataset: [synthetic-dialogsum, gone]}}
datasets:
  gone: {{source: local, id: "{tmp_path / 'no-such-folder'}", kind: dialogue, source_column: dialogue,
          summary_column: summary}}
defaults:
  eval: {{limit: 8, max_new_tokens: 8}}
""")
    store = tmp_path / "store"
    out = subprocess.run([sys.executable, "-m", "launcher.cli", "run", str(grid_file), "--store", str(store)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    assert "1 failed" in out.stderr and "no-such-folder" in out.stderr
    grid = load_grid(grid_file, store=str(store))
    s = open_store(str(store))
    by_dataset = {c.dataset.name: c.cell_id for c in grid.cells}
    assert layout.done_manifest(s, "mixed", by_dataset["synthetic-dialogsum"]) is not None
    assert layout.done_manifest(s, "mixed", by_dataset["gone"]) is None
    status = layout.read_status(s, "mixed", by_dataset["gone"])
    assert status["state"] == "failed" and "no-such-folder" in status["reason"]
    report = json.loads((store / "mixed" / "report" / "results.json").read_text())
    assert [r["cell_id"] for r in report["results"]] == [by_dataset["synthetic-dialogsum"]]
    assert report["not_done"][0]["cell_id"] == by_dataset["gone"]
    assert "no-such-folder" in (store / "mixed" / "report" / "report.md").read_text()


def test_invalid_grid_exits_2_before_anything_runs(tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text("name: bad\naxes: {model: [tiny-gpt2], method: [lora], dataset: [synthetic-dialogsum]}\n"
                         "defaults: {train: {warmup_ratio: 5}}\n")
    out = subprocess.run([sys.executable, "-m", "launcher.cli", "run", str(grid_file), "--store",
                          str(tmp_path / "store")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "defaults.train.warmup_ratio" in out.stderr and "5" in out.stderr
    assert not (tmp_path / "store").exists()
