"""Load a model and its tokenizer for a cell: hub id, local path, or a built-in tiny model, one code path."""

from __future__ import annotations

from typing import Any

from peftsum.spec.cell import ModelRef


def resolve_path(hub_id: str) -> str:
    """What to hand to ``from_pretrained`` for a model's ``hub_id``: the hub id or path itself, or a cache folder
    (built-in tiny model, s3:// copy)."""
    if hub_id.startswith("builtin:"):
        from peftsum.models.tiny import ensure_tiny

        return str(ensure_tiny(hub_id.removeprefix("builtin:")))
    if hub_id.startswith("s3://"):  # staged by `launcher stage`: downloaded once into the cache
        from peftsum.store.fetch import materialize

        return str(materialize(hub_id))
    return hub_id


def load_tokenizer(hub_id: str, revision: str | None = None) -> Any:
    """The tokenizer of a model (hub id, path, s3:// URI or builtin:), with a pad token (GPT-2 ships without)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_path(hub_id), revision=revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(ref: ModelRef) -> tuple[Any, Any]:
    """(model in fp32 on CPU, tokenizer). The trainer moves it to the device and picks the compute dtype."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    path = resolve_path(ref.hub_id)
    tokenizer = load_tokenizer(ref.hub_id, ref.revision)
    cls = AutoModelForCausalLM if ref.family == "causal" else AutoModelForSeq2SeqLM
    model = cls.from_pretrained(path, revision=ref.revision, dtype=torch.float32)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


# Configs of the real architectures, for benchmarks that need their shapes but not their weights (nothing is
# downloaded): GPT-2 small is transformers' GPT2Config() default; T5 sizes as published (relu FFN, tied heads).
RANDOM_INIT_CONFIGS: dict[str, dict[str, Any]] = {
    "openai-community/gpt2": {},
    "openai-community/gpt2-medium": {"n_embd": 1024, "n_layer": 24, "n_head": 16},
    "google-t5/t5-small": {"d_model": 512, "d_ff": 2048, "d_kv": 64, "num_heads": 8, "num_layers": 6},
    "google-t5/t5-base": {"d_model": 768, "d_ff": 3072, "d_kv": 64, "num_heads": 12, "num_layers": 12},
}


def random_init(ref: ModelRef, seed: int = 0) -> Any:
    """A seeded random-init model of ``ref``'s real architecture (fp32, CPU), built from its config alone.

    Its pad and EOS ids are the real tokenizer's (GPT-2: 50256 for both; T5: pad 0, EOS 1).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

    if ref.hub_id not in RANDOM_INIT_CONFIGS:
        raise ValueError(f"{ref.name}: no random-init config; known: {', '.join(sorted(RANDOM_INIT_CONFIGS))}")
    torch.manual_seed(seed)
    overrides = RANDOM_INIT_CONFIGS[ref.hub_id]
    if ref.arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(**overrides, pad_token_id=50256))
    else:
        model = T5ForConditionalGeneration(T5Config(vocab_size=32128, **overrides, num_decoder_layers=None,
                                                    feed_forward_proj="relu", tie_word_embeddings=True,
                                                    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    return model.float()
