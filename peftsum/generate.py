"""Batched generation over the already-tokenised evaluation prompts.

Prompts are sorted by length and cut into batches by a token budget (little padding); causal models are padded on
the left so every row continues right after its prompt. Greedy (or beam) decoding, explicit max_new_tokens, stop
at EOS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from peftsum.batching import collate


@dataclass
class GenerateReport:
    predictions: list[str]
    new_tokens: list[int]
    seconds: float


def batches_by_length(lengths: list[int], max_new_tokens: int, budget_tokens: int, max_batch: int | None
                      ) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        width = lengths[cur[0]] + max_new_tokens if cur else lengths[i] + max_new_tokens
        if cur and ((len(cur) + 1) * width > budget_tokens or (max_batch and len(cur) >= max_batch)):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


@torch.inference_mode()
def generate(model: Any, tokenizer: Any, prompts: list[list[int]], *, causal: bool, max_new_tokens: int,
             num_beams: int, device: torch.device, autocast_dtype: torch.dtype | None, budget_tokens: int,
             batch_size: int | None = None) -> GenerateReport:
    model.eval()
    preds: list[str] = [""] * len(prompts)
    counts = [0] * len(prompts)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    t0 = time.perf_counter()
    for indices in batches_by_length([len(p) for p in prompts], max_new_tokens, budget_tokens, batch_size):
        batch = {k: v.to(device) for k, v in collate(indices, prompts, [], pad, causal, pad_left=causal).items()}
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=False,
                                 eos_token_id=eos, pad_token_id=pad)
        new = out[:, batch["input_ids"].shape[1]:] if causal else out[:, 1:]  # drop prompt / decoder start
        for row, i in zip(new.tolist(), indices):
            if eos in row:
                row = row[: row.index(eos)]
            row = [t for t in row if t != pad]
            counts[i] = len(row)
            preds[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    return GenerateReport(preds, counts, time.perf_counter() - t0)
