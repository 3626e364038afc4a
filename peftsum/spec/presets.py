"""The presets: the lowest layer of every cell's settings (``defaults.preset``, fast unless the grid says).

A preset sets a few keys of each section; a value the study chose per model family is a :class:`PerFamily`,
picked for the cell's model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PerFamily:
    """A preset value that depends on the model's family (``causal`` or ``seq2seq``)."""

    causal: Any
    seq2seq: Any

    def pick(self, family: str | None) -> Any:
        """The value for ``family``; a model-free cell (family None) gets the causal one."""
        return self.seq2seq if family == "seq2seq" else self.causal


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The fast path (the field defaults + a shape ladder): token-budget batches grouped by length into at most 16
    # fixed shapes (padding <= 6% on causal DialogSum-like spreads), fused AdamW, no activation recomputation; on
    # CUDA bf16 autocast, torch.compile once per shape and a static-cache decode. Measured by `peftsum bench`
    # (docs/performance.md).
    "fast": {"train": {"shape_buckets": 16}, "eval": {}, "data": {}},
    # The study's setup: its Tables 5/6 hyper-parameters; validation every epoch and the checkpoint of the lowest
    # validation loss kept (the study's load_best_model_at_end, whose default metric is the loss); metrics as the
    # `evaluate` library computes them at its defaults (the study's column names are evaluate's).
    # The study's Tables 5/6. Its warmup_ratio of 5 is not a valid ratio and is left at 0.
    "seed-paper": {
        "train": {
            "epochs": 8.0, "learning_rate": 5e-5, "weight_decay": 0.01, "lr_scheduler": "constant",
            "warmup_ratio": 0.0, "batch_size": PerFamily(causal=20, seq2seq=30), "batch_tokens": None,
            "grad_accum": 5, "gradient_checkpointing": True, "max_grad_norm": 1.0, "group_by_length": False,
            "precision": "fp32", "fused_optimizer": "off", "compile": "off",
            "eval_every": "epoch", "select_best": "eval_loss",
        },
        # Generation as the study ran it: its training batch size, fp32 (precision above), dynamic cache.
        "eval": {"batch_size": PerFamily(causal=20, seq2seq=30), "cache": "dynamic", "metric_profile": "evaluate"},
        "data": {},
    },
}


def preset_layer(preset: str, section: str, family: str | None) -> dict[str, Any]:
    """The preset's values for one section, per-family values picked for ``family``."""
    return {key: value.pick(family) if isinstance(value, PerFamily) else value
            for key, value in PRESETS[preset][section].items()}
