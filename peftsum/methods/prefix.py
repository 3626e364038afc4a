"""Prefix tuning (Li & Liang, 2021): trained key/value prefixes in every layer."""

from peftsum.methods.base import MethodDef
from peftsum.methods.prompts import VirtualTokenParams
from peftsum.methods.wrap import peft_apply


def _config(p, ctx):
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(task_type=ctx.task_type, num_virtual_tokens=p.num_virtual_tokens)


METHOD = MethodDef(name="prefix", doc="prefix tuning: trained key/value prefixes in every layer",
                   params=VirtualTokenParams, apply=peft_apply(_config))
