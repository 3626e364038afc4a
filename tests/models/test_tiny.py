"""The shipped tiny models: their files are the committed build, tampering is refused, their pretraining corpus is
apart from every split the cells use, span corruption loses nothing, and (opt-in, ~9 min per model) a build from
nothing gives the committed digest."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from peftsum.data.synthetic import generate
from peftsum.models import pretrain, tiny


@pytest.mark.parametrize("name", sorted(tiny.RECIPES))
def test_shipped_files_match_the_committed_digest(name: str) -> None:
    folder = tiny.ensure_tiny(name)
    assert folder == tiny.WEIGHTS / name
    assert tiny.digest(folder) == tiny.DIGESTS[name]
    assert (folder / "model.safetensors").stat().st_size < 5_000_000  # small enough to ship in git


def test_tampered_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(tiny.WEIGHTS / "tiny-gpt2", tmp_path / "tiny-gpt2")
    with open(tmp_path / "tiny-gpt2" / "model.safetensors", "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\x00" * 8)
    monkeypatch.setattr(tiny, "WEIGHTS", tmp_path)
    tiny.ensure_tiny.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="do not match their committed digest"):
            tiny.ensure_tiny("tiny-gpt2")
    finally:
        tiny.ensure_tiny.cache_clear()


def test_pretraining_corpus_shares_nothing_with_the_splits_and_is_unpaired() -> None:
    texts = set(pretrain.corpus(500))
    for split in ("train", "validation", "test"):
        dialogues = generate("dialogsum", split, 500)
        assert not texts & {d["dialogue"] for d in dialogues}, split
        articles = generate("news", split, 500)
        assert not texts & {a["article"] for a in articles}, split
    # Summaries come from another seed than the dialogues: few of the corpus's summaries belong to its dialogues
    # (only the short template-like ones can coincide).
    sources = generate("dialogsum", "pretrain", 500, seed=pretrain.PRETRAIN_SEED)
    summaries = {s["summary"] for s in generate("dialogsum", "pretrain", 500, seed=pretrain.PRETRAIN_SEED + 1)}
    paired = sum(s["summary"] in summaries for s in sources)
    assert paired < 100, f"{paired} of 500 dialogues have their own summary in the corpus"


def test_span_corruption_hides_spans_behind_sentinels_and_loses_nothing() -> None:
    ids = list(range(100, 180))
    sentinels = list(range(3, 35))
    source, target = pretrain.span_corrupt(ids, sentinels, 1, random.Random(0))
    assert source[-1] == 1 and target[-1] == 1
    used = [t for t in target if t in sentinels]
    assert used == sentinels[: len(used)] and len(used) >= 2
    assert [t for t in source if t in sentinels] == used  # same sentinels, same order
    noise = [t for t in target[:-1] if t not in sentinels]
    assert len(noise) == round(len(ids) * pretrain.NOISE_DENSITY)
    # put the spans back where their sentinels stand: the document again
    spans, current = {}, None
    for t in target[:-1]:
        if t in sentinels:
            current = t
            spans[t] = []
        else:
            spans[current].append(t)
    rebuilt = [x for t in source[:-1] for x in (spans[t] if t in sentinels else [t])]
    assert rebuilt == ids


def test_each_objective_builds_its_pairs() -> None:
    """Causal LM predicts the document (``repeat``: read twice); span corruption's target is the hidden spans (its
    input led by the mode token with ``span_mode``), denoising's the whole document; prefix LM's encoder and decoder
    halves make the document again."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny.WEIGHTS / "tiny-t5")
    texts = [d["dialogue"] for d in generate("dialogsum", "train", 20)]
    docs = [ids + [tok.eos_token_id] for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    gap = tok("\n\n", add_special_tokens=False)["input_ids"]
    sentinels = set(tok.convert_tokens_to_ids(pretrain.SENTINELS))

    def pairs(objective: str, **shares: float) -> list[tuple[list[int], list[int]]]:
        f = pretrain.features(tok, pretrain.Recipe(objective, 1, 1e-3, **shares), texts)
        return list(zip(f.input_ids, f.labels))

    assert pairs("causal") == [(d, d) for d in docs]
    twice = [d[:-1] + gap + d for d in docs]
    assert pairs("causal", repeat=1.0) == [(d, d) for d in twice]
    for source, target in pairs("span_corruption", denoise=1.0):
        assert target in docs and sentinels & set(source) and len(source) < len(target)
    for source, target in pairs("span_corruption", prefix_lm=1.0):
        assert source[:-1] + target in docs and not sentinels & set(source + target)
    for _, target in pairs("span_corruption"):
        assert target not in docs and sentinels & set(target)
    mode = tok.convert_tokens_to_ids(pretrain.SPAN_MODE)
    for source, target in pairs("span_corruption", span_mode=True):  # asks for spans, never stands for one
        assert source[0] == mode and mode not in source[1:] + target


@pytest.mark.skipif(
    os.environ.get("PEFTSUM_REBUILD_TINY") != "1",
    reason="opt-in: PEFTSUM_REBUILD_TINY=1 rebuilds both tiny models from nothing (~4 and ~9 min)",
)
@pytest.mark.parametrize("name", sorted(tiny.RECIPES))
def test_building_from_nothing_gives_the_committed_digest(name: str, tmp_path: Path) -> None:
    assert tiny.build(name, tmp_path / name) == tiny.DIGESTS[name]
