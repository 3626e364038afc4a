"""The train / eval / data settings every cell carries, and the two presets.

Values are validated on construction (see :mod:`peftsum.spec.fields`); ``docs/grid.md`` is generated from these
declarations by ``python -m peftsum.spec.reference``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftsum.spec.errors import SpecError
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class TrainSettings:
    """How a cell trains. One training path serves every method (peftsum.train)."""

    epochs: float = setting(3.0, "passes over the (filtered) training split", kind=float, lo=0, lo_open=True, hi=1000)
    max_steps: int | None = setting(None, "stop after this many optimizer steps (overrides epochs when smaller)",
                                    kind=int, lo=1, nullable=True)
    learning_rate: float = setting(2e-4, "AdamW peak learning rate", kind=float, lo=0, lo_open=True, hi=1)
    weight_decay: float = setting(0.0, "AdamW decoupled weight decay", kind=float, lo=0, hi=1)
    lr_scheduler: str = setting("linear", "learning-rate schedule after warmup", kind=str,
                                choices=("constant", "linear", "cosine"))
    warmup_ratio: float = setting(0.0, "fraction of steps spent in linear warmup", kind=float, lo=0, hi=1,
                                  hi_open=True)
    batch_size: int | None = setting(None, "examples per micro-batch; null = limited by batch_tokens only",
                                     kind=int, lo=1, hi=4096, nullable=True)
    batch_tokens: int | None = setting(16384, "token budget per micro-batch (padded tokens); null = batch_size only",
                                       kind=int, lo=64, hi=10_000_000, nullable=True)
    grad_accum: int = setting(1, "micro-batches per optimizer step", kind=int, lo=1, hi=1024)
    max_grad_norm: float | None = setting(1.0, "gradient clipping norm; null = no clipping", kind=float, lo=0,
                                          lo_open=True, nullable=True)
    group_by_length: bool = setting(True, "batch examples of similar length together (less padding)", kind=bool)
    max_padding: float | None = setting(None, "with group_by_length, also cut a batch when its padding would exceed "
                                        "this share of it (preset fast: 0.05); null = only the budget cuts",
                                        kind=float, lo=0, hi=1, hi_open=True, nullable=True)
    gradient_checkpointing: bool = setting(False, "recompute activations in backward to save memory", kind=bool)
    precision: str = setting("auto", "auto = bf16 autocast on CUDA, fp32 on CPU; fp16 is not offered (T5 overflows)",
                             kind=str, choices=("auto", "fp32", "bf16"))
    fused_optimizer: str = setting("auto", "fused AdamW kernel: auto = on CUDA and CPU", kind=str,
                                   choices=("auto", "on", "off"))
    compile: str = setting("auto", "torch.compile the training forward/backward (dynamic shapes): auto = off for "
                                   "now (opt-in: slow to compile on varying batch shapes, see docs/performance.md)",
                           kind=str, choices=("auto", "on", "off"))
    checkpoint_every_steps: int | None = setting(None, "write a resumable checkpoint every N optimizer steps",
                                                 kind=int, lo=1, nullable=True)
    checkpoint_every_seconds: float | None = setting(300.0, "write a resumable checkpoint every N seconds",
                                                     kind=float, lo=1, nullable=True)
    keep_checkpoints: bool = setting(False, "keep checkpoints after the cell succeeds", kind=bool)
    keep_full_weights: bool = setting(False, "also store full fine-tuned weights under model/", kind=bool)

    def __post_init__(self) -> None:
        if self.batch_size is None and self.batch_tokens is None:
            raise SpecError("batch_size", None, "batch_size and batch_tokens cannot both be null")


@dataclass(frozen=True)
class EvalSettings:
    """How a cell generates and scores."""

    split: str = setting("test", "split that is generated and scored", kind=str, choices=("test", "validation"))
    limit: int | None = setting(None, "score only the first N examples of the split (same ids for every cell)",
                                kind=int, lo=1, nullable=True)
    max_new_tokens: int = setting(64, "generation length cap", kind=int, lo=1, hi=1024)
    num_beams: int = setting(1, "beam width; 1 = greedy", kind=int, lo=1, hi=16)
    batch_size: int | None = setting(None, "examples per generation batch; null = chosen from batch_tokens",
                                     kind=int, lo=1, hi=4096, nullable=True)
    cache: str = setting("auto", "KV cache for generation: static = fixed-size cache whose decode step transformers "
                                 "compiles (CUDA only); auto = static on CUDA with greedy decoding, else dynamic",
                         kind=str, choices=("auto", "dynamic", "static"))
    bootstrap_samples: int = setting(1000, "bootstrap resamples for each ci95", kind=int, lo=100, hi=100_000)


@dataclass(frozen=True)
class DataSettings:
    """How examples become token sequences."""

    max_source_tokens: int | None = setting(
        "auto", "source token cap; auto = fit the model's context window; null = no cap", kind=int, lo=8,
        auto=True, nullable=True)
    max_target_tokens: int = setting(128, "training summaries longer than this are filtered", kind=int, lo=4,
                                     hi=4096)
    train_limit: int | None = setting(None, "use only the first N training examples", kind=int, lo=1,
                                      nullable=True)


SECTIONS: dict[str, type] = {"train": TrainSettings, "eval": EvalSettings, "data": DataSettings}

# Presets are the lowest layer. A value may be a {family: value} mapping for settings the study chose per family.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The fast path (the field defaults + a padding cap): token-budget batches grouped by length with padding
    # <= 5%, fused AdamW, no activation recomputation; on CUDA bf16 autocast and a static-cache decode.
    # torch.compile is opt-in. Measured by `peftsum bench` (docs/performance.md).
    "fast": {"train": {"max_padding": 0.05}, "eval": {}, "data": {}},
    # The study's Tables 5/6. Its warmup_ratio of 5 is not a valid ratio and is left at 0.
    "seed-paper": {
        "train": {
            "epochs": 8.0, "learning_rate": 5e-5, "weight_decay": 0.01, "lr_scheduler": "constant",
            "warmup_ratio": 0.0, "batch_size": {"causal": 20, "seq2seq": 30}, "batch_tokens": None,
            "grad_accum": 5, "gradient_checkpointing": True, "max_grad_norm": 1.0, "group_by_length": False,
            "precision": "fp32", "fused_optimizer": "off", "compile": "off",
        },
        # Generation as the study ran it: its training batch size, fp32 (precision above), dynamic cache.
        "eval": {"batch_size": {"causal": 20, "seq2seq": 30}, "cache": "dynamic"},
        "data": {},
    },
}


def preset_layer(preset: str, section: str, family: str | None) -> dict[str, Any]:
    """The preset's values for one section, per-family values picked for ``family``."""
    out = {}
    for key, value in PRESETS[preset][section].items():
        if isinstance(value, dict):
            value = value.get(family or "causal")
        out[key] = value
    return out
