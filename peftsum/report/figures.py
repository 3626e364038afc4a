"""The report's figures as PNG bytes: metric bars with CI whiskers, Pareto plots of ROUGE-L against each cost with
the frontier drawn, token-length histograms.

Drawn with matplotlib's object API (``Figure`` + the Agg canvas, never pyplot: no global figure registry, nothing
to close, no backend switch). At 1,000 cells drawing is most of the report's time, and matplotlib spends it on
text (each string is shaped and each glyph rendered separately) and on tick objects, so the figures keep both
few: hinting off, at most ~5 ticks per axis, shared y axes, one collection per metric instead of a patch per bar,
fixed margins instead of a layout engine, 72 dpi.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peftsum.report.analysis import COSTS, pareto_front
from peftsum.report.labels import cell_name, labels

MAX_BARS = 20  # cell groups per dataset figure: the best cells by ROUGE-L (the quality table lists all)
MAX_HIST_LINES = 4  # tokenizers per histogram panel; the EDA table lists them all
DPI = 72
# Unhinted glyphs render ~40% faster (FreeType's hinter is most of the per-glyph cost) and look the same at 72 dpi.
RC = {"text.hinting": "no_hinting", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
      "legend.fontsize": 8, "figure.titlesize": 11}
TICK_FONT = 8
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


@contextmanager
def _figure(width: float, height: float) -> Iterator[Any]:
    """A Figure on an Agg canvas with the report's rc settings active while it is built and saved."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(fig)
        yield fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})  # zlib 3: as small as 6, faster
    return buf.getvalue()


def _label(v: float, step: float) -> str:
    """A tick value with as many decimals as the step between ticks needs (0.15 → 2, 0.2 → 1, 250 → 0)."""
    decimals = 0
    while decimals < 6 and abs(round(step, decimals) - step) > 1e-9 * max(1.0, abs(step)):
        decimals += 1
    return f"{v:.{decimals}f}" if abs(v) < 1e6 else f"{v:.3g}"


def _ticks(ax: Any, x: int = 5, y: int = 5, xlabels: bool = True, ylabels: bool = True) -> None:
    """Tick labels as plain texts and light grid lines, instead of matplotlib's Tick objects (five artists each,
    made by deep-copying a prototype: ~40% of a small figure's time). Call once the data are in: it freezes the
    limits. ``x``/``y``: about how many ticks (0: none)."""
    from matplotlib.collections import LineCollection
    from matplotlib.ticker import MaxNLocator

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xticks([])
    ax.set_yticks([])
    segments = []
    for n, lo, hi, show, along_x in ((x, x0, x1, xlabels, True), (y, y0, y1, ylabels, False)):
        if not n:
            continue
        values = [v for v in MaxNLocator(n).tick_values(lo, hi) if min(lo, hi) <= v <= max(lo, hi)]
        step = abs(values[1] - values[0]) if len(values) > 1 else 1.0
        for v in values:
            if along_x:
                segments.append(((v, y0), (v, y1)))
                if show:
                    ax.text(v, -0.015, _label(v, step), transform=ax.get_xaxis_transform(), ha="center", va="top",
                            fontsize=TICK_FONT)
            else:
                segments.append(((x0, v), (x1, v)))
                if show:
                    ax.text(-0.01, v, _label(v, step), transform=ax.get_yaxis_transform(), ha="right",
                            va="center", fontsize=TICK_FONT)
    ax.add_collection(LineCollection(segments, colors="#e4e4e4", linewidths=0.6, zorder=0), autolim=False)


_WARM = False


def preload() -> None:
    """Import what drawing needs and draw one small figure (font files opened, glyph and layout caches filled),
    so forked workers inherit all of it instead of each paying for it on its first figure."""
    global _WARM
    if _WARM:
        return
    with _figure(2, 1) as fig:
        ax = fig.add_axes((0.2, 0.3, 0.7, 0.6))
        ax.plot([0, 1], [0, 1], "o-")
        ax.text(0.5, 0.5, "0.123456789 abcdefghijklmnopqrstuvwxyz/-", fontsize=TICK_FONT)
        ax.set_title("warm")
        _ticks(ax, 3, 3)
        _png(fig)
    _WARM = True


FIGURE_METRICS = ("rougeL", "rouge1", "rouge2", "bleu")


def slim(r: dict[str, Any]) -> dict[str, Any]:
    """The parts of a result.json the figures read (labels, four metrics with CIs, the costs): a few hundred bytes
    to send to a worker instead of the whole result."""
    spec, res = r["spec"], r["resources"]
    return {"spec": {"model": {"name": labels(spec)["model"]}, "method": spec["method"], "dataset": spec["dataset"],
                     "seed": spec["seed"]},
            "metrics": {m: r["metrics"][m] for m in FIGURE_METRICS},
            "train": {"seconds": r["train"]["seconds"]},
            "resources": {k: res.get(k) for k in ("energy_joules", "adapter_bytes", "gpu_peak_bytes",
                                                  "ram_peak_bytes")}}


def metric_bars(dataset: str, results: list[dict[str, Any]]) -> bytes:
    """ROUGE-L, ROUGE-1, ROUGE-2 and BLEU of the best MAX_BARS cells by ROUGE-L, whiskers = the 95% CIs."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    top = sorted(results, key=lambda r: -r["metrics"]["rougeL"]["value"])[:MAX_BARS]
    metrics = FIGURE_METRICS
    width = 0.8 / len(metrics)
    seeds = {labels(r["spec"])["seed"] for r in top}
    fig_width = max(6.0, 0.55 * len(top) + 1.5)
    with _figure(fig_width, 3.8) as fig:
        left = 0.7 / fig_width  # room in inches for the y tick labels and the y label, whatever the width
        ax = fig.add_axes((left, 0.3, 0.985 - left, 0.6))
        top_y = 0.05
        for k, m in enumerate(metrics):
            xs = np.arange(len(top)) + (k - 1.5) * width
            vals = np.array([r["metrics"][m]["value"] for r in top], dtype=float)
            lo = np.array([r["metrics"][m]["ci95"][0] for r in top], dtype=float)
            hi = np.array([r["metrics"][m]["ci95"][1] for r in top], dtype=float)
            left, right, zero = xs - width / 2, xs + width / 2, np.zeros_like(xs)
            # One collection per metric: a Rectangle patch per bar costs ~2 ms each to add.
            verts = np.stack([np.stack([left, zero], 1), np.stack([left, vals], 1), np.stack([right, vals], 1),
                              np.stack([right, zero], 1)], 1)
            ax.add_collection(PolyCollection(verts, facecolors=COLORS[k], linewidths=0, label=m))
            ax.vlines(xs, lo, hi, colors="k", linewidth=0.7)
            if len(top):
                top_y = max(top_y, float(np.nanmax(np.concatenate([vals, hi]))))
        ax.set_xlim(-0.6, len(top) - 0.4)
        ax.set_ylim(0, top_y * 1.1)
        _ticks(ax, 0, 5)
        # Cell names as plain texts under the axis, not tick labels (see _ticks).
        for i, r in enumerate(top):
            ax.text(i + 0.3, -0.02, cell_name(r["spec"], len(seeds) > 1), transform=ax.get_xaxis_transform(),
                    rotation=35, rotation_mode="anchor", ha="right", va="top", fontsize=TICK_FONT)
        ax.set_ylabel("score (0–1), 95% CI", labelpad=24)
        ax.set_title(f"{dataset}: quality" + (f" (best {MAX_BARS} cells)" if len(results) > MAX_BARS else "")
                     + ("" if len(seeds) > 1 else f", seed {next(iter(seeds))}" if seeds else ""))
        ax.legend(ncols=len(metrics), loc="upper right", frameon=False)
        return _png(fig)


def pareto(dataset: str, results: list[dict[str, Any]]) -> bytes:
    """ROUGE-L against log10 of each cost, one panel per cost (shared y axis), frontier in red."""
    with _figure(4 * len(COSTS), 3.4) as fig:
        axes = fig.subplots(1, len(COSTS))
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.15, top=0.85, wspace=0.08)
        for ax, (label, get) in zip(axes, COSTS):
            # log10 of the cost on a linear axis: a log-scaled axis costs matplotlib ~3x the time to lay out
            pts = [(math.log10(get(r)), r["metrics"]["rougeL"]["value"]) for r in results if get(r)]
            ax.set_xlabel(f"log10 {label}", labelpad=12)
            if not pts:
                ax.text(0.5, 0.5, "no data\n(e.g. no NVML / untrained)", ha="center", va="center",
                        transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", ms=3.5, color=COLORS[0], alpha=0.7)
            front = pareto_front(pts)
            ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="r", ms=4.5, lw=1.2)
        drawn = [ax for ax in axes if ax.has_data()]
        if drawn:  # one ROUGE-L scale for every panel, labelled on the first
            ylim = (min(ax.get_ylim()[0] for ax in drawn), max(ax.get_ylim()[1] for ax in drawn))
            for ax in drawn:
                ax.set_ylim(*ylim)
                _ticks(ax, 5, 5, ylabels=ax is axes[0])
        axes[0].set_ylabel("ROUGE-L", labelpad=26)
        # Frontier cells are named in the report's Pareto table; labels here would cost more than the plot itself.
        fig.suptitle(f"{dataset}: ROUGE-L against cost, Pareto frontier in red (up and left is better)")
        return _png(fig)


def histograms(dataset: str, edas: list[dict[str, Any]]) -> bytes:
    """Source / summary / merged token-length histograms, one outline per tokenizer (and split), as the share of
    examples per bin so a 30-example test split and a 2,000-example training split are both visible."""
    with _figure(12, 3.2) as fig:
        axes = fig.subplots(1, 3)
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.12, top=0.82, wspace=0.18)
        for ax, part in zip(axes, ("source", "summary", "merged")):
            for k, eda in enumerate(edas[:MAX_HIST_LINES]):
                h = eda[part].get("histogram")
                if h and sum(h["counts"]):
                    total = sum(h["counts"])
                    share = [v / total for v in h["counts"]]
                    # A step line, not ax.stairs: a patch's data limits cost ~6 ms each to update.
                    ax.plot(h["edges"], [share[0], *share], drawstyle="steps-pre", color=COLORS[k % len(COLORS)],
                            lw=1.2, label=f"{eda['tokenizer']} ({eda.get('split', 'train')})")
            ax.set_title(f"{part} tokens")
            ax.set_ylim(bottom=0)
        budgets = [e["source_token_budget"] for e in edas[:MAX_HIST_LINES] if e.get("source_token_budget")]
        if budgets:
            axes[0].axvline(min(budgets), color="k", ls="--", lw=1, label="smallest context budget")
        for ax in axes:
            _ticks(ax, 5, 4)
        axes[0].set_ylabel("share of examples", labelpad=26)
        axes[0].legend(fontsize=7, frameon=False)
        fig.suptitle(f"{dataset}: token lengths")
        return _png(fig)


def curves(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]], float | None] | None:
    """(cell name, train.history, best epoch) of a cell that validated during training, else None."""
    history = (r.get("train") or {}).get("history")
    return (cell_name(r["spec"]), history, r["train"].get("best_epoch")) if history else None


def learning_curves(dataset: str, cells: list[tuple[str, list[dict[str, Any]], float | None]]) -> bytes:
    """Training loss (dashed) and validation loss (solid) per evaluation against epochs, one panel per model, the
    selected epoch marked; up to 4 models and 4 cells per model (the best by validation loss)."""
    by_model: dict[str, list[tuple[str, list[dict[str, Any]], float | None]]] = {}
    for cell in cells:
        by_model.setdefault(cell[0].split("/")[0], []).append(cell)
    models = sorted(by_model)[:MAX_HIST_LINES]
    with _figure(4.2 * len(models), 3.4) as fig:
        axes = fig.subplots(1, len(models), squeeze=False)[0]
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.15, top=0.82, wspace=0.15)
        for ax, model in zip(axes, models):
            chosen = sorted(by_model[model], key=lambda c: min((h["val_loss"] for h in c[1]
                                                                if h["val_loss"] is not None), default=math.inf))
            for k, (name, history, best) in enumerate(chosen[:MAX_HIST_LINES]):
                color = COLORS[k % len(COLORS)]
                epochs = [h["epoch"] for h in history]
                ax.plot(epochs, [h["train_loss"] for h in history], "--", color=color, lw=1)
                ax.plot(epochs, [h["val_loss"] for h in history], "o-", color=color, ms=3, lw=1.2,
                        label=name.split("/", 1)[1])
                if best is not None:
                    at = next(h for h in history if h["epoch"] == best)
                    ax.plot([best], [at["val_loss"]], "*", color="k", ms=11, zorder=5)
            ax.set_title(model)
            ax.set_xlabel("epoch", labelpad=12)
            _ticks(ax, 5, 4, ylabels=True)
            ax.legend(fontsize=7, frameon=False)
        axes[0].set_ylabel("loss", labelpad=26)
        fig.suptitle(f"{dataset}: validation (solid) and training loss (dashed); ★ weights kept")
        return _png(fig)


def boxplots(dataset: str, edas: list[dict[str, Any]]) -> bytes:
    """Token-length boxplots beside the histograms: quartiles, median and mean, whiskers at the 5th and 95th
    percentiles (from eda.json), one box per tokenizer and split."""
    items = [e for e in edas[:MAX_HIST_LINES] if all(e[p].get("n") for p in ("source", "summary", "merged"))]
    with _figure(12, 2.4 + 0.25 * len(items)) as fig:
        axes = fig.subplots(1, 3)
        fig.subplots_adjust(left=0.16, right=0.99, bottom=0.18, top=0.8, wspace=0.12)
        for ax, part in zip(axes, ("source", "summary", "merged")):
            stats = [{"med": e[part]["p50"], "q1": e[part]["p25"], "q3": e[part]["p75"], "whislo": e[part]["p5"],
                      "whishi": e[part]["p95"], "mean": e[part]["mean"], "fliers": []} for e in items]
            if stats:
                ax.bxp(stats, orientation="horizontal", showmeans=True, widths=0.5)
            ax.set_title(f"{part} tokens")
            ax.set_yticks([])
            _ticks(ax, 5, 0)
        for k, e in enumerate(items, 1):  # box labels as plain texts (see _ticks)
            axes[0].text(-0.02, k, f"{e['tokenizer']} ({e.get('split', 'train')})",
                         transform=axes[0].get_yaxis_transform(), ha="right", va="center", fontsize=TICK_FONT)
        fig.suptitle(f"{dataset}: token lengths (box: quartiles; whiskers: 5th–95th percentile; ▲ mean)")
        return _png(fig)

