"""The train / eval / data settings every cell carries (their presets: :mod:`peftsum.spec.presets`).

Values are validated on construction (see :mod:`peftsum.spec.fields`); ``docs/grid-reference.md`` is generated from
these declarations by ``python -m peftsum.spec.reference``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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

    epochs: float = setting(3.0, "passes over the (filtered) training split", lo=0, lo_open=True, hi=1000)
    max_steps: int | None = setting(None, "stop after this many optimizer steps (overrides epochs when smaller)",
                                    lo=1)
    learning_rate: float = setting(2e-4, "AdamW peak learning rate", lo=0, lo_open=True, hi=1)
    weight_decay: float = setting(0.0, "AdamW decoupled weight decay", lo=0, hi=1)
    lr_scheduler: str = setting("linear", "learning-rate schedule after warmup",
                                choices=("constant", "linear", "cosine"))
    warmup_ratio: float = setting(0.0, "fraction of steps spent in linear warmup", lo=0, hi=1, hi_open=True)
    batch_size: int | None = setting(None, "examples per micro-batch; null = limited by batch_tokens only", lo=1,
                                     hi=4096)
    batch_tokens: int | None = setting(16384, "token budget per micro-batch (padded tokens); null = batch_size only",
                                       lo=64, hi=10_000_000)
    grad_accum: int = setting(1, "micro-batches per optimizer step", lo=1, hi=1024)
    max_grad_norm: float | None = setting(1.0, "gradient clipping norm; null = no clipping", lo=0, lo_open=True)
    group_by_length: bool = setting(True, "batch examples of similar length together (less padding)")
    max_padding: float | None = setting(None, "with group_by_length and no shape ladder, also cut a batch when its "
                                        "padding would exceed this share of it; null = only the budget cuts",
                                        lo=0, hi=1, hi_open=True)
    shape_buckets: int = setting(0, "with group_by_length, pad every batch to one of at most N (rows, length) "
                                    "shapes fitted to the cell's lengths, so a compiled model meets few shapes "
                                    "(preset fast: 16; replaces max_padding); 0 = each batch padded to its longest",
                                 lo=0, hi=16)
    gradient_checkpointing: bool = setting(False, "recompute activations in backward to save memory")
    precision: str = setting("auto", "auto = bf16 autocast on CUDA, fp32 on CPU; fp16 is not offered (T5 overflows)",
                             choices=("auto", "fp32", "bf16"))
    fused_optimizer: str = setting("auto", "fused AdamW kernel: auto = on CUDA and CPU", choices=("auto", "on", "off"))
    compile: str = setting("auto", "torch.compile the training forward/backward (over a shape_buckets ladder: 2-3 "
                                   "graphs per cell): auto = on on CUDA with a ladder, off on CPU "
                                   "(docs/performance.md)",
                           choices=("auto", "on", "off"))
    checkpoint_every_steps: int | None = setting(None, "write a resumable checkpoint every N optimizer steps", lo=1)
    checkpoint_every_seconds: float | None = setting(300.0, "write a resumable checkpoint every N seconds", lo=1)
    keep_checkpoints: bool = setting(False, "keep checkpoints after the cell succeeds")
    keep_full_weights: bool = setting(False, "also store full fine-tuned weights under model/")
    eval_every: str | int = setting("off", "compute the validation loss every epoch, every N optimizer steps, or "
                                           "never (off); the final step is always evaluated when this is on",
                                    check=_eval_every, type_doc="epoch \\| int >= 1 \\| off")
    select_best: str = setting("off", "generate and score with the weights of the best evaluation (eval_loss: lowest "
                                      "validation loss; rougeL: highest ROUGE-L on select_best_limit validation "
                                      "examples) instead of the last step's; needs eval_every",
                               choices=("off", "eval_loss", "rougeL"))
    select_best_limit: int = setting(200, "validation examples generated and scored at each evaluation when "
                                          "select_best is rougeL", lo=1, hi=1_000_000)

    def __post_init__(self) -> None:
        if self.batch_size is None and self.batch_tokens is None:
            raise SpecError("batch_size", None, "batch_size and batch_tokens cannot both be null")
        if self.select_best != "off" and self.eval_every == "off":
            raise SpecError("select_best", self.select_best, "needs validation: set train.eval_every to epoch or a "
                                                             "number of steps (it is off)")


@dataclass(frozen=True)
class EvalSettings:
    """How a cell generates and scores."""

    split: str = setting("test", "split that is generated and scored", choices=("test", "validation"))
    limit: int | None = setting(None, "score only the first N examples of the split (same ids for every cell)",
                                lo=1)
    max_new_tokens: int = setting(64, "generation length cap", lo=1, hi=1024)
    num_beams: int = setting(1, "beam width; 1 = greedy", lo=1, hi=16)
    batch_size: int | None = setting(None, "examples per generation batch; null = chosen from batch_tokens", lo=1,
                                     hi=4096)
    cache: str = setting("auto", "KV cache for generation: static = fixed-size cache whose decode step transformers "
                                 "compiles (CUDA only); auto = static on CUDA with greedy decoding, else dynamic",
                         choices=("auto", "dynamic", "static"))
    bootstrap_samples: int = setting(1000, "bootstrap resamples for each ci95", lo=100, hi=100_000)
    references: str = setting("auto", "per_row: every row is generated and scored against its own summary; grouped: "
                                      "rows with the same source are generated once and scored against all their "
                                      "summaries (best reference per example for ROUGE, multi-reference BLEU), "
                                      "limit and CIs count sources; auto = the dataset's default (grouped for "
                                      "DialogSum, whose test set has three summaries per dialogue)",
                              choices=("auto", "per_row", "grouped"))
    metric_profile: str = setting("peftsum", "how BLEU and ROUGE are computed (docs/report.md): peftsum = stemmed "
                                             "ROUGE, Lsum on sentences split by a regex, sacrebleu BLEU with exp "
                                             "smoothing; evaluate = the `evaluate` library's defaults (no stemming, "
                                             "Lsum on newlines only, unsmoothed BLEU, shortest reference length)",
                                  choices=("peftsum", "evaluate"))


@dataclass(frozen=True)
class DataSettings:
    """How examples become token sequences."""

    max_source_tokens: int | Literal["auto"] | None = setting(
        "auto", "source token cap; auto = fit the model's context window; null = no cap", lo=8)
    max_target_tokens: int = setting(128, "training summaries longer than this are filtered", lo=4, hi=4096)
    train_limit: int | None = setting(None, "use only the first N training examples (after the length filter)",
                                      lo=1)
    validation_limit: int | None = setting(None, "use only the first N validation examples (after the length "
                                                 "filter) for eval_every", lo=1)
    max_total_tokens: int | None = setting(None, "drop records whose source + summary exceed this many tokens of "
                                                 "length_tokenizer, in every split and for every model alike; null = "
                                                 "no such filter", lo=1, hi=10_000_000)
    max_length_quantile: float | None = setting(None, "drop records whose source + summary length (length_tokenizer) "
                                                      "is above this quantile of their split's lengths; null = no "
                                                      "such filter", lo=0, lo_open=True, hi=1)
    length_tokenizer: str = setting("gpt2", "the reference tokenizer that counts tokens for max_total_tokens and "
                                            "max_length_quantile, once per dataset: a model name of the catalog or "
                                            "the grid's models section, a local path or an s3:// URI (stored in the "
                                            "cell as the model's hub id)")

    @property
    def length_filter(self) -> bool:
        """A shared length filter is set: every model of a dataset then sees the same example ids, and a record a
        model cannot fit is truncated for that model instead of dropped."""
        return self.max_total_tokens is not None or self.max_length_quantile is not None


SECTIONS: dict[str, type] = {"train": TrainSettings, "eval": EvalSettings, "data": DataSettings}
