"""What a fine-tuning method is: validated parameters, the families it cannot serve (with the reason), and how it
turns a loaded model into the model that trains. Importing this module (or a method module) imports no ML stack:
``apply`` imports peft/torch itself, so ``launcher validate`` can check method parameters without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Modules each adapter targets, per architecture. The generic families fall back to every linear layer.
ATTENTION_TARGETS: dict[str, tuple[str, ...] | str] = {
    "gpt2": ("c_attn",), "t5": ("q", "v"), "bart": ("q_proj", "v_proj"),
    "causal": "all-linear", "seq2seq": "all-linear",
}
# IA3 scales keys, values and the feed-forward output; feedforward_modules must be a subset of target_modules.
IA3_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gpt2": (("c_attn", "mlp.c_proj"), ("mlp.c_proj",)),
    "t5": (("k", "v", "wo"), ("wo",)),
    "bart": (("k_proj", "v_proj", "fc2"), ("fc2",)),
}
TASK_TYPE = {"causal": "CAUSAL_LM", "seq2seq": "SEQ_2_SEQ_LM"}


@dataclass(frozen=True)
class MethodContext:
    """What a method may know about the cell when it is applied."""

    arch: str  # gpt2 | t5 | bart | causal | seq2seq
    family: str  # causal | seq2seq
    total_steps: int  # optimizer steps the run will take (AdaLoRA schedules its rank budget over them)

    @property
    def task_type(self) -> str:
        return TASK_TYPE[self.family]

    def targets(self, override: tuple[str, ...] | None) -> list[str] | str:
        if override:
            return list(override)
        t = ATTENTION_TARGETS[self.arch]
        return t if isinstance(t, str) else list(t)


@dataclass(frozen=True)
class NoParams:
    """Methods without parameters."""


@dataclass(frozen=True)
class MethodDef:
    """One registered fine-tuning method.

    Attributes:
        name: registry name (the grid's ``type``).
        doc: one line for the docs and ``launcher validate``.
        params: frozen settings dataclass of the method's parameters (validated by peftsum.spec.fields).
        apply: ``(model, params, ctx) -> model`` returning the model whose ``requires_grad`` parameters train.
        trains: False for baselines scored as loaded (``none``).
        incompatible: architecture → reason this method cannot serve it (checked at validate time).
        on_step: optional hook after each optimizer step ``(model, step)`` (AdaLoRA reallocates ranks).
        predict: for methods without a model (``lead``): ``(sources, params, kind) -> predictions``. Such a method
            expands to one cell per dataset with ``model: null``.
    """

    name: str
    doc: str
    params: type = NoParams
    apply: Callable[[Any, Any, MethodContext], Any] | None = None
    trains: bool = True
    incompatible: Mapping[str, str] = field(default_factory=dict)
    on_step: Callable[[Any, int], None] | None = None
    predict: Callable[[list[str], Any, str], list[str]] | None = None

    @property
    def needs_model(self) -> bool:
        return self.predict is None


CONV1D_REASON = ("GPT-2 implements its projections as transformers' Conv1D, which peft's {name} layers do not "
                 "support (only nn.Linear / nn.Conv1d / nn.Conv2d)")
