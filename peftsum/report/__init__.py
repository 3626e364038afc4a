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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from peftsum.report import analysis, figures, parallel
from peftsum.report.collect import Collected, collect
from peftsum.report.labels import labels
from peftsum.report.parallel import workers_wanted
from peftsum.report.render import render
from peftsum.report.study import study_tables
from peftsum.report.tables import (
    by_dataset,
    cost_disk_table,
    cost_train_table,
    eda_tables,
    examples_tables,
    not_done_table,
    pareto_tables,
    quality_tables,
    sample_tables,
    significance_table,
)
from peftsum.store import Store, layout

CSV_COLUMNS = ("cell_id", "model", "method", "method_type", "dataset", "seed", "n", "bleu", "bleu_ci_lo",
               "bleu_ci_hi", "p1", "p2", "p3", "p4", "brevity_penalty", "rouge1", "rouge2", "rougeL",
               "rougeL_ci_lo", "rougeL_ci_hi", "rougeLsum", "train_seconds", "tokens_per_s", "padding_ratio",
               "final_train_loss", "gpu_peak_bytes", "ram_peak_bytes", "energy_joules", "trainable_params",
               "total_params", "adapter_bytes", "metric_profile", "length_ratio", "eval_loss", "test_loss",
               "best_epoch", "wall_seconds", "gpu_nvml_peak_bytes", "disk_peak_bytes", "eval_ids_sha256")


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
            "adapter_bytes": res["adapter_bytes"],
            # schema_version 2 (absent from version 1 results)
            "metric_profile": (r.get("metric_profile") or {}).get("name", "peftsum"),
            "length_ratio": (m.get("length_ratio") or {}).get("value"), "eval_loss": t.get("eval_loss"),
            "test_loss": t.get("test_loss"), "best_epoch": t.get("best_epoch"), "wall_seconds": res.get("wall_seconds"),
            "gpu_nvml_peak_bytes": res.get("gpu_nvml_peak_bytes"), "disk_peak_bytes": res.get("disk_peak_bytes"),
            "eval_ids_sha256": (r.get("data") or {}).get("eval_ids_sha256")}


class Phases:
    """Wall and CPU seconds per phase of one report build. CPU counts this process and, for work done in the
    worker pool, the workers' own CPU time for the jobs of that phase (added with :meth:`add_cpu`)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w0
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c0

    def add_cpu(self, name: str, seconds: float) -> None:
        self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"wall_s": round(self.wall.get(k, 0.0), 4), "cpu_s": round(self.cpu.get(k, 0.0), 4)}
                for k in dict.fromkeys([*self.wall, *self.cpu])}


def worker_pool(workers: int | None = None) -> AbstractContextManager[Any]:
    """The report's worker pool (``peftsum.report.parallel.worker_pool``): its workers inherit matplotlib imported
    and warmed up (``figures.preload``)."""
    return parallel.worker_pool(workers, preload=figures.preload)


def _draw(fn: Callable[..., bytes], args: tuple) -> bytes:
    return fn(*args)


def figure_jobs(c: Collected, edas: dict[str, list[dict[str, Any]]]
                ) -> list[tuple[str, str, Callable[..., bytes], tuple]]:
    """(name, caption, function, args) of every figure, up to five per dataset. Args carry only the fields the
    figures read (``figures.slim``, ``figures.curves``), so sending them to a worker costs little."""
    jobs: list[tuple[str, str, Callable[..., bytes], tuple]] = []
    for dataset, results in by_dataset(c.results).items():
        slim = [figures.slim(r) for r in results]
        jobs.append((f"quality-{dataset}", f"{dataset}: scores with 95% CI whiskers", figures.metric_bars,
                     (dataset, slim)))
        jobs.append((f"pareto-{dataset}", f"{dataset}: ROUGE-L against cost, Pareto frontier in red",
                     figures.pareto, (dataset, slim)))
        curves = [cv for cv in (figures.curves(r) for r in results) if cv is not None]
        if curves:
            jobs.append((f"curves-{dataset}", f"{dataset}: validation loss (solid) and training loss (dashed, the mean "
                         "since the previous evaluation) per evaluation; ★ marks the evaluation whose weights the "
                         "cell kept (train.select_best)",
                         figures.learning_curves, (dataset, curves)))
    for dataset, items in edas.items():
        jobs.append((f"lengths-{dataset}", f"{dataset}: token-length histograms", figures.histograms,
                     (dataset, items)))
        jobs.append((f"boxes-{dataset}", f"{dataset}: token-length boxplots", figures.boxplots, (dataset, items)))
    return jobs


def build(store: Store, c: Collected, significance: bool = True, *, pool: Any = None, phases: Phases | None = None,
          while_drawing: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
    """Everything the report shows, as tables and figures (no writing).

    In ``pool`` (see :func:`worker_pool`) the workers first read the predictions the paired bootstraps need, then
    draw the figures, while this process builds the tables and computes the bootstraps; ``while_drawing(comps)``
    runs before waiting for the figures (aggregate writes results.csv and results.json there). ``timings`` in the
    result: wall and CPU seconds per phase (``phases``, if given, collects them).
    """
    phases = phases if phases is not None else Phases()
    with phases("significance: start"):
        finish = analysis.start_comparisons(store, c, pool=pool) if significance else None
    with phases("figures: start"):
        edas = analysis.eda_by_dataset(store, c)
        jobs = figure_jobs(c, edas)
        pending = parallel.submit(pool, _draw, [(fn, args) for _, _, fn, args in jobs])  # one figure per task
    with phases("tables"):
        examples = analysis.example_rows(store, c)
        tables = {"quality": quality_tables(c), "disk": cost_disk_table(c), "train": cost_train_table(c),
                  "pareto": pareto_tables(c), "examples": examples_tables(examples), "eda": eda_tables(edas),
                  "samples": sample_tables(examples), "study": study_tables(c)}
    with phases("significance"):
        cpu: list[float] = []
        comps = finish(cpu) if finish is not None else []
        phases.add_cpu("significance", sum(cpu))
        tables["significance"] = significance_table(comps)
    tables["not_done"] = not_done_table(c)  # after every read of predictions: it lists those that were unusable
    if while_drawing is not None:
        with phases("write data"):
            while_drawing(comps)
    with phases("figures: wait"):
        drawn = pending.get()
    if pending.in_workers:
        phases.add_cpu("figures (workers)", sum(cpu for _, cpu in drawn))
    figs = [(name, caption, png) for (name, caption, _, _), (png, _) in zip(jobs, drawn)]
    sections = [
        ("Quality", tables["quality"] + [f for f in figs if f[0].startswith("quality-")]),
        ("Learning curves", [f for f in figs if f[0].startswith("curves-")]),
        ("Cost", [tables["disk"], tables["train"], *tables["pareto"]]
         + [f for f in figs if f[0].startswith("pareto-")]),
        ("The study's tables", tables["study"]),
        ("Significance", [tables["significance"]]),
        ("Example predictions", tables["examples"]),
        ("Data", tables["samples"] + tables["eda"]
         + [f for f in figs if f[0].startswith(("lengths-", "boxes-"))]),
        ("Cells not done", [tables["not_done"]]),
    ]
    optional = ("Learning curves", "The study's tables")
    return {"comparisons": comps, "timings": phases.as_dict(),
            "sections": [(title, items) for title, items in sections if items or title not in optional]}


def results_json(grid: str, c: Collected, comparisons: list[dict[str, Any]]) -> bytes:
    """results.json: one compact JSON value per line (json's C encoder; ``indent`` would switch to its pure-Python
    encoder, 3x slower at 1,000 cells), still one JSON document."""

    def array(items: list[Any]) -> str:
        return "[\n" + ",\n".join(json.dumps(x) for x in items) + "\n]"

    return (f'{{"grid": {json.dumps(grid)},\n"results": {array(c.results)},\n"not_done": {array(c.not_done)},\n'
            f'"comparisons": {array(comparisons)}}}\n').encode()


def results_csv(c: Collected) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in c.results:
        writer.writerow(flat_row(r))
    return buf.getvalue().encode()


def aggregate(store: Store, grid: str, significance: bool = True, *, workers: int | None = None,
              timings: dict[str, Any] | None = None, notes: dict[str, str] | None = None) -> str:
    """Write report/{index.html, report.md, results.csv, results.json, figures/}; returns index.html's path.

    Args:
        workers: processes for figures and prediction reads (default: every core, or $PEFTSUM_REPORT_WORKERS);
            0 or 1 draws everything in this process.
        timings: if given, filled with wall and CPU seconds per phase (the benchmark's breakdown).
        notes: cell id → the reason to show for a cell not done, instead of its status.json reason (the
            aggregation Job's wait says why it stopped waiting: ``peftsum.report.wait``).
    """
    phases = Phases()
    with ExitStack() as stack:
        with phases("start workers"):
            pool = stack.enter_context(worker_pool(workers))
        with phases("collect"):
            cpu: list[float] = []
            c = collect(store, grid, pool=pool, cpu=cpu)
            phases.add_cpu("collect", sum(cpu))
            for row in c.not_done:
                row["reason"] = (notes or {}).get(row["cell_id"], row["reason"])

        def write_data(comps: list[dict[str, Any]]) -> None:
            store.write_bytes(layout.grid_key(grid, "report", "results.csv"), results_csv(c))
            store.write_bytes(layout.grid_key(grid, "report", "results.json"), results_json(grid, c, comps))

        built = build(store, c, significance, pool=pool, phases=phases, while_drawing=write_data)
        with phases("stop workers"):
            stack.close()
    intro = (f"{len(c.results)} cells done, {len(c.not_done)} not done. Scores are fractions in [0, 1]; see "
             "docs/report.md for how to read every table and figure.")
    title = f"peftsum report: {grid}"
    with phases("write report"):
        for _, items in built["sections"]:
            for item in items:
                if isinstance(item, tuple):
                    store.write_bytes(layout.grid_key(grid, "report", "figures", f"{item[0]}.png"), item[2])
        store.write_bytes(layout.grid_key(grid, "report", "report.md"),
                          render(title, intro, built["sections"], "md").encode())
        store.write_bytes(layout.grid_key(grid, "report", "index.html"),
                          render(title, intro, built["sections"], "html").encode())
    if timings is not None:
        timings.update(phases.as_dict())
    return f"{store.uri}/{layout.grid_key(grid, 'report', 'index.html')}"


__all__ = ["Phases", "aggregate", "build", "collect", "flat_row", "worker_pool", "workers_wanted"]
