"""AdaLoRA (Zhang et al., 2023): LoRA whose rank budget is reallocated during training."""

from dataclasses import dataclass

from peftsum.methods.base import MethodDef
from peftsum.methods.wrap import peft_apply
from peftsum.spec.errors import SpecError
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class AdaLoraParams:
    init_r: int = setting(12, "initial rank of every adapted matrix", lo=1, hi=4096)
    target_r: int = setting(8, "average rank after budget reallocation", lo=1, hi=4096)
    alpha: float = setting(32.0, "scaling numerator", lo=0, lo_open=True)
    dropout: float = setting(0.05, "dropout on the adapter input", lo=0, hi=1, hi_open=True)
    target_modules: tuple[str, ...] | None = setting(None, "module names to adapt; null = per-architecture default")

    def __post_init__(self) -> None:
        if self.target_r > self.init_r:
            raise SpecError("target_r", self.target_r, f"must not exceed init_r ({self.init_r})")


def _config(p, ctx):
    from peft import AdaLoraConfig

    # Prune during the middle of training: peft requires tinit + tfinal < total_step.
    total = max(ctx.total_steps, 3)
    return AdaLoraConfig(task_type=ctx.task_type, init_r=p.init_r, target_r=p.target_r, lora_alpha=p.alpha,
                         lora_dropout=p.dropout, target_modules=ctx.targets(p.target_modules), total_step=total,
                         tinit=total // 10, tfinal=total // 5, deltaT=max(1, total // 20))


def _on_step(model, step: int) -> None:
    model.base_model.update_and_allocate(step)


METHOD = MethodDef(name="adalora", doc="AdaLoRA: LoRA with a rank budget reallocated during training",
                   params=AdaLoraParams, apply=peft_apply(_config), on_step=_on_step)
