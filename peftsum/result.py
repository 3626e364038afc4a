"""The documented result schema (``result.json``, schema_version 1). Every key carries a comment here, and
``docs/result.md`` explains them for readers. ``peftsum aggregate`` reads only these files.
"""

from __future__ import annotations

from typing import Any, TypedDict, get_type_hints, is_typeddict

SCHEMA_VERSION = 1


class Score(TypedDict):
    value: float  # corpus-level score, a fraction in [0, 1]
    ci95: list[float]  # [lo, hi] percentile bootstrap over examples (BLEU: resampled sufficient statistics)


class Metrics(TypedDict):
    bleu: Score  # sacrebleu corpus BLEU / 100
    bleu_precisions: list[Score]  # modified 1-, 2-, 3-, 4-gram precisions / 100
    brevity_penalty: Score  # BLEU's brevity penalty
    rouge1: Score  # ROUGE-1 F1 (rouge-score, stemmed)
    rouge2: Score  # ROUGE-2 F1
    rougeL: Score  # ROUGE-L F1 (longest common subsequence over the whole text)
    rougeLsum: Score  # ROUGE-Lsum F1 (LCS over newline-split sentences)
    n: int  # examples scored


class TrainStats(TypedDict):
    seconds: float | None  # wall time inside the training loop (all attempts added up); None for untrained cells
    tokens: int  # real (non-padding) tokens processed, encoder + decoder
    tokens_per_s: float | None  # tokens / seconds
    padding_ratio: float | None  # padding tokens / all tokens processed
    epochs: float  # epochs configured
    steps: int  # optimizer steps taken
    resumed_from_step: int | None  # step of the checkpoint this attempt resumed from, if any
    examples: int  # training examples kept after the context-window filter
    examples_dropped: int  # training examples filtered because they did not fit
    final_train_loss: float | None  # mean training loss over the last 10 optimizer steps
    eval_loss: float | None  # teacher-forced loss on the scored examples


class GenerateStats(TypedDict):
    seconds: float  # wall time of generation
    new_tokens_per_s: float  # generated tokens (up to EOS) per second
    examples: int  # examples generated
    truncated_sources: int  # evaluation sources cut to fit the context window


class Resources(TypedDict):
    gpu_peak_bytes: int | None  # torch.cuda.max_memory_allocated; None without a GPU
    gpu_nvml_peak_bytes: int | None  # peak device memory in use per NVML (context + allocator cache); None w/o NVML
    ram_peak_bytes: int  # peak RSS of the cell process
    energy_joules: float | None  # NVML total-energy delta over the cell; None without NVML
    trainable_params: int  # parameters with requires_grad during training
    total_params: int  # all parameters of the (adapted) model
    adapter_bytes: int | None  # bytes of what must be kept to rebuild the tuned model from the base (adapter file,
    #                            bitfit biases, or the full fine-tuned weights); None for untrained cells
    checkpoint_bytes: int | None  # bytes of the last resumable checkpoint written (weights + optimizer state)
    phase_seconds: dict[str, float]  # wall seconds per phase: load, train, generate, score, upload


class Provenance(TypedDict):
    packages: dict[str, str]  # versions of peftsum, torch, transformers, peft, datasets, rouge-score, sacrebleu
    git_sha: str | None  # PEFTSUM_GIT_SHA or the checkout's HEAD, if known
    image: str | None  # PEFTSUM_IMAGE (set in the cluster image)
    gpu_name: str | None  # CUDA device name; None on CPU
    hostname: str  # machine or pod name
    device: str  # cpu | cuda
    precision: str  # resolved from the spec's precision (fp32 | bf16)
    fused_optimizer: bool  # resolved from the spec's fused_optimizer
    compiled: bool  # the training forward ran under torch.compile (train.compile resolved)
    generation_cache: str | None  # KV cache generation used: dynamic | static (eval.cache resolved); null w/o model
    generation_budget_tokens: int | None  # padded tokens per generation batch (device-resolved); null w/o model
    seed: int  # the cell's seed
    started_at: str  # ISO-8601 UTC start of this attempt
    finished_at: str  # ISO-8601 UTC end of this attempt
    attempt: str  # attempt id (folder under attempts/)


class Result(TypedDict):
    schema_version: int  # 1
    cell_id: str  # sha256(canonical spec)[:12]
    grid: str  # grid name
    spec: dict[str, Any]  # the Cell as in spec.json
    status: str  # "done"
    metrics: Metrics  # quality scores on the evaluation split
    metric_profile: dict[str, Any]  # how the metrics were computed (peftsum.scoring.metric_profile)
    train: TrainStats
    generate: GenerateStats
    resources: Resources
    provenance: Provenance


def required_keys(cls: type = Result) -> dict[str, Any]:
    """Nested key tree of a TypedDict, for schema tests: {key: subtree or None}."""
    return {key: required_keys(tp) if is_typeddict(tp) else None for key, tp in get_type_hints(cls).items()}
