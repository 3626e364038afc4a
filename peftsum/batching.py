"""Which examples go together in a batch, and how a batch becomes padded tensors.

Batches are a pure function of (lengths, settings, seed, epoch), so a resumed run rebuilds exactly the batches it
would have seen: the data position is just the optimizer step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BatchPlan:
    batches: list[list[int]]  # example indices per micro-batch, in training order
    padded_tokens: int  # tokens the model processes, padding included
    real_tokens: int  # of which not padding

    @property
    def padding_ratio(self) -> float:
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


def plan_batches(in_lens: list[int], out_lens: list[int], batch_size: int | None, batch_tokens: int | None,
                 group_by_length: bool, seed: int, epoch: int) -> BatchPlan:
    """Cut one epoch into micro-batches.

    With ``group_by_length`` examples are sorted by length (ties broken by a seeded shuffle), cut greedily so a
    batch's padded size stays within ``batch_tokens`` (and ``batch_size`` examples), and the batch order is
    shuffled; padding waste is then small. Without it, batches are consecutive runs of a seeded shuffle, as HF's
    default sampler does. ``out_lens`` are the decoder lengths of seq2seq examples (0 for causal models).
    """
    rng = random.Random(f"batches/{seed}/{epoch}")
    order = list(range(len(in_lens)))
    rng.shuffle(order)
    if group_by_length:
        order.sort(key=lambda i: (in_lens[i], out_lens[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    max_in = max_out = 0
    for i in order:
        new_in, new_out = max(max_in, in_lens[i]), max(max_out, out_lens[i])
        full = (batch_size is not None and len(cur) >= batch_size) or (
            batch_tokens is not None and (len(cur) + 1) * (new_in + new_out) > batch_tokens)
        if cur and full:
            batches.append(cur)
            cur, new_in, new_out = [], in_lens[i], out_lens[i]
        cur.append(i)
        max_in, max_out = new_in, new_out
    if cur:
        batches.append(cur)
    if group_by_length:
        rng.shuffle(batches)
    padded = sum(len(b) * (max(in_lens[i] for i in b) + max(out_lens[i] for i in b)) for b in batches)
    real = sum(in_lens) + sum(out_lens)
    return BatchPlan(batches, padded, real)


def collate(indices: list[int], input_ids: list[list[int]], labels: list[list[int]], pad_id: int,
            causal: bool, pad_left: bool = False) -> dict:
    """Pad one batch: inputs with ``pad_id``, labels with -100 (ignored by the loss)."""
    import torch

    def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
        width = max(len(s) for s in seqs)
        rows = [([value] * (width - len(s)) + s) if pad_left else (s + [value] * (width - len(s))) for s in seqs]
        return torch.tensor(rows, dtype=torch.long)

    ids = [input_ids[i] for i in indices]
    batch = {"input_ids": pad(ids, pad_id),
             "attention_mask": pad([[1] * len(s) for s in ids], 0)}
    if labels:
        batch["labels"] = pad([labels[i] for i in indices], -100)
    return batch
