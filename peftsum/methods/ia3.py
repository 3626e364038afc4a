"""IA3 (Liu et al., 2022): learned rescaling of keys, values and feed-forward activations."""

from peftsum.methods.base import IA3_TARGETS, MethodDef
from peftsum.methods.wrap import peft_apply


def _config(p, ctx):
    from peft import IA3Config

    targets, feedforward = IA3_TARGETS.get(ctx.arch, (None, None))
    return IA3Config(task_type=ctx.task_type, target_modules=targets and list(targets),
                     feedforward_modules=feedforward and list(feedforward))


METHOD = MethodDef(name="ia3", doc="IA3: learned scaling vectors on keys, values and feed-forward",
                   apply=peft_apply(_config))
