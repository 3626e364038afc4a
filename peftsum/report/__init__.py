"""``peftsum aggregate``: the comparison report from whatever cells are done.

Writes ``<store>/<grid>/report/``: index.html (self-contained), report.md, results.csv, results.json and
figures/*.png. Reads JSON only, so the launcher may call it in-process without the ML stack; a missing, running or
failed cell is listed with its reason and never fails the report.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

from peftsum.report import analysis, figures
from peftsum.report.collect import Collected, collect, labels
from peftsum.report.render import render
from peftsum.report.tables import (
    by_dataset,
    cost_disk_table,
    cost_train_table,
    eda_tables,
    examples_tables,
    not_done_table,
    pareto_tables,
    quality_tables,
    significance_table,
)
from peftsum.store import Store
from peftsum.store import cells as layout

CSV_COLUMNS = ("cell_id", "model", "method", "method_type", "dataset", "seed", "n", "bleu", "bleu_ci_lo",
               "bleu_ci_hi", "p1", "p2", "p3", "p4", "brevity_penalty", "rouge1", "rouge2", "rougeL",
               "rougeL_ci_lo", "rougeL_ci_hi", "rougeLsum", "train_seconds", "tokens_per_s", "padding_ratio",
               "final_train_loss", "gpu_peak_bytes", "ram_peak_bytes", "energy_joules", "trainable_params",
               "total_params", "adapter_bytes")


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    m, t, res = r["metrics"], r["train"], r["resources"]
    return {"cell_id": r["cell_id"], **labels(r["spec"]), "n": m["n"],
            "bleu": m["bleu"]["value"], "bleu_ci_lo": m["bleu"]["ci95"][0], "bleu_ci_hi": m["bleu"]["ci95"][1],
            **{f"p{i + 1}": m["bleu_precisions"][i]["value"] for i in range(4)},
            "brevity_penalty": m["brevity_penalty"]["value"],
            **{k: m[k]["value"] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
            "rougeL_ci_lo": m["rougeL"]["ci95"][0], "rougeL_ci_hi": m["rougeL"]["ci95"][1],
            "train_seconds": t["seconds"], "tokens_per_s": t["tokens_per_s"], "padding_ratio": t["padding_ratio"],
            "final_train_loss": t["final_train_loss"], "gpu_peak_bytes": res["gpu_peak_bytes"],
            "ram_peak_bytes": res["ram_peak_bytes"], "energy_joules": res["energy_joules"],
            "trainable_params": res["trainable_params"], "total_params": res["total_params"],
            "adapter_bytes": res["adapter_bytes"]}


def build(store: Store, c: Collected, significance: bool = True) -> dict[str, Any]:
    """Everything the report shows, as tables and figures (no writing). ``timings`` says where time went."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    comps = analysis.comparisons(store, c) if significance else []
    timings["significance"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    examples = analysis.example_rows(store, c)
    edas = analysis.eda_by_dataset(store, c)
    quality = quality_tables(c)
    timings["tables"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    jobs: list[tuple[str, str, Any, tuple]] = []
    for dataset, results in by_dataset(c.results).items():
        jobs.append((f"quality-{dataset}", f"{dataset}: scores with 95% CI whiskers", figures.metric_bars,
                     (dataset, results)))
        jobs.append((f"pareto-{dataset}", f"{dataset}: ROUGE-L against cost, Pareto frontier in red",
                     figures.pareto, (dataset, results)))
    for dataset, items in edas.items():
        jobs.append((f"lengths-{dataset}", f"{dataset}: token-length histograms", figures.histograms,
                     (dataset, items)))
    figs = figures.render_all(jobs)
    timings["figures"] = time.perf_counter() - t0
    return {"comparisons": comps, "timings": timings, "sections": [
        ("Quality", quality + [f for f in figs if f[0].startswith("quality-")]),
        ("Cost", [cost_disk_table(c), cost_train_table(c), *pareto_tables(c)]
         + [f for f in figs if f[0].startswith("pareto-")]),
        ("Significance", [significance_table(comps)]),
        ("Example predictions", examples_tables(examples)),
        ("Data", eda_tables(edas) + [f for f in figs if f[0].startswith("lengths-")]),
        ("Cells not done", [not_done_table(c)]),
    ]}


def aggregate(store: Store, grid: str, significance: bool = True) -> str:
    """Write report/{index.html, report.md, results.csv, results.json, figures/}; returns index.html's path."""
    c = collect(store, grid)
    built = build(store, c, significance)
    intro = (f"{len(c.results)} cells done, {len(c.not_done)} not done. Scores are fractions in [0, 1]; see "
             "docs/report.md for how to read every table and figure.")
    title = f"peftsum report: {grid}"
    for _, items in built["sections"]:
        for item in items:
            if isinstance(item, tuple):
                store.write_bytes(layout.grid_key(grid, "report", "figures", f"{item[0]}.png"), item[2])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in c.results:
        writer.writerow(flat_row(r))
    store.write_bytes(layout.grid_key(grid, "report", "results.csv"), buf.getvalue().encode())
    store.write_bytes(layout.grid_key(grid, "report", "results.json"), json.dumps(
        {"grid": grid, "results": c.results, "not_done": c.not_done, "comparisons": built["comparisons"]},
        indent=2).encode())
    store.write_bytes(layout.grid_key(grid, "report", "report.md"),
                      render(title, intro, built["sections"], "md").encode())
    store.write_bytes(layout.grid_key(grid, "report", "index.html"),
                      render(title, intro, built["sections"], "html").encode())
    return f"{store.uri}/{layout.grid_key(grid, 'report', 'index.html')}"


__all__ = ["aggregate", "build", "collect", "flat_row"]
