"""Examples → token ids, with the study's context-window rule.

Training: an example whose prompt + source + summary does not fit is *filtered* (and counted), as the study did —
unless the grid sets a shared length filter (``data.max_total_tokens`` / ``max_length_quantile``): then every model
must train on the same example ids, and what one model cannot fit is *truncated* for that model (and counted).
Evaluation: the source is *truncated* to fit, so every cell of a dataset scores the same example ids.
Tokenisation happens once per cell; generation reuses these ids (no re-tokenising).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftsum.data.load import Example
from peftsum.data.prompts import split_template


@dataclass
class TrainFeatures:
    input_ids: list[list[int]]  # causal: prompt + summary + eos; seq2seq: encoder input
    labels: list[list[int]]  # causal: -100 over the prompt; seq2seq: summary + eos
    kept: int
    dropped: int  # filtered by the context window / max_target_tokens
    ids: list[str]  # of the kept examples, in order
    source_lens: list[int]  # token counts of every training source and summary, before the filter (for EDA)
    summary_lens: list[int]
    truncated: int = 0  # kept, but cut to fit this model (shared length filter on)


@dataclass
class EvalFeatures:
    ids: list[str]
    prompt_ids: list[list[int]]  # the model input for generation (causal: ends with "### Summary:\n")
    truncated: int  # sources cut to fit


def source_budget(max_source_tokens: Any, context: int, family: str, max_target_tokens: int,
                  template_tokens: int) -> int:
    """Tokens available for the source text. ``auto`` = fill the context window, leaving room for the summary
    (causal models read prompt and summary in one window)."""
    room = context - template_tokens - (max_target_tokens + 1 if family == "causal" else 0)
    if max_source_tokens == "auto" or (max_source_tokens is None and family == "causal"):
        return max(room, 8)  # a causal model cannot read past its positions whatever the user asked
    if max_source_tokens is None:
        return 10**9
    return min(int(max_source_tokens), max(room, 8))


class Encoder:
    """Tokenises one cell's examples under its model's tokenizer and context window."""

    def __init__(self, tokenizer: Any, family: str, kind: str, context: int, max_source_tokens: Any,
                 max_target_tokens: int, max_new_tokens: int = 0) -> None:
        self.tok = tokenizer
        self.family = family
        self.context = context
        self.max_target = max_target_tokens
        head, tail = split_template(kind, family)
        self.head = self._ids(head)
        self.tail = self._ids(tail)
        self.eos = tokenizer.eos_token_id
        reserve = max(max_target_tokens, max_new_tokens)
        self.budget = source_budget(max_source_tokens, context, family, reserve,
                                    len(self.head) + len(self.tail) + (1 if family == "seq2seq" else 0))

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] if text else []

    def _prompt(self, source_ids: list[int]) -> list[int]:
        ids = self.head + source_ids + self.tail
        return ids + [self.eos] if self.family == "seq2seq" else ids

    def train(self, examples: list[Example], truncate: bool = False) -> TrainFeatures:
        """Teacher-forcing pairs. An example that does not fit is dropped, or with ``truncate`` cut to fit (source to
        the budget, summary to ``max_target_tokens``)."""
        inputs, labels, ids, dropped, truncated = [], [], [], 0, 0
        sources = self.tok([e.source for e in examples], add_special_tokens=False)["input_ids"]
        targets = self.tok([e.summary for e in examples], add_special_tokens=False)["input_ids"]
        for ex, src, tgt in zip(examples, sources, targets):
            if len(src) > self.budget or len(tgt) > self.max_target:
                if not truncate:
                    dropped += 1
                    continue
                src, tgt = src[: self.budget], tgt[: self.max_target]
                truncated += 1
            ids.append(ex.id)
            prompt = self._prompt(src)
            target = tgt + [self.eos]
            if self.family == "causal":
                inputs.append(prompt + target)
                labels.append([-100] * len(prompt) + target)
            else:
                inputs.append(prompt)
                labels.append(target)
        return TrainFeatures(inputs, labels, kept=len(inputs), dropped=dropped, ids=ids,
                             source_lens=[len(s) for s in sources], summary_lens=[len(t) for t in targets],
                             truncated=truncated)

    def eval(self, examples: list[Example]) -> EvalFeatures:
        sources = self.tok([e.source for e in examples], add_special_tokens=False)["input_ids"]
        prompts, truncated = [], 0
        for src in sources:
            if len(src) > self.budget:
                src = src[: self.budget]
                truncated += 1
            prompts.append(self._prompt(src))
        return EvalFeatures([e.id for e in examples], prompts, truncated)
