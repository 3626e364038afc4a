"""The training plan: the epochs cut into batches and optimizer steps before the method is applied (AdaLoRA
needs the step count). A pure function of the lengths, the settings, the seed and the epoch, so the data position
of a resumed run is just its optimizer step (docs/architecture.md, "Exact resume").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from peftsum.batching import BatchPlan, Shape, plan_batches, shape_ladder
from peftsum.data.features import TrainFeatures
from peftsum.spec.settings import TrainSettings


@dataclass
class TrainPlan:
    """The epochs cut into batches and optimizer steps, known before the method is applied (AdaLoRA needs it)."""

    epochs: list[BatchPlan]
    accum: int
    total_steps: int
    ladder: list[Shape] | None = None  # the fixed batch shapes (train.shape_buckets), shared by every epoch

    def steps_in(self, epoch: int) -> int:
        return math.ceil(len(self.epochs[epoch].batches) / self.accum)

    def epoch_at(self, step: int) -> float:
        """Epochs completed after ``step`` optimizer steps (fractional inside an epoch)."""
        done = 0.0
        for epoch in range(len(self.epochs)):
            n = self.steps_in(epoch)
            if step <= n:
                return round(done + step / n, 6)
            done, step = done + 1, step - n
        return done

    def eval_steps(self, every: str | int) -> list[int]:
        """After which optimizer steps ``train.eval_every`` evaluates: each epoch end (``epoch``) or every N steps
        within the planned steps, and always the last step; none when ``off``."""
        if every == "off":
            return []
        if every == "epoch":
            ends, at = [], 0
            for epoch in range(len(self.epochs)):
                at += self.steps_in(epoch)
                ends.append(at)
        else:
            ends = list(range(int(every), self.total_steps + 1, int(every)))
        return sorted({s for s in ends if s < self.total_steps} | {self.total_steps})

    def micro_batches(self, step: int) -> list[tuple[list[int], Shape | None]]:
        """The micro-batches of optimizer step ``step`` (epochs may differ in batch count): example indices, and
        the padded shape with a ladder (else None: padded to the longest)."""
        for epoch in range(len(self.epochs)):
            if step < self.steps_in(epoch):
                return self.epochs[epoch].padded(slice(step * self.accum, (step + 1) * self.accum))
            step -= self.steps_in(epoch)
        raise IndexError("step beyond the planned epochs")

    def shapes(self, input_ids: list[list[int]], labels: list[list[int]], causal: bool) -> set[Shape]:
        """The distinct padded shapes (rows, input width, label width; 0 for causal) of the planned steps'
        micro-batches: what a compiled model compiles for."""
        out = set()
        for step in range(self.total_steps):
            for indices, shape in self.micro_batches(step):
                out.add(shape or (len(indices), max(len(input_ids[i]) for i in indices),
                                  0 if causal else max(len(labels[i]) for i in indices)))
        return out


def make_plan(features: TrainFeatures, settings: TrainSettings, seed: int, seq2seq: bool) -> TrainPlan:
    if not features.input_ids:
        raise ValueError("no training examples left after the context-window filter")
    in_lens = [len(x) for x in features.input_ids]
    out_lens = [len(y) for y in features.labels] if seq2seq else [0] * len(in_lens)
    n_epochs = math.ceil(settings.epochs)
    ladder = (
        shape_ladder(in_lens, out_lens, settings.shape_buckets, settings.batch_size, settings.batch_tokens)
        if settings.shape_buckets and settings.group_by_length
        else None
    )
    epochs = [
        plan_batches(
            in_lens,
            out_lens,
            settings.batch_size,
            settings.batch_tokens,
            settings.group_by_length,
            seed,
            e,
            settings.max_padding,
            ladder,
        )
        for e in range(n_epochs)
    ]
    plan = TrainPlan(epochs, settings.grad_accum, 0, ladder)
    whole, frac = divmod(settings.epochs, 1)
    total = sum(plan.steps_in(e) for e in range(int(whole)))
    if frac:
        total += round(frac * plan.steps_in(int(whole)))
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    plan.total_steps = max(1, total)
    return plan
