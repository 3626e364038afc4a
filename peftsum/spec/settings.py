"""The train / eval / data settings every cell carries, and the two presets.

Values are validated on construction (see :mod:`peftsum.spec.fields`); ``docs/grid.md`` is generated from these
declarations by ``python -m peftsum.spec.reference``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftsum.spec.errors import SpecError
from peftsum.spec.fields import setting


def _eval_every(value: Any, path: str) -> str | int:
    """``epoch``, ``off`` (YAML's bare off/false too) or a positive number of optimizer steps."""
    if value is False:
        return "off"
    if value in ("epoch", "off"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10**9:
        return value
    raise SpecError(path, value, "must be epoch, off, or a number of optimizer steps >= 1")


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
    max_padding: float | None = setting(None, "with group_by_length and no shape ladder, also cut a batch when its "
                                        "padding would exceed this share of it; null = only the budget cuts",
                                        kind=float, lo=0, hi=1, hi_open=True, nullable=True)
    shape_buckets: int = setting(0, "with group_by_length, pad every batch to one of at most N (rows, length) "
                                    "shapes fitted to the cell's lengths, so a compiled model meets few shapes "
                                    "(preset fast: 16; replaces max_padding); 0 = each batch padded to its longest",
                                 kind=int, lo=0, hi=16)
    gradient_checkpointing: bool = setting(False, "recompute activations in backward to save memory", kind=bool)
    precision: str = setting("auto", "auto = bf16 autocast on CUDA, fp32 on CPU; fp16 is not offered (T5 overflows)",
                             kind=str, choices=("auto", "fp32", "bf16"))
    fused_optimizer: str = setting("auto", "fused AdamW kernel: auto = on CUDA and CPU", kind=str,
                                   choices=("auto", "on", "off"))
    compile: str = setting("auto", "torch.compile the training forward/backward (over a shape_buckets ladder: 2-3 "
                                   "graphs per cell): auto = on on CUDA with a ladder, off on CPU "
                                   "(docs/performance.md)",
                           kind=str, choices=("auto", "on", "off"))
    checkpoint_every_steps: int | None = setting(None, "write a resumable checkpoint every N optimizer steps",
                                                 kind=int, lo=1, nullable=True)
    checkpoint_every_seconds: float | None = setting(300.0, "write a resumable checkpoint every N seconds",
                                                     kind=float, lo=1, nullable=True)
    keep_checkpoints: bool = setting(False, "keep checkpoints after the cell succeeds", kind=bool)
    keep_full_weights: bool = setting(False, "also store full fine-tuned weights under model/", kind=bool)
    eval_every: str | int = setting("off", "compute the validation loss every epoch, every N optimizer steps, or "
                                           "never (off); the final step is always evaluated when this is on",
                                    kind=str, check=_eval_every, type_doc="epoch \\| int >= 1 \\| off")
    select_best: str = setting("off", "generate and score with the weights of the best evaluation (eval_loss: lowest "
                                      "validation loss; rougeL: highest ROUGE-L on select_best_limit validation "
                                      "examples) instead of the last step's; needs eval_every", kind=str,
                               choices=("off", "eval_loss", "rougeL"))
    select_best_limit: int = setting(200, "validation examples generated and scored at each evaluation when "
                                          "select_best is rougeL", kind=int, lo=1, hi=1_000_000)

    def __post_init__(self) -> None:
        if self.batch_size is None and self.batch_tokens is None:
            raise SpecError("batch_size", None, "batch_size and batch_tokens cannot both be null")
        if self.select_best != "off" and self.eval_every == "off":
            raise SpecError("select_best", self.select_best, "needs validation: set train.eval_every to epoch or a "
                                                             "number of steps (it is off)")


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
    references: str = setting("auto", "per_row: every row is generated and scored against its own summary; grouped: "
                                      "rows with the same source are generated once and scored against all their "
                                      "summaries (best reference per example for ROUGE, multi-reference BLEU), "
                                      "limit and CIs count sources; auto = the dataset's default (grouped for "
                                      "DialogSum, whose test set has three summaries per dialogue)", kind=str,
                              choices=("auto", "per_row", "grouped"))
    metric_profile: str = setting("peftsum", "how BLEU and ROUGE are computed (docs/report.md): peftsum = stemmed "
                                             "ROUGE, Lsum on sentences split by a regex, sacrebleu BLEU with exp "
                                             "smoothing; evaluate = the `evaluate` library's defaults (no stemming, "
                                             "Lsum on newlines only, unsmoothed BLEU, shortest reference length)",
                                  kind=str, choices=("peftsum", "evaluate"))


@dataclass(frozen=True)
class DataSettings:
    """How examples become token sequences."""

    max_source_tokens: int | None = setting(
        "auto", "source token cap; auto = fit the model's context window; null = no cap", kind=int, lo=8,
        auto=True, nullable=True)
    max_target_tokens: int = setting(128, "training summaries longer than this are filtered", kind=int, lo=4,
                                     hi=4096)
    train_limit: int | None = setting(None, "use only the first N training examples (after the length filter)",
                                      kind=int, lo=1, nullable=True)
    validation_limit: int | None = setting(None, "use only the first N validation examples (after the length "
                                                 "filter) for eval_every", kind=int, lo=1, nullable=True)
    max_total_tokens: int | None = setting(None, "drop records whose source + summary exceed this many tokens of "
                                                 "length_tokenizer, in every split and for every model alike; null = "
                                                 "no such filter", kind=int, lo=1, hi=10_000_000, nullable=True)
    max_length_quantile: float | None = setting(None, "drop records whose source + summary length (length_tokenizer) "
                                                      "is above this quantile of their split's lengths; null = no "
                                                      "such filter", kind=float, lo=0, lo_open=True, hi=1,
                                                nullable=True)
    length_tokenizer: str = setting("gpt2", "the reference tokenizer that counts tokens for max_total_tokens and "
                                            "max_length_quantile, once per dataset: a model name of the catalog or "
                                            "the grid's models section, a local path or an s3:// URI (stored in the "
                                            "cell as the model's hub id)", kind=str)

    @property
    def length_filter(self) -> bool:
        """A shared length filter is set: every model of a dataset then sees the same example ids, and a record a
        model cannot fit is truncated for that model instead of dropped."""
        return self.max_total_tokens is not None or self.max_length_quantile is not None


SECTIONS: dict[str, type] = {"train": TrainSettings, "eval": EvalSettings, "data": DataSettings}

# Presets are the lowest layer. A value may be a {family: value} mapping for settings the study chose per family.
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
            "warmup_ratio": 0.0, "batch_size": {"causal": 20, "seq2seq": 30}, "batch_tokens": None,
            "grad_accum": 5, "gradient_checkpointing": True, "max_grad_norm": 1.0, "group_by_length": False,
            "precision": "fp32", "fused_optimizer": "off", "compile": "off",
            "eval_every": "epoch", "select_best": "eval_loss",
        },
        # Generation as the study ran it: its training batch size, fp32 (precision above), dynamic cache.
        "eval": {"batch_size": {"causal": 20, "seq2seq": 30}, "cache": "dynamic", "metric_profile": "evaluate"},
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
