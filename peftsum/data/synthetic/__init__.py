"""Deterministic, learnable synthetic summarisation data in the shapes of DialogSum and CNN/DailyMail.

Why: no hub datasets can be fetched here, and the quickstart and tests need data a tiny model measurably learns
in minutes on a CPU — but not so easily that every method scores perfectly. Each example is a scenario with
several slots (people, places, days, times, items, amounts). The text varies its phrasing, adds distractor turns
or sentences that mention *other* entities of the same types, and sprinkles filler words. The summary is
abstractive: it restates the scenario's outcome in one of several phrasings, so it is never a copy of a line and
even a perfect model cannot reach ROUGE 1.0. A model must (a) recognise the scenario, (b) copy the right entities
and (c) ignore the distractors.

``generate(name, split, n, seed)`` is pure: the same arguments always give the same examples.
"""

from __future__ import annotations

import random

from peftsum.data.synthetic.dialogue import dialogue_example
from peftsum.data.synthetic.news import news_example

GENERATORS = {"dialogsum": dialogue_example, "news": news_example}
# "pretrain" is the tiny models' pretraining corpus (peftsum.models.pretrain): a stream no split shares.
SPLIT_OFFSET = {"train": 0, "validation": 1, "test": 2, "pretrain": 3}
DEFAULT_SIZES = {"train": 4000, "validation": 300, "test": 500, "pretrain": 2500}


def generate(name: str, split: str, n: int | None = None, seed: int = 1234) -> list[dict]:
    """``n`` examples of generator ``name`` for ``split`` (each split draws from its own random stream)."""
    make = GENERATORS[name]
    rng = random.Random(f"{name}/{split}/{seed}/{SPLIT_OFFSET[split]}")
    n = DEFAULT_SIZES[split] if n is None else n
    return [{"id": f"{name}-{split}-{i:06d}", **make(rng)} for i in range(n)]
