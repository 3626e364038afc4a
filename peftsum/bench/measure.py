"""One bench case measured through the project's own path: a one-cell grid resolved with the case's preset,
prepared as a cell prepares it (``peftsum.prepare``), trained in ``peftsum.train.train`` or decoding in
``peftsum.generate.generate``."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from typing import Any

from peftsum.bench.cases import FIRST_STEPS, GenCase, Plan, TrainCase
from peftsum.bench.device import device_name, peak_bytes, peak_flops, reset_peak, sync
from peftsum.bench.synthetic import IdTokenizer, synthetic_features


def _cell(model: str, method: str, preset: str, train: dict, eval_: dict, params: dict) -> Any:
    """The cell a one-cell grid with this model, method and preset resolves to (every layer validated)."""
    from peftsum.spec import parse_grid

    doc = {
        "name": "bench",
        "defaults": {"preset": preset, "train": train, "eval": eval_},
        "axes": {"model": [model], "method": ["m"], "dataset": ["synthetic-dialogsum"]},
        "methods": {"m": {"type": method, **params}},
    }
    return parse_grid(json.dumps(doc)).cells[0]


def _load(ref: Any, real: bool) -> tuple[Any, Any]:
    """(model fp32 on CPU, tokenizer), seeded: random-init weights of the real architecture and an
    :class:`IdTokenizer` (nothing downloaded), or the built-in tiny model and its tokenizer."""
    import torch

    if real:
        from peftsum.models.load import random_init

        model = random_init(ref, seed=0)
        return model, IdTokenizer(model.config.eos_token_id, model.config.pad_token_id)
    from peftsum.models.load import load_model

    torch.manual_seed(0)
    return load_model(ref)


def run_train_case(case: TrainCase, plan: Plan, device: Any, real: bool, data: dict) -> dict[str, Any]:
    """One epoch of ``case`` over the plan's synthetic examples: steady-state tokens/s, padding, MFU, memory."""
    from peftsum.prepare import prepare
    from peftsum.resources import EnergyMeter
    from peftsum.train import Hooks, TokenLayout, train

    cell = _cell(case.model, case.method, case.preset, case.train, {}, case.params)
    # One epoch over the same examples for every case; no checkpoints (nothing to resume in a benchmark).
    settings = dataclasses.replace(
        cell.train,
        epochs=1.0,
        warmup_ratio=0.0,
        max_steps=plan.naive_max_steps if case.config == "naive" else None,
        checkpoint_every_steps=None,
        checkpoint_every_seconds=None,
    )
    model, tokenizer = _load(cell.model, real)
    causal = cell.model.family == "causal"
    key = (cell.model.name, case.spread)
    if key not in data:
        data[key] = synthetic_features(
            case.spread,
            plan.train_examples,
            family=cell.model.family,
            context=cell.model.context,
            vocab=model.config.vocab_size,
            eos=tokenizer.eos_token_id,
            scale=plan.length_scale,
        )
    feats, _ = data[key]
    ready = prepare(cell, model, feats, settings=settings, device=device)
    model, runtime, tplan, method = ready.model, ready.runtime, ready.plan, ready.method
    trainable, total = ready.trainable, ready.total
    reset_peak(device)
    # Per step: (seconds, tokens, graphs compiled so far). The timed steady state starts after the warm-up steps
    # and after the last step that compiled a graph, so compilation is reported apart, never averaged in.
    def graphs() -> int:
        if not runtime.compile:
            return 0
        from torch._dynamo.utils import counters

        return counters["stats"]["unique_graphs"]

    ends: list[tuple[float, int, int]] = [(0.0, 0, graphs())]

    def progress(rep: Any, _total: int) -> None:
        ends.append((rep.seconds, rep.tokens, graphs()))

    energy = EnergyMeter()
    t0 = time.perf_counter()
    report = train(
        model,
        feats,
        tplan,
        settings,
        dataclasses.replace(runtime, compile_backend=plan.compile_backend),
        TokenLayout(tokenizer.pad_token_id, causal),
        hooks=Hooks(on_step=method.on_step, progress=progress),
    )
    sync(device)
    wall = time.perf_counter() - t0
    joules = energy.read()
    last_compile = max((k for k in range(1, len(ends)) if ends[k][2] > ends[k - 1][2]), default=0)
    warm = min(max(plan.warmup_steps, last_compile), len(ends) - 2)
    seconds_w, tokens_w = ends[warm][0], ends[warm][1]
    tokens = report.tokens - tokens_w
    seconds = report.seconds - seconds_w
    tps = tokens / seconds if seconds > 0 else None
    peak = peak_flops(device_name(device))
    n_base = total - trainable if case.method not in ("full", "bitfit") else total
    return {
        "label": case.label,
        "model": case.model,
        "method": case.method,
        "config": case.config,
        "preset": case.preset,
        "spread": case.spread,
        "settings": {
            "batch_size": settings.batch_size,
            "batch_tokens": settings.batch_tokens,
            "grad_accum": settings.grad_accum,
            "group_by_length": settings.group_by_length,
            "gradient_checkpointing": settings.gradient_checkpointing,
            "precision": runtime.precision,
            "fused_optimizer": runtime.fused,
            "compile": runtime.compile,
            "attention": getattr(getattr(model, "config", None), "_attn_implementation", None),
            **({"method_params": case.params} if case.params else {}),
        },
        "steps": report.steps,
        "timed_steps": report.steps - warm,
        "tokens": tokens,
        "seconds": seconds,
        "wall_seconds": wall,
        "tokens_per_s": tps,
        "padding_ratio": 1 - report.tokens / report.padded_tokens if report.padded_tokens else None,
        "mfu": 6 * n_base * tps / peak if tps and peak else None,
        "params": {"total": total, "trainable": trainable},
        "peak_memory_bytes": peak_bytes(device),
        "energy_j_per_mtok": joules / report.tokens * 1e6 if joules is not None and report.tokens else None,
        "final_train_loss": report.final_train_loss,
        # Was each new batch shape slow the first time (docs/performance.md, "first-contact slowdown")?
        "first_step_seconds": [round(b[0] - a[0], 5) for a, b in itertools.pairwise(ends[: FIRST_STEPS + 1])],
        # Not timed: the warm-up steps and every step up to the last one that compiled.
        "warmup": {"steps": warm, "seconds": seconds_w, "compiled_at_steps": [k for k in range(1, len(ends))
                                                                          if ends[k][2] > ends[k - 1][2]]},
        "batch_shapes": report.shapes,
        "compiled_graphs": report.compiled_graphs,
    }


def run_gen_case(case: GenCase, plan: Plan, device: Any, real: bool, data: dict) -> dict[str, Any]:
    """Greedy decoding of the plan's prompts by the untrained base model (``none``): new tokens/s, memory."""
    from peftsum.generate import generate, generation_budget, resolve_cache
    from peftsum.prepare import prepare

    cell = _cell(case.model, "none", case.preset, {}, case.eval, {})
    cache = resolve_cache(cell.eval.cache, device)
    model, tokenizer = _load(cell.model, real)
    ready = prepare(cell, model, None, device=device)
    model, runtime = ready.model, ready.runtime
    causal = cell.model.family == "causal"
    key = (cell.model.name, "gen")
    if key not in data:
        data[key] = synthetic_features(
            "dialogsum",
            plan.gen_prompts,
            family=cell.model.family,
            context=cell.model.context - plan.max_new_tokens,
            vocab=model.config.vocab_size,
            eos=tokenizer.eos_token_id,
            seed=7,
            scale=plan.length_scale,
        )
    _, prompts = data[key]
    budget = case.budget_tokens or generation_budget(cell.train.batch_tokens, model, device)
    kwargs = dict(
        causal=causal,
        max_new_tokens=plan.max_new_tokens,
        num_beams=1,
        device=device,
        autocast_dtype=runtime.autocast_dtype,
        budget_tokens=budget,
        batch_size=cell.eval.batch_size,
        cache=cache,
        min_new_tokens=plan.max_new_tokens,
    )  # every row decodes max_new_tokens: fixed work
    reset_peak(device)
    # Warm-up, untimed: the longest prompts (the biggest shapes) and, for a static cache, every shape the timed
    # run will compile. A static cache compiles per shape, so it is warmed on the whole set.
    t0 = time.perf_counter()
    warm = prompts if cache == "static" else sorted(prompts, key=len)[-max(2, len(prompts) // 8) :]
    generate(model, tokenizer, warm, **kwargs)
    warm_s = time.perf_counter() - t0
    rep = generate(model, tokenizer, prompts, **kwargs)
    new = rep.decoded_tokens  # rows x decoding steps
    return {
        "label": case.label,
        "model": case.model,
        "config": case.config,
        "preset": case.preset,
        "settings": {
            "precision": runtime.precision,
            "cache": cache,
            "budget_tokens": budget,
            "batch_size": cell.eval.batch_size,
            "max_new_tokens": plan.max_new_tokens,
        },
        "prompts": len(prompts),
        "batches": rep.batches,
        "mean_batch": len(prompts) / rep.batches,
        "new_tokens": new,
        "kept_tokens": sum(rep.new_tokens),
        "seconds": rep.seconds,
        "warmup_seconds": warm_s,
        "new_tokens_per_s": new / rep.seconds if rep.seconds else None,
        "prompt_padding_ratio": 1 - rep.prompt_tokens / rep.padded_prompt_tokens if rep.padded_prompt_tokens else None,
        "peak_memory_bytes": peak_bytes(device),
    }


