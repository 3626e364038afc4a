"""BLEU and ROUGE, per example and for the corpus, with bootstrap 95% confidence intervals, under a named profile.

Two metric profiles (``eval.metric_profile``), because published numbers are computed in more than one way and
results of different profiles must never share a column (docs/report.md):

- ``peftsum`` (preset ``fast``): ROUGE-1/2/L/Lsum F1 from Google's rouge-score with Porter stemming; ROUGE-Lsum on
  sentences split at newlines and after sentence-final punctuation by a regex (no nltk download); BLEU as sacrebleu's
  corpus BLEU (13a tokenisation, ``exp`` smoothing, the *closest* reference length).
- ``evaluate`` (preset ``seed-paper``): what the ``evaluate`` library's ``rouge`` and ``bleu`` metrics compute at
  their defaults, the columns the study reports. ROUGE without stemming, ROUGE-Lsum on newline-split text only (what
  rouge-score does by itself); BLEU from the 13a-tokenised corpus statistics of tensorflow/nmt's ``compute_bleu``
  with no smoothing and the *shortest* reference length. One stated exception: evaluate aggregates ROUGE with
  rouge-score's ``BootstrapAggregator`` (its ``mid`` is a median of unseeded bootstrap means, not deterministic);
  peftsum reports the exact mean of the per-example F1, which that median estimates.

With several references per example (``eval.references: grouped``), ROUGE takes, per ROUGE type, the reference with
the best F1 (rouge-score's ``score_multi``, as evaluate does) and BLEU clips n-gram matches by the most any reference
has. Each example keeps its BLEU sufficient statistics (n-gram matches and totals, hypothesis and reference lengths),
so the bootstrap resamples those and recomputes corpus BLEU, as corpus BLEU is not a mean of sentence scores.

ROUGE reads at most ``MAX_ROUGE_TOKENS`` (1024) tokens of the prediction and of each reference: rouge-score's LCS is
quadratic in pure Python (one 20k-word prediction against a 20k-word reference took 204 s), so a longer text is cut
after its 1024th rouge-score token (a run of ASCII letters and digits) before scoring. 1024 is the most
``eval.max_new_tokens`` allows, so a generated summary is never cut; only longer references and ``lead`` outputs
are. The cap is recorded in the metric profile (``rouge.max_tokens``). BLEU, linear in length, reads everything.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
PROFILES = ("peftsum", "evaluate")
MAX_ORDER = 4
MAX_ROUGE_TOKENS = 1024  # tokens of a prediction / reference ROUGE reads (the module docstring says why)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ROUGE_TOKEN = re.compile(r"[A-Za-z0-9]+")  # rouge-score's tokens: runs of [a-z0-9] after lowercasing


def metric_profile(name: str = "peftsum") -> dict[str, Any]:
    """How the numbers were made; results with different profiles must not share a column."""
    stemmed = name == "peftsum"
    return {
        "name": name,
        "rouge": {"implementation": "rouge-score", "version": version("rouge-score"), "stemming": stemmed,
                  "tokenizer": "rouge-score default (lowercase, non-alphanumeric split)",
                  "lsum_sentence_split": "newlines + regex (?<=[.!?])\\s+" if stemmed else "newlines",
                  "score": "F1", "aggregate": "mean of per-example F1",
                  "multi_reference": "best F1 per ROUGE type (rouge-score score_multi)",
                  "max_tokens": MAX_ROUGE_TOKENS},
        "bleu": {"implementation": "sacrebleu" if stemmed else "tensorflow/nmt compute_bleu (as evaluate's bleu)",
                 "version": version("sacrebleu"), "tokenize": "13a", "smooth": "exp" if stemmed else "none",
                 "reference_length": "closest" if stemmed else "shortest", "lowercase": False,
                 "max_ngram_order": MAX_ORDER},
        "bootstrap": {"method": "percentile", "unit": "example"},
    }


def split_sentences(text: str) -> list[str]:
    """``text``'s sentences, cut after ``.``, ``!`` or ``?`` and white space: what ROUGE-Lsum and the lead baseline
    both call a sentence, so the floor and the metric agree."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def lsum_lines(text: str) -> str:
    return "\n".join(s for line in text.splitlines() for s in split_sentences(line))


def rouge_truncate(text: str, limit: int = MAX_ROUGE_TOKENS) -> str:
    """``text`` up to the end of its ``limit``-th rouge-score token (all of it when it has no more), line breaks and
    punctuation kept, so ROUGE-Lsum still sees the sentences of what remains."""
    if len(text) < 2 * limit:  # a token and a separator per token: cannot hold more than limit tokens
        return text
    for count, match in enumerate(_ROUGE_TOKEN.finditer(text), 1):
        if count == limit:
            return text[: match.end()]
    return text


def _as_reference_lists(references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """One list of references per example (a plain string is one reference)."""
    out = [[r] if isinstance(r, str) else list(r) for r in references]
    if any(not refs for refs in out):
        raise ValueError("every example needs at least one reference")
    return out


def rouge_per_example(predictions: list[str], references: Sequence[str | Sequence[str]],
                      profile: str = "peftsum") -> dict[str, np.ndarray]:
    from rouge_score import rouge_scorer

    prepare: Callable[[str], str] = lsum_lines if profile == "peftsum" else (lambda text: text)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=profile == "peftsum")
    out = {k: np.zeros(len(predictions)) for k in ROUGE_KEYS}
    for i, (pred, refs) in enumerate(zip(predictions, _as_reference_lists(references), strict=True)):
        targets = [prepare(rouge_truncate(r)) for r in refs]
        hypothesis = prepare(rouge_truncate(pred))
        scores = scorer.score(targets[0], hypothesis) if len(targets) == 1 else \
            scorer.score_multi(targets, hypothesis)
        for k in ROUGE_KEYS:
            out[k][i] = scores[k].fmeasure
    return out


def _ngrams(tokens: list[str]) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for n in range(1, MAX_ORDER + 1) for i in range(len(tokens) - n + 1))


def bleu_statistics(predictions: list[str], references: Sequence[str | Sequence[str]],
                    profile: str = "peftsum") -> np.ndarray:
    """Per-example [sys_len, ref_len, correct_1..4, total_1..4] over 13a tokens.

    Matches are clipped by the largest count any reference has; ``ref_len`` is the closest reference length (ties:
    the shorter, as sacrebleu) for ``peftsum`` and the shortest for ``evaluate`` (as nmt's compute_bleu).
    """
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenize = Tokenizer13a()
    rows = []
    for pred, refs in zip(predictions, _as_reference_lists(references), strict=True):
        hyp = tokenize(pred.rstrip()).split()
        ref_tokens = [tokenize(r.rstrip()).split() for r in refs]
        lengths = [len(r) for r in ref_tokens]
        if profile == "peftsum":
            ref_len = min(lengths, key=lambda n: (abs(n - len(hyp)), n))
        else:
            ref_len = min(lengths)
        ref_max: Counter = Counter()
        for r in ref_tokens:
            ref_max |= _ngrams(r)
        correct = [0] * MAX_ORDER
        for gram, count in _ngrams(hyp).items():
            correct[len(gram) - 1] += min(count, ref_max[gram])
        total = [max(0, len(hyp) - n + 1) for n in range(1, MAX_ORDER + 1)]
        rows.append([len(hyp), ref_len, *correct, *total])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 10)


def corpus_bleu_from_stats(stats: np.ndarray) -> dict[str, np.ndarray]:
    """Profile ``peftsum``: corpus BLEU from summed statistics; ``stats`` is (..., 10), summed over examples already.

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
    return {"bleu": score / 100.0, "precisions": precisions / 100.0, "brevity_penalty": bp,
            "length_ratio": _ratio(sys_len, ref_len)}


def corpus_bleu_unsmoothed(stats: np.ndarray) -> dict[str, np.ndarray]:
    """Profile ``evaluate``: tensorflow/nmt's compute_bleu (smooth=False) from summed statistics (..., 10).

    Precision p_n = matches / possible (0 when nothing is possible); BLEU = 0 if any p_n is 0, else the geometric
    mean times the brevity penalty exp(1 - 1/ratio) for ratio = sys/ref <= 1 (1 above; 0 when a length is 0).
    """
    sys_len, ref_len = stats[..., 0], stats[..., 1]
    correct, total = stats[..., 2:6], stats[..., 6:10]
    with np.errstate(divide="ignore", invalid="ignore"):
        precisions = np.where(total > 0, correct / np.maximum(total, 1), 0.0)
        geo = np.where(np.all(precisions > 0, axis=-1),
                       np.exp(np.log(np.maximum(precisions, 1e-300)).mean(axis=-1)), 0.0)
        ratio = _ratio(sys_len, ref_len)
        bp = np.where(ratio > 1.0, 1.0, np.exp(1.0 - 1.0 / np.where(ratio > 0, ratio, 1.0)))
    bp = np.where((sys_len == 0) | (ref_len == 0), 0.0, bp)
    return {"bleu": geo * bp, "precisions": precisions, "brevity_penalty": bp, "length_ratio": ratio}


def _ratio(sys_len: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((ref_len > 0) & (sys_len > 0), sys_len / np.maximum(ref_len, 1), 0.0)


CORPUS_BLEU: dict[str, Callable[[np.ndarray], dict[str, np.ndarray]]] = {
    "peftsum": corpus_bleu_from_stats, "evaluate": corpus_bleu_unsmoothed}


def profile_name(metric_profile_doc: dict[str, Any] | None) -> str:
    """The profile name recorded in a result.json (results written before profiles had names: ``peftsum``)."""
    return (metric_profile_doc or {}).get("name", "peftsum")


def bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def ci95(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def score(predictions: list[str], references: Sequence[str | Sequence[str]], samples: int = 1000, seed: int = 0,
          profile: str = "peftsum") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(corpus metrics with ci95, per-example scores). Metrics are fractions in [0, 1].

    Args:
        references: per example one reference, or a list of references (multi-reference scoring).
        profile: ``peftsum`` or ``evaluate`` (see the module docstring).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown metric profile {profile!r}; known: {', '.join(PROFILES)}")
    n = len(predictions)
    if n == 0:
        raise ValueError("nothing to score")
    rouge = rouge_per_example(predictions, references, profile)
    stats = bleu_statistics(predictions, references, profile)
    idx = bootstrap_indices(n, samples, seed)
    corpus_fn = CORPUS_BLEU[profile]
    corpus, boot = corpus_fn(stats.sum(axis=0)), corpus_fn(stats[idx].sum(axis=1))
    metrics: dict[str, Any] = {}
    metrics["bleu"] = {"value": float(corpus["bleu"]), "ci95": ci95(boot["bleu"])}
    metrics["bleu_precisions"] = [{"value": float(corpus["precisions"][k]), "ci95": ci95(boot["precisions"][:, k])}
                                  for k in range(4)]
    for key in ("brevity_penalty", "length_ratio"):
        metrics[key] = {"value": float(corpus[key]), "ci95": ci95(boot[key])}
    metrics["translation_length"] = int(stats[:, 0].sum())
    metrics["reference_length"] = int(stats[:, 1].sum())
    for k in ROUGE_KEYS:
        metrics[k] = {"value": float(rouge[k].mean()), "ci95": ci95(rouge[k][idx].mean(axis=1))}
    metrics["n"] = n
    per_example = [{**{k: float(rouge[k][i]) for k in ROUGE_KEYS},
                    "bleu_stats": {"sys_len": int(stats[i, 0]), "ref_len": int(stats[i, 1]),
                                   "correct": stats[i, 2:6].astype(int).tolist(),
                                   "total": stats[i, 6:10].astype(int).tolist()}} for i in range(n)]
    return metrics, per_example
