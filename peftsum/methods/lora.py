"""LoRA (Hu et al., 2021): low-rank updates on the attention projections."""

from dataclasses import dataclass

from peftsum.methods.base import MethodDef
from peftsum.methods.wrap import peft_apply
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class LoraParams:
    r: int = setting(16, "rank of the update", lo=1, hi=4096)
    alpha: float = setting(32.0, "scaling numerator (update scaled by alpha / r)", lo=0, lo_open=True)
    dropout: float = setting(0.05, "dropout on the adapter input", lo=0, hi=1, hi_open=True)
    target_modules: tuple[str, ...] | None = setting(None, "module names to adapt; null = per-architecture default")


def lora_config(p: LoraParams, ctx, **extra):
    """The LoraConfig shared by LoRA and DoRA."""
    from peft import LoraConfig

    return LoraConfig(task_type=ctx.task_type, r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
                      target_modules=ctx.targets(p.target_modules), **extra)


METHOD = MethodDef(name="lora", doc="LoRA: low-rank updates of the attention projections", params=LoraParams,
                   apply=peft_apply(lora_config))
