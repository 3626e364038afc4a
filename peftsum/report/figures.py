"""The report's figures as PNG bytes (matplotlib, Agg backend): metric bars with CI whiskers, Pareto plots of
ROUGE-L against each cost with the frontier drawn, token-length histograms."""

from __future__ import annotations

import io
import math
from typing import Any

from peftsum.report.collect import labels

MAX_BARS = 30  # bars per dataset figure: the best cells by ROUGE-L


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _name(r: dict[str, Any]) -> str:
    lab = labels(r["spec"])
    return f"{lab['model']}/{lab['method']}/s{lab['seed']}"


def metric_bars(dataset: str, results: list[dict[str, Any]]) -> bytes:
    plt = _plt()
    top = sorted(results, key=lambda r: -r["metrics"]["rougeL"]["value"])[:MAX_BARS]
    metrics = ("rougeL", "rouge1", "rouge2", "bleu")
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(top) + 2), 4.5))
    for k, m in enumerate(metrics):
        vals = [r["metrics"][m]["value"] for r in top]
        xs = [i + (k - 1.5) * width for i in range(len(top))]
        ax.bar(xs, vals, width, label=m)
        # One LineCollection for all whiskers: per-bar error-bar artists cost most of the figure's time.
        ax.vlines(xs, [r["metrics"][m]["ci95"][0] for r in top], [r["metrics"][m]["ci95"][1] for r in top],
                  colors="k", linewidth=0.8)
    ax.set_xticks(range(len(top)))
    ax.set_xticklabels([_name(r) for r in top], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("score (0–1), 95% CI")
    ax.set_title(f"{dataset}: quality" + (f" (best {MAX_BARS} cells)" if len(results) > MAX_BARS else ""))
    ax.legend(fontsize=8)
    fig.subplots_adjust(bottom=0.35, top=0.9)  # fixed margins: constrained layout costs seconds per figure
    return _png(fig)


COSTS = (
    ("train seconds", lambda r: r["train"]["seconds"]),
    ("energy (J)", lambda r: r["resources"]["energy_joules"]),
    ("stored bytes", lambda r: r["resources"]["adapter_bytes"]),
    ("peak memory (bytes, GPU else RAM)",
     lambda r: r["resources"]["gpu_peak_bytes"] or r["resources"]["ram_peak_bytes"]),
)


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
        pts = {(get(r), r["metrics"]["rougeL"]["value"]): _name(r) for r in results if get(r)}
        for x, y in pareto_front(list(pts)):
            rows.append((label, pts[(x, y)], x, y))
    return rows


def render_all(jobs: list[tuple[str, str, Any, tuple]]) -> list[tuple[str, str, bytes]]:
    """Draw (name, caption, function, args) figures, on every core when there are several: matplotlib spends its
    time laying out text, one core per figure. Forked workers inherit the imported matplotlib."""
    import multiprocessing
    import os

    workers = min(len(jobs), os.cpu_count() or 1)
    if workers < 2 or len(jobs) < 3:
        pngs = [fn(*args) for _, _, fn, args in jobs]
    else:
        _plt()
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pngs = pool.starmap(_call, [(fn, args) for _, _, fn, args in jobs])
    return [(name, caption, png) for (name, caption, _, _), png in zip(jobs, pngs)]


def _call(fn: Any, args: tuple) -> bytes:
    return fn(*args)


def pareto(dataset: str, results: list[dict[str, Any]]) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, len(COSTS), figsize=(4 * len(COSTS), 3.8))
    for ax, (label, get) in zip(axes, COSTS):
        # log10 of the cost on a linear axis: a log-scaled axis costs matplotlib ~3x the time to lay out
        pts = [(math.log10(get(r)), r["metrics"]["rougeL"]["value"], _name(r)) for r in results if get(r)]
        ax.set_xlabel(f"log10 {label}")
        ax.set_ylabel("ROUGE-L")
        if not pts:
            ax.text(0.5, 0.5, "no data\n(e.g. no NVML / untrained)", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18)
        front = pareto_front([(p[0], p[1]) for p in pts])
        ax.plot([p[0] for p in front], [p[1] for p in front], "r-", lw=1.2)
        ax.scatter([p[0] for p in front], [p[1] for p in front], s=24, c="r")
    # Frontier cells are named in the report's Pareto table; labels here would cost more than the plot itself.
    fig.suptitle(f"{dataset}: ROUGE-L against cost, Pareto frontier in red (up and left is better)")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.16, top=0.85, wspace=0.3)
    return _png(fig)


MAX_HIST_LINES = 4  # tokenizers per histogram panel; the EDA table lists them all


def histograms(dataset: str, edas: list[dict[str, Any]]) -> bytes:
    """Source / summary / merged token-length histograms, one outline per tokenizer (and split)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, part in zip(axes, ("source", "summary", "merged")):
        for eda in edas[:MAX_HIST_LINES]:
            h = eda[part].get("histogram")
            if h:
                ax.stairs(h["counts"], h["edges"], label=f"{eda['tokenizer']} ({eda.get('split', 'train')})")
        ax.set_title(f"{part} tokens", fontsize=9)
    budgets = [e["source_token_budget"] for e in edas[:MAX_HIST_LINES] if e.get("source_token_budget")]
    if budgets:
        axes[0].axvline(min(budgets), color="r", lw=1, label="smallest context budget")
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{dataset}: token lengths")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.12, top=0.82)
    return _png(fig)
