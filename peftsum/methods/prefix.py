"""Prefix tuning (Li & Liang, 2021): trained key/value prefixes in every layer."""

from typing import Any

from peftsum.methods.base import MethodDef
from peftsum.methods.prompts import VirtualTokenParams
from peftsum.methods.wrap import peft_apply


def _config(p, ctx):
    from peft import PrefixTuningConfig

    return PrefixTuningConfig(task_type=ctx.task_type, num_virtual_tokens=p.num_virtual_tokens)


def _fix_generation(model: Any) -> Any:
    """Make ``generate`` see the prefix that training saw.

    peft (0.21) hands its prefix to generation as ``past_key_values``, but transformers 5 passes the KV cache as
    ``cache``: the model reads the empty ``cache`` and never sees the prefix, so a prefix-tuned tiny-t5 generated
    exactly its base model's tokens while its training loss used the prefix. On the first decoding step the prefix
    becomes the cache; on later steps the cache already holds it and peft's rebuilt prefix is dropped.
    ``tests/methods/test_generation_matches_forward.py`` checks greedy generation against forward passes.
    """
    inner = model.prepare_inputs_for_generation

    def prepare(*args: Any, **kwargs: Any) -> dict:
        cache = kwargs.get("cache")
        first = kwargs.get("is_first_iteration") or cache is None or cache.get_seq_length() == 0
        out = inner(*args, **kwargs)
        prefix = out.pop("past_key_values", None)
        if first and prefix is not None:
            out["cache"] = prefix
        return out

    model.prepare_inputs_for_generation = prepare
    return model


_wrap = peft_apply(_config)

METHOD = MethodDef(name="prefix", doc="prefix tuning: trained key/value prefixes in every layer",
                   params=VirtualTokenParams, apply=lambda model, p, ctx: _fix_generation(_wrap(model, p, ctx)))
