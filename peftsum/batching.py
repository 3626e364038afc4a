"""Which examples go together in a batch, and how a batch becomes padded tensors.

Batches are a pure function of (lengths, settings, seed, epoch), so a resumed run rebuilds exactly the batches it
would have seen: the data position is just the optimizer step.
"""

from __future__ import annotations

import math
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


# Seq2seq examples are sorted by source length in buckets this wide (relative), then by summary length, so both the
# encoder and the decoder side of a batch are of similar lengths.
SOURCE_BUCKET = 0.05


def plan_batches(in_lens: list[int], out_lens: list[int], batch_size: int | None, batch_tokens: int | None,
                 group_by_length: bool, seed: int, epoch: int,
                 max_padding: float | None = None) -> BatchPlan:
    """Cut one epoch into micro-batches.

    With ``group_by_length`` examples are sorted by length (ties broken by a seeded shuffle; seq2seq: by source
    length bucket, then summary length), cut greedily so a batch's padded size stays within ``batch_tokens`` (and
    ``batch_size`` examples) and, if ``max_padding`` is given, its padding within that share of its padded tokens
    (so the epoch's padding ratio stays below it however the lengths are spread, at the price of a few smaller
    batches in the sparse long tail), and the batch order is shuffled.
    Without it, batches are consecutive runs of a seeded shuffle, as HF's default sampler does. ``out_lens`` are
    the decoder lengths of seq2seq examples (0 for causal models).
    """
    rng = random.Random(f"batches/{seed}/{epoch}")
    order = list(range(len(in_lens)))
    rng.shuffle(order)
    if group_by_length:
        step = math.log1p(SOURCE_BUCKET)

        def length_key(i: int) -> tuple[int, int, int]:
            if out_lens[i]:  # seq2seq: source bucket, then summary length
                return int(math.log(max(in_lens[i], 1)) / step), out_lens[i], in_lens[i]
            return in_lens[i], 0, 0

        order.sort(key=length_key)
    batches: list[list[int]] = []
    cur: list[int] = []
    max_in = max_out = real = 0
    for i in order:
        new_in, new_out = max(max_in, in_lens[i]), max(max_out, out_lens[i])
        padded = (len(cur) + 1) * (new_in + new_out)
        full = (batch_size is not None and len(cur) >= batch_size) or (
            batch_tokens is not None and padded > batch_tokens) or (
            group_by_length and max_padding is not None
            and padded - real - in_lens[i] - out_lens[i] > max_padding * padded)
        if cur and full:
            batches.append(cur)
            cur, new_in, new_out, real = [], in_lens[i], out_lens[i], 0
        cur.append(i)
        max_in, max_out = new_in, new_out
        real += in_lens[i] + out_lens[i]
    if cur:
        batches.append(cur)
    if group_by_length:
        rng.shuffle(batches)
    padded = sum(len(b) * (max(in_lens[i] for i in b) + max(out_lens[i] for i in b)) for b in batches)
    real = sum(in_lens) + sum(out_lens)
    return BatchPlan(batches, padded, real)


def collate(indices: list[int], input_ids: list[list[int]], labels: list[list[int]], pad_id: int,
            causal: bool, pad_left: bool = False, pad_multiple: int = 1) -> dict:
    """Pad one batch: inputs with ``pad_id``, labels with -100 (ignored by the loss).

    ``pad_multiple`` rounds the padded width up (a static-cache decode compiles once per shape, so fewer shapes).
    """
    import torch

    def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
        width = -(-max(len(s) for s in seqs) // pad_multiple) * pad_multiple
        rows = [([value] * (width - len(s)) + s) if pad_left else (s + [value] * (width - len(s))) for s in seqs]
        return torch.tensor(rows, dtype=torch.long)

    ids = [input_ids[i] for i in indices]
    batch = {"input_ids": pad(ids, pad_id),
             "attention_mask": pad([[1] * len(s) for s in ids], 0)}
    if labels:
        batch["labels"] = pad([labels[i] for i in indices], -100)
    return batch
