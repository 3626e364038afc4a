"""P-tuning (Liu et al., 2021): soft prompts produced by a small trained MLP encoder."""

from dataclasses import dataclass

from peftsum.methods.base import MethodDef
from peftsum.methods.virtual_tokens import VirtualTokenParams, input_prompt
from peftsum.methods.wrap import peft_apply
from peftsum.spec.fields import setting


@dataclass(frozen=True)
class PTuningParams(VirtualTokenParams):
    encoder_hidden_size: int = setting(128, "hidden size of the prompt encoder MLP", lo=1, hi=65536)


def _config(p, ctx):
    from peft import PromptEncoderConfig

    return PromptEncoderConfig(**input_prompt(p, ctx), encoder_hidden_size=p.encoder_hidden_size)


METHOD = MethodDef(name="ptuning", doc="P-tuning: soft prompts from a trained MLP encoder", params=PTuningParams,
                   apply=peft_apply(_config))
