"""The setup a cell and ``peftsum bench`` share between loading a base model and training it.

Both must run a model exactly as a grid cell runs it, or the benchmark measures something no cell does: the
``auto`` settings resolved for the device, the batches planned over the training features, the method applied to
the seeded model with its validated parameters, and the model moved to the device. :func:`prepare` is that one
path; what differs stays with the callers: the cell loads real data and pretrained weights, the bench synthetic
data and (on CUDA) random-init weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the ML stack is imported only when a cell or the bench prepares a model
    import torch

    from peftsum.data.features import TrainFeatures
    from peftsum.methods.base import MethodDef
    from peftsum.spec import Cell
    from peftsum.spec.settings import TrainSettings
    from peftsum.train import Runtime
    from peftsum.train_plan import TrainPlan


@dataclass(frozen=True)
class Prepared:
    """A model ready to train (or to score as loaded) and how it runs."""

    model: Any  # the base model with the method applied, on runtime.device
    method: MethodDef
    runtime: Runtime  # device, precision, fused optimizer, compile: the auto settings resolved
    plan: TrainPlan | None  # the planned batches; None when the method does not train
    trainable: int  # parameters with requires_grad (0 for a method that does not train: its model is frozen)
    total: int  # all parameters of the adapted model


def method_params(method: MethodDef, cell: Cell) -> Any:
    """The cell's method parameters as the method's validated params dataclass."""
    from peftsum.spec.fields import build

    return build(method.params, cell.method.params, f"methods.{cell.method.name}")


def prepare(
    cell: Cell,
    model: Any,
    train_features: TrainFeatures | None,
    *,
    settings: TrainSettings | None = None,
    device: torch.device | None = None,
) -> Prepared:
    """Resolve the runtime, plan the batches, apply the cell's method and move the model to the device.

    Args:
        cell: the resolved cell (its model, method and seed).
        model: the loaded base model, on the CPU in fp32.
        train_features: what the model trains on; ignored (no plan) when the method does not train.
        settings: the train settings to run under (default ``cell.train``; the bench shortens them).
        device: where to run (default: CUDA when available, as a cell runs).
    """
    import torch

    from peftsum.methods import METHODS
    from peftsum.methods.base import MethodContext
    from peftsum.resources import param_counts
    from peftsum.train import resolve_runtime
    from peftsum.train_plan import make_plan

    settings = settings or cell.train
    method = METHODS.get(cell.method.type)
    runtime = resolve_runtime(settings, device)
    seq2seq = cell.model.family != "causal"
    plan = make_plan(train_features, settings, cell.seed, seq2seq) if method.trains else None
    torch.manual_seed(cell.seed)  # after loading: building a tiny model on first use seeds torch itself
    if method.apply is not None:
        ctx = MethodContext(cell.model.arch, cell.model.family, plan.total_steps if plan else 0)
        model = method.apply(model, method_params(method, cell), ctx)
    if not method.trains:
        for p in model.parameters():
            p.requires_grad_(False)
    trainable, total = param_counts(model)
    model.to(runtime.device)
    return Prepared(model, method, runtime, plan, trainable, total)
