"""Every selected case of a plan measured in turn, and the report: rows with their ratios, and the summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from peftsum.bench.cases import SCHEMA_VERSION, SPREADS, Plan
from peftsum.bench.device import device_name, peak_flops
from peftsum.bench.measure import run_gen_case, run_train_case


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def run(
    plan: Plan,
    device: Any,
    real: bool,
    only: list[str] | None = None,
    log: Any = None,
    parts: tuple[str, ...] = ("train", "generate"),
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every selected case of ``plan``; a failing case is recorded with its error and the rest go on.

    ``emit(result_so_far)`` is called after every case, so a run cut short by a time limit still leaves numbers.
    """
    import torch

    def say(msg: str) -> None:
        if log is not None:
            print(msg, file=log, flush=True)

    def selected(label: str) -> bool:  # an --only value names whole label parts: "gpt2/lora", "generate"
        parts = label.split("/")
        return not only or any(
            any(parts[i : i + len(o.split("/"))] == o.split("/") for i in range(len(parts))) for o in only
        )

    data: dict = {}
    train_rows: list[dict] = []
    gen_rows: list[dict] = []
    result = assemble(plan, device, real, train_rows, gen_rows)
    work = [(train_rows, plan.train, run_train_case)] if "train" in parts else []
    work += [(gen_rows, plan.generate, run_gen_case)] if "generate" in parts else []
    for rows, cases, fn in work:
        runs = [c for c in cases if selected(c.label)]
        runs += [c for c in runs if c.label in plan.repeat]
        by_label: dict[str, dict] = {}
        for case in runs:
            t0 = time.perf_counter()
            try:
                row = fn(case, plan, device, real, data)
            except Exception as err:
                row = {
                    "label": case.label,
                    "model": case.model,
                    "config": case.config,
                    "error": f"{type(err).__name__}: {str(err)[:400]}",
                }
            rate = row.get("tokens_per_s") or row.get("new_tokens_per_s")
            if case.label in by_label:  # a repeat: keep the faster run, record both rates
                first = by_label[case.label]
                rates = [first.get("tokens_per_s") or first.get("new_tokens_per_s"), rate]
                best = row if (rate or 0) > (rates[0] or 0) else first
                best["runs_tokens_per_s"] = rates
                rows[rows.index(first)] = by_label[case.label] = best
            else:
                rows.append(row)
                by_label[case.label] = row
            say(
                f"[bench] {case.label}: "
                + (f"{rate:,.0f} tok/s" if rate else row.get("error", "?"))
                + f" ({time.perf_counter() - t0:.1f}s)"
            )
            if device.type == "cuda":
                torch.cuda.empty_cache()
            result = assemble(plan, device, real, train_rows, gen_rows)
            if emit is not None:
                emit(result)
    return result


def _compile_speedup(rows: list[dict], model: str) -> float | None:
    """Compiled over eager tokens/s of ``model``'s full FT, whichever of the pair the run measured."""
    fast = _find(rows, model, "fast", "full")
    other = _find(rows, model, "fast-eager", "full") or _find(rows, model, "fast-compiled", "full")
    if not fast or not other:
        return None
    compiled, eager = (fast, other) if fast["settings"]["compile"] else (other, fast)
    return _ratio(compiled["tokens_per_s"], eager["tokens_per_s"])


def _find(
    rows: list[dict], model: str, config: str, method: str | None = None, spread: str = "dialogsum"
) -> dict | None:
    for r in rows:
        if (
            r["model"] == model
            and r["config"] == config
            and r.get("method", method) == method
            and r.get("spread", spread) == spread
            and "error" not in r
        ):
            return r
    return None


def assemble(plan: Plan, device: Any, real: bool, train_rows: list[dict], gen_rows: list[dict]) -> dict[str, Any]:
    """The report: rows with their ratios (to the naive case, and to full FT of the same configuration), summary."""
    import peft
    import torch
    import transformers

    for r in train_rows:
        if "error" in r:
            continue
        naive = _find(train_rows, r["model"], "naive", "full", r["spread"])
        full = _find(train_rows, r["model"], r["config"], "full", r["spread"]) or _find(
            train_rows, r["model"], "fast", "full", r["spread"]
        )
        r["speedup_vs_naive"] = _ratio(r["tokens_per_s"], naive and naive["tokens_per_s"])
        r["vs_full_ft"] = _ratio(r["tokens_per_s"], full and full["tokens_per_s"])
    for r in gen_rows:
        if "error" not in r:
            naive = _find(gen_rows, r["model"], "naive")
            r["speedup_vs_naive"] = _ratio(r["new_tokens_per_s"], naive and naive["new_tokens_per_s"])

    name = device_name(device)
    # The headline model: the plan's, unless this run measured only others (bench/gpu.sh's T5 pass).
    primary = (
        plan.primary
        if any(r["model"] == plan.primary for r in train_rows + gen_rows) or not (train_rows or gen_rows)
        else (train_rows or gen_rows)[0]["model"]
    )
    fast = _find(train_rows, primary, "fast", "full")
    naive = _find(train_rows, primary, "naive", "full")
    gfast = _find(gen_rows, primary, "fast")
    gnaive = _find(gen_rows, primary, "naive")
    summary = {
        "device": name,
        "model": primary,
        "train_speedup_vs_naive": _ratio(fast and fast["tokens_per_s"], naive and naive["tokens_per_s"]),
        "padding_ratio": fast and fast["padding_ratio"],
        "naive_padding_ratio": naive and naive["padding_ratio"],
        "train_tokens_per_s": fast and fast["tokens_per_s"],
        "naive_train_tokens_per_s": naive and naive["tokens_per_s"],
        "mfu": fast and fast["mfu"],
        # The other side of train.compile for the headline pair (fast-eager on CUDA, fast-compiled on CPU).
        "compile_speedup": _compile_speedup(train_rows, primary),
        "batch_shapes": {r["label"]: r.get("batch_shapes") for r in train_rows if "error" not in r},
        "generate_speedup_vs_naive": _ratio(gfast and gfast["new_tokens_per_s"], gnaive and gnaive["new_tokens_per_s"]),
        "generate_new_tokens_per_s": gfast and gfast["new_tokens_per_s"],
        "peft_vs_full_ft": {
            r["method"]: r["vs_full_ft"]
            for r in train_rows
            if r["model"] == primary
            and r["config"] == "fast"
            and r.get("method") != "full"
            and "error" not in r
            and r.get("spread") == "dialogsum"
        },
        "errors": [r["label"] for r in train_rows + gen_rows if "error" in r],
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "device": name,
        "device_type": device.type,
        "peak_flops": peak_flops(name),
        "real_architectures": real,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "plan": {
            "train_examples": plan.train_examples,
            "warmup_steps": plan.warmup_steps,
            "length_scale": plan.length_scale,
            "naive_max_steps": plan.naive_max_steps,
            "gen_prompts": plan.gen_prompts,
            "max_new_tokens": plan.max_new_tokens,
            "spreads": SPREADS,
        },
        "train": train_rows,
        "generate": gen_rows,
        "summary": summary,
    }


