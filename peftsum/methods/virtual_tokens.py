"""Shared parameters and peft settings of the virtual-token methods (prefix, prompt and P-tuning)."""

from dataclasses import dataclass
from typing import Any

from peftsum.spec.fields import setting


@dataclass(frozen=True)
class VirtualTokenParams:
    num_virtual_tokens: int = setting(20, "virtual tokens prepended to every input", lo=1, hi=512)


def input_prompt(p: VirtualTokenParams, ctx: Any) -> dict[str, Any]:
    """peft settings for soft prompts before the model's input (prompt and P-tuning).

    On an encoder-decoder, peft 0.21 sizes the prompt table for a second, decoder-side set of virtual tokens
    (``num_transformer_submodules=2``) that neither its training forward nor its ``generate`` ever reads: half the
    "trainable" parameters and of the saved adapter were dead weight. One set before the encoder input is Lester et
    al.'s prompt tuning; ``tests/methods/test_every_method_trains.py`` counts the parameters independently.
    """
    return {"task_type": ctx.task_type, "num_virtual_tokens": p.num_virtual_tokens, "num_transformer_submodules": 1}
