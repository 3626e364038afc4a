"""VeRA (Kopiczko et al., 2024): shared frozen random low-rank matrices with trained scaling vectors."""

from dataclasses import dataclass

from peftsum.methods.base import MethodDef
from peftsum.methods.wrap import peft_apply
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class VeraParams:
    r: int = setting(256, "rank of the shared random projections", lo=1, hi=65536)
    dropout: float = setting(0.0, "dropout on the adapter input", lo=0, hi=1, hi_open=True)
    target_modules: tuple[str, ...] | None = setting(None, "module names to adapt; null = per-architecture default")


def _config(p, ctx):
    from peft import VeraConfig

    return VeraConfig(task_type=ctx.task_type, r=p.r, vera_dropout=p.dropout,
                      target_modules=ctx.targets(p.target_modules))


METHOD = MethodDef(name="vera", doc="VeRA: trained scaling vectors around shared frozen random matrices",
                   params=VeraParams, apply=peft_apply(_config))
