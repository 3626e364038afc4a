"""``peftsum aggregate``: results.csv, results.json and report.md from whatever cells are done.

Reads JSON only (grid.json, status.json, _SUCCESS, result.json), so it needs no ML stack and the launcher may call
it in-process. A cell that is missing, running or failed is listed with its reason; it never fails the report.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from peftsum.store import Store, StoreError
from peftsum.store import cells as layout

QUALITY = ("bleu", "rouge1", "rouge2", "rougeL", "rougeLsum")
CSV_COLUMNS = ("cell_id", "model", "method", "method_type", "dataset", "seed", "n", "bleu", "bleu_ci_lo",
               "bleu_ci_hi", "p1", "p2", "p3", "p4", "brevity_penalty", "rouge1", "rouge2", "rougeL",
               "rougeL_ci_lo", "rougeL_ci_hi", "rougeLsum", "train_seconds", "tokens_per_s", "padding_ratio",
               "final_train_loss", "gpu_peak_bytes", "ram_peak_bytes", "energy_joules", "trainable_params",
               "total_params", "adapter_bytes")


def collect(store: Store, grid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(results of done cells, [{cell_id, labels, state, reason}] for the others)."""
    try:
        cells = layout.read_json(store, layout.grid_key(grid, "grid.json"))["cells"]
    except (StoreError, ValueError, KeyError):
        ids = {k.split("/")[2] for k in store.list(layout.grid_key(grid, "cells")) if k.endswith("/spec.json")}
        cells = {cid: layout.read_json(store, layout.cell_key(grid, cid, "spec.json")) for cid in ids}
    results, others = [], []
    for cell_id, spec in sorted(cells.items()):
        manifest = layout.done_manifest(store, grid, cell_id)
        if manifest is not None:
            try:
                results.append(layout.read_json(store, layout.result_key(grid, cell_id, manifest)))
                continue
            except (StoreError, ValueError) as err:
                status = {"state": "failed", "reason": f"unreadable result.json: {err}"}
        else:
            status = layout.read_status(store, grid, cell_id) or {"state": "missing", "reason": "not started"}
            if status.get("state") == "done":
                status = {"state": "failed", "reason": "status says done but _SUCCESS is missing or incomplete"}
        others.append({"cell_id": cell_id, **_labels(spec), "state": status.get("state"),
                       "reason": status.get("reason"), "progress": status.get("progress")})
    return results, others


def _labels(spec: dict[str, Any]) -> dict[str, Any]:
    return {"model": (spec.get("model") or {}).get("name", "-"), "method": spec["method"]["name"],
            "method_type": spec["method"]["type"], "dataset": spec["dataset"]["name"], "seed": spec["seed"]}


def flat_row(r: dict[str, Any]) -> dict[str, Any]:
    m, t, res = r["metrics"], r["train"], r["resources"]
    return {"cell_id": r["cell_id"], **_labels(r["spec"]), "n": m["n"],
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


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _score(s: dict[str, Any]) -> str:
    return f"{s['value']:.3f} [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]"


def _mb(b: int | None) -> str:
    return "–" if b is None else f"{b / 1e6:.2f}"


def render_markdown(grid: str, results: list[dict[str, Any]], others: list[dict[str, Any]]) -> str:
    lines = [f"# peftsum report: {grid}", "",
             f"{len(results)} cells done, {len(others)} not done. Scores are fractions in [0, 1] with 95% "
             "bootstrap confidence intervals over examples; n = examples scored.", ""]
    for dataset in sorted({r["spec"]["dataset"]["name"] for r in results}):
        rows = sorted((r for r in results if r["spec"]["dataset"]["name"] == dataset),
                      key=lambda r: -r["metrics"]["rougeL"]["value"])
        best = {k: max(r["metrics"][k]["value"] for r in rows) for k in QUALITY}
        lines += [f"## Quality on {dataset}", "",
                  "| model | method | n | BLEU | P1 | P2 | P3 | P4 | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-Lsum |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            m, lab = r["metrics"], _labels(r["spec"])
            cells = [("**" + _score(m[k]) + "**") if m[k]["value"] == best[k] else _score(m[k]) for k in QUALITY]
            precs = [f"{p['value']:.3f}" for p in m["bleu_precisions"]]
            lines.append(f"| {lab['model']} | {lab['method']} | {m['n']} | {cells[0]} | {' | '.join(precs)} | "
                         f"{' | '.join(cells[1:])} |")
        lines += ["", "Bold: best in the column.", ""]
    if results:
        lines += ["## Cost", "",
                  "| model | method | dataset | train s | tokens/s | padding | trainable params | adapter MB | "
                  "vs full | peak RAM MB | peak GPU MB | energy J |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        full = {(r["spec"]["model"] or {}).get("name"): r for r in results if r["spec"]["method"]["type"] == "full"}
        for r in sorted(results, key=lambda r: (_labels(r["spec"])["dataset"], _labels(r["spec"])["model"])):
            lab, t, res = _labels(r["spec"]), r["train"], r["resources"]
            ref = full.get(lab["model"])
            change = "–"
            if ref and res["adapter_bytes"] and ref["resources"]["adapter_bytes"] and ref is not r:
                change = f"{100 * (res['adapter_bytes'] / ref['resources']['adapter_bytes'] - 1):+.1f}% size"
                if t["seconds"] and ref["train"]["seconds"]:
                    change += f", {100 * (t['seconds'] / ref['train']['seconds'] - 1):+.1f}% time"
            lines.append(f"| {lab['model']} | {lab['method']} | {lab['dataset']} | {_fmt(t['seconds'], 1)} | "
                         f"{_fmt(t['tokens_per_s'], 0)} | {_fmt(t['padding_ratio'])} | {res['trainable_params']:,} | "
                         f"{_mb(res['adapter_bytes'])} | {change} | {_mb(res['ram_peak_bytes'])} | "
                         f"{_mb(res['gpu_peak_bytes'])} | {_fmt(res['energy_joules'], 0)} |")
        lines.append("")
    if others:
        lines += ["## Cells not done", "", "| cell | model | method | dataset | state | reason |",
                  "|---|---|---|---|---|---|"]
        for o in others:
            reason = str(o["reason"] or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {o['cell_id']} | {o['model']} | {o['method']} | {o['dataset']} | {o['state']} | "
                         f"{reason} |")
        lines.append("")
    return "\n".join(lines)


def aggregate(store: Store, grid: str) -> str:
    """Write report/{report.md, results.csv, results.json}; returns where report.md is."""
    results, others = collect(store, grid)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow(flat_row(r))
    store.write_bytes(layout.grid_key(grid, "report", "results.csv"), buf.getvalue().encode())
    store.write_bytes(layout.grid_key(grid, "report", "results.json"),
                      json.dumps({"grid": grid, "results": results, "not_done": others}, indent=2).encode())
    store.write_bytes(layout.grid_key(grid, "report", "report.md"),
                      render_markdown(grid, results, others).encode())
    return f"{store.uri}/{layout.grid_key(grid, 'report', 'report.md')}"
