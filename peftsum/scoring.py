"""BLEU and ROUGE, per example and for the corpus, with bootstrap 95% confidence intervals.

ROUGE-1/2/L/Lsum F1 come from Google's rouge-score (Porter stemming on). ROUGE-Lsum needs one sentence per line:
texts are split on newlines and after sentence-final punctuation by a regex, so no nltk download is needed. BLEU
is sacrebleu's corpus BLEU (13a tokenisation, exp smoothing); each example keeps its sufficient statistics (n-gram
matches and totals, hypothesis and reference lengths) so the bootstrap resamples those and recomputes corpus BLEU,
as corpus BLEU is not a mean of sentence scores.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import numpy as np

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def metric_profile() -> dict[str, Any]:
    """How the numbers were made; results with different profiles must not share a column."""
    return {
        "rouge": {"implementation": "rouge-score", "version": version("rouge-score"), "stemming": True,
                  "tokenizer": "rouge-score default (lowercase, non-alphanumeric split)",
                  "lsum_sentence_split": "newlines + regex (?<=[.!?])\\s+", "score": "F1"},
        "bleu": {"implementation": "sacrebleu", "version": version("sacrebleu"), "tokenize": "13a",
                 "smooth": "exp", "lowercase": False, "max_ngram_order": 4},
        "bootstrap": {"method": "percentile", "unit": "example"},
    }


def lsum_lines(text: str) -> str:
    return "\n".join(s for line in text.splitlines() for s in _SENTENCE_END.split(line.strip()) if s)


def rouge_per_example(predictions: list[str], references: list[str]) -> dict[str, np.ndarray]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
    out = {k: np.zeros(len(predictions)) for k in ROUGE_KEYS}
    for i, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        scores = scorer.score(lsum_lines(ref), lsum_lines(pred))
        for k in ROUGE_KEYS:
            out[k][i] = scores[k].fmeasure
    return out


def bleu_statistics(predictions: list[str], references: list[str]) -> np.ndarray:
    """Per-example [sys_len, ref_len, correct_1..4, total_1..4] (sacrebleu's sufficient statistics)."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(effective_order=True)  # only the raw counts are used; this silences the sentence warning
    rows = []
    for pred, ref in zip(predictions, references, strict=True):
        s = bleu.sentence_score(pred, [ref])
        rows.append([s.sys_len, s.ref_len, *s.counts, *s.totals])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 10)


def corpus_bleu_from_stats(stats: np.ndarray) -> dict[str, np.ndarray]:
    """Corpus BLEU from summed statistics; ``stats`` is (..., 10), summed over examples already.

    Matches sacrebleu's compute_bleu with smooth_method='exp' (a zero n-gram match count is replaced by
    1 / (2^k * total) for the k-th such order).
    """
    sys_len, ref_len = stats[..., 0], stats[..., 1]
    correct, total = stats[..., 2:6], stats[..., 6:10]
    precisions = np.zeros_like(correct)
    smooth = np.ones(sys_len.shape)
    for n in range(4):
        zero = correct[..., n] == 0
        smooth = np.where(zero & (total[..., n] > 0), smooth * 2, smooth)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(zero, 100.0 / (smooth * total[..., n]), 100.0 * correct[..., n] / total[..., n])
        precisions[..., n] = np.where(total[..., n] > 0, p, 0.0)
    # sacrebleu returns BLEU 0 and all-zero precisions when no n-gram matches at all (no smoothing then).
    precisions = np.where(np.any(correct > 0, axis=-1)[..., None], precisions, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.exp(1 - ref_len / np.maximum(sys_len, 1e-9)), 1.0)
        bp = np.where(sys_len == 0, 0.0, bp)
        log_p = np.where(precisions > 0, np.log(np.maximum(precisions, 1e-300)), -np.inf)
        score = bp * np.exp(log_p.mean(axis=-1))
    score = np.where(np.all(precisions > 0, axis=-1), score, 0.0)
    return {"bleu": score / 100.0, "precisions": precisions / 100.0, "brevity_penalty": bp}


def bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def ci95(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def score(predictions: list[str], references: list[str], samples: int = 1000, seed: int = 0
          ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(corpus metrics with ci95, per-example scores). Metrics are fractions in [0, 1]."""
    n = len(predictions)
    if n == 0:
        raise ValueError("nothing to score")
    rouge = rouge_per_example(predictions, references)
    stats = bleu_statistics(predictions, references)
    idx = bootstrap_indices(n, samples, seed)
    metrics: dict[str, Any] = {}
    corpus = corpus_bleu_from_stats(stats.sum(axis=0))
    boot = corpus_bleu_from_stats(stats[idx].sum(axis=1))
    metrics["bleu"] = {"value": float(corpus["bleu"]), "ci95": ci95(boot["bleu"])}
    metrics["bleu_precisions"] = [{"value": float(corpus["precisions"][k]), "ci95": ci95(boot["precisions"][:, k])}
                                  for k in range(4)]
    metrics["brevity_penalty"] = {"value": float(corpus["brevity_penalty"]), "ci95": ci95(boot["brevity_penalty"])}
    for k in ROUGE_KEYS:
        metrics[k] = {"value": float(rouge[k].mean()), "ci95": ci95(rouge[k][idx].mean(axis=1))}
    metrics["n"] = n
    per_example = [{**{k: float(rouge[k][i]) for k in ROUGE_KEYS},
                    "bleu_stats": {"sys_len": int(stats[i, 0]), "ref_len": int(stats[i, 1]),
                                   "correct": stats[i, 2:6].astype(int).tolist(),
                                   "total": stats[i, 6:10].astype(int).tolist()}} for i in range(n)]
    return metrics, per_example
