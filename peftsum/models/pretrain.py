"""Pretraining of the built-in tiny models: causal language modelling (GPT-2) and span corruption (T5), each mixed
with the objectives its recipe names (copying, prefix LM).

Why: an adapter steers features the base model already has; on a random-init base it has none, so LoRA, IA3 or
prefix tuning barely learn and the quickstart would answer *PEFT or full fine-tuning?* wrongly. The corpus is text
in the synthetic generators' vocabulary and grammar (dialogues, articles, summaries, highlights) drawn from the
``pretrain`` stream, which no train/validation/test split shares, and **unpaired**: sources and summaries come from
different seeds, so the model learns the language, never the dialogue → summary mapping the cells fine-tune on.
The loop is peftsum's own (``peftsum.train.train``), so pretraining is read the same way as fine-tuning.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PRETRAIN_SEED = 20261203  # sources; summaries use PRETRAIN_SEED + 1 (unpaired with the sources)
NOISE_DENSITY = 0.15  # T5's span corruption: share of tokens masked,
MEAN_SPAN = 3.0  # in spans of this mean length,
SENTINELS = [f"<extra_id_{i}>" for i in range(32)]  # each span replaced by one sentinel (as T5's <extra_id_N>)
SPAN_MODE = SENTINELS[-1]  # with Recipe.span_mode: starts every span-corruption input (UL2's [NLU] mode token)
MAX_TOKENS = 511  # a document is cut to this, + EOS = the tiny models' 512 positions


@dataclass(frozen=True)
class Recipe:
    """How one tiny model is pretrained (part of the tiny-model version: change it, bump TINY_VERSION)."""

    objective: str  # causal | span_corruption
    epochs: float
    learning_rate: float
    documents: int = 2500  # per kind: dialogues, articles, dialogue summaries, news highlights
    prefix_lm: float = 0.0  # span_corruption only: this share of documents is prefix LM instead (T5 paper, §3.3)
    denoise: float = 0.0  # span_corruption only: this share is BART's denoising (the decoder rewrites it whole)
    repeat: float = 0.0  # causal only: this share of documents is read twice in a row
    span_mode: bool = False  # span_corruption only: its inputs start with SPAN_MODE (spans use the other sentinels)


def corpus(documents: int) -> list[str]:
    """The pretraining documents: ``documents`` each of dialogues, articles, summaries and highlights."""
    from peftsum.data.synthetic import generate

    dialogues = generate("dialogsum", "pretrain", documents, seed=PRETRAIN_SEED)
    articles = generate("news", "pretrain", documents, seed=PRETRAIN_SEED)
    summaries = generate("dialogsum", "pretrain", documents, seed=PRETRAIN_SEED + 1)
    highlights = generate("news", "pretrain", documents, seed=PRETRAIN_SEED + 1)
    return (
        [d["dialogue"] for d in dialogues]
        + [a["article"] for a in articles]
        + [s["summary"] for s in summaries]
        + [h["highlights"] for h in highlights]
    )


def _segments(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` cut at random into ``parts`` positive lengths."""
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total])]


def span_corrupt(ids: list[int], sentinel_ids: list[int], eos: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """(encoder input, decoder target) of T5's span corruption: about NOISE_DENSITY of ``ids`` in spans of mean
    length MEAN_SPAN; each span becomes one sentinel in the input, and the target lists sentinel + span in turn."""
    n = len(ids)
    noise = max(1, round(n * NOISE_DENSITY))
    spans = max(1, min(round(noise / MEAN_SPAN), len(sentinel_ids), noise, n - noise))
    noise_lens, keep_lens = _segments(noise, spans, rng), _segments(n - noise, spans, rng)
    source, target, at = [], [], 0
    for sentinel, keep, drop in zip(sentinel_ids, keep_lens, noise_lens):
        source += ids[at : at + keep] + [sentinel]
        target += [sentinel] + ids[at + keep : at + keep + drop]
        at += keep + drop
    return source + [eos], target + [eos]


def prefix_lm(ids: list[int], eos: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """(encoder input, decoder target) of prefix language modelling: the encoder reads the first part of a
    document (a quarter to three quarters of it), the decoder writes the rest."""
    cut = rng.randint(max(1, len(ids) // 4), max(1, 3 * len(ids) // 4))
    return ids[:cut] + [eos], ids[cut:] + [eos]


def features(tokenizer: Any, recipe: Recipe, texts: list[str], seed: int = PRETRAIN_SEED) -> Any:
    """TrainFeatures of the pretraining corpus under ``recipe``'s objectives: documents cut to MAX_TOKENS, those of
    fewer than 4 tokens left out.

    Both copy objectives (``denoise``, ``repeat``) teach what summarising needs and the other objectives do not: to
    carry a name, a place or a day from the input into the output. Span corruption asks for tokens that are *absent*
    from the encoder's input and prefix LM for new text; language modelling on short documents rarely sees a
    name again. Neither copy objective pairs a source with its summary.
    """
    from peftsum.data.features import TrainFeatures

    rng = random.Random(seed)
    eos = tokenizer.eos_token_id
    sentinel_ids = tokenizer.convert_tokens_to_ids(SENTINELS)
    mode = []
    if recipe.span_mode:
        mode, sentinel_ids = [tokenizer.convert_tokens_to_ids(SPAN_MODE)], sentinel_ids[:-1]
    gap = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    inputs, labels = [], []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids = ids[:MAX_TOKENS]
        if len(ids) < 4:
            continue
        draw = rng.random()
        if recipe.objective == "causal":
            if draw < recipe.repeat:
                ids = (ids + gap + ids)[:MAX_TOKENS]
            source = target = ids + [eos]
        elif draw < recipe.prefix_lm:
            source, target = prefix_lm(ids, eos, rng)
        elif draw < recipe.prefix_lm + recipe.denoise:
            source, target = span_corrupt(ids, sentinel_ids, eos, rng)[0], ids + [eos]
        else:
            source, target = span_corrupt(ids, sentinel_ids, eos, rng)
            source = mode + source
        inputs.append(source)
        labels.append(target)
    return TrainFeatures(
        inputs,
        labels,
        kept=len(inputs),
        dropped=len(texts) - len(inputs),
        ids=[str(i) for i in range(len(inputs))],
        source_lens=[],
        summary_lens=[],
    )


def pretrain(
    model: Any, tokenizer: Any, recipe: Recipe, progress: Callable[[int, int, float], None] | None = None
) -> list[float]:
    """Pretrain ``model`` in place on the CPU under ``recipe``; returns the per-step training losses."""
    import torch

    from peftsum.spec.settings import TrainSettings
    from peftsum.train import Hooks, Runtime, TokenLayout, train
    from peftsum.train_plan import make_plan

    settings = TrainSettings(
        epochs=recipe.epochs,
        learning_rate=recipe.learning_rate,
        lr_scheduler="cosine",
        warmup_ratio=0.05,
        weight_decay=0.01,
        batch_tokens=4096,
        checkpoint_every_seconds=None,
    )
    feats = features(tokenizer, recipe, corpus(recipe.documents))
    causal = recipe.objective == "causal"
    plan = make_plan(feats, settings, PRETRAIN_SEED, seq2seq=not causal)

    def report(r: Any, total: int) -> None:
        if progress is not None and (r.steps % 50 == 0 or r.steps == total):
            progress(r.steps, total, r.loss_history[-1])

    cpu = Runtime(torch.device("cpu"), "fp32", fused=False, compile=False)
    result = train(model, feats, plan, settings, cpu, TokenLayout(tokenizer.pad_token_id, causal),
                   hooks=Hooks(progress=report))
    return result.loss_history
