"""The default comparisons (paired bootstrap) and the example rows: the parts of the report that read
predictions.jsonl, kept apart so their cost can be measured on its own."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from peftsum.compare import paired_bootstrap
from peftsum.report.collect import Collected, labels, read_attempt_json
from peftsum.report.tables import BASELINES
from peftsum.store import Store

EXAMPLES = 3  # example rows per dataset
EXAMPLE_CELLS = 8  # prediction columns per dataset


def default_pairs(c: Collected) -> list[tuple[str, dict, dict]]:
    """(kind, A, B): each PEFT cell vs full FT of the same model/dataset/seed, and per dataset the best cell vs the
    runner-up by ROUGE-L."""
    full = {(labels(r["spec"])["dataset"], labels(r["spec"])["model"], r["spec"]["seed"]): r
            for r in c.results if r["spec"]["method"]["type"] == "full"}
    pairs = []
    for r in c.results:
        lab = labels(r["spec"])
        ref = full.get((lab["dataset"], lab["model"], r["spec"]["seed"]))
        if ref is not None and r is not ref and lab["method_type"] not in BASELINES:
            pairs.append(("PEFT vs full", r, ref))
    per_dataset: dict[str, list[dict]] = defaultdict(list)
    for r in c.results:
        per_dataset[labels(r["spec"])["dataset"]].append(r)
    for results in per_dataset.values():
        ranked = sorted(results, key=lambda r: -r["metrics"]["rougeL"]["value"])
        if len(ranked) >= 2:
            pairs.append(("best vs runner-up", ranked[0], ranked[1]))
    return pairs


def comparisons(store: Store, c: Collected, metrics: tuple[str, ...] = ("rougeL", "bleu"),
                samples: int = 1000) -> list[dict[str, Any]]:
    cache: dict[str, list[dict] | None] = {}

    def preds(r: dict) -> list[dict] | None:
        cid = r["cell_id"]
        if cid not in cache:
            cache[cid] = read_attempt_json(store, c, cid, "predictions.jsonl")
        return cache[cid]

    out = []
    for kind, a, b in default_pairs(c):
        pa, pb = preds(a), preds(b)
        if not pa or not pb:
            continue
        for metric in metrics:
            try:
                res = paired_bootstrap(pa, pb, metric, samples=samples)
            except ValueError:
                continue
            out.append({"dataset": labels(a["spec"])["dataset"], "a": _label(a), "b": _label(b), "kind": kind,
                        "a_cell": a["cell_id"], "b_cell": b["cell_id"], **res})
    return out


def _label(r: dict[str, Any]) -> str:
    lab = labels(r["spec"])
    return f"{lab['model']}/{lab['method']} (seed {lab['seed']})"


def example_rows(store: Store, c: Collected) -> dict[str, dict[str, Any]]:
    """Per dataset: the first examples' source and reference, and the predictions of the best cell of each method
    (up to EXAMPLE_CELLS columns, best first)."""
    per_dataset: dict[str, list[dict]] = defaultdict(list)
    for r in c.results:
        per_dataset[labels(r["spec"])["dataset"]].append(r)
    out = {}
    for dataset, results in per_dataset.items():
        best: dict[tuple[str, str], dict] = {}
        for r in sorted(results, key=lambda r: -r["metrics"]["rougeL"]["value"]):
            best.setdefault((labels(r["spec"])["model"], labels(r["spec"])["method"]), r)
        chosen = list(best.values())[:EXAMPLE_CELLS]
        preds = [read_attempt_json(store, c, r["cell_id"], "predictions.jsonl") or [] for r in chosen]
        if not preds or not preds[0]:
            continue
        rows = []
        for row in preds[0][:EXAMPLES]:
            by_cell = [next((p["prediction"] for p in ps if p["id"] == row["id"]), "–") for ps in preds]
            rows.append({"id": row["id"], "source": row["source"], "reference": row["reference"],
                         "predictions": by_cell})
        out[dataset] = {"cells": [f"{labels(r['spec'])['model']}/{labels(r['spec'])['method']}" for r in chosen],
                        "rows": rows}
    return out


def eda_by_dataset(store: Store, c: Collected) -> dict[str, list[dict[str, Any]]]:
    """One eda.json per (dataset, tokenizer, split): the first done cell that wrote it."""
    seen: dict[tuple[str, str, bool], dict] = {}
    for r in c.results:  # the tokenizer is the model's and the split depends on training: read one file per kind
        key = (labels(r["spec"])["dataset"], labels(r["spec"])["model"], r["train"]["seconds"] is not None)
        if key not in seen:
            e = read_attempt_json(store, c, r["cell_id"], "eda.json")
            if e:
                seen[key] = e
    out: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
    for (dataset, _, _), e in sorted(seen.items()):  # models sharing a tokenizer and split share the statistics
        out[dataset].setdefault((e.get("tokenizer", "?"), e.get("split", "train")), e)
    return {d: list(v.values()) for d, v in out.items()}
