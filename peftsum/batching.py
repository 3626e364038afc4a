"""Which examples go together in a batch, and how a batch becomes padded tensors.

Batches are a pure function of (lengths, settings, seed, epoch), so a resumed run rebuilds exactly the batches it
would have seen: the data position is just the optimizer step.

With a shape ladder (``shape_ladder``; train.shape_buckets) every batch is padded to one of a few fixed (rows, input
width, label width) shapes, so a compiled model (torch.compile for training, a static-cache decode for generation)
meets a bounded set of shapes instead of one per batch. docs/performance.md has the measured padding and recompile
counts.
"""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass
from typing import Any

Shape = tuple[int, int, int]  # (rows, input width, label width; 0 for causal models, whose labels are the inputs)


@dataclass(frozen=True)
class BatchPlan:
    batches: list[list[int]]  # example indices per micro-batch, in training order
    padded_tokens: int  # tokens the model processes, padding included
    real_tokens: int  # of which not padding
    shapes: list[Shape] | None = None  # with a ladder: the padded shape of each batch (rows beyond its examples are
    # padding rows); None: each batch is padded to its own longest example

    def padded(self, cut: slice = slice(None)) -> list[tuple[list[int], Shape | None]]:
        """The batches of ``cut`` (default: all, in training order), each with the shape it is padded to (None: to
        its longest example)."""
        batches = self.batches[cut]
        return list(zip(batches, self.shapes[cut] if self.shapes else [None] * len(batches), strict=True))

    @property
    def padding_ratio(self) -> float:
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


# Seq2seq examples are sorted by source length in buckets this wide (relative), then by summary length, so both the
# encoder and the decoder side of a batch are of similar lengths.
SOURCE_BUCKET = 0.05


def plan_batches(in_lens: list[int], out_lens: list[int], batch_size: int | None, batch_tokens: int | None,
                 group_by_length: bool, seed: int, epoch: int,
                 max_padding: float | None = None, ladder: list[Shape] | None = None) -> BatchPlan:
    """Cut one epoch into micro-batches.

    With a ``ladder`` (``shape_ladder``'s, computed once for all epochs) the batches are ``ladder_batches``'.

    With ``group_by_length`` examples are sorted by length (ties broken by a seeded shuffle; seq2seq: by source
    length bucket, then summary length), cut greedily so a batch's padded size stays within ``batch_tokens`` (and
    ``batch_size`` examples) and, if ``max_padding`` is given, its padding within that share of its padded tokens
    (so the epoch's padding ratio stays below it however the lengths are spread, at the price of a few smaller
    batches in the sparse long tail), and the batch order is shuffled.
    Without it, batches are consecutive runs of a seeded shuffle, as HF's default sampler does. ``out_lens`` are
    the decoder lengths of seq2seq examples (0 for causal models).
    """
    rng = random.Random(f"batches/{seed}/{epoch}")
    if ladder:
        return ladder_batches(in_lens, out_lens, ladder, rng)
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


MAX_BUCKETS = 16
LEVELS = (64, 16)  # candidate widths per dimension (input, labels): the distinct lengths, or this many quantiles


def compile_room(shapes: int, **options: Any) -> contextlib.AbstractContextManager:
    """dynamo's options for code compiled over a ladder of ``shapes`` shapes: room for a graph per shape (past
    dynamo's default limit, 8 per frame, it falls back to eager) plus ``options``; only the options this torch
    knows (a GPU image may carry an older torch than the lock's)."""
    from torch._dynamo import config as dynamo_config

    wanted = {"recompile_limit": max(8, shapes + 2), **options}
    return dynamo_config.patch(**{k: v for k, v in wanted.items() if hasattr(dynamo_config, k)})


def _levels(lens: list[int], n: int) -> list[int]:
    """Candidate bucket widths for one dimension: every distinct length if there are few, else ``n`` quantiles
    (dense where the examples are) and the longest."""
    distinct = sorted(set(lens))
    if len(distinct) <= n:
        return distinct
    ordered = sorted(lens)
    return sorted({ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1) / (n - 1)))] for q in range(n)})


def shape_ladder(in_lens: list[int], out_lens: list[int], buckets: int, batch_size: int | None,
                 batch_tokens: int | None, min_fill: float = 0.0) -> list[Shape]:
    """At most ``buckets`` (rows, input width, label width) shapes that cover every example, smallest first.

    Each example takes the smallest chosen shape that holds it. With one varying length (causal models, whose
    labels are the inputs; generation, whose decode length is fixed) the widths are the exact optimum over the
    distinct lengths; with two (seq2seq training) a greedy choice over a grid of quantile widths, which pads more
    when source and summary lengths are unrelated (docs/performance.md). Rows per shape: as many as
    ``batch_tokens`` holds (at least one), at most ``batch_size``. ``min_fill``: drop shapes whose examples fill
    less than this share of one batch (their examples move up), for generation, where a batch costs its decoding
    steps however few rows it has.
    """
    import numpy as np

    if not 1 <= buckets <= MAX_BUCKETS:
        raise ValueError(f"buckets must be within 1..{MAX_BUCKETS}, got {buckets}")
    lin, lout = np.array(in_lens), np.array(out_lens)
    one_dim = len(set(out_lens)) <= 1  # causal (labels are the inputs), or generation (a fixed decode length)
    win = np.array(sorted(set(in_lens)) if one_dim else _levels(in_lens, LEVELS[0]))
    wout = np.array(_levels(out_lens, LEVELS[1]))
    # Examples rounded up to the candidate grid: their cost under any candidate depends only on the grid cell.
    cell_in, cell_out = np.searchsorted(win, lin), np.searchsorted(wout, lout)
    weight = np.zeros((len(win), len(wout)))
    np.add.at(weight, (cell_in, cell_out), 1)
    held = weight.ravel() > 0
    need_in = np.repeat(win, len(wout))[held]  # per occupied grid cell: the widths it needs, its examples
    need_out = np.tile(wout, len(win))[held]
    count = weight.ravel()[held]
    cand_in, cand_out = np.repeat(win, len(wout)), np.tile(wout, len(win))
    covers = (cand_in[:, None] >= need_in[None, :]) & (cand_out[:, None] >= need_out[None, :])
    cost = np.where(covers, (cand_in + cand_out)[:, None], np.inf)  # candidates x occupied cells
    if one_dim:
        chosen = [int(c) for c in np.flatnonzero(held)[_optimal_widths(count, need_in + need_out, buckets)]]
    else:
        chosen = _greedy_shapes(cost, count, buckets)

    def rows(c: int) -> int:
        width = int(cand_in[c] + cand_out[c])
        most = max(1, batch_tokens // width) if batch_tokens is not None else batch_size
        return min(most, batch_size) if batch_size is not None else int(most)

    while min_fill and len(chosen) > 1:
        taken = np.argmin(cost[chosen], axis=0)  # each grid cell's shape (the cheapest; ties: the earlier chosen)
        fill = [count[taken == k].sum() / rows(c) for k, c in enumerate(chosen)]
        k = int(np.argmin(fill[1:])) + 1
        if fill[k] >= min_fill:
            break
        del chosen[k]
    shapes = [(rows(c), int(cand_in[c]), int(cand_out[c])) for c in chosen]
    return sorted(shapes, key=lambda s: (s[1] + s[2], s[1]))


def _optimal_widths(count: Any, width: Any, buckets: int) -> list[int]:
    """One dimension: the at most ``buckets`` of the sorted distinct ``width``s (``count`` examples each) that pad
    least when every example is rounded up to the next chosen one, by dynamic programming over where each bucket
    starts (exact; a thousand distinct lengths cost well under a second). Returns indices, the longest first."""
    import numpy as np

    n = len(width)
    before = np.concatenate([[0.0], np.cumsum(count)])  # examples at positions below each index
    cost = np.full(n + 1, np.inf)  # cost[e]: least padded size of the e shortest widths' examples, j buckets
    cost[0] = 0.0
    layers, starts = [], []
    for _ in range(min(buckets, n)):
        nxt, start = np.full(n + 1, np.inf), np.zeros(n + 1, dtype=int)
        for e in range(1, n + 1):  # the last bucket is width[e - 1] and holds positions s..e-1
            options = cost[:e] + (before[e] - before[:e]) * width[e - 1]
            start[e] = int(np.argmin(options))
            nxt[e] = options[start[e]]
        cost = nxt
        layers.append(nxt[n])
        starts.append(start)
    chosen, e = [], n
    for j in range(int(np.argmin(layers)), -1, -1):  # the best bucket count, walked back from the longest width
        chosen.append(e - 1)
        e = int(starts[j][e])
    return chosen


def _greedy_shapes(cost: Any, count: Any, buckets: int) -> list[int]:
    """Two dimensions: start from the one candidate shape that covers everything (the last: longest input, longest
    labels), add the candidate that saves the most padded tokens while any saves, then swap shapes for better ones
    while that saves more. Returns candidate indices."""
    import numpy as np

    chosen = [cost.shape[0] - 1]
    current = cost[chosen[0]].copy()
    while len(chosen) < buckets:
        saving = (np.maximum(current[None, :] - cost, 0) * count[None, :]).sum(axis=1)
        best = int(np.argmax(saving))
        if saving[best] <= 0:
            break
        chosen.append(best)
        current = np.minimum(current, cost[best])
    # Then swap: replace one chosen shape by the candidate that pads least with the others, while that helps.
    for _ in range(8):
        improved = False
        for k in range(1, len(chosen)):  # chosen[0] (the cover-all shape) stays
            others = np.min(cost[[c for j, c in enumerate(chosen) if j != k]], axis=0)
            totals = (np.minimum(others[None, :], cost) * count[None, :]).sum(axis=1)
            best = int(np.argmin(totals))
            if totals[best] < totals[chosen[k]] - 0.5:
                chosen[k], improved = best, True
        if not improved:
            break
    return chosen


def ladder_batches(in_lens: list[int], out_lens: list[int], ladder: list[Shape], rng: random.Random) -> BatchPlan:
    """One epoch cut into batches of the ladder's widths, each width with one row count.

    Each example goes to the smallest shape that holds it. A shape's n examples (shuffled) either fill
    ceil(n / rows) batches of equal size (rows lowered to ceil(n / batches), the last batch topped up with padding
    rows: fewer than one per batch), or fill whole batches of the ladder's rows and move the rest up to the smallest
    larger shape that holds them, whichever pads less (the largest shape always does the first). The batch order is
    shuffled. Counts per shape depend only on the lengths, so every epoch has the same shapes.
    """
    def area(s: Shape) -> int:
        return s[1] + s[2]

    def holds(s: Shape, i: int) -> bool:
        return s[1] >= in_lens[i] and s[2] >= out_lens[i]

    pools: list[list[int]] = [[] for _ in ladder]
    for i in range(len(in_lens)):
        pools[next(k for k, s in enumerate(ladder) if holds(s, i))].append(i)
    batches: list[list[int]] = []
    shapes: list[Shape] = []
    for k, (most, width_in, width_out) in enumerate(ladder):
        pool = pools[k]
        if not pool:
            continue
        rng.shuffle(pool)
        n = len(pool)
        count = -(-n // most)
        rows = -(-n // count)  # equal batches: the last one is short by fewer than `count` rows
        top_up = (count * rows - n) * area(ladder[k])
        whole = n - n % most
        up = next((j for j in range(k + 1, len(ladder)) if all(holds(ladder[j], i) for i in pool[whole:])), None)
        if up is not None and whole and (n - whole) * (area(ladder[up]) - area(ladder[k])) < top_up:
            pools[up].extend(pool[whole:])
            count, rows, pool = whole // most, most, pool[:whole]
        for start in range(0, len(pool), rows):
            batches.append(pool[start : start + rows])
            shapes.append((rows, width_in, width_out))
    order = list(range(len(batches)))
    rng.shuffle(order)
    batches, shapes = [batches[j] for j in order], [shapes[j] for j in order]
    padded = sum(s[0] * area(s) for s in shapes)
    return BatchPlan(batches, padded, sum(in_lens) + sum(out_lens), shapes)


def collate(indices: list[int], input_ids: list[list[int]], labels: list[list[int]], pad_id: int,
            causal: bool, pad_left: bool = False, shape: Shape | None = None) -> dict:
    """Pad one batch: inputs with ``pad_id``, labels with -100 (ignored by the loss).

    A batch is as wide as its longest example, unless ``shape`` (a ladder's) fixes its rows and widths: the rows
    beyond ``indices`` are then padding rows, attending to one pad token so no attention row is empty, with labels
    all -100 so they add nothing to the loss (its mean is over label tokens) and nothing to the gradient.
    """
    import torch

    rows = shape[0] if shape else len(indices)
    extra = rows - len(indices)

    def pad(seqs: list[list[int]], value: int, width: int | None = None) -> torch.Tensor:
        width = width or max(len(s) for s in seqs)
        out = [([value] * (width - len(s)) + s) if pad_left else (s + [value] * (width - len(s))) for s in seqs]
        return torch.tensor(out, dtype=torch.long)

    ids = [input_ids[i] for i in indices]
    in_width = shape[1] if shape else None
    mask = [[1] * len(s) for s in ids] + [[1]] * extra
    batch = {"input_ids": pad(ids + [[pad_id]] * extra, pad_id, in_width), "attention_mask": pad(mask, 0, in_width)}
    if labels:
        out_width = None if shape is None else shape[1] if causal else shape[2]
        batch["labels"] = pad([labels[i] for i in indices] + [[-100]] * extra, -100, out_width)
    return batch
