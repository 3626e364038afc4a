"""The study's Tables 8–10 from a grid's results, laid out in the study's order: models by family and size (GPT-2
small, medium, large, then T5 small, base, large), full fine-tuning then LoRA, datasets DialogSum, SAMSum,
CNN/DailyMail; the study's column names. Shown when a grid has cells of that layout (examples/paper.yaml does), so
the measured numbers can be laid beside the study's.
"""

from __future__ import annotations

from typing import Any

from peftsum.report.collect import Collected
from peftsum.report.labels import labels
from peftsum.report.tables import Table, device_peak, duration, mib

MODELS = ("gpt2", "gpt2-medium", "gpt2-large", "t5-small", "t5-base", "t5-large")
METHODS = ("full", "lora")
DATASETS = ("dialogsum-test", "dialogsum", "samsum", "cnn_dailymail")
NAMES = {"gpt2": "GPT-2", "gpt2-medium": "GPT-2 medium", "gpt2-large": "GPT-2 large", "t5-small": "T5 small",
         "t5-base": "T5 base", "t5-large": "T5 large", "full": "full fine-tuning", "lora": "LoRA"}


def _ordered(c: Collected) -> list[dict[str, Any]]:
    """The study-layout cells of one seed (the lowest), in the study's row order."""
    position = {}
    for r in c.results:
        lab = labels(r["spec"])
        if lab["model"] in MODELS and lab["method_type"] in METHODS and lab["method"] in METHODS \
                and lab["dataset"] in DATASETS:
            key = (DATASETS.index(lab["dataset"]), MODELS.index(lab["model"]), METHODS.index(lab["method"]))
            if key not in position or r["spec"]["seed"] < position[key]["spec"]["seed"]:
                position[key] = r
    return [position[k] for k in sorted(position)]


def study_tables(c: Collected) -> list[Table]:
    """Tables 8 (quality), 9 (sizes) and 10 (training cost); none if the grid has no cell of the study's layout."""
    cells = _ordered(c)
    if not cells:
        return []
    t8, t10 = [], []
    for r in cells:
        lab, m, res = labels(r["spec"]), r["metrics"], r["resources"]
        name = [lab["dataset"], NAMES[lab["model"]], NAMES[lab["method"]]]
        t8.append([*name, f"{m['bleu']['value']:.4f}", *(f"{p['value']:.4f}" for p in m["bleu_precisions"]),
                   f"{m['brevity_penalty']['value']:.4f}",
                   *(f"{m[k]['value']:.4f}" for k in ("rouge1", "rouge2", "rougeL", "rougeLsum"))])
        t10.append([*name, duration(res.get("wall_seconds")), mib(device_peak(res)), mib(res["ram_peak_bytes"]),
                    mib(res.get("disk_peak_bytes"))])
    sizes: dict[str, dict[str, int | None]] = {}
    for r in cells:
        lab = labels(r["spec"])
        sizes.setdefault(lab["model"], {}).setdefault(lab["method"], r["resources"]["adapter_bytes"])
    t9 = []
    for model in MODELS:
        if model in sizes:
            full, lora = sizes[model].get("full"), sizes[model].get("lora")
            cut = "–" if not full or lora is None else f"{100 * (1 - lora / full):.2f}%"
            t9.append([NAMES[model], mib(full), mib(lora), cut])
    profiles = sorted({(r.get("metric_profile") or {}).get("name", "peftsum") for r in cells})
    return [
        Table("study-table-8", "The study's Table 8: quality", ["dataset", "model", "method", "bleu", "precision 1",
                                                                 "precision 2", "precision 3", "precision 4",
                                                                 "brevity_penalty", "rouge1", "rouge2", "rougeL",
                                                                 "rougeLsum"], t8,
              note=f"Fractions in [0, 1], metric profile {', '.join(profiles)} (the study's columns are the "
                   "`evaluate` library's; profile `evaluate` computes them the same way). One seed per row."),
        Table("study-table-9", "The study's Table 9: model and adapter size", ["model", "full model MiB",
                                                                                "LoRA adapter MiB", "reduction"],
              t9, note="MiB = 2^20 bytes: the study labels these columns MB, but its numbers are MiB (GPT-2's "
                       "474.79 = 497.8 MB)."),
        Table("study-table-10", "The study's Table 10: training cost", ["dataset", "model", "method",
                                                                         "training time h:mm:ss", "GPU memory MiB",
                                                                         "RAM MiB", "disk MiB"], t10,
              note="Training time: the whole cell, evaluations and checkpoints included. GPU memory as the device "
                   "shows it (NVML; torch's allocated peak where NVML was unavailable). Disk: what the cell itself "
                   "held on local disk; the study measured the whole machine's usage."),
    ]
