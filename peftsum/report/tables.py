"""The report's tables as data: one Table renders to both Markdown and HTML, so the two never disagree."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from peftsum.report.analysis import frontier_cells, full_reference
from peftsum.report.collect import Collected
from peftsum.report.labels import cell_name, labels

QUALITY = ("bleu", "rouge1", "rouge2", "rougeL", "rougeLsum")
QUALITY_NAMES = {"bleu": "BLEU", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L",
                 "rougeLsum": "ROUGE-Lsum"}


@dataclass
class Table:
    name: str  # stable id: data-table attribute in HTML, anchor in Markdown
    title: str
    columns: list[str]
    rows: list[list[str]]
    bold: set[tuple[int, int]] = field(default_factory=set)  # (row, column) cells to emphasise
    note: str = ""


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def mib(b: float | None) -> str:
    """Bytes as MiB (2^20), the unit of the study's "MB" columns (its GPT-2 474.79 "MB" = 497.8 MB)."""
    return "–" if b is None else f"{b / 2**20:.2f}"


def epoch(value: float | None) -> str:
    return "–" if value is None else f"{round(value, 2):g}"  # 367 steps of 245 per epoch: 1.5, not 1.49796


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def pct(new: float | None, ref: float | None) -> str:
    if new is None or not ref:
        return "–"
    return f"{100 * (new / ref - 1):+.1f}%"


def group_key(r: dict[str, Any]) -> tuple[str, str, str]:
    lab = labels(r["spec"])
    return lab["dataset"], lab["model"], lab["method"]


def by_dataset(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        out[r["spec"]["dataset"]["name"]].append(r)
    return dict(sorted(out.items()))


def seed_groups(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Results of one (dataset, model, method) across seeds."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        out[group_key(r)].append(r)
    return out


def _mean(group: list[dict[str, Any]], metric: str) -> float:
    return statistics.fmean(r["metrics"][metric]["value"] for r in group)


def _quality_cell(group: list[dict[str, Any]], metric: str) -> str:
    """One seed: value [CI]. Several seeds: mean ± sd across seeds (the CI of one seed understates variance)."""
    if len(group) == 1:
        s = group[0]["metrics"][metric]
        return f"{s['value']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"
    values = [r["metrics"][metric]["value"] for r in group]
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def profile_key(r: dict[str, Any]) -> str:
    return json.dumps(r.get("metric_profile"), sort_keys=True)


def quality_tables(c: Collected) -> list[Table]:
    """Per dataset: BLEU, 1–4-gram precisions and ROUGE with CIs, best per column in bold. Results made under
    different metric profiles never share a column: each profile gets its own table."""
    tables = []
    for dataset, results in by_dataset(c.results).items():
        profiles: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in results:
            profiles[profile_key(r)].append(r)
        for p_index, group_results in enumerate(profiles.values()):
            groups = sorted(seed_groups(group_results).values(), key=lambda g: -_mean(g, "rougeL"))
            multi_seed = any(len(g) > 1 for g in groups)
            columns = ["model", "method", "seeds" if multi_seed else "n", "BLEU", "P1", "P2", "P3", "P4",
                       "ROUGE-1", "ROUGE-2", "ROUGE-L", "ROUGE-Lsum"]
            rows, bold = [], set()
            best = {m: max(_mean(g, m) for g in groups) for m in QUALITY}
            for i, g in enumerate(groups):
                lab = labels(g[0]["spec"])
                precs = [fmt(statistics.fmean(r["metrics"]["bleu_precisions"][k]["value"] for r in g))
                         for k in range(4)]
                n = str(len(g)) if multi_seed else str(g[0]["metrics"]["n"])
                rows.append([lab["model"], lab["method"], n, _quality_cell(g, "bleu"), *precs,
                             *(_quality_cell(g, m) for m in QUALITY[1:])])
                for m, col in zip(QUALITY, (3, 8, 9, 10, 11)):
                    if _mean(g, m) == best[m]:
                        bold.add((i, col))
            name = f"quality-{dataset}" + (f"-profile{p_index + 1}" if p_index else "")
            note = ("Fractions in [0, 1]. " + ("Mean ± sd across seeds." if multi_seed else
                                                "95% bootstrap CI over examples in brackets; n = examples.")
                    + " Bold: best in the column.")
            profile = group_results[0].get("metric_profile") or {}
            note += f" Metric profile: {profile.get('name', 'peftsum')} (docs/report.md)."
            if len(profiles) > 1:
                note += (f" Metric profile {p_index + 1} of {len(profiles)}: these numbers were computed differently "
                         "from the other table(s) of this dataset and must not be compared with them.")
            note += id_warning(group_results)
            tables.append(Table(name, f"Quality on {dataset}", columns, rows, bold, note))
    return tables


def id_warning(results: list[dict[str, Any]]) -> str:
    """A warning when cells of one table were scored on different example ids, or trained on different ones
    (result.json's data.*_ids_sha256; results written before they existed are not checked)."""
    out = ""
    for key, what in (("eval_ids_sha256", "scored on"), ("train_ids_sha256", "trained on")):
        groups: dict[str, list[str]] = defaultdict(list)
        for r in results:
            digest = (r.get("data") or {}).get(key)
            if digest:
                groups[digest].append(cell_name(r["spec"], seed=False))
        if len(groups) > 1:
            sets = "; ".join(", ".join(sorted(set(cells))) for cells in sorted(groups.values(), key=len))
            out += (f" ⚠ Cells here were {what} different examples ({len(groups)} different sets: {sets}), so their "
                    "scores are not strictly comparable (set data.max_total_tokens and length_tokenizer to give "
                    "every model the same examples).")
    return out


def _trained(c: Collected) -> list[dict[str, Any]]:
    return sorted((r for r in c.results if r["train"]["seconds"] is not None),
                  key=lambda r: (labels(r["spec"])["dataset"], labels(r["spec"])["model"], labels(r["spec"])["method"],
                                 r["spec"]["seed"]))


def cost_disk_table(c: Collected) -> Table:
    """The study's Table 9: what must be stored per tuned model, against a full fine-tuning checkpoint."""
    full = full_reference(c)
    rows = []
    for r in _trained(c):
        lab = labels(r["spec"])
        ref = full.get((lab["dataset"], lab["model"], r["spec"]["seed"]))
        full_bytes = ref["resources"]["adapter_bytes"] if ref else None
        own = r["resources"]["adapter_bytes"]
        reduction = "–" if not full_bytes or own is None else f"{100 * (1 - own / full_bytes):.1f}%"
        rows.append([lab["model"], lab["method"], lab["dataset"], str(lab["seed"]), mib(full_bytes), mib(own),
                     reduction, fmt(r["resources"]["trainable_params"]), fmt(r["resources"]["total_params"])])
    return Table("cost-disk", "Storage: full checkpoint vs adapter (the study's Table 9)",
                 ["model", "method", "dataset", "seed", "full FT MiB", "stored MiB", "reduction", "trainable params",
                  "total params"], rows,
                 note="Stored: the adapter (PEFT), the trained tensors (BitFit) or the full weights (full FT); "
                      "reduction against the full fine-tuning cell of the same model, dataset and seed. MiB = 2^20 "
                      "bytes, what the study's \"MB\" columns hold.")


def device_peak(res: dict[str, Any]) -> int | None:
    """GPU memory as the device shows it (NVML: context and allocator cache included, as the study measured), else
    torch's allocated peak."""
    return res.get("gpu_nvml_peak_bytes") or res.get("gpu_peak_bytes")


def cost_train_table(c: Collected) -> Table:
    """The study's Table 10: what training cost, with the change against full fine-tuning."""
    full = full_reference(c)
    rows = []
    for r in _trained(c):
        lab, t, res = labels(r["spec"]), r["train"], r["resources"]
        ref = full.get((lab["dataset"], lab["model"], r["spec"]["seed"]))
        versus = ref is not None and ref is not r
        wall = res.get("wall_seconds")
        rows.append([lab["model"], lab["method"], lab["dataset"], str(lab["seed"]), duration(wall),
                     fmt(t["seconds"], 1),
                     pct(wall, ref["resources"].get("wall_seconds")) if versus else "–",
                     fmt(t["tokens_per_s"], 0), fmt(t["padding_ratio"]), mib(res.get("gpu_nvml_peak_bytes")),
                     mib(res["gpu_peak_bytes"]),
                     pct(device_peak(res), device_peak(ref["resources"])) if versus else "–",
                     mib(res["ram_peak_bytes"]), mib(res.get("disk_peak_bytes")), fmt(res["energy_joules"], 0),
                     epoch(t.get("best_epoch")), fmt(t["final_train_loss"])])
    return Table("cost-train", "Training cost (the study's Table 10)",
                 ["model", "method", "dataset", "seed", "wall h:mm:ss", "train loop s", "Δ wall vs full", "tokens/s",
                  "padding", "GPU MiB (device)", "GPU MiB (torch)", "Δ GPU vs full", "RAM MiB", "disk MiB",
                  "energy J", "best epoch", "final loss"], rows,
                 note="Wall: the whole cell (load, training with its evaluations and checkpoints, generation, "
                      "scoring, writing), as the study's training duration; train loop: the optimizer steps alone. "
                      "GPU (device): peak memory in use per NVML, as the device shows it; (torch): torch's allocated "
                      "peak. Disk: the most the cell itself held on local disk (caches it filled, checkpoints, "
                      "artifacts), not the whole machine's usage. Energy and GPU memory are blank where the cell ran "
                      "without a GPU/NVML (never estimated).")


def pareto_tables(c: Collected) -> list[Table]:
    """Per dataset, the cells on each Pareto frontier (best ROUGE-L for their cost), named here so the plots need no
    labels."""
    tables = []
    for dataset, results in by_dataset(c.results).items():
        rows = [[label, name, f"{cost:,.4g}", f"{rl:.3f}"] for label, name, cost, rl in frontier_cells(results)]
        tables.append(Table(f"pareto-{dataset}", f"Pareto frontier on {dataset}", ["cost", "cell", "cost value",
                                                                                  "ROUGE-L"], rows,
                            note="Cells that no other cell beats on both ROUGE-L and that cost, cheapest first."))
    return tables


def significance_table(comparisons: list[dict[str, Any]]) -> Table:
    rows = [[x["dataset"], x["a"], x["b"], x["kind"], QUALITY_NAMES.get(x["metric"], x["metric"]),
             f"{x['diff']:+.3f}", f"[{x['ci95'][0]:+.3f}, {x['ci95'][1]:+.3f}]", f"{x['p_a_better']:.3f}",
             str(x["n"])] for x in comparisons]
    return Table("significance", "Paired bootstrap comparisons",
                 ["dataset", "A", "B", "comparison", "metric", "A − B", "95% CI", "P(A > B)", "n"], rows,
                 note="Same resampled examples for A and B. A CI excluding 0 (P near 0 or 1) means the difference "
                      "is unlikely to be resampling noise.")


def sample_tables(examples: dict[str, dict[str, Any]]) -> list[Table]:
    """One record per dataset, as the study's Tables 2–4 show them: its source and its reference summary (all of
    them where evaluation is grouped)."""
    tables = []
    for dataset, ex in sorted(examples.items()):
        if not ex["rows"]:
            continue
        row = ex["rows"][0]
        refs = row.get("references") or [row["reference"]]
        rows = [["id", row["id"]], ["source", _clip(row["source"], 2000)]]
        rows += [[f"summary {i + 1}" if len(refs) > 1 else "summary", ref] for i, ref in enumerate(refs)]
        tables.append(Table(f"sample-{dataset}", f"A sample record of {dataset}", ["field", "value"], rows))
    return tables


def examples_tables(examples: dict[str, dict[str, Any]]) -> list[Table]:
    """Side-by-side predictions (the study's Table 7): per dataset, a few examples × source, reference, cells."""
    tables = []
    for dataset, ex in sorted(examples.items()):
        columns = ["id", "source", "reference", *ex["cells"]]
        rows = [[row["id"], _clip(row["source"], 500), row["reference"], *(_clip(p, 300) for p in row["predictions"])]
                for row in ex["rows"]]
        tables.append(Table(f"examples-{dataset}", f"Example predictions on {dataset}", columns, rows))
    return tables


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def eda_tables(edas: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """Token-length statistics per dataset and tokenizer, from the cells' eda.json."""
    tables = []
    for dataset, items in sorted(edas.items()):
        rows = []
        for e in items:
            s, m, merged = e["source"], e["summary"], e["merged"]
            rows.append([e["tokenizer"], e.get("split", "train"), fmt(s.get("n")), fmt(s.get("mean"), 1),
                         fmt(s.get("p50"), 0), fmt(s.get("p95"), 0), fmt(s.get("max")), fmt(m.get("mean"), 1),
                         fmt(m.get("p95"), 0), fmt(merged.get("p95"), 0), fmt(e.get("source_token_budget")),
                         f"{100 * e.get('dropped_share', 0):.1f}%"])
        tables.append(Table(f"eda-{dataset}", f"Token lengths of {dataset}",
                            ["tokenizer", "split", "examples", "source mean", "source p50", "source p95",
                             "source max", "summary mean", "summary p95", "merged p95", "source budget",
                             "dropped by filter"], rows,
                            note="Counted under each model's tokenizer (whitespace words for model-free baselines). "
                                 "Dropped: training examples that did not fit the context window."))
    return tables


def not_done_table(c: Collected) -> Table:
    rows = [[o["cell_id"], o["model"], o["method"], o["dataset"], str(o["seed"]), str(o["state"]),
             "" if o.get("progress") is None else f"{100 * o['progress']:.0f}%", str(o["reason"] or "")]
            for o in c.not_done]
    note = "" if rows else "Every cell of the grid is done."
    if c.problems:  # done cells whose predictions.jsonl could not be used (collect.read_attempt_json says why)
        note += (" " if note else "") + ("Done, but left out of the comparisons and example predictions: "
                                         + "; ".join(f"{cid} ({why})" for cid, why in sorted(c.problems.items()))
                                         + ".")
    return Table("not-done", "Cells not done", ["cell", "model", "method", "dataset", "seed", "state", "progress",
                                                "reason"], rows, note=note)
