"""Synthetic but realistic finished grids for report tests and the aggregation benchmark.

``write_fake_grid`` writes, through the store API and the layout helpers of ``peftsum.store.layout``, what
``launcher run`` and ``peftsum cell`` leave behind: ``grid.json``, ``cells/<id>/spec.json``, ``status.json``,
``attempts/<aid>/{result.json, predictions.jsonl, eda.json}`` and ``_SUCCESS`` (committed last with the size and
SHA-256 of every file). The cells are real :class:`peftsum.spec.Cell` objects expanded from a generated grid text
by :func:`peftsum.spec.parse_grid`, so their ids hash exactly as the real ones; nothing here trains or imports
torch (only numpy, through ``peftsum.scoring``).

The numbers are made up but hang together the way real ones do: per-example ROUGE and BLEU statistics are computed
from the fake predictions (a cheap, tokenised re-implementation, not rouge-score/sacrebleu), and ``metrics`` are
their means / corpus BLEU with percentile-bootstrap CIs; full fine-tuning has the largest ``adapter_bytes``;
``none`` and ``lead`` cells carry the null/0 training stats of an untrained cell; every cell of a dataset scores
the same example ids. result.json is built through the constructors of ``peftsum.result``, as a real cell's is,
so it has exactly the schema's keys. Everything is deterministic given ``seed`` except the
``finished_at`` stamp that ``commit_success`` puts into ``_SUCCESS``.

Import it from tests through the ``fake_cells`` fixture of ``tests/report/conftest.py``; scripts load it by path
(see ``bench/aggregate_bench.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import random
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from peftsum import scoring
from peftsum.methods import METHODS
from peftsum.result import (
    make_data_stats,
    make_generate_stats,
    make_provenance,
    make_resources,
    make_result,
    make_train_stats,
)
from peftsum.spec import Cell, SpecError, parse_grid
from peftsum.spec.catalog import ARCH_FAMILY, MODELS
from peftsum.store import Store, layout, open_store

# Axis values, in the order the first cells of a small grid should cover them (see _ranked).
MODEL_ORDER = (
    "tiny-gpt2",
    "tiny-t5",
    "gpt2",
    "t5-small",
    "gpt2-medium",
    "t5-base",
    "flan-t5-small",
    "bart-base",
    "flan-t5-base",
    "gpt2-large",
    "t5-large",
    "bart-large",
    "flan-t5-large",
    "gpt2-xl",
)
METHOD_ORDER = (
    "full",
    "lora",
    "none",
    "ia3",
    "prefix",
    "dora",
    "prompt",
    "ptuning",
    "adalora",
    "bitfit",
    "loha",
    "lokr",
    "vera",
    "lora-r64",
    "lora-r4",
    "prefix-50",
)
DATASET_ORDER = ("synthetic-dialogsum", "synthetic-news", "dialogsum", "samsum", "cnn_dailymail")
SEEDS = (42, 43, 44, 45, 46)
VARIANTS = {  # the grid's methods: section
    "lora": {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.05},
    "lora-r64": {"type": "lora", "r": 64, "alpha": 128},
    "lora-r4": {"type": "lora", "r": 4, "alpha": 8},
    "prefix-50": {"type": "prefix", "num_virtual_tokens": 50},
}

# Parameter counts of the registry's models (tiny ones as built by peftsum.models.tiny, roughly).
TOTAL_PARAMS = {
    "tiny-gpt2": 724_480,
    "tiny-t5": 1_050_112,
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "t5-small": 60_506_624,
    "t5-base": 222_903_552,
    "t5-large": 737_668_096,
    "flan-t5-small": 76_961_152,
    "flan-t5-base": 247_577_856,
    "flan-t5-large": 783_150_080,
    "bart-base": 139_420_416,
    "bart-large": 406_291_456,
}
# Training throughput of full fine-tuning (tokens/s): CPU for the tiny models, an H100 for the others.
TOKENS_PER_S = {
    "tiny-gpt2": 3100.0,
    "tiny-t5": 2400.0,
    "gpt2": 42000.0,
    "gpt2-medium": 16000.0,
    "gpt2-large": 7200.0,
    "gpt2-xl": 3600.0,
    "t5-small": 52000.0,
    "t5-base": 21000.0,
    "t5-large": 6400.0,
    "flan-t5-small": 50000.0,
    "flan-t5-base": 20500.0,
    "flan-t5-large": 6200.0,
    "bart-base": 30000.0,
    "bart-large": 10500.0,
}
# Quality (roughly the ROUGE-1 a fully fine-tuned model reaches on DialogSum-like data).
MODEL_QUALITY = {
    "tiny-gpt2": 0.30,
    "tiny-t5": 0.27,
    "gpt2": 0.38,
    "gpt2-medium": 0.41,
    "gpt2-large": 0.43,
    "gpt2-xl": 0.45,
    "t5-small": 0.40,
    "t5-base": 0.44,
    "t5-large": 0.47,
    "flan-t5-small": 0.42,
    "flan-t5-base": 0.46,
    "flan-t5-large": 0.49,
    "bart-base": 0.45,
    "bart-large": 0.49,
}
DATASET_QUALITY = {
    "synthetic-dialogsum": 0.14,
    "synthetic-news": 0.10,
    "dialogsum": 0.0,
    "samsum": 0.02,
    "cnn_dailymail": -0.05,
}
# method type → (quality factor, trainable fraction of the base, training speed-up over full FT)
METHOD_TRAITS = {
    "full": (1.00, 1.0, 1.00),
    "lora": (0.97, 0.0047, 1.30),
    "dora": (0.975, 0.0049, 0.90),
    "adalora": (0.95, 0.0045, 1.10),
    "ia3": (0.86, 0.00019, 1.35),
    "prefix": (0.82, 0.0030, 1.40),
    "prompt": (0.74, 0.00012, 1.45),
    "ptuning": (0.78, 0.0021, 1.35),
    "bitfit": (0.85, 0.0008, 1.30),
    "loha": (0.93, 0.0094, 1.00),
    "lokr": (0.90, 0.0006, 1.10),
    "vera": (0.88, 0.00005, 1.20),
    "none": (0.35, 0.0, 0.0),
    "lead": (0.55, 0.0, 0.0),
}
TOKENS_PER_WORD = {"gpt2": 1.32, "t5": 1.41, "bart": 1.30}
PACKAGES = {
    "peftsum": "0.1.0",
    "torch": "2.13.0",
    "transformers": "5.24.0",
    "peft": "0.21.2",
    "datasets": "5.2.0",
    "rouge-score": "0.1.2",
    "sacrebleu": "2.6.0",
}
GPU_NAME = "NVIDIA H100 80GB HBM3"
START = datetime(2026, 11, 26, 9, 0, 0, tzinfo=timezone.utc)
FAIL_REASONS = (
    "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity; "
    "76.90 GiB already allocated)",
    "OSError: [Errno 28] No space left on device: '/tmp/peftsum-ckpt/step-1200/optimizer.pt'",
    "ValueError: loss is nan at step 57 (learning rate 4.0e-03 too high for this model?)",
    "bad spec: spec.json: hashes to 0123456789ab, not to the cell id it is stored under",
)
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
_BLEU_TOKEN = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def write_fake_grid(
    store_root: Path,
    grid: str,
    n_cells: int,
    seeds: int = 1,
    seed: int = 0,
    *,
    with_failures: bool = False,
    n_examples: int = 30,
    n_datasets: int | None = None,
) -> list[str]:
    """Write a finished grid of ``n_cells`` cells into the store at ``store_root``; returns every cell id of the
    grid in grid.json order.

    Args:
        store_root: a local folder (created if needed); the grid goes to ``<store_root>/<grid>/``.
        grid: the grid name (a DNS-1123 label).
        n_cells: cells in grid.json. A small grid covers full FT, LoRA, ``lead`` (when that method is registered)
            and ``none`` on tiny-gpt2 / tiny-t5, over ceil(n_cells / (6 * seeds)) datasets (at most 3, e.g. 12 cells:
            synthetic-dialogsum and synthetic-news); larger grids add models, methods and then datasets (at most
            14 models x 16 methods x 5 datasets, minus incompatible pairs, x ``seeds``: 1,040 with one seed).
        seeds: values on the seed axis (42, 43, …); the report gives mean ± sd over them.
        seed: seeds every random choice: same arguments, same files (except ``_SUCCESS``'s ``finished_at``).
        with_failures: leave some cells not done: two ``failed`` (with a reason), one ``running``; from 10 cells on
            also one whose status says ``done`` but whose ``_SUCCESS`` lists a file with the wrong size (torn),
            and from 20 on one ``pending`` (preempted) and one never started (no status.json). One done cell also
            keeps a stray second attempt folder that readers must ignore. Full fine-tuning cells are always done,
            so every dataset has done cells, and at least one other cell stays done (tiny grids get fewer failures).
        n_examples: evaluation examples per cell (``eval.limit``; rows of predictions.jsonl).
        n_datasets: spread the cells over exactly this many datasets (1-5) instead of the default above; the
            benchmark keeps it fixed so every size draws the same number of per-dataset figures.
    """
    if n_cells < 1:
        raise ValueError("n_cells must be at least 1")
    if not 1 <= seeds <= len(SEEDS):
        raise ValueError(f"seeds must be in [1, {len(SEEDS)}]")
    cells, parsed = _select_cells(grid, str(store_root), n_cells, seeds, n_examples, n_datasets)
    ids = [c.cell_id for c in cells]  # each cell_id / to_dict() call re-serialises the cell: compute them once
    specs = [c.to_dict() for c in cells]
    store = open_store(str(store_root))
    layout.write_json(
        store,
        layout.grid_key(grid, "grid.json"),
        {
            "name": grid,
            "store": str(store_root),
            "cluster": dataclasses.asdict(parsed.cluster),
            "cells": dict(zip(ids, specs)),
        },
    )
    plan = _failure_plan(cells, ids, seed) if with_failures else {}
    examples: dict[str, list[dict[str, Any]]] = {}
    for index, (cell, cid, spec) in enumerate(zip(cells, ids, specs)):
        layout.write_json(store, layout.cell_key(grid, cid, "spec.json"), spec)
        state = plan.get(cid, "done")
        if state in ("done", "torn", "stray"):
            exs = examples.get(cell.dataset.name)
            if exs is None:
                exs = examples[cell.dataset.name] = _examples(cell, n_examples)
            _write_done(store, grid, cell, cid, spec, index, seed, exs, torn=state == "torn", stray=state == "stray")
        else:
            _write_not_done(store, grid, cid, index, seed, state)
    return ids


# --- choosing the cells ---------------------------------------------------------------------------------------


def _grid_text(grid: str, store: str, seeds: int, n_examples: int, with_lead: bool) -> str:
    methods = [m for m in METHOD_ORDER if m in VARIANTS or m in METHODS]
    excludes = []
    for model in MODEL_ORDER:
        arch = MODELS[model].arch
        for m in methods:
            mtype = VARIANTS.get(m, {}).get("type", m)
            if METHODS.get(mtype).incompatible.get(arch):
                excludes.append({"model": model, "method": m})
    doc: dict[str, Any] = {
        "name": grid,
        "store": store,
        "defaults": {
            "preset": "fast",
            "seed": SEEDS[0],
            "train": {"epochs": 3.0, "learning_rate": 2.0e-4, "batch_tokens": 16384},
            "eval": {"limit": n_examples, "max_new_tokens": 64},
            "data": {"train_limit": 2000},
        },
        "models": {
            "tiny-gpt2": {"train": {"epochs": 1.5, "learning_rate": 4.0e-3, "batch_tokens": 768}},
            "tiny-t5": {"train": {"epochs": 1.0, "learning_rate": 2.0e-3, "batch_tokens": 768}},
        },
        "axes": {
            "model": list(MODEL_ORDER),
            "method": methods,
            "dataset": list(DATASET_ORDER),
            "seed": list(SEEDS[:seeds]),
        },
        "methods": VARIANTS,
        "exclude": excludes,
    }
    if with_lead:
        doc["include"] = [
            {"model": None, "method": "lead", "dataset": d, "seed": s} for d in DATASET_ORDER for s in SEEDS[:seeds]
        ]
    return yaml.safe_dump(doc, sort_keys=False)


def _select_cells(
    grid: str, store: str, n_cells: int, seeds: int, n_examples: int, n_datasets: int | None = None
) -> tuple[list[Cell], Any]:
    parsed = None
    if "lead" in METHODS:  # model-free baseline, in peftsum since the lead method landed
        try:
            parsed = parse_grid(_grid_text(grid, store, seeds, n_examples, True), f"<fake {grid}>")
        except SpecError:
            parsed = None
    if parsed is None:
        parsed = parse_grid(_grid_text(grid, store, seeds, n_examples, False), f"<fake {grid}>")
    pairs = sorted({_pair(c) for c in parsed.cells}, key=_pair_rank)
    rank = {p: i for i, p in enumerate(pairs)}
    # As few datasets as the size allows (at least ceil(n / 6 seeds) up to 3), so small grids are dense.
    per_dataset = len(pairs) * seeds
    if n_datasets is None:
        wanted = max(min(3, math.ceil(n_cells / (6 * seeds))), math.ceil(n_cells / per_dataset))
        n_datasets = min(len(DATASET_ORDER), wanted)
    elif not 1 <= n_datasets <= len(DATASET_ORDER):
        raise ValueError(f"n_datasets must be in [1, {len(DATASET_ORDER)}]")
    datasets = DATASET_ORDER[:n_datasets]
    pool = [c for c in parsed.cells if c.dataset.name in datasets]
    if len(pool) < n_cells:
        raise ValueError(
            f"a fake grid holds at most {len(pool)} cells over {n_datasets} datasets with "
            f"seeds={seeds}; asked for {n_cells}"
        )
    pool.sort(key=lambda c: (rank[_pair(c)], DATASET_ORDER.index(c.dataset.name), c.seed))
    chosen = pool[:n_cells]
    if len({c.dataset.name for c in chosen}) < n_datasets:
        raise ValueError(f"{n_cells} cells cannot cover {n_datasets} datasets")
    return chosen, parsed


def _pair(cell: Cell) -> tuple[str, str]:
    return (cell.model.name if cell.model else "", cell.method.name)


def _pair_rank(pair: tuple[str, str]) -> tuple[int, int, int]:
    """Growing blocks of models x methods, method-major inside a block: the first six pairs are full, lora and
    none on tiny-gpt2 and tiny-t5; ``lead`` (no model) comes right after full and lora."""
    model, method = pair
    mi = MODEL_ORDER.index(model) if model else 0
    ki = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    if method == "lead":
        return (0, 1, 99)
    return (max(mi // 2, ki // 3), ki, mi)


def _failure_plan(cells: list[Cell], ids: list[str], seed: int) -> dict[str, str]:
    """cell id → not-done state (failed / running / torn / pending / missing) or "stray" (done + extra attempt)."""
    rng = random.Random(f"failures/{seed}")
    candidates = [cid for c, cid in zip(cells, ids) if c.method.type != "full"]
    states = ["failed", "failed", "running"]
    if len(cells) >= 10:
        states.append("torn")
    if len(cells) >= 20:
        states += ["pending", "missing"]
    states = states[: max(0, len(candidates) - 1)]  # keep at least one non-full cell done
    chosen = rng.sample(candidates, len(states))
    plan = dict(zip(chosen, states))
    done = [cid for cid in ids if cid not in plan]
    if done:
        plan[done[rng.randrange(len(done))]] = "stray"
    return plan


# --- evaluation examples --------------------------------------------------------------------------------------


def _examples(cell: Cell, n: int) -> list[dict[str, Any]]:
    """The first ``n`` test examples of the cell's dataset: the same ids for every cell of the dataset."""
    from peftsum.data.synthetic import generate

    generator = "news" if cell.dataset.kind == "news" else "dialogsum"
    name = cell.dataset.name
    rows = generate(generator, "test", n, seed=1234 if cell.dataset.source == "synthetic" else 5678 + len(name))
    out = []
    for i, row in enumerate(rows):
        if cell.dataset.source == "synthetic":
            ex_id = row["id"]
        elif name == "cnn_dailymail":
            ex_id = hashlib.sha1(f"cnn/{i}".encode()).hexdigest()  # noqa: S324 - an id, like the dataset's
        elif name == "samsum":
            ex_id = str(13_680_000 + 17 * i)
        else:
            ex_id = f"test_{i}_1"
        source = row["article" if generator == "news" else "dialogue"]
        summary = row["highlights" if generator == "news" else "summary"]
        out.append({"id": ex_id, "source": source, "summary": summary, "tokens": _tokenised(summary)})
    return out


# --- one done cell --------------------------------------------------------------------------------------------


def _quality(cell: Cell, rng: random.Random) -> float:
    mtype = cell.method.type
    factor = METHOD_TRAITS.get(mtype, (0.9, 0.001, 1.0))[0]
    if cell.model is None:
        base = 0.30
    else:
        base = MODEL_QUALITY.get(cell.model.name, 0.4)
        if mtype == "none" and cell.model.name.startswith("flan-"):
            factor = 0.7  # instruction-tuned: a usable zero-shot summariser
        if mtype.startswith("lora") and cell.method.params.get("r", 16) != 16:
            factor += 0.004 * math.log2(cell.method.params["r"] / 16)
    q = base * factor + DATASET_QUALITY.get(cell.dataset.name, 0.0) * (factor > 0.5) + rng.gauss(0, 0.012)
    return min(0.95, max(0.04, q * 1.45))


def _predict(cell: Cell, ex: dict[str, Any], keep: float, rng: random.Random) -> str:
    """A fake summary: the reference with words kept with probability ``keep``, others swapped for words of the
    source or dropped; untrained models ramble on from the source; lead copies its first turns/sentences."""
    src_words = ex["source"].split()
    if cell.method.type == "lead":
        k = int(cell.method.params.get("k", 3))
        units = (
            [ln.strip() for ln in ex["source"].splitlines() if ln.strip()]
            if cell.dataset.kind == "dialogue"
            else [s for s in _SENTENCE_END.split(ex["source"].strip()) if s]
        )
        return "\n".join(units[:k])
    if cell.method.type == "none" and rng.random() > keep:
        start = rng.randrange(max(1, len(src_words) - 12))
        return " ".join(src_words[start : start + rng.randint(6, 16)])
    out = []
    for word in ex["summary"].split():
        u = rng.random()
        if u < keep:
            out.append(word)
        elif u < keep + (1 - keep) * 0.55:
            out.append(rng.choice(src_words))
    if rng.random() < 0.25:
        out += src_words[: rng.randint(1, 5)]
    return " ".join(out) or rng.choice(src_words)


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (bit-parallel, Allison-Dix)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def _f1(overlap: int, n_pred: int, n_ref: int) -> float:
    if not overlap or not n_pred or not n_ref:
        return 0.0
    p, r = overlap / n_pred, overlap / n_ref
    return 2 * p * r / (p + r)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(zip(*(tokens[i:] for i in range(n))))


def _tokenised(text: str) -> dict[str, Any]:
    """What scoring needs of a text: ROUGE tokens and n-grams, Lsum sentences, BLEU tokens and n-grams."""
    rt = _ROUGE_TOKEN.findall(text.lower())
    bt = _BLEU_TOKEN.findall(text)
    return {
        "rouge": rt,
        "rouge_ngrams": (_ngrams(rt, 1), _ngrams(rt, 2)),
        "sentences": [_ROUGE_TOKEN.findall(s.lower()) for s in scoring.lsum_lines(text).splitlines()],
        "bleu": bt,
        "bleu_ngrams": [_ngrams(bt, n) for n in range(1, 5)],
    }


def _scores(prediction: str, ref: dict[str, Any]) -> dict[str, Any]:
    """Per-example ROUGE F1 and BLEU sufficient statistics against a ``_tokenised`` reference (a cheap tokenised
    approximation of rouge-score and sacrebleu, no stemming)."""
    pred = _tokenised(prediction)
    pt, rt = pred["rouge"], ref["rouge"]
    r1 = _f1(sum((pred["rouge_ngrams"][0] & ref["rouge_ngrams"][0]).values()), len(pt), len(rt))
    r2 = _f1(sum((pred["rouge_ngrams"][1] & ref["rouge_ngrams"][1]).values()), max(0, len(pt) - 1), max(0, len(rt) - 1))
    rl = _f1(_lcs(rt, pt), len(pt), len(rt))
    union = sum(_lcs(r, pt) for r in ref["sentences"])  # ~ the union LCS of rouge-score's Lsum
    rlsum = _f1(min(union, len(pt), len(rt)), len(pt), len(rt))
    bp = pred["bleu"]
    correct = [sum((p & r).values()) for p, r in zip(pred["bleu_ngrams"], ref["bleu_ngrams"])]
    total = [max(0, len(bp) - n + 1) for n in range(1, 5)]
    return {
        "rouge1": r1,
        "rouge2": r2,
        "rougeL": rl,
        "rougeLsum": rlsum,
        "bleu_stats": {"sys_len": len(bp), "ref_len": len(ref["bleu"]), "correct": correct, "total": total},
    }


@functools.lru_cache(maxsize=1)
def _metric_profile() -> dict[str, Any]:
    return scoring.metric_profile()  # reads installed package versions: slow enough to matter x 1,000


def _metrics(rows: list[dict[str, Any]], samples: int, cell_seed: int) -> dict[str, Any]:
    """Corpus metrics with percentile-bootstrap ci95, computed as peftsum.scoring.score does."""
    n = len(rows)
    stats = np.asarray(
        [
            [
                r["bleu_stats"]["sys_len"],
                r["bleu_stats"]["ref_len"],
                *r["bleu_stats"]["correct"],
                *r["bleu_stats"]["total"],
            ]
            for r in rows
        ],
        dtype=np.float64,
    )
    idx = scoring.bootstrap_indices(n, samples, cell_seed)
    corpus = scoring.corpus_bleu_from_stats(stats.sum(axis=0))
    boot = scoring.corpus_bleu_from_stats(stats[idx].sum(axis=1))
    metrics: dict[str, Any] = {
        "bleu": {"value": float(corpus["bleu"]), "ci95": scoring.ci95(boot["bleu"])},
        "bleu_precisions": [
            {"value": float(corpus["precisions"][k]), "ci95": scoring.ci95(boot["precisions"][:, k])} for k in range(4)
        ],
    }
    for key in ("brevity_penalty", "length_ratio"):
        metrics[key] = {"value": float(corpus[key]), "ci95": scoring.ci95(boot[key])}
    metrics["translation_length"] = int(stats[:, 0].sum())
    metrics["reference_length"] = int(stats[:, 1].sum())
    for key in scoring.ROUGE_KEYS:
        values = np.asarray([r[key] for r in rows])
        metrics[key] = {"value": float(values.mean()), "ci95": scoring.ci95(values[idx].mean(axis=1))}
    metrics["n"] = n
    return metrics


def _length_stats(values: np.ndarray) -> dict[str, Any]:
    """As peftsum.artifacts.length_stats (that module's top-level imports are numpy and peftsum.spec only, but
    its eda() signature is still moving, so the dict is built here)."""
    if values.size == 0:
        return {"n": 0}
    pct = np.percentile(values, [5, 25, 50, 75, 95, 99])
    hist, edges = np.histogram(values, bins=30)
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "min": int(values.min()),
        "max": int(values.max()),
        "p5": float(pct[0]),
        "p25": float(pct[1]),
        "p50": float(pct[2]),
        "p75": float(pct[3]),
        "p95": float(pct[4]),
        "p99": float(pct[5]),
        "histogram": {"counts": hist.tolist(), "edges": edges.tolist()},
    }


_EDA_CACHE: dict[tuple, dict[str, Any]] = {}


def _eda(cell: Cell, trains: bool, seed: int, exs: list[dict[str, Any]]) -> dict[str, Any]:
    """eda.json as a cell writes it (peftsum/predict.py): the training split for trained cells, the evaluation split for
    untrained ones, token lengths under the model's tokenizer (whitespace words for lead)."""
    split = "train" if trains else cell.eval.split
    key = (
        cell.dataset.name,
        cell.model.name if cell.model else None,
        split,
        cell.data.train_limit,
        cell.eval.max_new_tokens,
        cell.data.max_target_tokens,
        len(exs),
        seed,
    )
    if key in _EDA_CACHE:
        return _EDA_CACHE[key]
    if cell.model is None:
        src = np.asarray([len(e["source"].split()) for e in exs])
        summ = np.asarray([len(e["summary"].split()) for e in exs])
        out = {
            "split": split,
            "tokenizer": "whitespace",
            "source_token_budget": None,
            "source": _length_stats(src),
            "summary": _length_stats(summ),
            "merged": _length_stats(src + summ),
            "kept": len(exs),
            "dropped": 0,
            "dropped_share": 0.0,
        }
        _EDA_CACHE[key] = out
        return out
    factor = TOKENS_PER_WORD.get(cell.model.arch, 1.35)
    if trains:  # the training split: drawn around the dataset's typical lengths (the real sets have long tails)
        rng = np.random.default_rng(_stable_int(key))
        n = cell.data.train_limit or 2000
        news = cell.dataset.kind == "news"
        src_mean = {"cnn_dailymail": 780.0, "synthetic-news": 120.0, "dialogsum": 190.0, "samsum": 120.0}.get(
            cell.dataset.name, 400.0 if news else 150.0
        )
        sum_mean = 55.0 if news else 24.0
        src = np.maximum(8, rng.lognormal(math.log(src_mean * factor), 0.45, n)).astype(int)
        summ = np.maximum(3, rng.lognormal(math.log(sum_mean * factor), 0.35, n)).astype(int)
    else:  # the evaluation split: the scored examples themselves
        src = np.asarray([max(1, round(len(e["source"].split()) * factor)) for e in exs])
        summ = np.asarray([max(1, round(len(e["summary"].split()) * factor)) for e in exs])
    template = 12
    if ARCH_FAMILY[cell.model.arch] == "causal":
        budget = cell.model.context - template - (max(cell.data.max_target_tokens, cell.eval.max_new_tokens) + 1)
    else:
        budget = cell.model.context - template
    kept_mask = (src <= budget) & (summ <= cell.data.max_target_tokens)
    kept, dropped = int(kept_mask.sum()), int((~kept_mask).sum())
    out = {
        "split": split,
        "tokenizer": cell.model.hub_id,
        "source_token_budget": int(budget),
        "source": _length_stats(src),
        "summary": _length_stats(summ),
        "merged": _length_stats(src + summ),
        "kept": kept,
        "dropped": dropped,
        "dropped_share": dropped / max(1, kept + dropped),
    }
    _EDA_CACHE[key] = out
    return out


def _stable_int(obj: Any) -> int:
    return int(hashlib.sha256(repr(obj).encode()).hexdigest()[:8], 16)


def _attempt_id(when: datetime, seed: int, cell_id: str, salt: str = "") -> str:
    return when.strftime("%Y%m%dT%H%M%S") + "-" + hashlib.sha256(f"{seed}/{cell_id}/{salt}".encode()).hexdigest()[:6]


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _history(epochs: float, steps: int, final_loss: float, rng: random.Random) -> list[dict[str, Any]]:
    """One evaluation per epoch (train.eval_every: epoch): training loss falling towards ``final_loss``, validation
    loss falling, then rising a little after its best epoch (overfitting), as train.history records it."""
    n = max(1, math.ceil(epochs))
    turn = rng.randint(max(1, n - 2), n)
    rows = []
    for k in range(1, n + 1):
        train = final_loss * (1 + 1.5 / k) * rng.uniform(0.98, 1.02)
        val = final_loss * (1.1 + 1.2 / min(k, turn) + 0.08 * max(0, k - turn)) * rng.uniform(0.99, 1.01)
        rows.append(
            {
                "epoch": float(min(k, epochs)),
                "step": round(steps * min(k, epochs) / epochs),
                "train_loss": train,
                "val_loss": val,
            }
        )
    return rows


def _write_done(
    store: Store,
    grid: str,
    cell: Cell,
    cid: str,
    spec: dict[str, Any],
    index: int,
    seed: int,
    exs: list[dict[str, Any]],
    *,
    torn: bool = False,
    stray: bool = False,
) -> None:
    rng = random.Random(f"{seed}/{cid}")
    mtype = cell.method.type
    trains = mtype not in ("none", "lead")
    on_gpu = cell.model is not None and not cell.model.name.startswith("tiny-")
    keep = _quality(cell, rng)

    rows = []
    tpw = TOKENS_PER_WORD.get(cell.model.arch, 1.35) if cell.model else 1.0
    for ex in exs:
        pred = _predict(cell, ex, keep, rng)
        words = len(pred.split())
        new_tokens = words if cell.model is None else min(cell.eval.max_new_tokens, max(1, round(words * tpw)))
        rows.append(
            {
                "id": ex["id"],
                "source": ex["source"],
                "reference": ex["summary"],
                "prediction": pred,
                "new_tokens": new_tokens,
                **_scores(pred, ex["tokens"]),
            }
        )
    metrics = _metrics(rows, cell.eval.bootstrap_samples, cell.seed)
    eda = _eda(cell, trains, seed, exs)

    # cost
    total_base = TOTAL_PARAMS.get(cell.model.name, 100_000_000) if cell.model else 0
    _, frac, speedup = METHOD_TRAITS.get(mtype, (0.9, 0.001, 1.0))
    if mtype == "full":
        trainable = total_base
    elif trains:
        scale = cell.method.params.get("r", 16) / 16 if mtype in ("lora", "dora", "loha", "lokr") else 1.0
        scale *= (
            cell.method.params.get("num_virtual_tokens", 20) / 20 if mtype in ("prefix", "prompt", "ptuning") else 1.0
        )
        trainable = max(1_024, int(total_base * frac * scale))
    else:
        trainable = 0
    total = total_base + (trainable if trains and mtype not in ("full", "bitfit") else 0)
    phase = {"load": round(rng.uniform(2.0, 9.0) if on_gpu else rng.uniform(4.0, 9.0), 3)}
    if trains:
        examples = eda["kept"]
        tokens = int(examples * (eda["merged"]["mean"]) * cell.train.epochs)
        tps = TOKENS_PER_S.get(cell.model.name, 20000.0) * speedup * rng.uniform(0.92, 1.08)
        seconds = tokens / tps
        steps = max(1, math.ceil(tokens / (cell.train.batch_tokens or 16384) / cell.train.grad_accum))
        final_loss = (3.2 - 2.6 * keep) * rng.uniform(0.95, 1.05)
        history = _history(cell.train.epochs, steps, final_loss, rng)
        best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
        train = make_train_stats(
            seconds=seconds,
            tokens=tokens,
            padding_ratio=rng.uniform(0.002, 0.04) if cell.train.group_by_length else rng.uniform(0.2, 0.45),
            epochs=cell.train.epochs,
            steps=steps,
            resumed_from_step=(steps // 2) if rng.random() < 0.08 else None,
            examples=examples,
            examples_dropped=eda["dropped"],
            first_train_loss=history[0]["train_loss"] * 1.6,
            final_train_loss=final_loss,
            eval_loss=history[best]["val_loss"],
            test_loss=final_loss * rng.uniform(0.95, 1.15),
            history=history,
            best_epoch=history[best]["epoch"],
        )
        phase["train"] = round(seconds + rng.uniform(0.1, 1.0), 3)
        adapter_bytes = trainable * 4 + (0 if mtype == "full" else rng.randint(800, 4000))
        checkpoint_bytes = trainable * 12 + rng.randint(10_000, 90_000)  # weights + AdamW moments + RNG/counters
    else:
        train = make_train_stats(test_loss=(3.6 - 2.0 * keep) * rng.uniform(0.95, 1.05) if cell.model else None)
        adapter_bytes = checkpoint_bytes = None
    generated = sum(r["new_tokens"] for r in rows)
    gen_seconds = (
        generated / ((900.0 if on_gpu else 330.0) * rng.uniform(0.8, 1.2)) if cell.model else rng.uniform(0.001, 0.01)
    )
    phase["generate"] = round(gen_seconds, 4)
    phase["score"] = round(rng.uniform(0.5, 2.5), 3)
    truncated = sum(
        1
        for ex in exs
        if cell.model
        and eda["source_token_budget"] is not None
        and len(ex["source"].split()) * tpw > eda["source_token_budget"]
    )
    started = START + timedelta(minutes=7 * index)
    elapsed = sum(phase.values()) + rng.uniform(1, 5)
    finished = started + timedelta(seconds=elapsed)
    attempt = _attempt_id(started, seed, cid)
    if on_gpu:
        gpu_peak = int(total_base * 4 * (4.0 if mtype == "full" else 1.25) + rng.uniform(1.5e9, 6e9))
        energy = elapsed * rng.uniform(280.0, 520.0)
    else:
        gpu_peak, energy = None, None
    result = make_result(
        cell_id=cid,
        grid=grid,
        spec=spec,
        metrics=metrics,
        metric_profile=_metric_profile(),
        train=train,
        generate=make_generate_stats(
            seconds=gen_seconds, new_tokens=generated, examples=len(rows), truncated_sources=truncated
        ),
        data=make_data_stats(
            rows_dropped={split: {} for split in (["train", "validation"] if trains else []) + [cell.eval.split]},
            train_ids_sha256=hashlib.sha256(f"train/{cell.dataset.name}".encode()).hexdigest() if trains else None,
            eval_ids_sha256=hashlib.sha256(f"eval/{cell.dataset.name}".encode()).hexdigest(),
            eval_examples=len(rows),
            eval_rows_grouped=0,
            references="per_row",
            validation_examples=500 if trains else None,
            length_filter=None,
        ),
        resources=make_resources(
            gpu_peak_bytes=gpu_peak,
            gpu_nvml_peak_bytes=int(gpu_peak * 1.08) if gpu_peak else None,
            wall_seconds=elapsed,
            disk_peak_bytes=(checkpoint_bytes or 0) * 2 + rng.randint(10**6, 10**7),
            ram_peak_bytes=int(rng.uniform(6.5e8, 9e8) + total_base * (4 if on_gpu else 8)),
            energy_joules=energy,
            trainable_params=trainable,
            total_params=total,
            adapter_bytes=adapter_bytes,
            checkpoint_bytes=checkpoint_bytes,
            phase_seconds=phase,
        ),
        provenance=make_provenance(
            packages=dict(PACKAGES),
            git_sha=hashlib.sha1(f"git/{seed}".encode()).hexdigest(),  # noqa: S324
            image="ghcr.io/peftsum/peftsum:0.1.0" if on_gpu else None,
            gpu_name=GPU_NAME if on_gpu else None,
            hostname=f"{grid}-{cid}-{attempt[-5:]}" if on_gpu else "vm",
            device="cuda" if on_gpu else "cpu",
            precision="bf16" if on_gpu else "fp32",
            fused_optimizer=on_gpu,
            compiled=on_gpu and trains,  # the fast preset compiles on CUDA
            generation_cache=("static" if on_gpu else "dynamic") if cell.model else None,
            generation_budget_tokens=(cell.train.batch_tokens or 16384) if cell.model else None,
            seed=cell.seed,
            started_at=_iso(started),
            finished_at=_iso(finished),
            attempt=attempt,
            base_model=cell.model.hub_id if cell.model else None,  # as peftsum.artifacts.public_base names it
            base_model_revision=cell.model.revision if cell.model else None,
            base_model_source=cell.model.hub_id if cell.model else None,
        ),
    )
    files = {
        "predictions.jsonl": "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode(),
        "eda.json": json.dumps(eda, indent=2).encode(),
        "result.json": json.dumps(result, indent=2, sort_keys=True).encode(),
    }
    manifest = {}
    for name, data in files.items():
        rel = f"attempts/{attempt}/{name}"
        store.write_bytes(layout.cell_key(grid, cid, rel), data)
        manifest[rel] = {"bytes": len(data), "sha256": layout.sha256_bytes(data)}
    if torn:  # the manifest promises more bytes than result.json has: the cell is not done
        manifest[f"attempts/{attempt}/result.json"]["bytes"] += 17
    if stray:  # a crashed second attempt's leftovers, not named by _SUCCESS: readers must ignore it
        other = _attempt_id(started + timedelta(minutes=3), seed, cid, "stray")
        bogus = {**result, "metrics": {**metrics, "rougeL": {"value": 0.999, "ci95": [0.998, 1.0]}}}
        store.write_bytes(
            layout.cell_key(grid, cid, f"attempts/{other}/result.json"),
            json.dumps(bogus, indent=2, sort_keys=True).encode(),
        )
    layout.commit_success(store, grid, cid, attempt, manifest)
    layout.write_status(
        store,
        grid,
        cid,
        "done",
        exit_code=0,
        attempt=attempt,
        progress=1.0,
        metrics={k: metrics[k]["value"] for k in ("rougeL", "bleu")},
        heartbeat_at=_iso(finished),
    )


def _write_not_done(store: Store, grid: str, cid: str, index: int, seed: int, state: str) -> None:
    rng = random.Random(f"{seed}/{cid}/{state}")
    started = START + timedelta(minutes=7 * index)
    attempt = _attempt_id(started, seed, cid)
    beat = _iso(started + timedelta(seconds=rng.randint(30, 900)))
    if state == "missing":
        return
    if state == "running":
        total_steps = rng.randint(200, 2000)
        step = int(total_steps * rng.uniform(0.2, 0.8))
        layout.write_status(
            store,
            grid,
            cid,
            "running",
            attempt=attempt,
            started_at=_iso(started),
            progress=round(0.9 * step / total_steps, 4),
            step=step,
            total_steps=total_steps,
            loss=round(rng.uniform(0.8, 2.5), 4),
            heartbeat_at=beat,
        )
    elif state == "pending":
        step = rng.randint(50, 400)
        layout.write_status(
            store,
            grid,
            cid,
            "pending",
            attempt=attempt,
            exit_code=3,
            reason=f"Preempted: SIGTERM at step {step}; checkpoint written",
            heartbeat_at=beat,
        )
    else:
        reason = FAIL_REASONS[_stable_int((seed, cid)) % len(FAIL_REASONS)]
        code = 2 if reason.startswith("bad spec") else (3 if reason.startswith("OSError") else 1)
        layout.write_status(
            store, grid, cid, "failed", attempt=attempt, exit_code=code, reason=reason, heartbeat_at=beat
        )
