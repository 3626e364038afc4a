"""The study's data protocol, run end to end: a shared length filter counted once with a reference tokenizer (every
model of a dataset trains and is scored on the same example ids), and grouped multi-reference evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer

from peftsum.data.load import ids_sha256
from peftsum.data.synthetic import generate
from peftsum.spec import load_grid
from peftsum.store import layout, open_store

PLANTED = "planted-long"
LIMIT = 160  # tokens of source + summary under the reference tokenizer


def _write(folder: Path, split: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _run(grid_file: Path, store: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "run", str(grid_file), "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def _attempt(store: Path, grid: str, cell_id: str) -> tuple[dict, list[dict]]:
    s = open_store(str(store))
    manifest = layout.done_manifest(s, grid, cell_id)
    assert manifest is not None
    result = json.loads(s.read_bytes(layout.result_key(grid, cell_id, manifest)))
    preds = [
        json.loads(x)
        for x in s.read_bytes(layout.result_key(grid, cell_id, manifest, "predictions.jsonl")).splitlines()
    ]
    return result, preds


@pytest.mark.slow
def test_shared_length_filter_gives_every_model_the_same_example_ids(tmp_path: Path) -> None:
    data = tmp_path / "data"
    planted = {
        "id": PLANTED,
        "dialogue": " ".join(["#Person1#: I talked for a very long time."] * 60),
        "summary": "#Person1# talks.",
    }
    _write(data, "train", [planted, *generate("dialogsum", "train", 40)])
    _write(data, "test", [*generate("dialogsum", "test", 10), planted])
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(f"""
name: lengths
datasets:
  talk: {{source: local, id: "{data}", kind: dialogue, source_column: dialogue, summary_column: summary,
          id_column: id}}
models:
  tiny-t5: {{context: 96}}  # too short for some records the filter keeps
axes: {{model: [tiny-gpt2, tiny-t5], method: [full], dataset: [talk]}}
defaults:
  train: {{max_steps: 2, batch_tokens: 1024}}
  eval: {{max_new_tokens: 8}}
  data: {{max_total_tokens: {LIMIT}, length_tokenizer: tiny-gpt2, max_target_tokens: 48}}
""")
    store = tmp_path / "store"
    _run(grid_file, store)

    from transformers import AutoTokenizer

    from peftsum.models.load import resolve_path

    tok = AutoTokenizer.from_pretrained(resolve_path("builtin:tiny-gpt2@v3"))  # the reference tokenizer, directly

    def kept(split: str) -> list[str]:
        rows = [json.loads(x) for x in (data / f"{split}.jsonl").read_text().splitlines()]
        return [
            r["id"]
            for r in rows
            if len(tok(r["dialogue"], add_special_tokens=False)["input_ids"])
            + len(tok(r["summary"], add_special_tokens=False)["input_ids"])
            <= LIMIT
        ]

    train_ids, test_ids = kept("train"), kept("test")
    assert PLANTED not in train_ids and PLANTED not in test_ids and len(train_ids) > 20
    results = {c.model.name: _attempt(store, "lengths", c.cell_id) for c in load_grid(grid_file).cells}
    for name, (result, preds) in results.items():
        assert result["data"]["train_ids_sha256"] == ids_sha256(train_ids), name
        assert result["data"]["eval_ids_sha256"] == ids_sha256(test_ids), name
        assert [p["id"] for p in preds] == test_ids
        assert result["train"]["examples"] == len(train_ids) and result["train"]["examples_dropped"] == 0
        assert result["data"]["length_filter"]["splits"]["train"]["dropped"] == 41 - len(train_ids)
    assert results["tiny-t5"][0]["train"]["examples_truncated"] > 0  # cut for that model, never dropped
    assert results["tiny-gpt2"][0]["train"]["examples_truncated"] == 0


@pytest.mark.slow
def test_grouped_references_generate_once_per_source_and_score_the_best_reference(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sources = generate("dialogsum", "test", 8)
    others = generate("dialogsum", "validation", 16)
    rows = []
    for k, ex in enumerate(sources):  # three references per dialogue: its own summary and two others
        for j, summary in enumerate((ex["summary"], others[2 * k]["summary"], others[2 * k + 1]["summary"]), 1):
            rows.append({"id": f"test_{k}_{j}", "dialogue": ex["dialogue"], "summary": summary})
    _write(data, "test", rows)
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(f"""
name: refs
datasets:
  three: {{source: local, id: "{data}", kind: dialogue, source_column: dialogue, summary_column: summary,
           id_column: id, references: grouped}}
axes: {{model: [tiny-gpt2], method: [none, lead], dataset: [three]}}
include:
  - {{model: tiny-gpt2, method: none, dataset: three, eval: {{references: per_row}}}}
defaults:
  eval: {{max_new_tokens: 12}}
""")
    store = tmp_path / "store"
    _run(grid_file, store)
    cells = load_grid(grid_file).cells
    by_mode = {(c.method.name, c.eval.references): c.cell_id for c in cells}
    assert set(by_mode) == {("none", "grouped"), ("lead", "grouped"), ("none", "per_row")}

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)  # the peftsum profile: stemmed
    refs = {f"test_{k}": [r["summary"] for r in rows if r["id"].startswith(f"test_{k}_")] for k in range(8)}
    for method in ("none", "lead"):
        result, preds = _attempt(store, "refs", by_mode[(method, "grouped")])
        assert [p["id"] for p in preds] == [f"test_{k}" for k in range(8)]  # one generation per dialogue
        assert result["generate"]["examples"] == 8 and result["data"]["eval_rows_grouped"] == 16
        best = [max(scorer.score(r, p["prediction"])["rougeL"].fmeasure for r in refs[p["id"]]) for p in preds]
        assert result["metrics"]["rougeL"]["value"] == np.mean(best).item()
        assert all(p["references"] == refs[p["id"]] for p in preds)

    result, preds = _attempt(store, "refs", by_mode[("none", "per_row")])
    assert [p["id"] for p in preds] == [r["id"] for r in rows]  # every row, scored against its own summary
    assert result["metrics"]["n"] == 24
    own = [scorer.score(r["summary"], p["prediction"])["rougeL"].fmeasure for r, p in zip(rows, preds)]
    assert abs(result["metrics"]["rougeL"]["value"] - float(np.mean(own))) < 1e-12


@pytest.mark.slow
def test_validating_on_a_dataset_without_validation_split_fails_at_once_with_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write(data, "train", generate("dialogsum", "train", 8))
    _write(data, "test", generate("dialogsum", "test", 4))
    cell = load_grid(
        _grid_file(
            tmp_path,
            f"""
name: noval
datasets:
  two: {{source: local, id: "{data}", kind: dialogue, source_column: dialogue, summary_column: summary}}
axes: {{model: [tiny-gpt2], method: [full], dataset: [two]}}
defaults:
  train: {{eval_every: epoch, select_best: eval_loss}}
""",
        )
    ).cells[0]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(cell.to_dict()))
    store = tmp_path / "store"
    out = subprocess.run(
        [sys.executable, "-m", "peftsum.cli", "cell", "--store", str(store), "--grid", "noval", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    status = layout.read_status(open_store(str(store)), "noval", cell.cell_id)
    assert status["state"] == "failed" and "train.eval_every" in status["reason"]
    assert "no validation split" in status["reason"] and "validation.jsonl" in status["reason"]
    assert "Loading weights" not in out.stderr  # refused before the model was loaded


def _grid_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_length_threshold_is_the_lower_of_the_token_limit_and_the_quantile() -> None:
    """``data.max_length_quantile`` cuts at that quantile of the split's totals (linear interpolation, worked by hand
    here), ``data.max_total_tokens`` at the count; with both, the lower one holds; with neither, nothing is cut."""
    from peftsum.data.lengths import threshold
    from peftsum.spec.fields import build
    from peftsum.spec.settings import DataSettings

    totals = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]

    def cut(**kw: object) -> float:
        return threshold(totals, build(DataSettings, kw, "data"))

    assert cut(max_length_quantile=0.5) == 55.0  # halfway between the 5th and 6th of 10 sorted totals
    assert cut(max_length_quantile=0.9) == 91.0  # 0.9 * 9 = 8.1: 90 + 0.1 * (100 - 90)
    assert cut(max_length_quantile=1.0) == 100.0
    assert cut(max_total_tokens=45) == 45.0
    assert cut(max_total_tokens=45, max_length_quantile=0.9) == 45.0
    assert cut(max_total_tokens=95, max_length_quantile=0.5) == 55.0
    assert cut() == float("inf")
