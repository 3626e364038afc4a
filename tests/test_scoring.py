"""peftsum.scoring equals sacrebleu and rouge-score called directly; its BLEU CI resamples sufficient statistics."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from peftsum import scoring

REFS = [
    "Amanda baked cookies and will bring Jerry some tomorrow.",
    "Olivia and Olivier are voting for liberals in this election.",
    "Kim may try the pomodoro technique recommended by Tim to get more stuff done.",
    "Edward thinks he is in love with Bella. Rachel wants Edward to open his door.",
    "Sam is confused, because he overheard Rick complaining about him as a roommate.",
    "Neville is getting married to Tina. She asks him for the date of his wedding.",
    "John didn't show up for class today.",
    "The meeting is moved to Friday at 3 pm.",
]
PREDS = [
    "Amanda baked cookies. She will bring Jerry some tomorrow.",
    "Olivia and Olivier vote for the liberals.",
    "Tim recommends the pomodoro technique to Kim.",
    "Edward is in love with Bella. Rachel tells Edward to open the door.",
    "Rick complained about Sam as a roommate.",
    "Tina asks Neville when he is getting married.",
    "John was absent today.",
    "The meeting moved to Friday.",
]


def direct_rouge(preds: list[str], refs: list[str], key: str) -> float:
    scorer = rouge_scorer.RougeScorer([key], use_stemmer=True)
    return float(np.mean([scorer.score(r, p)[key].fmeasure for p, r in zip(preds, refs, strict=True)]))


def test_bleu_matches_sacrebleu() -> None:
    metrics, _ = scoring.score(PREDS, REFS, samples=200, seed=0)
    ref = sacrebleu.corpus_bleu(PREDS, [REFS])
    assert 0 < ref.score < 100
    assert metrics["bleu"]["value"] == pytest.approx(ref.score / 100, abs=1e-12)
    assert [p["value"] for p in metrics["bleu_precisions"]] == pytest.approx([p / 100 for p in ref.precisions],
                                                                            abs=1e-12)
    assert metrics["brevity_penalty"]["value"] == pytest.approx(ref.bp, abs=1e-12)
    assert ref.bp < 1  # the predictions are shorter: the penalty is exercised
    assert metrics["n"] == len(PREDS)


@pytest.mark.parametrize("key", ["rouge1", "rouge2", "rougeL"])
def test_rouge_matches_rouge_score(key: str) -> None:
    metrics, per_example = scoring.score(PREDS, REFS, samples=200, seed=0)
    expected = direct_rouge(PREDS, REFS, key)
    assert 0 < expected < 1
    assert metrics[key]["value"] == pytest.approx(expected, abs=1e-12)
    scorer = rouge_scorer.RougeScorer([key], use_stemmer=True)
    for row, p, r in zip(per_example, PREDS, REFS, strict=True):
        assert row[key] == pytest.approx(scorer.score(r, p)[key].fmeasure, abs=1e-12)


def test_rouge_uses_stemming() -> None:
    metrics, _ = scoring.score(["the cats were running"], ["the cat was run"], samples=100)
    stem = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True).score("the cat was run", "the cats were running")
    plain = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False).score("the cat was run", "the cats were running")
    assert stem["rouge1"].fmeasure != plain["rouge1"].fmeasure
    assert metrics["rouge1"]["value"] == pytest.approx(stem["rouge1"].fmeasure)


def test_rouge_lsum_splits_sentences() -> None:
    ref_sents = [["Edward thinks he is in love with Bella.", "Rachel wants Edward to open his door."],
                 ["The cat sat on the mat!", "It was happy.", "Then it slept?"]]
    pred_sents = [["Rachel wants Edward to open the door.", "Edward loves Bella."],
                  ["It slept.", "The cat sat on a mat and was happy."]]
    refs = [" ".join(s) for s in ref_sents]
    preds = [" ".join(s) for s in pred_sents]
    metrics, per_example = scoring.score(preds, refs, samples=100, seed=1)
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    expected = [scorer.score("\n".join(r), "\n".join(p))["rougeLsum"].fmeasure
                for p, r in zip(pred_sents, ref_sents, strict=True)]
    assert [row["rougeLsum"] for row in per_example] == pytest.approx(expected, abs=1e-12)
    assert metrics["rougeLsum"]["value"] == pytest.approx(np.mean(expected), abs=1e-12)
    # Without the split, Lsum would equal rougeL; with reordered sentences it must differ.
    unsplit = [scorer.score(r, p)["rougeLsum"].fmeasure for p, r in zip(preds, refs, strict=True)]
    assert metrics["rougeLsum"]["value"] != pytest.approx(np.mean(unsplit))
    assert metrics["rougeLsum"]["value"] > metrics["rougeL"]["value"]


def test_lsum_lines() -> None:
    assert scoring.lsum_lines("One. Two!  Three?\nFour") == "One.\nTwo!\nThree?\nFour"
    assert scoring.lsum_lines("  no punctuation here  ") == "no punctuation here"
    assert scoring.lsum_lines("") == ""


def test_ci_contains_point_and_is_deterministic() -> None:
    a, _ = scoring.score(PREDS, REFS, samples=300, seed=7)
    b, _ = scoring.score(PREDS, REFS, samples=300, seed=7)
    c, _ = scoring.score(PREDS, REFS, samples=300, seed=8)
    assert a == b
    for key in ("bleu", "brevity_penalty", *scoring.ROUGE_KEYS):
        lo, hi = a[key]["ci95"]
        assert lo <= a[key]["value"] <= hi, key
        assert lo < hi, key  # the examples differ, so resampling moves the score
    for p in a["bleu_precisions"]:
        assert p["ci95"][0] <= p["value"] <= p["ci95"][1]
    assert a["bleu"]["ci95"] != c["bleu"]["ci95"]  # the seed is used


def test_bootstrap_indices_deterministic() -> None:
    i1 = scoring.bootstrap_indices(10, 5, seed=3)
    i2 = scoring.bootstrap_indices(10, 5, seed=3)
    assert i1.shape == (5, 10)
    assert (i1 == i2).all()
    assert i1.min() >= 0 and i1.max() < 10


def test_corpus_bleu_from_stats_equals_sacrebleu_on_resamples() -> None:
    """The BLEU CI is valid: corpus BLEU from resampled summed statistics equals sacrebleu run on the resampled
    lists of texts (corpus BLEU is not a mean of sentence BLEUs, so this is what a resample must compute)."""
    stats = scoring.bleu_statistics(PREDS, REFS)
    assert stats.shape == (len(PREDS), 10)
    idx = scoring.bootstrap_indices(len(PREDS), 12, seed=11)
    sentence_mean_differs = False
    for row in idx:
        preds = [PREDS[i] for i in row]
        refs = [REFS[i] for i in row]
        expected = sacrebleu.corpus_bleu(preds, [refs])
        got = scoring.corpus_bleu_from_stats(stats[row].sum(axis=0))
        assert float(got["bleu"]) == pytest.approx(expected.score / 100, abs=1e-12)
        assert got["precisions"].tolist() == pytest.approx([p / 100 for p in expected.precisions], abs=1e-12)
        assert float(got["brevity_penalty"]) == pytest.approx(expected.bp, abs=1e-12)
        mean_sentence = np.mean([sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(preds, refs, strict=True)]) / 100
        sentence_mean_differs |= abs(mean_sentence - expected.score / 100) > 1e-3
    assert sentence_mean_differs
    # Vectorised over resamples, as score() uses it.
    batch = scoring.corpus_bleu_from_stats(stats[idx].sum(axis=1))
    for k, row in enumerate(idx):
        assert batch["bleu"][k] == pytest.approx(sacrebleu.corpus_bleu([PREDS[i] for i in row],
                                                                       [[REFS[i] for i in row]]).score / 100)


def test_bleu_ci_is_percentile_of_resampled_corpus_bleu() -> None:
    metrics, _ = scoring.score(PREDS, REFS, samples=200, seed=5)
    idx = scoring.bootstrap_indices(len(PREDS), 200, seed=5)
    values = [sacrebleu.corpus_bleu([PREDS[i] for i in row], [[REFS[i] for i in row]]).score / 100 for row in idx]
    assert metrics["bleu"]["ci95"] == pytest.approx(np.percentile(values, [2.5, 97.5]).tolist(), abs=1e-12)


@pytest.mark.parametrize(("preds", "refs"), [
    (["the cat"], ["the cat sat on the mat today"]),  # no 3/4-grams in the hypothesis
    (["a b c d e"], ["a x c y e"]),  # unigram matches only: exp smoothing of orders 2-4
    (["completely different words here"], ["nothing in common at all"]),  # no match at all
    (["x"], ["y"]),
    (["a b c d e f", "q r s t"], ["a b c d e f", "w v u t"]),
])
def test_corpus_bleu_from_stats_edge_cases(preds: list[str], refs: list[str]) -> None:
    expected = sacrebleu.corpus_bleu(preds, [refs])
    got = scoring.corpus_bleu_from_stats(scoring.bleu_statistics(preds, refs).sum(axis=0))
    assert float(got["bleu"]) == pytest.approx(expected.score / 100, abs=1e-12)
    assert got["precisions"].tolist() == pytest.approx([p / 100 for p in expected.precisions], abs=1e-12)
    assert float(got["brevity_penalty"]) == pytest.approx(expected.bp, abs=1e-12)


def test_identical_predictions_score_one() -> None:
    metrics, per_example = scoring.score(REFS, REFS, samples=100, seed=0)
    for key in ("bleu", "brevity_penalty", *scoring.ROUGE_KEYS):
        assert metrics[key]["value"] == pytest.approx(1.0), key
        assert metrics[key]["ci95"] == pytest.approx([1.0, 1.0]), key
    assert [p["value"] for p in metrics["bleu_precisions"]] == pytest.approx([1.0] * 4)
    for row, ref in zip(per_example, REFS, strict=True):
        stats = row["bleu_stats"]
        assert stats["sys_len"] == stats["ref_len"]
        assert stats["correct"] == stats["total"]
        assert all(row[k] == pytest.approx(1.0) for k in scoring.ROUGE_KEYS)
        assert stats["sys_len"] == len(sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(ref).split())


def test_per_example_bleu_stats_sum_to_corpus() -> None:
    _, per_example = scoring.score(PREDS, REFS, samples=100)
    ref = sacrebleu.corpus_bleu(PREDS, [REFS])
    assert sum(r["bleu_stats"]["sys_len"] for r in per_example) == ref.sys_len
    assert sum(r["bleu_stats"]["ref_len"] for r in per_example) == ref.ref_len
    assert [sum(r["bleu_stats"]["correct"][k] for r in per_example) for k in range(4)] == list(ref.counts)
    assert [sum(r["bleu_stats"]["total"][k] for r in per_example) for k in range(4)] == list(ref.totals)


def test_empty_input_refused() -> None:
    with pytest.raises(ValueError):
        scoring.score([], [])


def test_metric_profile_names_implementations() -> None:
    profile = scoring.metric_profile()
    assert profile["bleu"]["implementation"] == "sacrebleu"
    assert profile["bleu"]["version"] == sacrebleu.__version__
    assert profile["bleu"]["smooth"] == "exp"
    assert profile["rouge"]["stemming"] is True


def test_resample_without_any_match_scores_zero() -> None:
    """A bootstrap resample made only of examples with no matching n-gram has BLEU 0, as sacrebleu says."""
    preds = ["Amanda baked cookies for Jerry.", "zzz qqq", "vvv www xxx"]
    refs = ["Amanda baked cookies and will bring Jerry some.", "nothing here", "at all"]
    stats = scoring.bleu_statistics(preds, refs)
    rows = np.array([[1, 2, 1], [0, 1, 2], [2, 2, 2], [0, 0, 0]])
    got = scoring.corpus_bleu_from_stats(stats[rows].sum(axis=1))
    for k, row in enumerate(rows):
        expected = sacrebleu.corpus_bleu([preds[i] for i in row], [[refs[i] for i in row]])
        assert got["bleu"][k] == pytest.approx(expected.score / 100, abs=1e-12)
        assert got["precisions"][k].tolist() == pytest.approx([p / 100 for p in expected.precisions], abs=1e-12)
    assert got["bleu"][0] == 0.0 and got["bleu"][2] == 0.0
    assert got["bleu"][1] > 0 and got["bleu"][3] > 0


def test_length_mismatch_refused() -> None:
    with pytest.raises(ValueError):
        scoring.score(PREDS, REFS[:-1])
    with pytest.raises(ValueError):
        scoring.score(PREDS[:-1], REFS)


# --- the `evaluate` profile and multi-reference scoring --------------------------------------------------------
# Expected values come from rouge-score and sacrebleu called directly with the profile's options, or by hand from
# tensorflow/nmt's compute_bleu formula (what the `evaluate` library's bleu metric runs), never from peftsum.


@pytest.mark.parametrize("key", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_evaluate_profile_rouge_is_unstemmed_and_splits_lsum_on_newlines_only(key: str) -> None:
    preds = [p.replace(". ", ".\n", 1) for p in PREDS]  # some predictions with a newline, most sentences without
    metrics, per_example = scoring.score(preds, REFS, samples=200, seed=0, profile="evaluate")
    scorer = rouge_scorer.RougeScorer([key], use_stemmer=False)  # evaluate's defaults: no stemmer, no splitting
    expected = [scorer.score(r, p)[key].fmeasure for p, r in zip(preds, REFS, strict=True)]
    assert [row[key] for row in per_example] == pytest.approx(expected, abs=1e-12)
    assert metrics[key]["value"] == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_profiles_differ_where_their_definitions_differ() -> None:
    """Stemming raises ROUGE-1 ('cats were running' vs 'cat was run'); the regex split changes Lsum."""
    pred, ref = "The cats were running. Then they slept.", "The cat was run. The cat sleeps."
    ours, _ = scoring.score([pred], [ref], samples=100, profile="peftsum")
    theirs, _ = scoring.score([pred], [ref], samples=100, profile="evaluate")
    assert ours["rouge1"]["value"] > theirs["rouge1"]["value"]
    lsum = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=False).score(ref, pred)["rougeLsum"].fmeasure
    assert theirs["rougeLsum"]["value"] == pytest.approx(lsum, abs=1e-12)
    assert scoring.metric_profile("evaluate")["rouge"]["stemming"] is False
    assert scoring.metric_profile("evaluate")["bleu"]["smooth"] == "none"


def test_evaluate_profile_bleu_by_hand() -> None:
    """nmt compute_bleu, worked by hand: 7 hypothesis tokens, 6 reference tokens (ratio 7/6 > 1: no penalty),
    precisions 6/7, 5/6, 4/5, 3/4, BLEU = (3/7) ** (1/4)."""
    metrics, per_example = scoring.score(["the cat sat on the mat today"], ["the cat sat on the mat"], samples=100,
                                         profile="evaluate")
    assert [p["value"] for p in metrics["bleu_precisions"]] == pytest.approx([6 / 7, 5 / 6, 4 / 5, 3 / 4])
    assert metrics["brevity_penalty"]["value"] == 1.0
    assert metrics["length_ratio"]["value"] == pytest.approx(7 / 6)
    assert (metrics["translation_length"], metrics["reference_length"]) == (7, 6)
    assert metrics["bleu"]["value"] == pytest.approx((3 / 7) ** 0.25, abs=1e-12)
    assert per_example[0]["bleu_stats"] == {"sys_len": 7, "ref_len": 6, "correct": [6, 5, 4, 3], "total": [7, 6, 5, 4]}


def test_evaluate_profile_bleu_is_unsmoothed() -> None:
    """'the cat sat on the mat' vs 'the cat is on the mat': precisions 5/6, 3/5, 1/4, 0/3 by hand, so unsmoothed
    BLEU is 0 while the peftsum profile's exp smoothing keeps it positive."""
    pred, ref = "the cat sat on the mat", "the cat is on the mat"
    theirs, _ = scoring.score([pred], [ref], samples=100, profile="evaluate")
    ours, _ = scoring.score([pred], [ref], samples=100, profile="peftsum")
    assert [p["value"] for p in theirs["bleu_precisions"]] == pytest.approx([5 / 6, 3 / 5, 1 / 4, 0.0])
    assert theirs["bleu"]["value"] == 0.0
    assert ours["bleu"]["value"] == pytest.approx(sacrebleu.corpus_bleu([pred], [[ref]]).score / 100, abs=1e-12)
    assert ours["bleu"]["value"] > 0


def test_evaluate_profile_bleu_equals_unsmoothed_sacrebleu_for_one_reference() -> None:
    """With one reference the nmt formula and sacrebleu's smooth_method='none' agree (same 13a tokens, same
    brevity penalty), so sacrebleu is an independent oracle, bootstrap resamples included."""
    metrics, _ = scoring.score(PREDS, REFS, samples=50, seed=3, profile="evaluate")
    expected = sacrebleu.corpus_bleu(PREDS, [REFS], smooth_method="none")
    assert metrics["bleu"]["value"] == pytest.approx(expected.score / 100, abs=1e-12)
    assert metrics["brevity_penalty"]["value"] == pytest.approx(expected.bp, abs=1e-12)
    assert metrics["length_ratio"]["value"] == pytest.approx(expected.sys_len / expected.ref_len, abs=1e-12)
    idx = scoring.bootstrap_indices(len(PREDS), 50, seed=3)
    boot = [sacrebleu.corpus_bleu([PREDS[i] for i in row], [[REFS[i] for i in row]], smooth_method="none").score / 100
            for row in idx]
    assert metrics["bleu"]["ci95"] == pytest.approx(list(np.percentile(boot, [2.5, 97.5])), abs=1e-12)


def test_multi_reference_bleu_reference_length_closest_vs_shortest() -> None:
    """Hypothesis of 5 tokens, references of 6 and 2 tokens, every n-gram matched: sacrebleu (peftsum) takes the
    closest length, 6, so BP = exp(1 - 6/5); nmt (evaluate) takes the shortest, 2, so no penalty and BLEU = 1."""
    pred, refs = "a b c d e", ["a b c d e f", "a b"]
    ours, _ = scoring.score([pred], [refs], samples=100, profile="peftsum")
    theirs, _ = scoring.score([pred], [refs], samples=100, profile="evaluate")
    expected = sacrebleu.corpus_bleu([pred], [[refs[0]], [refs[1]]])
    assert ours["bleu"]["value"] == pytest.approx(expected.score / 100, abs=1e-12)
    assert ours["brevity_penalty"]["value"] == pytest.approx(np.exp(1 - 6 / 5), abs=1e-12)
    assert theirs["bleu"]["value"] == pytest.approx(1.0)
    assert theirs["length_ratio"]["value"] == pytest.approx(5 / 2)


def test_multi_reference_bleu_matches_sacrebleu_over_a_corpus() -> None:
    refs = [[r, p] for r, p in zip(REFS, reversed(PREDS))]  # two references each, of different lengths
    metrics, _ = scoring.score(PREDS, refs, samples=100, profile="peftsum")
    expected = sacrebleu.corpus_bleu(PREDS, [[r[0] for r in refs], [r[1] for r in refs]])
    assert metrics["bleu"]["value"] == pytest.approx(expected.score / 100, abs=1e-12)
    assert [p["value"] for p in metrics["bleu_precisions"]] == pytest.approx([p / 100 for p in expected.precisions])


@pytest.mark.parametrize("profile", scoring.PROFILES)
def test_multi_reference_rouge_takes_the_best_reference(profile: str) -> None:
    refs = [[r, "completely unrelated words", p[: len(p) // 2]] for r, p in zip(REFS, PREDS)]
    metrics, per_example = scoring.score(PREDS, refs, samples=100, profile=profile)
    prepare = scoring.lsum_lines if profile == "peftsum" else (lambda t: t)
    scorer = rouge_scorer.RougeScorer(list(scoring.ROUGE_KEYS), use_stemmer=profile == "peftsum")
    for key in scoring.ROUGE_KEYS:
        best = [max(scorer.score(prepare(r), prepare(p))[key].fmeasure for r in rs) for p, rs in zip(PREDS, refs)]
        assert [row[key] for row in per_example] == pytest.approx(best, abs=1e-12)
        assert metrics[key]["value"] == pytest.approx(float(np.mean(best)), abs=1e-12)


def test_unknown_profile_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric profile"):
        scoring.score(PREDS, REFS, profile="rouge-only")


def test_a_20k_word_example_scores_in_seconds_and_rouge_reads_the_first_1024_tokens() -> None:
    """Reproduction: ROUGE on one 20,000-word prediction against a 20,000-word reference took 204 s (rouge-score's
    LCS is quadratic). ROUGE now reads the first MAX_ROUGE_TOKENS rouge-score tokens of each text (recorded in the
    metric profile); BLEU reads everything."""
    import random
    import time

    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]

    def text(n: int) -> str:
        return " ".join(rng.choice(words) + ("." if i % 20 == 19 else "") for i in range(n))

    pred, ref = text(20000), text(20000)
    t0 = time.perf_counter()
    metrics, per_example = scoring.score([pred], [ref], samples=100)
    assert time.perf_counter() - t0 < 20  # about 2 s here; 204 s before
    limit = scoring.MAX_ROUGE_TOKENS
    assert scoring.metric_profile()["rouge"]["max_tokens"] == limit == 1024
    cut_pred, cut_ref = " ".join(pred.split()[:limit]), " ".join(ref.split()[:limit])  # one token per word here
    for key in ("rouge1", "rougeL"):
        direct = rouge_scorer.RougeScorer([key], use_stemmer=True).score(cut_ref, cut_pred)[key].fmeasure
        assert per_example[0][key] == pytest.approx(direct, abs=1e-12)
    assert metrics["translation_length"] == 21000 == metrics["reference_length"]  # BLEU is not cut (13a: 1000 "."s)


def test_rouge_truncate_keeps_text_up_to_the_limit_th_token() -> None:
    assert scoring.rouge_truncate("Short text.", 1024) == "Short text."
    text = "One-two, three.\nFour five " * 200
    cut = scoring.rouge_truncate(text, 7)
    assert cut == "One-two, three.\nFour five One-two"  # line breaks and punctuation kept, cut after token 7
    assert len(scoring.rouge_truncate("a " * 5000, 1024).split()) == 1024
