"""What the report works out from the results before any table or figure shows it: which full fine-tuning cell each
cell is measured against, the Pareto frontiers of quality against cost, the default comparisons (paired bootstrap)
and the example rows. The last two are the parts of the report that read predictions.jsonl, kept here so their
cost can be measured on its own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from peftsum.compare import paired_bootstrap
from peftsum.report.collect import Collected, read_attempt_json, read_checked
from peftsum.report.labels import cell_name, comparison_name, labels
from peftsum.report.parallel import submit
from peftsum.scoring import CORPUS_BLEU, ROUGE_KEYS, bootstrap_indices, profile_name
from peftsum.store import Store

EXAMPLES = 3  # example rows per dataset
EXAMPLE_CELLS = 8  # prediction columns per dataset
PAIR_CHUNK = 64  # pairs resampled at once: (64, samples, n) floats, ~15 MB at 1,000 samples x 30 examples
BASELINES = ("none", "lead")  # method types that train nothing: never paired as PEFT against full fine-tuning


def full_reference(c: Collected) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(dataset, model, seed) → the full fine-tuning result every PEFT cell is measured against (the % columns and
    the "PEFT vs full" comparisons). With several full variants in a grid: the one named ``full``, else the first
    by name."""
    ref: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in sorted((r for r in c.results if r["spec"]["method"]["type"] == "full"),
                    key=lambda r: (r["spec"]["method"]["name"] != "full", r["spec"]["method"]["name"])):
        lab = labels(r["spec"])
        ref.setdefault((lab["dataset"], lab["model"], r["spec"]["seed"]), r)
    return ref


COSTS: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("train seconds", lambda r: r["train"]["seconds"]),
    ("energy (J)", lambda r: r["resources"]["energy_joules"]),
    ("stored bytes", lambda r: r["resources"]["adapter_bytes"]),
    ("peak memory (bytes, GPU else RAM)",
     lambda r: r["resources"]["gpu_peak_bytes"] or r["resources"]["ram_peak_bytes"]),
)  # what the Pareto frontiers weigh ROUGE-L against (table and figure)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another with lower-or-equal cost and higher quality, sorted by cost."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def frontier_cells(results: list[dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """(cost label, cell name, cost, ROUGE-L) of every cell on a frontier, for the table beside the plot."""
    rows = []
    for label, get in COSTS:
        pts = {(get(r), r["metrics"]["rougeL"]["value"]): cell_name(r["spec"]) for r in results if get(r)}
        for x, y in pareto_front(list(pts)):
            rows.append((label, pts[(x, y)], x, y))
    return rows


def default_pairs(c: Collected) -> list[tuple[str, dict, dict]]:
    """(kind, A, B): each PEFT cell vs full FT of the same model/dataset/seed, and per dataset the best cell vs the
    runner-up by ROUGE-L. The reference is :func:`full_reference` (with several full variants: the one named
    ``full``); full variants are not paired as PEFT. Cells scored under different metric profiles are never paired:
    their numbers are not comparable."""
    full = full_reference(c)
    pairs = []
    for r in c.results:
        lab = labels(r["spec"])
        ref = full.get((lab["dataset"], lab["model"], r["spec"]["seed"]))
        if ref is not None and lab["method_type"] not in (*BASELINES, "full") and _profile(r) == _profile(ref):
            pairs.append(("PEFT vs full", r, ref))
    per_dataset: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in c.results:
        per_dataset[(labels(r["spec"])["dataset"], _profile(r))].append(r)
    for results in per_dataset.values():
        ranked = sorted(results, key=lambda r: -r["metrics"]["rougeL"]["value"])
        if len(ranked) >= 2:
            pairs.append(("best vs runner-up", ranked[0], ranked[1]))
    return pairs


class Scores:
    """What the paired bootstrap needs from one cell's predictions.jsonl: example ids, per-example scores and BLEU
    sufficient statistics as arrays. The text is dropped, so a cell costs a few KB whichever process read it."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        from peftsum.compare import bleu_stats_matrix

        self.ids = tuple(r["id"] for r in rows)
        self.n = len(rows)
        self.values = {k: np.asarray([r[k] for r in rows], dtype=np.float64) for k in ROUGE_KEYS
                       if all(k in r for r in rows)}
        try:
            self.bleu: np.ndarray | None = bleu_stats_matrix(rows)
        except (KeyError, TypeError, ValueError):
            self.bleu = None

    def rows(self) -> list[dict[str, Any]]:
        """predictions.jsonl rows as peftsum.compare reads them (id, per-example scores, BLEU statistics)."""
        out: list[dict[str, Any]] = [{"id": i} for i in self.ids]
        for k, values in self.values.items():
            for row, v in zip(out, values.tolist()):
                row[k] = v
        if self.bleu is not None:
            for row, st in zip(out, self.bleu.tolist()):
                row["bleu_stats"] = {"sys_len": st[0], "ref_len": st[1], "correct": st[2:6], "total": st[6:10]}
        return out


def read_scores(store: Store, grid: str, cell_id: str, manifest: dict[str, Any]) -> Scores | str | None:
    """A cell's predictions as :class:`Scores`; None when missing, why when unreadable or malformed (checked by
    ``collect.read_checked``). Picklable arguments, so a worker process can run it."""
    rows, why = read_checked(store, grid, cell_id, manifest, "predictions.jsonl")
    return why or (Scores(rows) if rows else None)


def comparisons(store: Store, c: Collected, metrics: tuple[str, ...] = ("rougeL", "bleu"),
                samples: int = 1000, pool: Any = None, cpu: list[float] | None = None) -> list[dict[str, Any]]:
    """Every default comparison (:func:`default_pairs`) for each metric, as ``peftsum.compare.paired_bootstrap``
    computes it (same resampled example indices, same numbers to ~1e-16), batched.

    paired_bootstrap draws its indices from a fixed seed, so every pair of cells with the same n resamples the
    same examples: the indices are drawn once per n, each cell's predictions are read once (in ``pool`` when one
    is given) however many pairs it is in, each cell's resampled corpus BLEU is computed once, and the ROUGE
    differences of many pairs are resampled in one array operation. Pairs whose cells list different example ids
    (or ids in another order) go through paired_bootstrap itself. ``cpu``: see :func:`start_comparisons`.
    """
    return start_comparisons(store, c, metrics, samples, pool)(cpu)


def start_comparisons(store: Store, c: Collected, metrics: tuple[str, ...] = ("rougeL", "bleu"),
                      samples: int = 1000, pool: Any = None
                      ) -> Callable[[list[float] | None], list[dict[str, Any]]]:
    """Start reading the predictions :func:`comparisons` needs (in ``pool``, while the caller does other work);
    returns ``finish(cpu)``, which waits for them and computes the comparisons, appending the workers' CPU
    seconds to ``cpu`` when it is a list."""
    pairs = default_pairs(c)
    needed = sorted({r["cell_id"] for _, a, b in pairs for r in (a, b)})
    jobs = [(store, c.grid, cid, c.manifests[cid]) for cid in needed if cid in c.manifests]
    pending = submit(pool, read_scores, jobs, chunksize=max(1, len(jobs) // 32), store=store)

    def finish(cpu: list[float] | None = None) -> list[dict[str, Any]]:
        done = pending.get()
        if cpu is not None and pending.in_workers:
            cpu.append(sum(seconds for _, seconds in done))
        scores: dict[str, Scores | None] = {}
        for job, (s, _) in zip(jobs, done):
            if isinstance(s, str):
                c.problems[job[2]] = s
            scores[job[2]] = s if isinstance(s, Scores) else None
        return paired_comparisons(pairs, scores, metrics, samples)

    return finish


def paired_comparisons(pairs: list[tuple[str, dict, dict]], scores: dict[str, Scores | None],
                       metrics: Iterable[str], samples: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """The comparisons of ``pairs`` given each cell's :class:`Scores`, in pair order then metric order."""
    metrics = tuple(metrics)
    results: dict[tuple[int, str], dict[str, Any]] = {}
    batched: dict[int, list[int]] = defaultdict(list)  # n → indices into pairs that can be batched
    for i, (_, a, b) in enumerate(pairs):
        sa, sb = scores.get(a["cell_id"]), scores.get(b["cell_id"])
        if sa is None or sb is None:
            continue
        if sa.ids == sb.ids and len(set(sa.ids)) == sa.n:
            batched[sa.n].append(i)
        else:  # different or reordered example ids: align them the reference way
            for metric in metrics:
                try:
                    results[(i, metric)] = paired_bootstrap(sa.rows(), sb.rows(), metric, samples=samples, seed=seed,
                                                            profile=_profile(pairs[i][1]))
                except (ValueError, KeyError, TypeError):
                    pass
    for n, members in batched.items():
        if n == 0:
            continue
        idx = bootstrap_indices(n, samples, seed)  # what paired_bootstrap draws for every pair of this n
        for metric in metrics:
            if metric == "bleu":
                _bleu_batch(pairs, members, scores, idx, results)
            elif metric in ROUGE_KEYS:
                _rouge_batch(pairs, members, scores, idx, metric, results)
    out = []
    for i, (kind, a, b) in enumerate(pairs):
        for metric in metrics:
            res = results.get((i, metric))
            if res is not None:
                out.append({"dataset": labels(a["spec"])["dataset"], "a": comparison_name(a["spec"]),
                            "b": comparison_name(b["spec"]), "kind": kind,
                            "a_cell": a["cell_id"], "b_cell": b["cell_id"], **res})
    return out


def _summaries(metric: str, n: int, point: np.ndarray, diffs: np.ndarray) -> list[dict[str, Any]]:
    """paired_bootstrap's result for each row of ``diffs`` (pairs x samples)."""
    lo, hi = np.percentile(diffs, [2.5, 97.5], axis=1)
    p = np.mean(diffs > 0, axis=1) + 0.5 * np.mean(diffs == 0, axis=1)
    return [{"metric": metric, "n": n, "diff": float(point[k]), "ci95": [float(lo[k]), float(hi[k])],
             "p_a_better": float(p[k])} for k in range(len(point))]


def _rouge_batch(pairs: list, members: list[int], scores: dict[str, Scores | None], idx: np.ndarray, metric: str,
                 results: dict) -> None:
    usable = [i for i in members if metric in scores[pairs[i][1]["cell_id"]].values  # type: ignore[union-attr]
              and metric in scores[pairs[i][2]["cell_id"]].values]  # type: ignore[union-attr]
    for start in range(0, len(usable), PAIR_CHUNK):
        chunk = usable[start:start + PAIR_CHUNK]
        va = np.stack([scores[pairs[i][1]["cell_id"]].values[metric] for i in chunk])  # type: ignore[union-attr]
        vb = np.stack([scores[pairs[i][2]["cell_id"]].values[metric] for i in chunk])  # type: ignore[union-attr]
        point = va.mean(axis=1) - vb.mean(axis=1)
        diffs = (va - vb)[:, idx].mean(axis=2)  # (pairs, samples): the same sums, in the same order, as per pair
        for i, res in zip(chunk, _summaries(metric, idx.shape[1], point, diffs)):
            results[(i, metric)] = res


def _bleu_batch(pairs: list, members: list[int], scores: dict[str, Scores | None], idx: np.ndarray,
                results: dict) -> None:
    n, samples = idx.shape[1], idx.shape[0]
    # Resample counts: BLEU statistics are integer counts, so counts @ stats sums exactly what stats[idx].sum(1)
    # sums (float64 holds integers exactly), in a fraction of the time.
    counts = np.bincount((np.arange(samples)[:, None] * n + idx).ravel(), minlength=samples * n)
    counts = counts.reshape(samples, n).astype(np.float64)
    cells = sorted({pairs[i][k]["cell_id"] for i in members for k in (1, 2)
                    if scores[pairs[i][k]["cell_id"]].bleu is not None})  # type: ignore[union-attr]
    pos = {cid: j for j, cid in enumerate(cells)}
    if not cells:
        return
    profile = {pairs[i][k]["cell_id"]: _profile(pairs[i][k]) for i in members for k in (1, 2)}
    point, boot = np.empty(len(cells)), np.empty((len(cells), samples))
    for start in range(0, len(cells), PAIR_CHUNK):
        chunk = cells[start:start + PAIR_CHUNK]
        stats = np.stack([scores[cid].bleu for cid in chunk])  # type: ignore[union-attr, misc]
        for name in sorted({profile[cid] for cid in chunk}):  # each cell's corpus BLEU as its profile defines it
            rows = np.asarray([j for j, cid in enumerate(chunk) if profile[cid] == name])
            corpus = CORPUS_BLEU[name]
            point[start + rows] = corpus(stats[rows].sum(axis=1))["bleu"]  # (cells, n, 10) → (cells,)
            boot[start + rows] = corpus(np.matmul(counts, stats[rows]))["bleu"]  # (cells, samples)
    usable = [i for i in members if pairs[i][1]["cell_id"] in pos and pairs[i][2]["cell_id"] in pos]
    if not usable:
        return
    a = np.asarray([pos[pairs[i][1]["cell_id"]] for i in usable])
    b = np.asarray([pos[pairs[i][2]["cell_id"]] for i in usable])
    for i, res in zip(usable, _summaries("bleu", n, point[a] - point[b], boot[a] - boot[b])):
        results[(i, "bleu")] = res


def _profile(r: dict[str, Any]) -> str:
    return profile_name(r.get("metric_profile"))


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
                         "references": row.get("references"), "predictions": by_cell})
        out[dataset] = {"cells": [cell_name(r["spec"], seed=False) for r in chosen],
                        "rows": rows}
    return out


def eda_by_dataset(store: Store, c: Collected) -> dict[str, list[dict[str, Any]]]:
    """One eda.json per (dataset, tokenizer, split): the first done cell that wrote it."""
    seen: dict[tuple[str, str, bool], dict] = {}
    for r in c.results:  # the tokenizer is the model's and the split depends on training: read one file per kind
        key = (labels(r["spec"])["dataset"], labels(r["spec"])["model"], r["train"]["seconds"] is not None)
        if key not in seen:
            e = c.edas.get(r["cell_id"]) or read_attempt_json(store, c, r["cell_id"], "eda.json")  # collect read it
            if e:
                seen[key] = e
    out: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
    for (dataset, _, _), e in sorted(seen.items()):  # models sharing a tokenizer and split share the statistics
        out[dataset].setdefault((e.get("tokenizer", "?"), e.get("split", "train")), e)
    return {d: list(v.values()) for d, v in out.items()}
