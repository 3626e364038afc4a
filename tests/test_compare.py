"""Paired bootstrap: matches a slow reference loop, detects a planted difference, and finds none between
identical predictions."""

from __future__ import annotations

import random

import numpy as np
import pytest
import sacrebleu

from peftsum.compare import paired_bootstrap
from peftsum.scoring import bootstrap_indices, score


def _rows(preds: list[str], refs: list[str]) -> list[dict]:
    _, per = score(preds, refs, samples=100)
    return [{"id": f"x{i}", "prediction": p, **s} for i, (p, s) in enumerate(zip(preds, per, strict=True))]


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(0)
    vocab = "the cat dog sat on a mat today meets friday at noon office park buys lamp".split()
    refs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(6, 14))) for _ in range(120)]
    good = [" ".join(w if rng.random() < 0.8 else rng.choice(vocab) for w in r.split()) for r in refs]
    bad = [" ".join(w if rng.random() < 0.4 else rng.choice(vocab) for w in r.split()) for r in refs]
    return refs, good, bad


def test_matches_slow_reference(data) -> None:
    refs, good, bad = data
    a, b = _rows(good, refs), _rows(bad, refs)
    fast = paired_bootstrap(a, b, "bleu", samples=60, seed=3)
    idx = bootstrap_indices(len(refs), 60, 3)
    diffs = []
    for row in idx:  # the slow way: sacrebleu on every resampled corpus
        ga = sacrebleu.corpus_bleu([good[i] for i in row], [[refs[i] for i in row]]).score
        gb = sacrebleu.corpus_bleu([bad[i] for i in row], [[refs[i] for i in row]]).score
        diffs.append((ga - gb) / 100)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    assert fast["ci95"] == pytest.approx([lo, hi], abs=1e-9)
    assert fast["p_a_better"] == pytest.approx(np.mean(np.asarray(diffs) > 0) + 0.5 * np.mean(np.asarray(diffs) == 0))
    rouge = paired_bootstrap(a, b, "rougeL", samples=60, seed=3)
    slow = [np.mean([a[i]["rougeL"] - b[i]["rougeL"] for i in row]) for row in idx]
    assert rouge["ci95"] == pytest.approx(list(np.percentile(slow, [2.5, 97.5])), abs=1e-12)


def test_detects_planted_difference(data) -> None:
    refs, good, bad = data
    res = paired_bootstrap(_rows(good, refs), _rows(bad, refs), "rougeL")
    assert res["diff"] > 0.1 and res["ci95"][0] > 0 and res["p_a_better"] > 0.99


def test_identical_predictions_show_no_difference(data) -> None:
    refs, good, _ = data
    rows = _rows(good, refs)
    for metric in ("rougeL", "bleu"):
        res = paired_bootstrap(rows, [dict(r) for r in rows], metric)
        assert res["diff"] == 0 and res["ci95"] == [0.0, 0.0] and res["p_a_better"] == 0.5


def test_aligns_by_example_id(data) -> None:
    refs, good, bad = data
    a, b = _rows(good, refs), _rows(bad, refs)
    shuffled = list(reversed(b))[:100]  # order and coverage differ: only shared ids are compared
    res = paired_bootstrap(a, shuffled, "rougeL")
    assert res["n"] == 100
    with pytest.raises(ValueError, match="share no example"):
        paired_bootstrap(a, [{**r, "id": "other" + r["id"]} for r in b], "rougeL")


def test_duplicate_ids_are_never_paired(data) -> None:
    """Reproduction: two cells scored on a split whose four rows all had id "same" compared as "+0.375 [+0.375,
    +0.375]": align paired every row of one cell with the other cell's last duplicate. Refused, naming the id."""
    refs, good, bad = data
    a, b = _rows(good[:4], refs[:4]), _rows(bad[:4], refs[:4])
    for rows in (a, b):
        for r in rows:
            r["id"] = "same"
    with pytest.raises(ValueError, match="'same' more than once"):
        paired_bootstrap(a, b, "rougeL")
    with pytest.raises(ValueError, match="cell b lists example id"):
        paired_bootstrap(_rows(good[:4], refs[:4]), [*_rows(bad[:4], refs[:4]), {"id": "x0"}], "rougeL")
