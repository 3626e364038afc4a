"""Batched generation over the already-tokenised evaluation prompts.

Prompts are grouped by length and cut into batches by a token budget (little padding); causal models are padded on
the left so every row continues right after its prompt. Greedy (or beam) decoding, explicit max_new_tokens, stop
at EOS. With ``cache="static"`` transformers keeps a fixed-size KV cache and compiles the decode step itself (on
CUDA); the batches then come from the training batcher's shape ladder (``peftsum.batching.shape_ladder``: at most 16
(rows, prompt width) shapes, every cache ``width + max_new_tokens`` long), so the decode step compiles a bounded
number of times.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import torch

from peftsum.batching import MAX_BUCKETS, collate, compile_room, plan_batches, shape_ladder


@dataclass
class GenerateReport:
    predictions: list[str]
    new_tokens: list[int]
    seconds: float
    batches: int = 0  # generate() calls
    padded_prompt_tokens: int = 0  # prompt tokens the model read, padding included
    prompt_tokens: int = 0  # of which real
    decoded_tokens: int = 0  # rows x decoding steps run: the work done, whether or not a row had already stopped


def resolve_cache(setting: str, device: torch.device, num_beams: int = 1) -> str:
    """``eval.cache`` for ``device``: auto = static on CUDA for greedy decoding (a compiled decode step; measured
    7-13x the study's setup on an H200, docs/performance.md), dynamic elsewhere (beam search: not measured)."""
    if setting != "auto":
        return setting
    return "static" if device.type == "cuda" and num_beams == 1 else "dynamic"


# On CUDA, generation batches grow to this many padded tokens (prompt + new) where memory allows: GPT-2 small on an
# H200 decoded 35.1k new tokens/s with 128k-token batches against 20.8k with the 32k a CPU cell uses
# (docs/performance.md). Larger was not measured.
CUDA_BUDGET_CAP = 131072
MEMORY_SHARE = 0.4  # of the free device memory, for the KV cache and the activations of one generation batch


def bytes_per_token(config: Any, element_bytes: int = 2) -> int:
    """Device bytes one batch token costs while generating: its keys and values in every layer (seq2seq: the
    decoder's self-attention and the cross-attention over the source, about the same) plus a transient MLP
    activation. An estimate for sizing batches, not an allocator measurement."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers, hidden = int(text.num_hidden_layers), int(text.hidden_size)
    heads, head_dim = getattr(text, "num_heads", None), getattr(text, "d_kv", None)  # T5: attention width != d_model
    kv_width = heads * head_dim if isinstance(heads, int) and isinstance(head_dim, int) else hidden
    mlp = next(
        (v for v in (getattr(text, k, None) for k in ("d_ff", "n_inner", "intermediate_size")) if isinstance(v, int)),
        4 * hidden,
    )
    return (2 * layers * kv_width + mlp) * element_bytes


def generation_budget(
    train_batch_tokens: int | None,
    model: Any = None,
    device: torch.device | None = None,
    *,
    num_beams: int = 1,
    free_bytes: int | None = None,
) -> int:
    """Padded tokens (prompt + new, per beam) per generation batch.

    Twice the training budget (no activations are kept for a backward pass). On CUDA: as many as ``MEMORY_SHARE``
    of the free memory holds (``bytes_per_token`` in the weights' dtype — a static cache takes the model's dtype —
    times the beams), up to ``CUDA_BUDGET_CAP`` or the CPU budget if that is larger; less than the CPU budget when
    memory is short. ``free_bytes`` overrides the device query (tests).
    """
    base = (train_batch_tokens or 16384) * 2
    if model is None or device is None or device.type != "cuda":
        return base
    if free_bytes is None:
        torch.cuda.empty_cache()  # what training freed is still reserved by the caching allocator
        free_bytes = torch.cuda.mem_get_info(device)[0]
    element_bytes = next(model.parameters()).element_size()
    fits = int(MEMORY_SHARE * free_bytes / (bytes_per_token(model.config, element_bytes) * num_beams))
    return max(1024, min(max(base, CUDA_BUDGET_CAP), fits))


@torch.inference_mode()
def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    causal: bool,
    max_new_tokens: int,
    num_beams: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    budget_tokens: int,
    batch_size: int | None = None,
    cache: str = "dynamic",
    min_new_tokens: int = 0,
    compile_config: Any = None,
) -> GenerateReport:
    """Greedy or beam decoding of ``prompts`` in token-budget batches. ``min_new_tokens`` suppresses EOS until that
    many tokens (the bench sets it to ``max_new_tokens``: fixed work per row, whatever the model would say).
    ``compile_config`` (a transformers ``CompileConfig``) replaces how a static cache's decode step is compiled
    (tests compile it on the CPU with a cheap backend)."""
    model.eval()
    preds: list[str] = [""] * len(prompts)
    counts = [0] * len(prompts)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    static = cache == "static"
    extra: dict[str, Any] = {"cache_implementation": "static"} if static else {}
    if compile_config is not None:
        extra["compile_config"] = compile_config
    if min_new_tokens:
        extra["min_new_tokens"] = min_new_tokens
    t0 = time.perf_counter()
    # The training batcher, with every row's decoder length = max_new_tokens: sorted by length, within the budget;
    # with a static cache, in the ladder's shapes.
    in_lens, out_lens = [len(p) for p in prompts], [max_new_tokens] * len(prompts)
    # A decoding batch costs its steps however few rows it has: a shape must fill at least one batch.
    ladder = None
    if static and prompts:
        ladder = shape_ladder(in_lens, out_lens, MAX_BUCKETS, batch_size, budget_tokens, min_fill=1.0)
    plan = plan_batches(
        in_lens, out_lens, batch_size, budget_tokens, group_by_length=True, seed=0, epoch=0, ladder=ladder
    )  # big batches beat tight ones: no padding cap
    padded = decoded = 0
    with compile_room(MAX_BUCKETS) if static else contextlib.nullcontext():
        for indices, shape in plan.padded():
            batch = {
                k: v.to(device)
                for k, v in collate(indices, prompts, [], pad, causal, pad_left=causal, shape=shape).items()
            }
            padded += batch["input_ids"].numel()
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    num_beams=num_beams,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=pad,
                    **extra,
                )
            new = out[:, batch["input_ids"].shape[1] :] if causal else out[:, 1:]  # drop prompt / decoder start
            decoded += new.numel()
            for row, i in zip(new.tolist(), indices):  # padding rows (beyond indices) are dropped
                if eos in row:
                    row = row[: row.index(eos)]
                row = [t for t in row if t != pad]
                counts[i] = len(row)
                preds[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    return GenerateReport(
        preds, counts, time.perf_counter() - t0, len(plan.batches), padded, sum(len(p) for p in prompts), decoded
    )
