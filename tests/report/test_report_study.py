"""The study's Tables 8–10 in its row order and units, and the warning when compared cells used different example
ids — from hand-made results (JSON only, no ML stack)."""

from __future__ import annotations

import random
from typing import Any

from peftsum.report.collect import Collected
from peftsum.report.study import study_tables
from peftsum.report.tables import cost_train_table, quality_tables


def _score(v: float) -> dict[str, Any]:
    return {"value": v, "ci95": [v - 0.01, v + 0.01]}


def result(model: str, method: str, dataset: str, *, seed: int = 42, adapter: int = 1 << 20,
           eval_ids: str = "e1", train_ids: str = "t1", profile: str = "evaluate") -> dict[str, Any]:
    """A done cell's result.json, with just the keys the tables read."""
    rl = random.Random(f"{model}/{method}/{dataset}").uniform(0.2, 0.4)
    return {
        "cell_id": f"{model}-{method}-{dataset}"[:12], "metric_profile": {"name": profile},
        "spec": {"model": {"name": model}, "method": {"name": method, "type": method}, "dataset": {"name": dataset},
                 "seed": seed},
        "metrics": {"bleu": _score(0.1), "bleu_precisions": [_score(0.5), _score(0.3), _score(0.2), _score(0.1)],
                    "brevity_penalty": _score(1.0), "rouge1": _score(rl + 0.1), "rouge2": _score(rl - 0.1),
                    "rougeL": _score(rl), "rougeLsum": _score(rl), "n": 30},
        "train": {"seconds": 100.0, "tokens_per_s": 1000.0, "padding_ratio": 0.03, "final_train_loss": 1.0,
                  "best_epoch": 3.0},
        "resources": {"adapter_bytes": adapter, "wall_seconds": 3723.4, "gpu_nvml_peak_bytes": 3 << 30,
                      "gpu_peak_bytes": 2 << 30, "ram_peak_bytes": 5 << 30, "disk_peak_bytes": 7 << 20,
                      "energy_joules": 1e6},
        "data": {"eval_ids_sha256": eval_ids, "train_ids_sha256": train_ids},
    }


def test_study_tables_follow_the_studys_order_and_units() -> None:
    cells = [result(m, meth, d, adapter=497_811_456 if meth == "full" else 3_148_800)
             for d in ("cnn_dailymail", "dialogsum-test", "samsum") for m in ("t5-base", "gpt2", "gpt2-large")
             for meth in ("lora", "full")]
    random.Random(0).shuffle(cells)
    extra = [result("gpt2", "full", "dialogsum-test", seed=7, adapter=497_811_456),  # lowest seed: the one shown
             result("tiny-gpt2", "full", "samsum"), result("gpt2", "ia3", "samsum")]
    t8, t9, t10 = study_tables(Collected("paper", cells + extra, []))
    order = [(row[0], row[1], row[2]) for row in t8.rows]
    assert order == [(d, m, meth) for d in ("dialogsum-test", "samsum", "cnn_dailymail")
                     for m in ("GPT-2", "GPT-2 large", "T5 base") for meth in ("full fine-tuning", "LoRA")]
    assert t8.columns[3:] == ["bleu", "precision 1", "precision 2", "precision 3", "precision 4", "brevity_penalty",
                              "rouge1", "rouge2", "rougeL", "rougeLsum"]
    assert t9.rows[0] == ["GPT-2", "474.75", "3.00", "99.37%"]  # MiB, as the study's "MB" columns hold
    assert [row[0] for row in t9.rows] == ["GPT-2", "GPT-2 large", "T5 base"]
    assert t10.rows[0][3:] == ["1:02:03", "3072.00", "5120.00", "7.00"]  # wall h:mm:ss, NVML GPU, RAM, disk
    assert study_tables(Collected("other", extra[1:], [])) == []  # no cell of the study's layout: no section


def test_compared_cells_on_different_examples_are_flagged() -> None:
    same = [result("gpt2", "full", "samsum"), result("t5-small", "lora", "samsum")]
    assert "⚠" not in quality_tables(Collected("g", same, []))[0].note
    mixed = same + [result("t5-base", "full", "samsum", eval_ids="e2", train_ids="t2")]
    note = quality_tables(Collected("g", mixed, []))[0].note
    assert "scored on different examples" in note and "trained on different examples" in note
    assert "t5-base/full" in note


def test_training_cost_shows_the_whole_cell_and_the_device_peak() -> None:
    table = cost_train_table(Collected("g", [result("gpt2", "full", "samsum"), result("gpt2", "lora", "samsum")], []))
    row = dict(zip(table.columns, table.rows[1]))
    assert row["wall h:mm:ss"] == "1:02:03" and row["GPU MiB (device)"] == "3072.00"
    assert row["GPU MiB (torch)"] == "2048.00" and row["disk MiB"] == "7.00" and row["best epoch"] == "3"
