"""The shared length filter: token counts made once per dataset with one reference tokenizer.

The study kept CNN/DailyMail records whose tokens stay within 500 (so T5's 512-token window fits) and set length
thresholds from quantiles of the token counts. Counting each model's own tokens would give GPT-2 and T5 cells of
one dataset *different* examples; counting once with ``data.length_tokenizer`` gives every cell the same example
ids. Each model's context window is still enforced afterwards, by truncation (``peftsum.data.features``).

The counts (source + summary tokens, no special tokens) are cached in ``$PEFTSUM_CACHE/lengths/``, keyed by the
dataset (source, id, config, revision, columns), the split, the tokenizer and the split's ids, so a changed split is
counted again and CNN/DailyMail's 287k articles are tokenised once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

from peftsum.data.load import Example, ids_sha256
from peftsum.spec.cell import DatasetRef
from peftsum.spec.settings import DataSettings
from peftsum.store.fetch import cache_root

BATCH = 1000  # texts per tokenizer call: bounded memory on long articles


def cache_path(ref: DatasetRef, split: str, tokenizer: str, ids: list[str]) -> Any:
    key = json.dumps({"source": ref.source, "id": ref.id, "config": ref.config, "revision": ref.revision,
                      "columns": [ref.source_column, ref.summary_column], "split": split, "tokenizer": tokenizer,
                      "ids": ids_sha256(ids), "n": len(ids)}, sort_keys=True)
    return cache_root() / "lengths" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def token_totals(ref: DatasetRef, split: str, examples: list[Example], tokenizer: str) -> list[int]:
    """Source + summary tokens of each example under ``tokenizer`` (a hub id, path, s3:// URI or builtin:),
    from the cache when counted before."""
    path = cache_path(ref, split, tokenizer, [e.id for e in examples])
    try:
        cached = json.loads(path.read_text())
        if len(cached["totals"]) == len(examples):
            return cached["totals"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from peftsum.models.load import load_tokenizer

    tok = load_tokenizer(tokenizer)
    totals: list[int] = []
    for start in range(0, len(examples), BATCH):
        chunk = examples[start:start + BATCH]
        sources = tok([e.source for e in chunk], add_special_tokens=False)["input_ids"]
        summaries = tok([e.summary for e in chunk], add_special_tokens=False)["input_ids"]
        totals += [len(a) + len(b) for a, b in zip(sources, summaries)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lengths-")
    with os.fdopen(fd, "w") as f:
        json.dump({"dataset": ref.name, "split": split, "tokenizer": tokenizer, "totals": totals}, f)
    os.replace(tmp, path)  # atomic: concurrent cells on one machine never read half a file
    return totals


def threshold(totals: list[int], data: DataSettings) -> float:
    """The most total tokens a kept row may have: ``max_total_tokens`` and/or the ``max_length_quantile`` of this
    split's totals (linear interpolation), whichever is lower."""
    import numpy as np

    limits = [float(data.max_total_tokens)] if data.max_total_tokens is not None else []
    if data.max_length_quantile is not None and totals:
        limits.append(float(np.quantile(np.asarray(totals), data.max_length_quantile)))
    return min(limits) if limits else float("inf")


def length_filter(ref: DatasetRef, split: str, examples: list[Example], data: DataSettings
                  ) -> tuple[list[Example], float]:
    """(the examples within the threshold, in their order; the threshold)."""
    totals = token_totals(ref, split, examples, data.length_tokenizer)
    limit = threshold(totals, data)
    return [e for e, n in zip(examples, totals) if n <= limit], limit
