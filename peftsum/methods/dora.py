"""DoRA (Liu et al., 2024): LoRA with the weight split into magnitude and direction."""

from peftsum.methods.base import MethodDef
from peftsum.methods.lora import LoraParams, lora_config
from peftsum.methods.wrap import peft_apply

METHOD = MethodDef(name="dora", doc="DoRA: weight-decomposed LoRA (magnitude + low-rank direction)",
                   params=LoraParams, apply=peft_apply(lambda p, ctx: lora_config(p, ctx, use_dora=True)))
