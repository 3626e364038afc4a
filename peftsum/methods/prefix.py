"""Prefix tuning (Li & Liang, 2021): trained key/value prefixes in every layer."""

from dataclasses import dataclass

from peftsum.methods.base import MethodDef
from peftsum.methods.virtual_tokens import VirtualTokenParams
from peftsum.methods.wrap import peft_apply
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class PrefixParams(VirtualTokenParams):
    # On by default, unlike peft: the paper trains the prefix through this MLP because optimising it directly is
    # unstable (its §4.3), and on tiny-gpt2 it lifts ROUGE-L from 0.20 to 0.29 (docs/models.md). Only the prefix
    # it produces is saved, so the adapter is the same size either way.
    projection: bool = setting(True, "train the prefix through a two-layer MLP (Li & Liang's reparametrisation)")


def _config(p, ctx):
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(task_type=ctx.task_type, num_virtual_tokens=p.num_virtual_tokens,
                              prefix_projection=p.projection)


METHOD = MethodDef(name="prefix", doc="prefix tuning: trained key/value prefixes in every layer",
                   params=PrefixParams, apply=peft_apply(_config))
