"""Synthetic training and generation data shaped like the Encoder's output: random token ids at realistic lengths
(the length spread is what decides padding waste and batch shapes; throughput does not depend on the token
values)."""

from __future__ import annotations

import math
from typing import Any

from peftsum.bench.cases import SPREADS, TEMPLATE_TOKENS


def lengths(spread: str, n: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """``n`` (source, summary) token lengths drawn from ``SPREADS[spread]``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for median, sigma, lo, hi in SPREADS[spread]:
        out.append(np.clip(rng.lognormal(math.log(median), sigma, n), lo, hi).astype(int).tolist())
    return out[0], out[1]


def synthetic_features(
    spread: str, n: int, *, family: str, context: int, vocab: int, eos: int, seed: int = 0, scale: float = 1.0
) -> tuple[Any, list[list[int]]]:
    """(TrainFeatures, evaluation prompts) shaped like the Encoder's output, with random token ids."""
    import numpy as np

    from peftsum.data.features import TrainFeatures, source_budget

    src_lens, tgt_lens = lengths(spread, n, seed)
    src_lens = [max(4, round(x * scale)) for x in src_lens]
    tgt_lens = [max(2, round(x * scale)) for x in tgt_lens]
    budget = source_budget("auto", context, family, max(tgt_lens), TEMPLATE_TOKENS + (family == "seq2seq"))
    rng = np.random.default_rng(seed + 1)
    high = min(vocab, 50000)  # below GPT-2's EOS/pad (50256) and every special id

    def ids(k: int) -> list[int]:
        return rng.integers(3, high, size=k).tolist()

    inputs, labels, prompts = [], [], []
    for s, t in zip(src_lens, tgt_lens):
        prompt, target = ids(min(s, budget) + TEMPLATE_TOKENS), ids(t) + [eos]
        if family == "causal":
            inputs.append(prompt + target)
            labels.append([-100] * len(prompt) + target)
            prompts.append(prompt)
        else:
            inputs.append(prompt + [eos])
            labels.append(target)
            prompts.append(prompt + [eos])
    feats = TrainFeatures(
        inputs, labels, kept=n, dropped=0, ids=[str(i) for i in range(n)], source_lens=src_lens, summary_lens=tgt_lens
    )
    return feats, prompts


class IdTokenizer:
    """Enough of a tokenizer for ``generate`` on a random-init model: special ids and a cheap decode."""

    def __init__(self, eos: int, pad: int) -> None:
        self.eos_token_id, self.pad_token_id = eos, pad

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


