"""The report's figures as PNG bytes (matplotlib, Agg backend): metric bars with CI whiskers, Pareto plots of
ROUGE-L against each cost with the frontier drawn, token-length histograms."""

from __future__ import annotations

import io
import itertools
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
        lo = [v - r["metrics"][m]["ci95"][0] for v, r in zip(vals, top)]
        hi = [r["metrics"][m]["ci95"][1] - v for v, r in zip(vals, top)]
        xs = [i + (k - 1.5) * width for i in range(len(top))]
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=2, label=m)
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


def pareto(dataset: str, results: list[dict[str, Any]]) -> bytes:
    plt = _plt()
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(COSTS), figsize=(4 * len(COSTS), 3.8))
    for ax, (label, get) in zip(axes, COSTS):
        pts = [(get(r), r["metrics"]["rougeL"]["value"], _name(r)) for r in results if get(r)]
        ax.set_xlabel(label)
        ax.set_ylabel("ROUGE-L")
        if not pts:
            ax.text(0.5, 0.5, "no data\n(e.g. no NVML / untrained)", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18)
        front = pareto_front([(p[0], p[1]) for p in pts])
        names = {(x, y): name for x, y, name in pts}
        for x, y in front:  # label the frontier only: the cells worth choosing
            ax.annotate(names[(x, y)], (x, y), fontsize=6, alpha=0.8)
        ax.plot([p[0] for p in front], [p[1] for p in front], "r-", lw=1.2, label="frontier")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor log labels are slow to lay out and crowd the axis
        ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: ROUGE-L against cost (up and left is better)")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.16, top=0.85, wspace=0.3)
    return _png(fig)


MAX_HIST_ROWS = 3  # tokenizers per dataset figure; the EDA table lists them all


def histograms(dataset: str, edas: list[dict[str, Any]]) -> bytes:
    """Source / summary / merged token-length histograms, one row per tokenizer (and split)."""
    plt = _plt()
    edas = edas[:MAX_HIST_ROWS]
    fig, axes = plt.subplots(len(edas), 3, figsize=(12, 2.6 * len(edas) + 0.6), squeeze=False)
    for row, eda in zip(axes, edas):
        for ax, part in zip(row, ("source", "summary", "merged")):
            h = eda[part].get("histogram")
            if h:
                edges = h["edges"]
                ax.bar(edges[:-1], h["counts"], width=[b - a for a, b in itertools.pairwise(edges)], align="edge")
            ax.set_title(f"{part} tokens: {eda['tokenizer']} ({eda.get('split', 'train')})", fontsize=8)
            if eda.get("source_token_budget") and part == "source":
                ax.axvline(eda["source_token_budget"], color="r", lw=1, label="context budget")
                ax.legend(fontsize=7)
    fig.suptitle(f"{dataset}: token lengths")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.08, top=0.88, hspace=0.6)
    return _png(fig)
