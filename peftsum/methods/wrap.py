"""Wrapping a model with one peft config: the ``apply`` of every peft-backed method.

Kept apart from :mod:`peftsum.methods.base` so the registry and the spec layer never reach peft, even statically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peftsum.methods.base import MethodContext


def peft_apply(make_config: Callable[[Any, MethodContext], Any]) -> Callable[[Any, Any, MethodContext], Any]:
    """Build ``apply`` for a method that is one peft config: wrap the model with ``get_peft_model``."""

    def apply(model: Any, params: Any, ctx: MethodContext) -> Any:
        from peft import get_peft_model

        return get_peft_model(model, make_config(params, ctx))

    return apply
