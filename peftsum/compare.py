"""Paired bootstrap between two cells scored on the same examples.

Resampling the *same* example indices for both cells removes the between-example variance that unpaired CIs
carry, so small but consistent differences are detected. ROUGE differences resample per-example F1; BLEU
differences resample each cell's per-example sufficient statistics and recompute corpus BLEU for both.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from peftsum.scoring import CORPUS_BLEU, ROUGE_KEYS, bootstrap_indices, ci95


def bleu_stats_matrix(rows: list[dict[str, Any]]) -> np.ndarray:
    """(n, 10) sufficient statistics from predictions.jsonl rows (as peftsum.scoring.bleu_statistics)."""
    return np.asarray([[r["bleu_stats"]["sys_len"], r["bleu_stats"]["ref_len"], *r["bleu_stats"]["correct"],
                        *r["bleu_stats"]["total"]] for r in rows], dtype=np.float64).reshape(-1, 10)


def align(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """The rows of both cells restricted to their shared example ids, in one order.

    Ids must be unique within each cell (the data contract refuses a split with duplicate ids): with a duplicate,
    pairing by id is ambiguous, so this raises ValueError naming it rather than pair every copy with one row."""
    for name, rows in (("a", a), ("b", b)):
        duplicated = sorted(str(i) for i, k in Counter(r["id"] for r in rows).items() if k > 1)
        if duplicated:
            shown = ", ".join(repr(d) for d in duplicated[:5]) + (", …" if len(duplicated) > 5 else "")
            raise ValueError(f"cell {name} lists example id(s) {shown} more than once: examples cannot be paired by "
                             "id (rescore the cell from a dataset with unique ids)")
    by_id = {r["id"]: r for r in b}
    shared = [r for r in a if r["id"] in by_id]
    return shared, [by_id[r["id"]] for r in shared]


def paired_bootstrap(a: list[dict[str, Any]], b: list[dict[str, Any]], metric: str = "rougeL",
                     samples: int = 1000, seed: int = 0, profile: str = "peftsum") -> dict[str, Any]:
    """Difference ``metric(a) - metric(b)`` over shared examples, its 95% CI and P(a beats b).

    Args:
        a, b: predictions.jsonl rows of two cells (per-example scores and BLEU statistics).
        metric: one of rouge1, rouge2, rougeL, rougeLsum, bleu.
        profile: the metric profile both cells were scored under (how corpus BLEU is computed from statistics).
    Returns:
        {"metric", "n", "diff", "ci95", "p_a_better"}; p_a_better is the share of resamples where a > b (ties
        count half).
    """
    a, b = align(a, b)
    n = len(a)
    if n == 0:
        raise ValueError("the two cells share no example ids")
    idx = bootstrap_indices(n, samples, seed)
    if metric == "bleu":
        sa, sb, corpus = bleu_stats_matrix(a), bleu_stats_matrix(b), CORPUS_BLEU[profile]
        point = corpus(sa.sum(0))["bleu"] - corpus(sb.sum(0))["bleu"]
        diffs = corpus(sa[idx].sum(1))["bleu"] - corpus(sb[idx].sum(1))["bleu"]
    elif metric in ROUGE_KEYS:
        va = np.asarray([r[metric] for r in a], dtype=np.float64)
        vb = np.asarray([r[metric] for r in b], dtype=np.float64)
        point = va.mean() - vb.mean()
        diffs = (va - vb)[idx].mean(axis=1)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    p = float(np.mean(diffs > 0) + 0.5 * np.mean(diffs == 0))
    return {"metric": metric, "n": n, "diff": float(point), "ci95": ci95(diffs), "p_a_better": p}
