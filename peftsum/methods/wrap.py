"""Wrapping a model with one peft config: the ``apply`` of every peft-backed method.

Kept apart from :mod:`peftsum.methods.base` so the registry and the spec layer never reach peft, even statically.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from peftsum.methods.base import MethodContext


def peft_apply(make_config: Callable[[Any, MethodContext], Any]) -> Callable[[Any, Any, MethodContext], Any]:
    """Build ``apply`` for a method that is one peft config: wrap the model with ``get_peft_model``."""

    def apply(model: Any, params: Any, ctx: MethodContext) -> Any:
        from peft import get_peft_model

        wrapped = get_peft_model(model, make_config(params, ctx))
        return _generation_sees_the_cache(wrapped) if wrapped.active_peft_config.is_prompt_learning else wrapped

    return apply


def _generation_sees_the_cache(model: Any) -> Any:
    """Let peft's prompt-learning generation find the KV cache that transformers 5 passes as ``cache``.

    peft (0.21) looks for the cache under ``past_key_values``. Not finding it, it injected the virtual tokens again
    at every decoding step (prompt tuning, P-tuning) and handed prefix tuning's prefix over under a key the model
    ignores (a prefix-tuned tiny-t5 generated exactly its base model's tokens). Inside peft's
    ``prepare_inputs_for_generation`` the cache is shown under the old name and handed back under the new one; with
    a transformers that still says ``past_key_values`` nothing changes.
    ``tests/methods/test_generation_matches_forward.py`` checks cached generation against forward passes.
    """
    base_prepare, peft_prepare = model.base_model_prepare_inputs_for_generation, model.prepare_inputs_for_generation
    inside = {"peft": False}

    @functools.wraps(base_prepare)
    def base(*args: Any, **kwargs: Any) -> dict:
        out = base_prepare(*args, **kwargs)
        if inside["peft"] and "cache" in out and "past_key_values" not in out:
            out["past_key_values"] = out.pop("cache")
        return out

    @functools.wraps(peft_prepare)
    def prepare(*args: Any, **kwargs: Any) -> dict:
        inside["peft"] = True
        try:
            out = peft_prepare(*args, **kwargs)
        finally:
            inside["peft"] = False
        if "past_key_values" in out and "cache" not in out:
            out["cache"] = out.pop("past_key_values")
        return out

    model.base_model_prepare_inputs_for_generation, model.prepare_inputs_for_generation = base, prepare
    return model
