"""The model-specific half of a cell: from the spec to its predictions on the evaluation split.

With a model: load data and model, prepare them (``peftsum.prepare``), train (resumably, validating and selecting
as configured), generate. Model-free baselines (``lead``): predictions straight from the source text. Either way
the common tail (``peftsum.attempt``) scores, writes and commits what :class:`Predicted` holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peftsum.preempt import fault_point
from peftsum.prepare import method_params, prepare
from peftsum.result import DataStats, make_data_stats
from peftsum.spec import Cell, SpecError

if TYPE_CHECKING:
    from peftsum.attempt import Attempt


@dataclass
class Predicted:
    """What the model-specific half of a cell hands to the common tail (score, write, commit)."""

    examples: list  # evaluation Examples, in order (grouped: one per source, with all its references)
    predictions: list[str]
    new_tokens: list[int]
    generate_seconds: float
    truncated: int  # evaluation sources cut to fit the context
    eda: dict[str, Any]
    data: DataStats  # result.json "data": ids hashes, length filter, grouping
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


def data_record(
    cell: Cell, eval_split: Any, train_split: Any = None, train_ids: list[str] | None = None, validation: Any = None
) -> DataStats:
    """result.json "data": which examples the cell used (ids hashed, so the report can tell when cells it compares
    used different ones), the rows the data contract dropped (peftsum.data.contract) and what the shared length
    filter and the grouping did."""
    from peftsum.data.load import ids_sha256

    splits = {"train": train_split, "validation": validation, cell.eval.split: eval_split}
    return make_data_stats(
        rows_dropped={name: dict(sp.dropped) for name, sp in splits.items() if sp is not None},
        train_ids_sha256=ids_sha256(train_ids) if train_ids is not None else None,
        eval_ids_sha256=eval_split.ids_sha256,
        eval_examples=len(eval_split.examples),
        eval_rows_grouped=eval_split.grouped_rows,
        references=cell.eval.references,
        validation_examples=len(validation.examples) if validation is not None else None,
        length_filter=None
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
    )


def predict_without_model(cell: Cell, method: Any, timer: Any, disk: Any) -> Predicted:
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
    return Predicted(examples, predictions, words, seconds, 0, stats, data_record(cell, split))


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


def predict_with_model(att: Attempt, method: Any) -> Predicted:
    """Load data and model, apply the method, train (resumably, validating and selecting as configured),
    generate."""
    from peftsum.artifacts import eda, save_adapter
    from peftsum.data.features import Encoder
    from peftsum.data.load import load_examples
    from peftsum.generate import generate, generation_budget, resolve_cache
    from peftsum.models.load import load_model
    from peftsum.train import Hooks, TokenLayout, teacher_forced_loss, train

    cell, timer, telemetry, nvml_memory = att.cell, att.timer, att.telemetry, att.nvml_memory
    causal = cell.model.family == "causal"
    validating = method.trains and cell.train.eval_every != "off"
    truncate = cell.data.length_filter  # a shared length filter: every model keeps the same training ids

    with timer.phase("load"):
        att.log(f"loading {cell.dataset.name} and {cell.model.name}")
        validation = _load_validation(cell) if validating else None
        train_split = load_examples(cell.dataset, "train", cell.data.train_limit, cell.data) if method.trains else None
        eval_split = load_examples(
            cell.dataset, cell.eval.split, cell.eval.limit, cell.data, grouped=cell.eval.references == "grouped"
        )
        eval_examples = eval_split.examples
        model, tokenizer = load_model(cell.model)
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
        ready = prepare(cell, model, train_features)  # the auto settings for this device: precision, fused, compile
        model, runtime, plan, trainable, total = ready.model, ready.runtime, ready.plan, ready.trainable, ready.total
        att.disk.loaded()

    device, precision, fused, autocast = runtime.device, runtime.precision, runtime.fused, runtime.autocast_dtype
    checkpointer, preemption = att.checkpointer, att.preemption
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
        att.log("validation: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if v is not None))
        return row

    report = None
    if method.trains:
        last = {"t": 0.0}

        def progress(rep: Any, total_steps: int) -> None:
            step, loss = rep.steps, rep.loss_history[-1]
            if nvml_memory is not None:
                nvml_memory.sample()  # device memory peaks during training: sample every step (microseconds)
            if telemetry is not None:
                telemetry.set("peftsum_train_tokens_total", rep.tokens)
                telemetry.set("peftsum_train_loss", loss)
                telemetry.set("peftsum_train_progress_ratio", step / total_steps)
            att.tracker.steps(rep)
            if time.monotonic() - last["t"] >= 5 or step == total_steps:
                last["t"] = time.monotonic()
                att.running(progress=round(0.9 * step / total_steps, 4), step=step, total_steps=total_steps,
                            loss=loss)
                att.log(f"train step {step}/{total_steps} loss {loss:.4f}")

        with timer.phase("train"):
            att.log(
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
            att.log(
                f"selected the weights of epoch {best['epoch']:g} (step {best['step']}) by {cell.train.select_best}",
            )
    eval_pairs = encoder.train(eval_examples)  # (source, summary) ids of the scored examples that fit
    test_loss = teacher_forced_loss(model, eval_pairs, tokenizer.pad_token_id, causal, device, autocast)

    fault_point("generate")
    with timer.phase("generate"):
        att.log(f"generating {len(eval_features.ids)} summaries")
        gen = predict(eval_features)
    adapter_bytes = (
        save_adapter(model, att.out, cell.model, cell.method.type, cell.train.keep_full_weights, tokenizer)
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
    data = data_record(cell, eval_split, train_split, train_features.ids if train_features else None, validation)
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
