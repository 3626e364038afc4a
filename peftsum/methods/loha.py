"""LoHa (Hyeon-Woo et al., 2022): low-rank Hadamard-product updates (LyCORIS)."""

from peftsum.methods.base import CONV1D_REASON, MethodDef
from peftsum.methods.lora import LoraParams
from peftsum.methods.wrap import peft_apply


def _config(p, ctx):
    from peft import LoHaConfig

    return LoHaConfig(task_type=ctx.task_type, r=p.r, alpha=p.alpha, rank_dropout=p.dropout,
                      target_modules=ctx.targets(p.target_modules))


METHOD = MethodDef(name="loha", doc="LoHa: Hadamard product of two low-rank updates", params=LoraParams,
                   apply=peft_apply(_config), incompatible={"gpt2": CONV1D_REASON.format(name="LoHa")})
