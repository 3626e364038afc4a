"""``peftsum cell``: run one cell end to end, idempotently.

load data → load model → apply method → train (resumable) → generate → score → measure → write the attempt's
files → ``_SUCCESS`` last (first writer wins). Exit codes (docs/architecture.md, "Exit codes"): 0 done (or already
done), 1 failed, 2 the spec or the configuration can never run (a person must fix it), 3 retryable (preempted, the
store unreachable or full).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from peftsum.preempt import Preempted, Preemption, fault_point
from peftsum.result import SCHEMA_VERSION, finite
from peftsum.spec import Cell, SpecError
from peftsum.store import Store, StoreError, layout
from peftsum.store.base import MissingObject, StoreDenied, UnsafeKeyError, sha256_file
from peftsum.tracking import Tracker, open_tracker

EXIT_OK, EXIT_FAILED, EXIT_BAD_SPEC, EXIT_RETRY = 0, 1, 2, 3


def exit_code(err: BaseException) -> int:
    """The exit code an exception ends a cell with: 2 only when retrying can never help."""
    if isinstance(err, (SpecError, StoreDenied, UnsafeKeyError)):
        return EXIT_BAD_SPEC
    if isinstance(err, (Preempted, OSError)):  # StoreUnavailable, a plain StoreError, an I/O error
        return EXIT_RETRY
    return EXIT_FAILED


def log(cell_id: str, msg: str) -> None:
    print(f"[cell {cell_id}] {msg}", file=sys.stderr, flush=True)


def load_spec(store: Store, grid: str, cell_id: str) -> Cell:
    """Read ``cells/<id>/spec.json`` and check that it hashes to ``cell_id`` (else SpecError: exit 2). A store that
    cannot be read raises its StoreError (unavailable: exit 3; denied: exit 2, naming the bucket)."""
    try:
        data = layout.read_json(store, layout.cell_key(grid, cell_id, "spec.json"))
    except MissingObject as err:
        raise SpecError("spec.json", cell_id, f"no cell spec: {err} (was the grid submitted?)") from None
    except (ValueError, RecursionError) as err:
        raise SpecError("spec.json", cell_id, f"the cell spec is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise SpecError("spec.json", cell_id, "the cell spec is not a JSON object")
    cell = Cell.from_dict(data)
    if cell.cell_id != cell_id:
        raise SpecError("spec.json", cell_id, f"hashes to {cell.cell_id}, not to the cell id it is stored under")
    return cell


def _set_status(store: Store, grid: str, cell_id: str, state: str, **fields: Any) -> None:
    """Write status.json, but never let a failing store hide the cell's own outcome (exit code, log)."""
    try:
        layout.write_status(store, grid, cell_id, state, **fields)
    except StoreError as err:
        log(cell_id, f"could not write status.json ({state}): {err}")


def run_cell(store: Store, grid: str, cell: Cell, metrics: Any = None) -> int:
    """Run ``cell`` into ``store``; returns the process exit code.

    A ``_SUCCESS`` that fails verification (malformed, or a listed file missing or changed) is moved aside
    (``_SUCCESS.corrupt-<time>``) and the cell runs again: otherwise the new attempt would lose the first-writer
    race to it on every run. SIGTERM/SIGINT anywhere ends the attempt with exit 3 (``peftsum.preempt``).

    Args:
        metrics: a ``peftsum.telemetry.CellMetrics`` to keep current (pushed or scraped by the caller), or None.
    """
    cell_id = cell.cell_id
    attempt = None
    tracker = Tracker()
    try:
        with Preemption() as preemption:
            manifest, problem = layout.check_done(store, grid, cell_id)
            if manifest is not None:
                log(cell_id, "already done")
                if not cell.train.keep_checkpoints:  # a kill between _SUCCESS and the cleanup left them
                    layout.clear_checkpoints(store, grid, cell_id)
                return EXIT_OK
            if problem:
                aside = layout.quarantine_manifest(store, grid, cell_id, problem)
                log(cell_id, f"_SUCCESS failed verification ({problem}); moved aside to {aside}, running again")
            attempt = layout.new_attempt_id()
            started = layout.now_iso()
            layout.begin_attempt(store, grid, cell_id, attempt, os.environ.get("PEFTSUM_JOB_UID") or None,
                                 progress=0.0, started_at=started)
            tracker = open_tracker(grid, cell.to_dict(), cell_id, attempt, {
                "mlflow.source.git.commit": provenance()["git_sha"] or "unknown",
                "peftsum.store": f"{store.uri}/{layout.cell_key(grid, cell_id)}"})
            with tempfile.TemporaryDirectory(prefix=f"peftsum-{cell_id}-") as tmp:
                result = _execute(store, grid, cell, attempt, started, Path(tmp), metrics, preemption, tracker)
    except Exception as err:
        code = exit_code(err)
        tracker.end("KILLED" if isinstance(err, Preempted) else "FAILED")
        state = "pending" if isinstance(err, Preempted) else "failed"  # pending: not counted as a failure
        reason = f"bad spec: {err}" if isinstance(err, SpecError) else f"{type(err).__name__}: {err}"
        _set_status(store, grid, cell_id, state, reason=reason, exit_code=code, attempt=attempt)
        log(cell_id, f"{state} (exit {code}): {reason}")
        if code == EXIT_FAILED:
            import traceback

            traceback.print_exc()
        return code
    if result is None:  # another attempt committed first: its result stands, ours is discarded
        tracker.end("KILLED")
        with _quietly(cell_id):
            store.delete_prefix(layout.cell_key(grid, cell_id, "attempts", attempt))
        winner = layout.done_manifest(store, grid, cell_id) or {}
        _set_status(store, grid, cell_id, "done", exit_code=EXIT_OK, attempt=winner.get("attempt_id"), progress=1.0)
        log(cell_id, "another attempt finished first; keeping its result")
        return EXIT_OK
    m = result["metrics"]
    _set_status(store, grid, cell_id, "done", exit_code=EXIT_OK, attempt=attempt, progress=1.0,
                metrics={k: m[k]["value"] for k in ("rougeL", "bleu")})
    attempt_uri = f"{store.uri}/{layout.cell_key(grid, cell_id, 'attempts', attempt)}"
    tracker.finish(result, {"peftsum.artifacts": attempt_uri, "peftsum.result": f"{attempt_uri}/result.json"})
    if metrics is not None:
        metrics.succeeded({k: v["value"] for k, v in m.items() if isinstance(v, dict) and "value" in v})
    log(cell_id, f"done: ROUGE-L {m['rougeL']['value']:.3f}, BLEU {m['bleu']['value']:.3f}")
    return EXIT_OK


@contextlib.contextmanager
def _quietly(cell_id: str) -> Iterator[None]:
    """Best-effort cleanup: a store error is logged, not raised (the cell's outcome is already decided)."""
    try:
        yield
    except StoreError as err:
        log(cell_id, f"cleanup failed: {err}")


@dataclass
class Predicted:
    """What the model-specific half of a cell hands to the common tail (score, write, commit)."""

    examples: list  # evaluation Examples, in order (grouped: one per source, with all its references)
    predictions: list[str]
    new_tokens: list[int]
    generate_seconds: float
    truncated: int  # evaluation sources cut to fit the context
    eda: dict[str, Any]
    data: dict[str, Any]  # result.json "data": ids hashes, length filter, grouping
    device: str = "cpu"
    precision: str = "fp32"
    fused: bool = False
    compiled: bool = False
    cache: str | None = None  # generation KV cache: dynamic | static (None: model-free)
    budget: int | None = None  # padded tokens per generation batch (None: model-free)
    report: Any = None  # peftsum.train.TrainReport, None for untrained cells
    train_kept: int = 0
    train_dropped: int = 0
    train_truncated: int = 0
    test_loss: float | None = None
    trainable: int = 0
    total: int = 0
    adapter_bytes: int | None = None


def _execute(
    store: Store, grid: str, cell: Cell, attempt: str, started: str, workdir: Path, metrics: Any,
    preemption: Preemption, tracker: Tracker,
) -> dict | None:
    from peftsum import scoring
    from peftsum.artifacts import base_provenance, write_jsonl, write_model_cards
    from peftsum.checkpoint import Checkpointer
    from peftsum.methods import METHODS
    from peftsum.resources import (
        DiskMeter,
        EnergyMeter,
        NvmlMemory,
        PhaseTimer,
        gpu_info,
        gpu_peak_bytes,
        hf_caches,
        peak_rss_bytes,
    )
    from peftsum.store.fetch import cache_root

    t0 = time.monotonic()
    cell_id = cell.cell_id
    method = METHODS.get(cell.method.type)
    timer, energy, nvml_memory = PhaseTimer(), EnergyMeter(), NvmlMemory()
    local_cell = getattr(store, "root", None)
    disk = DiskMeter(
        [workdir, *([Path(local_cell) / layout.cell_key(grid, cell_id)] if local_cell else [])],
        [*hf_caches(), cache_root()],
    )
    checkpointer = Checkpointer(
        store, grid, cell_id, workdir=workdir, on_written=disk.sample, extra_state=lambda: {"wall_seconds": wall()}
    )

    def wall() -> float:
        """This attempt's wall seconds, plus the earlier attempts' up to the checkpoint this one resumed from."""
        return time.monotonic() - t0 + (checkpointer.loaded_state or {}).get("wall_seconds", 0.0)

    if metrics is not None:

        def sample(m: Any) -> None:  # read at every push/scrape
            m.series("peftsum_phase_duration_seconds", timer.seconds)
            m.set("peftsum_gpu_energy_joules_total", energy.read())
            if method.needs_model:
                m.series("peftsum_gpu_memory_peak_bytes", {"torch": gpu_peak_bytes(), "nvml": nvml_memory.sample()})

        metrics.sample = sample
    out = workdir / "attempt"
    out.mkdir()
    if method.needs_model:
        if cell.model is None:
            raise SpecError("model", None, f"method {cell.method.type!r} needs a model")
        pred = _predict_with_model(
            store, grid, cell, method, attempt, started, timer, out, metrics, nvml_memory, checkpointer, disk,
            preemption, tracker,
        )
    else:
        pred = _predict_without_model(cell, method, timer, disk)
    with timer.phase("score"):
        scores, per_example = scoring.score(
            pred.predictions,
            [e.refs for e in pred.examples],
            cell.eval.bootstrap_samples,
            seed=cell.seed,
            profile=cell.eval.metric_profile,
        )

    write_jsonl(
        out / "predictions.jsonl",
        [
            {
                "id": e.id,
                "source": e.source,
                "reference": e.summary,
                **({"references": list(e.refs)} if e.references else {}),
                "prediction": p,
                "new_tokens": n,
                **row,
            }
            for e, p, n, row in zip(pred.examples, pred.predictions, pred.new_tokens, per_example)
        ],
    )
    (out / "eda.json").write_text(json.dumps(pred.eda, indent=2))
    disk.sample()
    report = pred.report
    generated = sum(pred.new_tokens)
    selected = report.selected if report else None
    result = {
        "schema_version": SCHEMA_VERSION,
        "cell_id": cell_id,
        "grid": grid,
        "spec": cell.to_dict(),
        "status": "done",
        "metrics": scores,
        "metric_profile": scoring.metric_profile(cell.eval.metric_profile),
        "train": {
            "seconds": report.seconds if report else None,
            "tokens": report.tokens if report else 0,
            "tokens_per_s": report.tokens / report.seconds if report and report.seconds else None,
            "padding_ratio": 1 - report.tokens / report.padded_tokens if report and report.padded_tokens else None,
            "batch_shapes": report.shapes if report else None,
            "compiled_graphs": report.compiled_graphs if report else None,
            "epochs": cell.train.epochs if report else 0.0,
            "steps": report.steps if report else 0,
            "resumed_from_step": report.resumed_from_step if report else None,
            "examples": pred.train_kept,
            "examples_dropped": pred.train_dropped,
            "examples_truncated": pred.train_truncated,
            "first_train_loss": report.first_train_loss if report else None,
            "final_train_loss": report.final_train_loss if report else None,
            "eval_loss": selected["val_loss"] if selected else None,
            "test_loss": pred.test_loss,
            "history": report.history if report else [],
            "best_epoch": report.history[report.best]["epoch"] if report and report.best is not None else None,
        },
        "generate": {
            "seconds": pred.generate_seconds,
            "new_tokens_per_s": generated / pred.generate_seconds if pred.generate_seconds else 0.0,
            "examples": len(pred.predictions),
            "truncated_sources": pred.truncated,
        },
        "data": pred.data,
        "resources": {
            "gpu_peak_bytes": gpu_peak_bytes() if method.needs_model else None,
            "gpu_nvml_peak_bytes": nvml_memory.sample() if method.needs_model else None,
            "ram_peak_bytes": peak_rss_bytes(),
            "energy_joules": energy.read(),
            "trainable_params": pred.trainable,
            "total_params": pred.total,
            "adapter_bytes": pred.adapter_bytes,
            "checkpoint_bytes": report.checkpoint_bytes or None if report else None,
            "phase_seconds": timer.seconds,
            "wall_seconds": wall(),
            "disk_peak_bytes": disk.peak,
        },
        "provenance": {
            **provenance(),
            **(gpu_info() if method.needs_model else {"gpu_name": None}),
            "device": pred.device,
            "precision": pred.precision,
            "fused_optimizer": pred.fused,
            "compiled": pred.compiled,
            "generation_cache": pred.cache,
            "generation_budget_tokens": pred.budget,
            "seed": cell.seed,
            "started_at": started,
            "finished_at": layout.now_iso(),
            "attempt": attempt,
            **base_provenance(cell.model),  # the public id the adapter records; the staged URI it was loaded from
        },
    }
    with timer.phase("upload"):
        result = finite(result)
        (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True, allow_nan=False))
        write_model_cards(out, result)  # README.md in adapter/ and model/: needs the scores
        files = _upload(store, grid, cell_id, attempt, out)
        disk.sample()
    with preemption.deferred():  # a signal here waits: _SUCCESS is written, or not, never half-decided
        if not layout.commit_success(store, grid, cell_id, attempt, files):
            return None
    if not cell.train.keep_checkpoints:
        with _quietly(cell_id):
            checkpointer.clear()
    return result


def _data_record(
    cell: Cell, eval_split: Any, train_split: Any = None, train_ids: list[str] | None = None, validation: Any = None
) -> dict[str, Any]:
    """result.json "data": which examples the cell used (ids hashed, so the report can tell when cells it compares
    used different ones), the rows the data contract dropped (peftsum.data.contract) and what the shared length
    filter and the grouping did."""
    from peftsum.data.load import ids_sha256

    splits = {"train": train_split, "validation": validation, cell.eval.split: eval_split}
    return {
        "rows_dropped": {name: dict(sp.dropped) for name, sp in splits.items() if sp is not None},
        "train_ids_sha256": ids_sha256(train_ids) if train_ids is not None else None,
        "eval_ids_sha256": eval_split.ids_sha256,
        "eval_examples": len(eval_split.examples),
        "eval_rows_grouped": eval_split.grouped_rows,
        "references": cell.eval.references,
        "validation_examples": len(validation.examples) if validation is not None else None,
        "length_filter": None
        if not cell.data.length_filter
        else {
            "tokenizer": cell.data.length_tokenizer,
            "max_total_tokens": cell.data.max_total_tokens,
            "max_length_quantile": cell.data.max_length_quantile,
            "splits": {
                name: {"rows": sp.rows, "dropped": sp.length_dropped, "threshold": sp.length_threshold}
                for name, sp in splits.items()
                if sp is not None
            },
        },
    }


def _predict_without_model(cell: Cell, method: Any, timer: Any, disk: Any) -> Predicted:
    """Model-free baselines (lead): predictions straight from the source text."""
    from peftsum.artifacts import eda
    from peftsum.data.load import load_examples

    with timer.phase("load"):
        split = load_examples(
            cell.dataset, cell.eval.split, cell.eval.limit, cell.data, grouped=cell.eval.references == "grouped"
        )
        examples = split.examples
        disk.loaded()
    with timer.phase("generate"):
        t0 = time.perf_counter()
        predictions = method.predict([e.source for e in examples], method_params(method, cell), cell.dataset.kind)
        seconds = time.perf_counter() - t0
    words = [len(p.split()) for p in predictions]  # "new tokens" of a model-free method: words
    stats = eda(
        [len(e.source.split()) for e in examples],
        [len(e.summary.split()) for e in examples],
        len(examples),
        0,
        "whitespace",
        None,
        split=cell.eval.split,
    )
    return Predicted(examples, predictions, words, seconds, 0, stats, _data_record(cell, split))


def _load_validation(cell: Cell) -> Any:
    """The validation split for train.eval_every; a dataset without one is a spec problem (exit 2, at once)."""
    from peftsum.data.load import MissingSplit, load_examples

    try:
        return load_examples(cell.dataset, "validation", cell.data.validation_limit, cell.data)
    except MissingSplit as err:
        raise SpecError(
            "train.eval_every",
            cell.train.eval_every,
            f"dataset {cell.dataset.name!r} has no validation split to evaluate on ({err}); set "
            f"train.eval_every and train.select_best to off, or give the dataset a validation split",
        ) from None


def _predict_with_model(
    store: Store,
    grid: str,
    cell: Cell,
    method: Any,
    attempt: str,
    started: str,
    timer: Any,
    out: Path,
    metrics: Any,
    nvml_memory: Any,
    checkpointer: Any,
    disk: Any,
    preemption: Preemption,
    tracker: Tracker,
) -> Predicted:
    """Load data and model, apply the method, train (resumably, validating and selecting as configured),
    generate."""
    import torch

    from peftsum.artifacts import eda, save_adapter
    from peftsum.data.features import Encoder
    from peftsum.data.load import load_examples
    from peftsum.generate import generate, generation_budget, resolve_cache
    from peftsum.methods.base import MethodContext
    from peftsum.models.load import load_model
    from peftsum.resources import param_counts
    from peftsum.train import Hooks, TokenLayout, resolve_runtime, teacher_forced_loss, train
    from peftsum.train_plan import make_plan

    cell_id = cell.cell_id
    runtime = resolve_runtime(cell.train)  # the auto settings for this device: precision, fused, compile
    device, precision, fused, autocast = runtime.device, runtime.precision, runtime.fused, runtime.autocast_dtype
    causal = cell.model.family == "causal"
    validating = method.trains and cell.train.eval_every != "off"
    truncate = cell.data.length_filter  # a shared length filter: every model keeps the same training ids

    with timer.phase("load"):
        log(cell_id, f"loading {cell.dataset.name} and {cell.model.name}")
        validation = _load_validation(cell) if validating else None
        train_split = load_examples(cell.dataset, "train", cell.data.train_limit, cell.data) if method.trains else None
        eval_split = load_examples(
            cell.dataset, cell.eval.split, cell.eval.limit, cell.data, grouped=cell.eval.references == "grouped"
        )
        eval_examples = eval_split.examples
        model, tokenizer = load_model(cell.model)
        torch.manual_seed(cell.seed)  # after loading: building a tiny model on first use seeds torch itself
        encoder = Encoder(
            tokenizer,
            cell.model.family,
            cell.dataset.kind,
            cell.model.context,
            cell.data.max_source_tokens,
            cell.data.max_target_tokens,
            cell.eval.max_new_tokens,
        )
        eval_features = encoder.eval(eval_examples)
        train_features = encoder.train(train_split.examples, truncate=truncate) if method.trains else None
        val_features = encoder.train(validation.examples, truncate=truncate) if validating else None
        plan = make_plan(train_features, cell.train, cell.seed, not causal) if method.trains else None
        ctx = MethodContext(cell.model.arch, cell.model.family, plan.total_steps if plan else 0)
        if method.apply is not None:
            model = method.apply(model, method_params(method, cell), ctx)
        if not method.trains:
            for p in model.parameters():
                p.requires_grad_(False)
        trainable, total = param_counts(model)
        model.to(device)
        disk.loaded()

    budget = generation_budget(cell.train.batch_tokens, model, device, num_beams=cell.eval.num_beams)
    cache = resolve_cache(cell.eval.cache, device, cell.eval.num_beams)

    def predict(examples_features: Any) -> Any:
        return generate(
            model,
            tokenizer,
            examples_features.prompt_ids,
            causal=causal,
            max_new_tokens=cell.eval.max_new_tokens,
            num_beams=cell.eval.num_beams,
            device=device,
            autocast_dtype=autocast,
            budget_tokens=budget,
            batch_size=cell.eval.batch_size,
            cache=cache,
        )

    def validate(m: Any) -> dict[str, float | None]:
        """The validation loss (and ROUGE-L on select_best_limit examples when selecting by it)."""
        row: dict[str, float | None] = {
            "val_loss": teacher_forced_loss(m, val_features, tokenizer.pad_token_id, causal, device, autocast)
        }
        if cell.train.select_best == "rougeL":
            from peftsum.scoring import rouge_per_example

            chosen = validation.examples[: cell.train.select_best_limit]
            gen = predict(encoder.eval(chosen))
            rouge = rouge_per_example(gen.predictions, [e.refs for e in chosen], cell.eval.metric_profile)
            row["val_rougeL"] = float(rouge["rougeL"].mean())
        log(cell_id, "validation: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if v is not None))
        return row

    report = None
    if method.trains:
        last = {"t": 0.0}

        def progress(rep: Any, total_steps: int) -> None:
            step, loss = rep.steps, rep.loss_history[-1]
            if nvml_memory is not None:
                nvml_memory.sample()  # device memory peaks during training: sample every step (microseconds)
            if metrics is not None:
                metrics.set("peftsum_train_tokens_total", rep.tokens)
                metrics.set("peftsum_train_loss", loss)
                metrics.set("peftsum_train_progress_ratio", step / total_steps)
            tracker.steps(rep)
            if time.monotonic() - last["t"] >= 5 or step == total_steps:
                last["t"] = time.monotonic()
                layout.write_status(
                    store,
                    grid,
                    cell_id,
                    "running",
                    attempt=attempt,
                    started_at=started,
                    progress=round(0.9 * step / total_steps, 4),
                    step=step,
                    total_steps=total_steps,
                    loss=loss,
                )
                log(cell_id, f"train step {step}/{total_steps} loss {loss:.4f}")

        with timer.phase("train"):
            log(
                cell_id,
                f"training {cell.method.name}: {trainable:,} of {total:,} parameters, {plan.total_steps} "
                f"steps, {train_features.kept} examples ({train_features.dropped} filtered, "
                f"{train_features.truncated} truncated)",
            )
            report = train(
                model,
                train_features,
                plan,
                cell.train,
                runtime,
                TokenLayout(tokenizer.pad_token_id, causal),
                hooks=Hooks(on_step=method.on_step, progress=progress, validate=validate if validating else None),
                checkpointer=checkpointer,
                preemption=preemption,
            )
        if report.best is not None:
            best = report.history[report.best]
            log(
                cell_id,
                f"selected the weights of epoch {best['epoch']:g} (step {best['step']}) by {cell.train.select_best}",
            )
    eval_pairs = encoder.train(eval_examples)  # (source, summary) ids of the scored examples that fit
    test_loss = teacher_forced_loss(model, eval_pairs, tokenizer.pad_token_id, causal, device, autocast)

    fault_point("generate")
    with timer.phase("generate"):
        log(cell_id, f"generating {len(eval_features.ids)} summaries")
        gen = predict(eval_features)
    adapter_bytes = (
        save_adapter(model, out, cell.model, cell.method.type, cell.train.keep_full_weights, tokenizer)
        if method.trains
        else None
    )
    stats_src = train_features or eval_pairs
    stats = eda(
        stats_src.source_lens,
        stats_src.summary_lens,
        stats_src.kept,
        stats_src.dropped,
        cell.model.hub_id,
        encoder.budget,
        split="train" if train_features else cell.eval.split,
    )
    data = _data_record(cell, eval_split, train_split, train_features.ids if train_features else None, validation)
    return Predicted(
        eval_examples,
        gen.predictions,
        gen.new_tokens,
        gen.seconds,
        eval_features.truncated,
        stats,
        data,
        device=device.type,
        precision=precision,
        fused=fused,
        compiled=runtime.compile,
        cache=cache,
        budget=budget,
        report=report,
        train_kept=train_features.kept if train_features else 0,
        train_dropped=train_features.dropped if train_features else 0,
        train_truncated=train_features.truncated if train_features else 0,
        test_loss=test_loss,
        trainable=trainable if method.trains else 0,
        total=total,
        adapter_bytes=adapter_bytes,
    )


def method_params(method: Any, cell: Cell) -> Any:
    """The cell's method parameters as the method's validated params dataclass."""
    from peftsum.spec.fields import build

    return build(method.params, cell.method.params, f"methods.{cell.method.name}")


def _upload(store: Store, grid: str, cell_id: str, attempt: str, out: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = f"attempts/{attempt}/{path.relative_to(out).as_posix()}"
        store.upload(layout.cell_key(grid, cell_id, rel), path)
        files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return files


def provenance() -> dict[str, Any]:
    packages = {}
    for name in ("peftsum", "torch", "transformers", "peft", "datasets", "rouge-score", "sacrebleu"):
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
