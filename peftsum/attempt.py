"""One attempt at a cell, after ``peftsum.cell.run_cell`` has begun it: predict (``peftsum.predict``), score,
write the attempt's files (predictions.jsonl, eda.json, result.json built through ``peftsum.result``, the model
cards), upload them and commit ``_SUCCESS`` (first writer wins)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftsum import result as schema
from peftsum.preempt import Preemption
from peftsum.spec import Cell, SpecError
from peftsum.store import Store, StoreError, layout
from peftsum.store.base import sha256_file
from peftsum.tracking import Tracker

if TYPE_CHECKING:
    from peftsum.checkpoint import Checkpointer
    from peftsum.predict import Predicted
    from peftsum.resources import DiskMeter, NvmlMemory, PhaseTimer
    from peftsum.telemetry import CellMetrics


def log(cell_id: str, msg: str) -> None:
    print(f"[cell {cell_id}] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quietly(cell_id: str) -> Iterator[None]:
    """Best-effort cleanup: a store error is logged, not raised (the cell's outcome is already decided)."""
    try:
        yield
    except StoreError as err:
        log(cell_id, f"cleanup failed: {err}")


@dataclass
class Attempt:
    """What the steps of one attempt share: where it writes, what it measures, how a signal ends it."""

    store: Store
    grid: str
    cell: Cell
    attempt_id: str
    started: str  # ISO-8601 start: status.json's started_at, result.json's provenance.started_at
    out: Path  # the attempt's files, uploaded at the end
    timer: PhaseTimer
    disk: DiskMeter
    nvml_memory: NvmlMemory
    checkpointer: Checkpointer
    preemption: Preemption
    tracker: Tracker
    telemetry: CellMetrics | None  # kept current (pushed or scraped by the caller)

    def log(self, msg: str) -> None:
        log(self.cell.cell_id, msg)

    def running(self, **fields: Any) -> None:
        """Report progress in status.json."""
        layout.write_status(self.store, self.grid, self.cell.cell_id, "running", attempt=self.attempt_id,
                            started_at=self.started, **fields)


def execute(
    store: Store, grid: str, cell: Cell, attempt: str, started: str, workdir: Path, telemetry: CellMetrics | None,
    preemption: Preemption, tracker: Tracker,
) -> dict | None:
    """Run the attempt in ``workdir``; its result, or None when another attempt committed first."""
    from peftsum import scoring
    from peftsum.artifacts import write_jsonl, write_model_cards
    from peftsum.checkpoint import Checkpointer
    from peftsum.methods import METHODS
    from peftsum.predict import predict_with_model, predict_without_model
    from peftsum.resources import DiskMeter, EnergyMeter, NvmlMemory, PhaseTimer, gpu_peak_bytes, hf_caches
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

    if telemetry is not None:

        def sample(m: Any) -> None:  # read at every push/scrape
            m.series("peftsum_phase_duration_seconds", timer.seconds)
            m.set("peftsum_gpu_energy_joules_total", energy.read())
            if method.needs_model:
                m.series("peftsum_gpu_memory_peak_bytes", {"torch": gpu_peak_bytes(), "nvml": nvml_memory.sample()})

        telemetry.sample = sample
    out = workdir / "attempt"
    out.mkdir()
    att = Attempt(store, grid, cell, attempt, started, out, timer, disk, nvml_memory, checkpointer, preemption,
                  tracker, telemetry)
    if method.needs_model:
        if cell.model is None:
            raise SpecError("model", None, f"method {cell.method.type!r} needs a model")
        pred = predict_with_model(att, method)
    else:
        pred = predict_without_model(cell, method, timer, disk)
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
    result = _result(att, method.needs_model, pred, scores, energy.read, wall)
    with timer.phase("upload"):
        result = schema.finite(result)
        (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True, allow_nan=False))
        write_model_cards(out, result)  # README.md in adapter/ and model/: needs the scores
        files = upload(store, grid, cell_id, attempt, out)
        disk.sample()
    with preemption.deferred():  # a signal here waits: _SUCCESS is written, or not, never half-decided
        if not layout.commit_success(store, grid, cell_id, attempt, files):
            return None
    if not cell.train.keep_checkpoints:
        with quietly(cell_id):
            checkpointer.clear()
    return result


def _result(
    att: Attempt, with_model: bool, pred: Predicted, scores: Any, energy: Callable[[], float | None],
    wall: Callable[[], float],
) -> schema.Result:
    """result.json of the attempt; ``with_model``: the method ran a model (its device memory and GPU are recorded)."""
    from peftsum import scoring
    from peftsum.artifacts import base_provenance
    from peftsum.resources import gpu_info, gpu_peak_bytes, peak_rss_bytes

    cell, report = att.cell, pred.report
    if report is None:
        train = schema.make_train_stats(test_loss=pred.test_loss)
    else:
        selected, best = report.selected, report.best
        train = schema.make_train_stats(
            seconds=report.seconds,
            tokens=report.tokens,
            padding_ratio=1 - report.tokens / report.padded_tokens if report.padded_tokens else None,
            batch_shapes=report.shapes,
            compiled_graphs=report.compiled_graphs,
            epochs=cell.train.epochs,
            steps=report.steps,
            resumed_from_step=report.resumed_from_step,
            examples=pred.train_kept,
            examples_dropped=pred.train_dropped,
            examples_truncated=pred.train_truncated,
            first_train_loss=report.first_train_loss,
            final_train_loss=report.final_train_loss,
            eval_loss=selected["val_loss"] if selected else None,
            test_loss=pred.test_loss,
            history=report.history,
            best_epoch=report.history[best]["epoch"] if best is not None else None,
        )
    return schema.make_result(
        cell_id=cell.cell_id,
        grid=att.grid,
        spec=cell.to_dict(),
        metrics=scores,
        metric_profile=scoring.metric_profile(cell.eval.metric_profile),
        train=train,
        generate=schema.make_generate_stats(
            seconds=pred.generate_seconds,
            new_tokens=sum(pred.new_tokens),
            examples=len(pred.predictions),
            truncated_sources=pred.truncated,
        ),
        data=pred.data,
        resources=schema.make_resources(
            gpu_peak_bytes=gpu_peak_bytes() if with_model else None,
            gpu_nvml_peak_bytes=att.nvml_memory.sample() if with_model else None,
            ram_peak_bytes=peak_rss_bytes(),
            energy_joules=energy(),
            trainable_params=pred.trainable,
            total_params=pred.total,
            adapter_bytes=pred.adapter_bytes,
            checkpoint_bytes=report.checkpoint_bytes or None if report else None,
            phase_seconds=att.timer.seconds,
            wall_seconds=wall(),
            disk_peak_bytes=att.disk.peak,
        ),
        provenance=schema.make_provenance(
            **schema.environment(),
            gpu_name=gpu_info()["gpu_name"] if with_model else None,
            device=pred.device,
            precision=pred.precision,
            fused_optimizer=pred.fused,
            compiled=pred.compiled,
            generation_cache=pred.cache,
            generation_budget_tokens=pred.budget,
            seed=cell.seed,
            started_at=att.started,
            finished_at=layout.now_iso(),
            attempt=att.attempt_id,
            **base_provenance(cell.model),  # the public id the adapter records; the staged URI it was loaded from
        ),
    )


def upload(store: Store, grid: str, cell_id: str, attempt: str, out: Path) -> dict[str, dict[str, Any]]:
    """Upload every file under ``out`` into the attempt's folder; the ``_SUCCESS`` manifest of what was sent."""
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = f"attempts/{attempt}/{path.relative_to(out).as_posix()}"
        store.upload(layout.cell_key(grid, cell_id, rel), path)
        files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    return files
