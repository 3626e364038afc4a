"""The documented result schema (``result.json``, schema_version 2). Every key carries a comment here, and
``docs/result.md`` explains them for readers (and what changed from version 1). ``peftsum aggregate`` reads only
these files, and still reads version 1 results (the keys version 2 added are then absent).

The ``make_*`` constructors are how a result is built (``peftsum.attempt`` for real cells,
``tests/report/fake_cells.py`` for fake ones): each takes every key of its TypedDict as a keyword, so a key added
here must be given by every writer, and values derived from others (rates, the untrained defaults) are computed
in one place.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypedDict, get_type_hints, is_typeddict

SCHEMA_VERSION = 2


class Score(TypedDict):
    value: float  # corpus-level score, a fraction in [0, 1]
    ci95: list[float]  # [lo, hi] percentile bootstrap over examples (BLEU: resampled sufficient statistics)


class Metrics(TypedDict):
    bleu: Score  # corpus BLEU / 100 as the metric profile defines it (metric_profile.bleu)
    bleu_precisions: list[Score]  # modified 1-, 2-, 3-, 4-gram precisions / 100
    brevity_penalty: Score  # BLEU's brevity penalty
    length_ratio: Score  # hypothesis tokens / reference tokens (13a tokens; the profile's reference length)
    translation_length: int  # hypothesis tokens, summed over examples
    reference_length: int  # reference tokens (closest or shortest reference, per profile), summed over examples
    rouge1: Score  # ROUGE-1 F1, the mean over examples (stemmed or not: metric_profile.rouge)
    rouge2: Score  # ROUGE-2 F1
    rougeL: Score  # ROUGE-L F1 (longest common subsequence over the whole text)
    rougeLsum: Score  # ROUGE-Lsum F1 (LCS over sentences; how they are split: metric_profile.rouge)
    n: int  # examples scored (grouped references: distinct sources)


class _EvaluationKeys(TypedDict):
    epoch: float  # epochs completed (fractional when evaluating every N steps)
    step: int  # optimizer steps completed
    train_loss: float  # mean training loss over the steps since the previous evaluation
    val_loss: float | None  # teacher-forced loss on the validation split


class Evaluation(_EvaluationKeys, total=False):
    val_rougeL: float  # ROUGE-L on select_best_limit validation examples (present with select_best: rougeL only)


class TrainStats(TypedDict):
    seconds: float | None  # wall time inside the training loop (all attempts added up); None for untrained cells
    tokens: int  # real (non-padding) tokens processed, encoder + decoder
    tokens_per_s: float | None  # tokens / seconds
    padding_ratio: float | None  # padding tokens / all tokens processed
    batch_shapes: int | None  # distinct padded micro-batch shapes trained on (<= train.shape_buckets with a ladder)
    compiled_graphs: int | None  # graphs torch.compile built in the attempt that trained; None when not compiled
    epochs: float  # epochs configured
    steps: int  # optimizer steps taken
    resumed_from_step: int | None  # step of the checkpoint this attempt resumed from, if any
    examples: int  # training examples kept after the context-window filter
    examples_dropped: int  # training examples filtered because they did not fit
    examples_truncated: int  # training examples cut to fit this model (with a shared length filter: never dropped)
    first_train_loss: float | None  # training loss of the first optimizer step (before any update)
    final_train_loss: float | None  # mean training loss over the last 10 optimizer steps
    eval_loss: float | None  # validation loss at the selected weights (train.eval_every); None without validation
    test_loss: float | None  # teacher-forced loss on the scored examples that fit (version 1's eval_loss)
    history: list[Evaluation]  # one row per evaluation (train.eval_every), in order; [] without validation
    best_epoch: float | None  # epoch of the evaluation whose weights were kept (train.select_best), else None


class DataStats(TypedDict):
    rows_dropped: dict[str, dict[str, int]]  # per split read, the rows the data contract dropped, by reason
    train_ids_sha256: str | None  # sha256 of the training example ids used, one per line; None if untrained
    eval_ids_sha256: str  # sha256 of the scored example ids: cells scored on the same examples share it
    eval_examples: int  # examples scored
    eval_rows_grouped: int  # rows merged into other examples as extra references (eval.references: grouped)
    references: str  # per_row | grouped
    validation_examples: int | None  # validation examples (train.eval_every), None without validation
    length_filter: dict[str, Any] | None  # the shared length filter: tokenizer, limits, and per split its rows
    #                                       before the filter, rows dropped and the token threshold; None if unset


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
    wall_seconds: float  # the whole cell: load, train with its evaluations and checkpoints, generate, score, write
    #                      (earlier attempts counted up to their last checkpoint)
    disk_peak_bytes: int  # most bytes the cell held on local disk at once (caches it filled, checkpoints, artifacts)


class Provenance(TypedDict):
    packages: dict[str, str | None]  # versions of PACKAGES (peftsum, torch, …); None for one not installed
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
    base_model: str | None  # the base model's public id (what the adapter records); None for model-free cells
    base_model_revision: str | None  # its revision
    base_model_source: str | None  # the spec's model.hub_id the cell loaded the base from (a staged URI, a path…)


class Result(TypedDict):
    schema_version: int  # 2
    cell_id: str  # sha256(canonical spec)[:12]
    grid: str  # grid name
    spec: dict[str, Any]  # the Cell as in spec.json
    status: str  # "done"
    metrics: Metrics  # quality scores on the evaluation split
    metric_profile: dict[str, Any]  # how the metrics were computed (peftsum.scoring.metric_profile)
    train: TrainStats
    generate: GenerateStats
    data: DataStats
    resources: Resources
    provenance: Provenance


PACKAGES = ("peftsum", "torch", "transformers", "peft", "datasets", "rouge-score", "sacrebleu")


def make_train_stats(
    *,
    seconds: float | None = None,
    tokens: int = 0,
    padding_ratio: float | None = None,
    batch_shapes: int | None = None,
    compiled_graphs: int | None = None,
    epochs: float = 0.0,
    steps: int = 0,
    resumed_from_step: int | None = None,
    examples: int = 0,
    examples_dropped: int = 0,
    examples_truncated: int = 0,
    first_train_loss: float | None = None,
    final_train_loss: float | None = None,
    eval_loss: float | None = None,
    test_loss: float | None = None,
    history: Sequence[Evaluation] = (),
    best_epoch: float | None = None,
) -> TrainStats:
    """``train``, its rate derived from the ``tokens`` trained on in ``seconds``; the defaults are an untrained
    cell's (``none``, ``lead``: nothing trained, only a ``test_loss`` when there is a model)."""
    return TrainStats(
        seconds=seconds,
        tokens=tokens,
        tokens_per_s=tokens / seconds if seconds else None,
        padding_ratio=padding_ratio,
        batch_shapes=batch_shapes,
        compiled_graphs=compiled_graphs,
        epochs=epochs,
        steps=steps,
        resumed_from_step=resumed_from_step,
        examples=examples,
        examples_dropped=examples_dropped,
        examples_truncated=examples_truncated,
        first_train_loss=first_train_loss,
        final_train_loss=final_train_loss,
        eval_loss=eval_loss,
        test_loss=test_loss,
        history=list(history),
        best_epoch=best_epoch,
    )


def make_generate_stats(*, seconds: float, new_tokens: int, examples: int, truncated_sources: int) -> GenerateStats:
    """``generate``, its rate derived from the ``new_tokens`` generated in ``seconds``."""
    return GenerateStats(
        seconds=seconds,
        new_tokens_per_s=new_tokens / seconds if seconds else 0.0,
        examples=examples,
        truncated_sources=truncated_sources,
    )


def make_data_stats(
    *,
    rows_dropped: dict[str, dict[str, int]],
    train_ids_sha256: str | None,
    eval_ids_sha256: str,
    eval_examples: int,
    eval_rows_grouped: int,
    references: str,
    validation_examples: int | None,
    length_filter: dict[str, Any] | None,
) -> DataStats:
    """``data``: which examples the cell used."""
    return DataStats(
        rows_dropped=rows_dropped,
        train_ids_sha256=train_ids_sha256,
        eval_ids_sha256=eval_ids_sha256,
        eval_examples=eval_examples,
        eval_rows_grouped=eval_rows_grouped,
        references=references,
        validation_examples=validation_examples,
        length_filter=length_filter,
    )


def make_resources(
    *,
    gpu_peak_bytes: int | None,
    gpu_nvml_peak_bytes: int | None,
    ram_peak_bytes: int,
    energy_joules: float | None,
    trainable_params: int,
    total_params: int,
    adapter_bytes: int | None,
    checkpoint_bytes: int | None,
    phase_seconds: dict[str, float],
    wall_seconds: float,
    disk_peak_bytes: int,
) -> Resources:
    """``resources``: what the cell cost."""
    return Resources(
        gpu_peak_bytes=gpu_peak_bytes,
        gpu_nvml_peak_bytes=gpu_nvml_peak_bytes,
        ram_peak_bytes=ram_peak_bytes,
        energy_joules=energy_joules,
        trainable_params=trainable_params,
        total_params=total_params,
        adapter_bytes=adapter_bytes,
        checkpoint_bytes=checkpoint_bytes,
        phase_seconds=phase_seconds,
        wall_seconds=wall_seconds,
        disk_peak_bytes=disk_peak_bytes,
    )


def make_provenance(
    *,
    packages: dict[str, str | None],
    git_sha: str | None,
    image: str | None,
    hostname: str,
    gpu_name: str | None,
    device: str,
    precision: str,
    fused_optimizer: bool,
    compiled: bool,
    generation_cache: str | None,
    generation_budget_tokens: int | None,
    seed: int,
    started_at: str,
    finished_at: str,
    attempt: str,
    base_model: str | None,
    base_model_revision: str | None,
    base_model_source: str | None,
) -> Provenance:
    """``provenance``: what produced the result (``environment()`` gives its first four keys)."""
    return Provenance(
        packages=packages,
        git_sha=git_sha,
        image=image,
        hostname=hostname,
        gpu_name=gpu_name,
        device=device,
        precision=precision,
        fused_optimizer=fused_optimizer,
        compiled=compiled,
        generation_cache=generation_cache,
        generation_budget_tokens=generation_budget_tokens,
        seed=seed,
        started_at=started_at,
        finished_at=finished_at,
        attempt=attempt,
        base_model=base_model,
        base_model_revision=base_model_revision,
        base_model_source=base_model_source,
    )


def make_result(
    *,
    cell_id: str,
    grid: str,
    spec: dict[str, Any],
    metrics: Metrics,
    metric_profile: dict[str, Any],
    train: TrainStats,
    generate: GenerateStats,
    data: DataStats,
    resources: Resources,
    provenance: Provenance,
) -> Result:
    """A done cell's result (schema ``SCHEMA_VERSION``)."""
    return Result(
        schema_version=SCHEMA_VERSION,
        cell_id=cell_id,
        grid=grid,
        spec=spec,
        status="done",
        metrics=metrics,
        metric_profile=metric_profile,
        train=train,
        generate=generate,
        data=data,
        resources=resources,
        provenance=provenance,
    )


def environment() -> dict[str, Any]:
    """The ``provenance`` keys of this process: package versions, the code's commit, the image and the host."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    sha = os.environ.get("PEFTSUM_GIT_SHA")
    if sha is None:
        try:
            sha = (
                subprocess.run(
                    ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
                ).stdout.strip()
                or None
            )
        except (OSError, subprocess.SubprocessError):
            sha = None
    return {
        "packages": packages,
        "git_sha": sha,
        "image": os.environ.get("PEFTSUM_IMAGE"),
        "hostname": socket.gethostname(),
    }


def required_keys(cls: type = Result) -> dict[str, Any]:
    """Nested key tree of a TypedDict, for schema tests: {key: subtree or None}."""
    return {key: required_keys(tp) if is_typeddict(tp) else None for key, tp in get_type_hints(cls).items()}


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None: JSON has no NaN, and a diverged run's losses
    must read as "no value", not break every reader of result.json."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj
