"""Batched generation over the already-tokenised evaluation prompts.

Prompts are grouped by length and cut into batches by a token budget (little padding); causal models are padded on
the left so every row continues right after its prompt. Greedy (or beam) decoding, explicit max_new_tokens, stop
at EOS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from peftsum.batching import collate, plan_batches


@dataclass
class GenerateReport:
    predictions: list[str]
    new_tokens: list[int]
    seconds: float


@torch.inference_mode()
def generate(model: Any, tokenizer: Any, prompts: list[list[int]], *, causal: bool, max_new_tokens: int,
             num_beams: int, device: torch.device, autocast_dtype: torch.dtype | None, budget_tokens: int,
             batch_size: int | None = None) -> GenerateReport:
    model.eval()
    preds: list[str] = [""] * len(prompts)
    counts = [0] * len(prompts)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    t0 = time.perf_counter()
    # The training batcher, with every row's decoder length = max_new_tokens: sorted by length, within the budget.
    plan = plan_batches([len(p) for p in prompts], [max_new_tokens] * len(prompts), batch_size, budget_tokens,
                        group_by_length=True, seed=0, epoch=0)
    for indices in plan.batches:
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
