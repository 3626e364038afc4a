"""Load a model and its tokenizer for a cell: hub id, local path, or a built-in tiny model, one code path."""

from __future__ import annotations

from typing import Any

from peftsum.spec.cell import ModelRef


def resolve_path(ref: ModelRef) -> str:
    """What to hand to ``from_pretrained``: the hub id or path, or the cache folder of a built-in tiny model."""
    if ref.hub_id.startswith("builtin:"):
        from peftsum.models.tiny import ensure_tiny

        return str(ensure_tiny(ref.hub_id.removeprefix("builtin:")))
    if ref.hub_id.startswith("s3://"):
        raise NotImplementedError(f"{ref.hub_id}: loading models from s3:// needs the S3 store backend")
    return ref.hub_id


def load_model(ref: ModelRef) -> tuple[Any, Any]:
    """(model in fp32 on CPU, tokenizer). The trainer moves it to the device and picks the compute dtype."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    path = resolve_path(ref)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=ref.revision)
    if tokenizer.pad_token is None:  # GPT-2 ships without one
        tokenizer.pad_token = tokenizer.eos_token
    cls = AutoModelForCausalLM if ref.family == "causal" else AutoModelForSeq2SeqLM
    model = cls.from_pretrained(path, revision=ref.revision, dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
