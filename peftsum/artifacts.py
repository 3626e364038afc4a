"""Files a cell attempt writes: the adapter (or tuned weights), predictions.jsonl, eda.json, result.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from peftsum.spec.cell import ModelRef


def save_adapter(model: Any, out: Path, base: ModelRef, method: str, keep_full_weights: bool) -> int | None:
    """Save what rebuilds the tuned model from the base; returns its size in bytes.

    PEFT models: ``save_pretrained`` (adapter_config.json with the base's hub id, adapter_model.safetensors, model
    card). Partial tuning outside peft (BitFit): the trained tensors. Full fine-tuning: the whole model under
    ``model/`` when ``keep_full_weights``, else the size its weights would take.
    """
    from safetensors.torch import save_file

    if hasattr(model, "peft_config"):  # a PeftModel (checked without importing peft for full/bitfit cells)
        for cfg in model.peft_config.values():
            cfg.base_model_name_or_path = base.hub_id
            cfg.revision = base.revision
        model.save_pretrained(out / "adapter")
        return (out / "adapter" / "adapter_model.safetensors").stat().st_size
    trained = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
    n_total = sum(1 for _ in model.parameters())
    if len(trained) < n_total:
        (out / "adapter").mkdir(parents=True, exist_ok=True)
        save_file(trained, out / "adapter" / "adapter_model.safetensors",
                  metadata={"method": method, "base_model_name_or_path": base.hub_id})
        (out / "adapter" / "adapter_config.json").write_text(json.dumps(
            {"peft_type": None, "peftsum_method": method, "base_model_name_or_path": base.hub_id,
             "revision": base.revision, "tensors": sorted(trained)}, indent=2))
        return (out / "adapter" / "adapter_model.safetensors").stat().st_size
    if keep_full_weights:
        model.save_pretrained(out / "model")
        return sum(p.stat().st_size for p in (out / "model").glob("*.safetensors"))
    return sum(t.numel() * t.element_size() for t in trained.values())


def length_stats(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values)
    pct = np.percentile(arr, [5, 25, 50, 75, 95, 99])
    hist, edges = np.histogram(arr, bins=30)
    return {"n": int(arr.size), "mean": float(arr.mean()), "min": int(arr.min()), "max": int(arr.max()),
            "p5": float(pct[0]), "p25": float(pct[1]), "p50": float(pct[2]), "p75": float(pct[3]),
            "p95": float(pct[4]), "p99": float(pct[5]),
            "histogram": {"counts": hist.tolist(), "edges": edges.tolist()}}


def eda(source_lens: list[int], summary_lens: list[int], kept: int, dropped: int, tokenizer_name: str,
        budget: int | None, split: str = "train") -> dict[str, Any]:
    """Token-length statistics of one split under the cell's tokenizer (the study's Figures 6-14); ``dropped`` is
    what the context-window filter removed (training split only)."""
    merged = [a + b for a, b in zip(source_lens, summary_lens)]
    return {"split": split, "tokenizer": tokenizer_name, "source_token_budget": budget,
            "source": length_stats(source_lens), "summary": length_stats(summary_lens),
            "merged": length_stats(merged), "kept": kept, "dropped": dropped,
            "dropped_share": dropped / max(1, kept + dropped)}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
