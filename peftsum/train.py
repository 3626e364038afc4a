"""The one training loop every method uses: read it top to bottom.

Own loop rather than HF Trainer: token-budget batches, a data position that is just the step counter (exact
resume), store-backed checkpoints (one more when training ends, holding the weights generation will use, so a
cell preempted after training resumes at generation), SIGTERM handling and one place where tokens/s and padding
are counted. With ``train.eval_every`` the loop computes the validation loss at each epoch end (or every N
steps) and at the last step; with ``train.select_best`` it keeps the best weights so far (in every checkpoint too)
and leaves the model holding them, as the study's ``load_best_model_at_end`` did.

``train`` takes what it needs as objects: the plan (``peftsum.train_plan``), the resolved ``Runtime``, the model's
``TokenLayout``, the caller's ``Hooks``, and optionally a ``Checkpointer`` (which owns resuming and saving the
training state) and the cell's ``Preemption``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from peftsum.batching import collate, compile_room
from peftsum.data.features import TrainFeatures
from peftsum.preempt import Preempted, Preemption, fault_point
from peftsum.spec.settings import TrainSettings
from peftsum.train_plan import TrainPlan

if TYPE_CHECKING:  # the store layer is only needed by callers that checkpoint (peftsum bench does not)
    from peftsum.checkpoint import Checkpointer

__all__ = ["Preempted", "train"]  # Preempted lives in peftsum.preempt; re-exported for callers of the loop


@dataclass(frozen=True)
class Runtime:
    """How a cell runs on its device: the ``auto`` settings resolved (recorded in the result's provenance)."""

    device: torch.device
    precision: str  # fp32 | bf16
    fused: bool  # fused AdamW kernel
    compile: bool  # torch.compile the training forward/backward
    compile_backend: str = "inductor"  # torch.compile's backend (tests count recompiles with the cheap aot_eager)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.precision == "bf16" else None


def resolve_runtime(settings: TrainSettings, device: torch.device | None = None) -> Runtime:
    """Resolve ``precision``/``fused_optimizer``/``compile`` = auto for ``device`` (default: CUDA if present).

    auto = bf16 autocast on CUDA, fp32 on CPU; fused AdamW on both (on CPU ~3x faster than the foreach kernel);
    torch.compile on CUDA when the batches come from a shape ladder (``shape_buckets``, the fast preset), so it
    compiles once per shape: without one, token-budget batches of ever new shapes kept an H200 compiling for over
    170 s (docs/performance.md). Off on CPU, where inductor's compile time (minutes for GPT-2 small on two cores)
    outweighs what a cell trains. fp16 is never chosen: T5 overflows in it.
    """
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    precision = settings.precision if settings.precision != "auto" else ("bf16" if cuda else "fp32")
    fused = settings.fused_optimizer == "on" or (settings.fused_optimizer == "auto" and device.type in ("cuda", "cpu"))
    laddered = bool(settings.shape_buckets and settings.group_by_length)
    compiled = settings.compile == "on" or (settings.compile == "auto" and cuda and laddered)
    return Runtime(device, precision, fused, compiled)


@dataclass
class TrainReport:
    seconds: float = 0.0
    tokens: int = 0  # real (non-padding) tokens processed, encoder + decoder
    padded_tokens: int = 0
    steps: int = 0
    resumed_from_step: int | None = None
    loss_history: list[float] = field(default_factory=list)  # mean loss per optimizer step
    checkpoint_bytes: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per evaluation (result.json train.history)
    best: int | None = None  # index into history of the selected evaluation (select_best), else None
    shapes: int = 0  # distinct padded micro-batch shapes the planned steps feed the model
    compiled_graphs: int | None = None  # graphs torch.compile built during this attempt; None when not compiled

    @property
    def first_train_loss(self) -> float | None:
        return self.loss_history[0] if self.loss_history else None

    @property
    def final_train_loss(self) -> float | None:
        tail = self.loss_history[-10:]
        return sum(tail) / len(tail) if tail else None

    @property
    def selected(self) -> dict[str, Any] | None:
        """The evaluation whose weights the model holds: the best one, or the last one without selection."""
        if self.best is not None:
            return self.history[self.best]
        return self.history[-1] if self.history else None


# What each select_best criterion reads from an evaluation, and whether larger is better.
CRITERIA = {"eval_loss": ("val_loss", False), "rougeL": ("val_rougeL", True)}


def is_better(criterion: str, row: dict[str, Any], best: dict[str, Any] | None) -> bool:
    """Strictly better than the best so far (ties keep the earlier evaluation, as HF's Trainer does)."""
    key, larger = CRITERIA[criterion]
    if row.get(key) is None:
        return False
    if best is None or best.get(key) is None:
        return True
    return row[key] > best[key] if larger else row[key] < best[key]


def _lr_lambda(settings: TrainSettings, total: int) -> Callable[[int], float]:
    warmup = int(settings.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if settings.lr_scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if settings.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


@dataclass(frozen=True)
class TokenLayout:
    """How the model's batches are laid out: the pad token, and whether the labels are the inputs (causal) or a
    separate decoder sequence (seq2seq)."""

    pad_id: int
    causal: bool


@dataclass(frozen=True)
class Hooks:
    """What the caller runs inside the loop; each is optional."""

    on_step: Callable[[Any, int], None] | None = None  # the method's, after each optimizer step: (model, step)
    progress: Callable[[TrainReport, int], None] | None = None  # after each step: (report, total steps)
    validate: Callable[[Any], dict[str, float | None]] | None = None  # at the eval steps: model -> {"val_loss": …}


def _adamw(params: dict[str, torch.nn.Parameter], settings: TrainSettings, fused: bool) -> torch.optim.AdamW:
    """AdamW with weight decay only on tensors of two or more dimensions (not biases and norms)."""
    decay = [p for p in params.values() if p.ndim >= 2]
    no_decay = [p for p in params.values() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
        fused=fused or None,
    )


def _compiled(model: Any, runtime: Runtime, shapes: int) -> tuple[Any, contextlib.AbstractContextManager]:
    """The forward to train with, and the dynamo options to run it under: ``model`` itself unless compiling."""
    if not runtime.compile:
        return model, contextlib.nullcontext()
    # transformers' warning_once (an unrecognised loss_type, on every forward) would break the graph in two.
    quiet = {f for f in [getattr(logging.Logger, "warning_once", None)] if f is not None}
    patch = compile_room(shapes, ignore_logging_functions=quiet)
    return torch.compile(model, backend=runtime.compile_backend), patch  # shares the parameters


def _graphs() -> int:
    """Graphs torch.compile has built in this process."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def train(
    model: Any,
    features: TrainFeatures,
    plan: TrainPlan,
    settings: TrainSettings,
    runtime: Runtime,
    layout: TokenLayout,
    *,
    hooks: Hooks | None = None,
    checkpointer: Checkpointer | None = None,
    preemption: Preemption | None = None,
) -> TrainReport:
    """Train ``model`` in place for ``plan.total_steps`` optimizer steps, resuming from ``checkpointer``'s latest
    checkpoint (none: no checkpoints, as in peftsum bench and pretraining).

    With ``runtime.compile`` the forward (and, through AOTAutograd, the backward) runs under ``torch.compile`` with
    torch's automatic dynamic shapes: the first shape compiles static, the first different one recompiles with
    symbolic batch and length, and that graph serves every later shape. Measured on tiny-gpt2 over a 16-shape
    ladder: 2 graphs, against 16 when compiling static per shape, at 40% of the compile time (docs/performance.md);
    the recompile limit is raised to the plan's shapes + 2 so that a model whose graph cannot go dynamic still
    compiles per shape, never falling back to eager.
    ``hooks.validate(model)`` runs at the steps ``plan.eval_steps(settings.eval_every)`` names; with
    ``settings.select_best`` the model ends holding the weights of the best evaluation.
    ``preemption`` (the cell's): a stop requested during a step waits for the step to end, then a checkpoint is
    written and Preempted raised.
    """
    hooks = hooks or Hooks()
    device, autocast, causal = runtime.device, runtime.autocast_dtype, layout.causal
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = _adamw(params, settings, runtime.fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(settings, plan.total_steps))
    if settings.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()

    report = TrainReport(shapes=len(plan.shapes(features.input_ids, features.labels, causal)))
    resumed = checkpointer.resume(params, optimizer, scheduler, report) if checkpointer else None
    if resumed is not None and resumed.trained:  # training had ended: these are the weights to generate with
        model.eval()
        return report
    step = resumed.step if resumed else 0
    best_weights = resumed.best if resumed else None  # the best evaluation's trainable weights, on the CPU

    eval_at = set(plan.eval_steps(settings.eval_every)) if hooks.validate is not None else set()

    # SIGTERM (pod preemption) and SIGINT (Ctrl-C on launcher run) finish the step, checkpoint and exit 3.
    preemption = preemption or Preemption()  # without the cell's: signals keep their handlers (bench, pretrain)
    model.train()
    forward, compiling = _compiled(model, runtime, report.shapes)
    graphs_before = _graphs() if runtime.compile else 0
    last_ckpt = time.monotonic()
    with preemption.deferred(), compiling:
        while step < plan.total_steps:
            t0 = time.perf_counter()
            micro = plan.micro_batches(step)
            step_loss = torch.zeros((), device=device)
            for indices, shape in micro:
                cpu_batch = collate(indices, features.input_ids, features.labels, layout.pad_id, causal, shape=shape)
                # Counted on the host: no device sync per micro-batch (one .item() per step, below).
                report.tokens += sum(len(features.input_ids[i]) for i in indices) + (
                    0 if causal else sum(len(features.labels[i]) for i in indices)
                )
                report.padded_tokens += cpu_batch["input_ids"].numel() + (0 if causal else cpu_batch["labels"].numel())
                batch = {k: v.to(device, non_blocking=True) for k, v in cpu_batch.items()}
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    loss = forward(**batch).loss / len(micro)
                loss.backward()
                step_loss += loss.detach()
            if settings.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params.values(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            if hooks.on_step is not None:
                hooks.on_step(model, step)
            optimizer.zero_grad(set_to_none=True)
            step += 1
            report.steps = step
            fault_point("step", step)
            report.loss_history.append(step_loss.item())
            report.seconds += time.perf_counter() - t0
            if hooks.progress is not None:
                hooks.progress(report, plan.total_steps)
            evaluated = step in eval_at
            if evaluated:
                since = report.history[-1]["step"] if report.history else 0
                losses = report.loss_history[since:step]
                row = {
                    "epoch": plan.epoch_at(step),
                    "step": step,
                    "train_loss": sum(losses) / len(losses),
                    **hooks.validate(model),
                }
                model.train()
                best_row = report.history[report.best] if report.best is not None else None
                if settings.select_best != "off" and is_better(settings.select_best, row, best_row):
                    report.best = len(report.history)
                    best_weights = {n: p.detach().to("cpu", copy=True) for n, p in params.items()}
                report.history.append(row)
            if checkpointer is not None and step < plan.total_steps:
                due = (
                    evaluated
                    or (settings.checkpoint_every_steps and step % settings.checkpoint_every_steps == 0)
                    or (
                        settings.checkpoint_every_seconds
                        and time.monotonic() - last_ckpt >= settings.checkpoint_every_seconds
                    )
                )
                if due or preemption.stop_requested:
                    report.checkpoint_bytes = checkpointer.save_training(
                        step, params, optimizer, scheduler, report, best_weights
                    )
                    last_ckpt = time.monotonic()
                if preemption.stop_requested:
                    raise Preempted(f"signalled at step {step}; checkpoint written")
        report.steps = step
        if runtime.compile:
            report.compiled_graphs = _graphs() - graphs_before
        if best_weights is not None:  # select_best: generate with the best evaluation's weights
            with torch.no_grad():
                for name, tensor in best_weights.items():
                    params[name].copy_(tensor)
        if checkpointer is not None:  # the weights to generate with
            report.checkpoint_bytes = checkpointer.save_training(
                step, params, optimizer, scheduler, report, best_weights, trained=True
            )
    if preemption.stop_requested:
        raise Preempted(f"signalled at step {step}, after training; the trained weights are checkpointed")
    model.eval()
    return report


def teacher_forced_loss(
    model: Any,
    features: TrainFeatures | None,
    pad_id: int,
    causal: bool,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    batch: int = 32,
) -> float | None:
    """Token-weighted mean loss of ``model`` on ``features`` (validation, or the scored test examples); None if
    there are none. Leaves the model in eval mode."""
    if features is None or not features.input_ids:
        return None
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(features.input_ids), batch):
            idx = list(range(start, min(start + batch, len(features.input_ids))))
            cpu_batch = collate(idx, features.input_ids, features.labels, pad_id, causal)
            inputs = {k: v.to(device) for k, v in cpu_batch.items()}
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                loss = model(**inputs).loss
            n = int((cpu_batch["labels"] != -100).sum())  # tokens the mean loss was taken over
            total += float(loss) * n
            count += n
    return total / count if count else None

