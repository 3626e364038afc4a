"""Prompt tuning (Lester et al., 2021): trained soft-prompt embeddings before the input."""

from peftsum.methods.base import MethodDef
from peftsum.methods.virtual_tokens import VirtualTokenParams, input_prompt
from peftsum.methods.wrap import peft_apply


def _config(p, ctx):
    from peft import PromptTuningConfig

    return PromptTuningConfig(**input_prompt(p, ctx))


METHOD = MethodDef(name="prompt", doc="prompt tuning: trained soft-prompt embeddings", params=VirtualTokenParams,
                   apply=peft_apply(_config))
