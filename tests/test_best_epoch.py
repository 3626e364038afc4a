"""Best-epoch selection (train.eval_every + train.select_best), as the study's load_best_model_at_end: a tiny model
that overfits (few records, many epochs, constant learning rate) keeps the weights of its lowest validation loss;
they are exactly the weights of a cell trained for that many epochs without selection (fp32, one thread: bitwise),
and a cell killed between epochs resumes to the same choice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peftsum.spec import parse_grid
from peftsum.store import layout, open_store

pytestmark = pytest.mark.slow

EPOCHS = 8
GRID = """
name: best
axes: {{model: [tiny-gpt2], method: [full], dataset: [synthetic-dialogsum]}}
defaults:
  train: {{epochs: {epochs}, learning_rate: 3.0e-3, lr_scheduler: constant, warmup_ratio: 0, batch_tokens: 512,
          eval_every: {every}, select_best: {select}, select_best_limit: 8, checkpoint_every_seconds: null}}
  eval: {{limit: 12, max_new_tokens: 16}}
  data: {{train_limit: 16, validation_limit: 24}}
"""


def _run(
    root: Path, epochs: float, every: str, select: str, kill_after_epoch: int | None = None
) -> tuple[dict, list[dict]]:
    """Run the grid's one cell in its own process (killed once after that epoch's checkpoint, then rerun);
    returns (result.json, predictions)."""
    cell = parse_grid(GRID.format(epochs=epochs, every=every, select=select)).cells[0]
    store = open_store(str(root))
    layout.write_json(store, layout.cell_key("best", cell.cell_id, "spec.json"), cell.to_dict())
    cmd = [sys.executable, "-m", "peftsum.cli", "cell", "--store", str(root), "--grid", "best", "--cell", cell.cell_id]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread in every run: bitwise-equal fp32 math
    if kill_after_epoch is not None:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ckpts = root / "best" / "cells" / cell.cell_id / "checkpoints"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and _epochs_checkpointed(ckpts) < kill_after_epoch:
            assert proc.poll() is None, "the cell finished before it could be killed between epochs"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert layout.done_manifest(store, "best", cell.cell_id) is None
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    manifest = layout.done_manifest(store, "best", cell.cell_id)
    result = json.loads(store.read_bytes(layout.result_key("best", cell.cell_id, manifest)))
    preds = [
        json.loads(line)
        for line in store.read_bytes(
            layout.result_key("best", cell.cell_id, manifest, "predictions.jsonl")
        ).splitlines()
    ]
    return result, preds


def _epochs_checkpointed(ckpts: Path) -> int:
    """Evaluations recorded in the newest complete checkpoint (one is written after every evaluation)."""
    complete = sorted(p.parent for p in ckpts.glob("*/COMPLETE"))
    return len(json.loads((complete[-1] / "state.json").read_text())["history"]) if complete else 0


@pytest.fixture(scope="module")
def selected(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    return _run(tmp_path_factory.mktemp("selected"), EPOCHS, "epoch", "eval_loss")


def test_overfitting_cell_keeps_its_lowest_validation_loss(selected) -> None:
    result, _ = selected
    train = result["train"]
    losses = [row["val_loss"] for row in train["history"]]
    assert [row["epoch"] for row in train["history"]] == [float(e) for e in range(1, EPOCHS + 1)]
    best = losses.index(min(losses))
    assert best < EPOCHS - 1 and losses[-1] > losses[best], f"no overfitting to select against: {losses}"
    assert train["best_epoch"] == best + 1
    assert train["eval_loss"] == losses[best]  # the validation loss at the selected weights
    assert train["history"][-1]["train_loss"] < train["history"][best]["train_loss"]  # training kept improving


def test_selected_weights_are_those_of_a_cell_trained_for_best_epoch_epochs(selected, tmp_path: Path) -> None:
    result, preds = selected
    straight, straight_preds = _run(tmp_path, result["train"]["best_epoch"], "off", "off")
    assert straight["train"]["history"] == [] and straight["train"]["best_epoch"] is None
    assert [p["prediction"] for p in preds] == [p["prediction"] for p in straight_preds]
    assert result["metrics"]["rougeL"] == straight["metrics"]["rougeL"]
    assert result["train"]["test_loss"] == straight["train"]["test_loss"]


def test_sigkill_between_epochs_resumes_to_the_same_choice(selected, tmp_path: Path) -> None:
    result, preds = selected
    # Killed once the epoch after the best one is checkpointed: the resumed run gets the best weights from the
    # checkpoint's best.safetensors, not from its current weights (the last epoch writes no checkpoint).
    kill_after = min(int(result["train"]["best_epoch"]) + 1, EPOCHS - 1)
    resumed, resumed_preds = _run(tmp_path, EPOCHS, "epoch", "eval_loss", kill_after_epoch=kill_after)
    assert resumed["train"]["resumed_from_step"] > 0
    assert resumed["train"]["best_epoch"] == result["train"]["best_epoch"]
    assert resumed["train"]["history"] == result["train"]["history"]
    assert [p["prediction"] for p in resumed_preds] == [p["prediction"] for p in preds]


def test_select_best_by_rougeL_keeps_the_highest_validation_rougeL(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, 4, "epoch", "rougeL")
    history = result["train"]["history"]
    scores = [row["val_rougeL"] for row in history]
    assert len(scores) == 4 and all(0.0 <= s <= 1.0 for s in scores)
    assert len(set(scores)) > 1, f"ROUGE-L did not move, nothing was selected: {scores}"
    # the first epoch of the highest score (a later tie is not better)
    assert result["train"]["best_epoch"] == history[scores.index(max(scores))]["epoch"]
    assert all(row["val_loss"] is not None for row in history)  # the loss is still recorded beside it
