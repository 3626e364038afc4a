"""``peftsum bench``: how fast a grid cell trains and generates, fast path against the study's configuration.

Every number comes from the project's own code path: the settings are a one-cell grid resolved with the ``fast`` or
``seed-paper`` preset (``peftsum.spec``), the auto settings are resolved for the device as a cell resolves them
(``peftsum.train.resolve_runtime``, ``peftsum.generate.resolve_cache``), batches are planned by
``peftsum.train_plan.make_plan`` and the model trains in ``peftsum.train.train`` and generates in
``peftsum.generate.generate``. Only the data and the weights are synthetic:

- **Data.** Token ids drawn at random, with source and summary *lengths* drawn from log-normal fits of DialogSum
  and CNN/DailyMail under the GPT-2 tokenizer (``SPREADS``): the length spread is what decides padding waste and
  batch shapes. Sources are truncated to the model's context as evaluation does. Throughput does not depend on the
  token values.
- **Models.** On CUDA: random-init models of the real architectures (GPT-2 small, T5-small) built from their
  configs (``peftsum.models.load.random_init``; nothing is downloaded). On CPU: the built-in tiny models.

Reported per training case: real (non-padding) tokens/s in the steady state (after ``warmup`` optimizer steps and
after the last step that compiled a graph; the warm-up is reported apart), padding ratio, distinct batch shapes, MFU
(6 · parameters · tokens/s against the device's dense bf16 peak; null where the peak is unknown, e.g. on CPU),
peak memory (CUDA allocator peak; on CPU the process's peak RSS, which only grows), energy per million tokens
(NVML; null without it), and the ratio to the naive (``seed-paper``) case and to full fine-tuning of the same
model. Generation: new tokens/s of greedy decoding, naive against fast. The last line printed is one JSON object
(the ``summary``); the whole report goes to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# (median, sigma, lo, hi) of a log-normal in GPT-2 tokens, for source and summary. Fitted by eye to the published
# length statistics: DialogSum dialogues ~190 tokens (long tail to ~1,000), summaries ~30; CNN/DailyMail articles
# ~780 tokens, highlights ~60.
SPREADS: dict[str, tuple[tuple[float, float, int, int], tuple[float, float, int, int]]] = {
    "dialogsum": ((170, 0.45, 40, 1200), (28, 0.35, 6, 120)),
    "cnn_dailymail": ((700, 0.45, 120, 2500), (58, 0.3, 15, 128)),
}
TEMPLATE_TOKENS = 12  # the prompt template's tokens around the source (peftsum.data.prompts), roughly

# Dense bf16 tensor-core peaks (FLOP/s) by device-name substring; MFU is null for anything else (CPUs included).
PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "GH200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "B200": 2250e12,
}


@dataclass(frozen=True)
class TrainCase:
    """One training measurement: a model × method under a preset, with optional setting overrides."""

    model: str  # catalog name (tiny-gpt2, gpt2, t5-small, …)
    method: str  # method registry name, with its default parameters
    config: str  # label: naive | fast | fast-compiled | …
    preset: str = "fast"
    train: dict[str, Any] = field(default_factory=dict)  # train settings over the preset
    params: dict[str, Any] = field(default_factory=dict)  # method parameters over the defaults
    spread: str = "dialogsum"

    @property
    def label(self) -> str:
        return f"{self.model}/{self.method}/{self.config}" + ("" if self.spread == "dialogsum" else f"/{self.spread}")


@dataclass(frozen=True)
class GenCase:
    """One generation measurement (the untrained base model: decoding speed does not depend on the weights)."""

    model: str
    config: str
    preset: str = "fast"
    eval: dict[str, Any] = field(default_factory=dict)
    budget_tokens: int | None = None  # None = what a cell uses (peftsum.generate.generation_budget)

    @property
    def label(self) -> str:
        return f"{self.model}/generate/{self.config}"


@dataclass(frozen=True)
class Plan:
    """What one bench run measures, and how much data each case sees."""

    train: list[TrainCase]
    generate: list[GenCase]
    train_examples: int  # examples per training case (one epoch)
    warmup_steps: int  # optimizer steps not timed (allocator warm-up, autotuning, compilation)
    gen_prompts: int
    max_new_tokens: int
    primary: str  # the model whose full-FT naive/fast pair is the headline
    length_scale: float = 1.0  # multiplies every drawn length (--quick on CPU: 0.5, same spread, half the cost)
    naive_max_steps: int | None = None  # the naive cases stop here (their batches are random: a prefix is typical)
    compile_backend: str = "inductor"  # torch.compile backend of compiled cases (CPU dry runs: aot_eager)
    repeat: tuple[str, ...] = ()  # labels measured twice (again after all other cases), best run kept: on a shared
    # CPU the load of other processes changes during a run, and the best of two is the closer to the machine's speed


PEFT_METHODS = ("lora", "ia3", "bitfit")
FIRST_STEPS = 40  # per-step times kept for the start of each training case


def plan_for(
    device_type: str,
    quick: bool,
    models: str,
    examples: int | None = None,
    gen_prompts: int | None = None,
    extended: bool = False,
) -> Plan:
    """The cases for this device: real architectures on CUDA, tiny models on CPU (``models`` overrides).

    ``quick``: GPT-2 (or tiny-gpt2) only, and on CPU half-length sequences; ``extended``: also the CNN/DailyMail
    spread and every other PEFT method. Full FT and LoRA are measured eager and compiled: on CUDA the fast preset
    compiles (``fast``) and ``fast-eager`` turns it off; on CPU, where it is off, ``--extended`` adds
    ``fast-compiled`` (with a cheap ``--compile-backend`` it proves the compiled path without inductor's minutes).
    """
    real = models == "real" or (models == "auto" and device_type == "cuda")
    causal, seq2seq = ("gpt2", "t5-small") if real else ("tiny-gpt2", "tiny-t5")
    train = [TrainCase(causal, "full", "naive", preset="seed-paper"), TrainCase(causal, "full", "fast")]
    train += [TrainCase(causal, m, "fast") for m in PEFT_METHODS]
    if device_type == "cuda":  # LoRA's eager cost without its dropout
        train.append(TrainCase(causal, "lora", "fast-nodrop", params={"dropout": 0.0}))
    if not quick:
        train += [
            TrainCase(seq2seq, "full", "naive", preset="seed-paper"),
            TrainCase(seq2seq, "full", "fast"),
            TrainCase(seq2seq, "lora", "fast"),
            TrainCase(seq2seq, "ia3", "fast"),
        ]
    # The other side of train.compile (the fast preset's auto: on on CUDA, off on CPU) for full FT and LoRA.
    pair, compile_setting = ("fast-eager", "off") if device_type == "cuda" else ("fast-compiled", "on")
    if device_type == "cuda" or extended:
        train += [
            TrainCase(m, method, pair, train={"compile": compile_setting})
            for m in ((causal,) if quick else (causal, seq2seq))
            for method in ("full", "lora")
        ]
    if extended:
        train += [
            TrainCase(causal, "full", "naive", preset="seed-paper", spread="cnn_dailymail"),
            TrainCase(causal, "full", "fast", spread="cnn_dailymail"),
        ]
        train += [
            TrainCase(causal, m, "fast")
            for m in ("dora", "adalora", "loha", "lokr", "vera", "prefix", "prompt", "ptuning")
        ]
    gen = [GenCase(causal, "naive", preset="seed-paper")]
    if device_type == "cuda":  # the static cache compiles its decode step: last, so a slow compile costs nothing else
        gen += [
            GenCase(causal, "fast-dynamic", eval={"cache": "dynamic"}),
            GenCase(causal, "fast-dynamic-128k", eval={"cache": "dynamic"}, budget_tokens=131072),
        ]
        gen += (
            []
            if quick
            else [
                GenCase(seq2seq, "naive", preset="seed-paper"),
                GenCase(seq2seq, "fast-dynamic", eval={"cache": "dynamic"}),
            ]
        )
        gen += [
            GenCase(causal, "fast"),
            GenCase(causal, "fast-static-128k", eval={"cache": "static"}, budget_tokens=131072),
        ]
        gen += [] if quick else [GenCase(seq2seq, "fast")]
    else:
        gen.append(GenCase(causal, "fast"))
    if device_type == "cuda":
        n_train, warm, n_gen, scale, naive_steps = 4000, 3, 384, 1.0, 12
    elif quick:
        n_train, warm, n_gen, scale, naive_steps = 160, 0, 48, 0.5, None
    else:
        n_train, warm, n_gen, scale, naive_steps = 1000, 1, 128, 1.0, None
    # CPU: best of two against the load of other processes. CUDA: none; each case's warm-up (the first steps and
    # every step that compiled) is reported apart from its steady state.
    repeat = () if device_type == "cuda" else (f"{causal}/full/naive", f"{causal}/full/fast")
    return Plan(
        train,
        gen,
        examples or n_train,
        warm,
        gen_prompts or n_gen,
        64 if device_type == "cuda" else 32,
        causal,
        scale,
        naive_steps,
        repeat,
    )


# --- data -------------------------------------------------------------------------------------------------------
def lengths(spread: str, n: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """``n`` (source, summary) token lengths drawn from ``SPREADS[spread]``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for median, sigma, lo, hi in SPREADS[spread]:
        out.append(np.clip(rng.lognormal(math.log(median), sigma, n), lo, hi).astype(int).tolist())
    return out[0], out[1]


def synthetic_features(
    spread: str, n: int, *, family: str, context: int, vocab: int, eos: int, seed: int = 0, scale: float = 1.0
) -> tuple[Any, list[list[int]]]:
    """(TrainFeatures, evaluation prompts) shaped like the Encoder's output, with random token ids."""
    import numpy as np

    from peftsum.data.features import TrainFeatures, source_budget

    src_lens, tgt_lens = lengths(spread, n, seed)
    src_lens = [max(4, round(x * scale)) for x in src_lens]
    tgt_lens = [max(2, round(x * scale)) for x in tgt_lens]
    budget = source_budget("auto", context, family, max(tgt_lens), TEMPLATE_TOKENS + (family == "seq2seq"))
    rng = np.random.default_rng(seed + 1)
    high = min(vocab, 50000)  # below GPT-2's EOS/pad (50256) and every special id

    def ids(k: int) -> list[int]:
        return rng.integers(3, high, size=k).tolist()

    inputs, labels, prompts = [], [], []
    for s, t in zip(src_lens, tgt_lens):
        prompt, target = ids(min(s, budget) + TEMPLATE_TOKENS), ids(t) + [eos]
        if family == "causal":
            inputs.append(prompt + target)
            labels.append([-100] * len(prompt) + target)
            prompts.append(prompt)
        else:
            inputs.append(prompt + [eos])
            labels.append(target)
            prompts.append(prompt + [eos])
    feats = TrainFeatures(
        inputs, labels, kept=n, dropped=0, ids=[str(i) for i in range(n)], source_lens=src_lens, summary_lens=tgt_lens
    )
    return feats, prompts


class IdTokenizer:
    """Enough of a tokenizer for ``generate`` on a random-init model: special ids and a cheap decode."""

    def __init__(self, eos: int, pad: int) -> None:
        self.eos_token_id, self.pad_token_id = eos, pad

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return " ".join(map(str, ids))


# --- models and settings ---------------------------------------------------------------------------------------
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


def _load(ref: Any, real: bool) -> tuple[Any, int, int, int]:
    """(model fp32 on CPU, vocab size, eos id, pad id), seeded."""
    import torch

    if real:
        from peftsum.models.load import random_init

        model = random_init(ref, seed=0)
        eos = model.config.eos_token_id
        pad = model.config.pad_token_id
    else:
        from peftsum.models.load import load_model

        torch.manual_seed(0)
        model, tok = load_model(ref)
        eos, pad = tok.eos_token_id, tok.pad_token_id
    return model, model.config.vocab_size, eos, pad


def device_name(device: Any) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def peak_flops(name: str) -> float | None:
    for key, flops in PEAK_FLOPS.items():
        if key in name:
            return flops
    return None


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_bytes(device: Any) -> int:
    import torch

    from peftsum.resources import peak_rss_bytes

    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else peak_rss_bytes()


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- measurements ------------------------------------------------------------------------------------------------
def run_train_case(case: TrainCase, plan: Plan, device: Any, real: bool, data: dict) -> dict[str, Any]:
    import torch

    from peftsum.cell import method_params
    from peftsum.methods import METHODS
    from peftsum.methods.base import MethodContext
    from peftsum.resources import EnergyMeter, param_counts
    from peftsum.train import Hooks, TokenLayout, resolve_runtime, train
    from peftsum.train_plan import make_plan

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
    runtime = resolve_runtime(settings, device)
    model, vocab, eos, pad = _load(cell.model, real)
    causal = cell.model.family == "causal"
    key = (cell.model.name, case.spread)
    if key not in data:
        data[key] = synthetic_features(
            case.spread,
            plan.train_examples,
            family=cell.model.family,
            context=cell.model.context,
            vocab=vocab,
            eos=eos,
            scale=plan.length_scale,
        )
    feats, _ = data[key]
    tplan = make_plan(feats, settings, cell.seed, not causal)
    method = METHODS.get(case.method)
    torch.manual_seed(cell.seed)
    if method.apply is not None:
        model = method.apply(
            model, method_params(method, cell), MethodContext(cell.model.arch, cell.model.family, tplan.total_steps)
        )
    trainable, total = param_counts(model)
    model.to(device)
    _reset_peak(device)
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
        TokenLayout(pad, causal),
        hooks=Hooks(on_step=method.on_step, progress=progress),
    )
    _sync(device)
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
        "peak_memory_bytes": _peak_bytes(device),
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
    from peftsum.generate import generate, generation_budget, resolve_cache
    from peftsum.train import resolve_runtime

    cell = _cell(case.model, "full", case.preset, {}, case.eval, {})
    runtime = resolve_runtime(cell.train, device)
    cache = resolve_cache(cell.eval.cache, device)
    model, vocab, eos, pad = _load(cell.model, real)
    model.to(device)
    causal = cell.model.family == "causal"
    if real:
        tokenizer: Any = IdTokenizer(eos, pad)
    else:
        from peftsum.models.load import load_model

        tokenizer = load_model(cell.model)[1]
    key = (cell.model.name, "gen")
    if key not in data:
        data[key] = synthetic_features(
            "dialogsum",
            plan.gen_prompts,
            family=cell.model.family,
            context=cell.model.context - plan.max_new_tokens,
            vocab=vocab,
            eos=eos,
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
    _reset_peak(device)
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
        "peak_memory_bytes": _peak_bytes(device),
    }


# --- quality: the fast path's summaries against the naive path's ------------------------------------------------
# The quality check trains real cells on the synthetic task (tiny models that really learn, the quickstart's recipe).
# Both cells share every *learning* setting below, so they differ only in what the preset decides about execution:
# the fast path's length-grouped token-budget batches with a padding cap, fused AdamW, no activation recomputation
# (and on CUDA bf16 and the static-cache decode) against the seed-paper preset's random batches padded to the
# longest, gradient checkpointing, fp32, unfused AdamW and batch-of-20 dynamic-cache generation. The seed-paper
# learning recipe itself (lr 5e-5, 8 epochs) would barely move a 1M-parameter tiny model and compare nothing.
# Batches hold 6 examples on both sides (batch_tokens null): under one token budget the fast path packs ~37% more
# examples per step than padded random batches, so it would take fewer steps per epoch and compare step counts.
# Validation, best-epoch selection and the metric profile are what the study did, not how it executed: both sides
# take the last step's weights and the peftsum profile, so the paired ROUGE-L compares execution alone.
QUALITY_RECIPE: dict[str, Any] = {
    "train": {
        "epochs": 1.5,
        "learning_rate": 4.0e-3,
        "batch_size": 6,
        "batch_tokens": None,
        "warmup_ratio": 0.05,
        "weight_decay": 0.0,
        "lr_scheduler": "linear",
        "grad_accum": 1,
        "max_grad_norm": 1.0,
        "eval_every": "off",
        "select_best": "off",
    },
    "eval": {"limit": 150, "max_new_tokens": 48, "metric_profile": "peftsum"},
    "data": {"train_limit": 1500},
}
QUALITY_MODELS = {"tiny-gpt2": {}, "tiny-t5": {"train": {"epochs": 1.0, "learning_rate": 2.0e-3}}}
QUALITY_SEEDS = (42, 43, 44)  # one seed's ROUGE-L moves with any change to the batches (tiny-t5: 0.17-0.31)
QUALITY_GRID = "bench-quality"


def quality_cells(models: list[str], seeds: tuple[int, ...]) -> dict[str, dict[str, list[Any]]]:
    """{model: {"fast": [Cell per seed], "naive": [...]}}: one grid under the fast and the seed-paper preset."""
    from peftsum.spec import parse_grid

    out: dict[str, dict[str, list[Any]]] = {m: {"fast": [], "naive": []} for m in models}
    for config, preset in (("fast", "fast"), ("naive", "seed-paper")):
        doc = {
            "name": QUALITY_GRID,
            "defaults": {"preset": preset, **QUALITY_RECIPE},
            "models": {m: QUALITY_MODELS[m] for m in models if QUALITY_MODELS.get(m)},
            "axes": {"model": models, "method": ["full"], "dataset": ["synthetic-dialogsum"], "seed": list(seeds)},
        }
        for cell in parse_grid(json.dumps(doc)).cells:
            out[cell.model.name][config].append(cell)
    return out


def run_quality(models: list[str], seeds: tuple[int, ...], store_uri: str, log: Any = None) -> list[dict[str, Any]]:
    """Run each model's fast and naive cells (one per seed) into ``store_uri`` — done cells are reused: same spec,
    same id — and compare ROUGE-L with the paired bootstrap over every (seed, test example) pair.

    Pooling the seeds puts part of the training noise into the CI, which one seed's example resampling misses.
    ``no_worse`` holds when the fast path is not significantly worse: the upper end of the 95% CI of
    ROUGE-L(fast) − ROUGE-L(naive) is ≥ 0.
    """
    from peftsum.cell import provenance, run_cell
    from peftsum.compare import paired_bootstrap
    from peftsum.store import layout, open_store

    store = open_store(store_uri)
    head = provenance()["git_sha"]

    def run(model: str, config: str, cell: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        layout.write_json(store, layout.cell_key(QUALITY_GRID, cell.cell_id, "spec.json"), cell.to_dict())
        t0 = time.perf_counter()
        code = run_cell(store, QUALITY_GRID, cell)
        manifest = layout.done_manifest(store, QUALITY_GRID, cell.cell_id)
        if code != 0 or manifest is None:
            raise RuntimeError(
                f"quality cell {model}/{config} seed {cell.seed} ({cell.cell_id}) failed with exit code {code}"
            )
        result = layout.read_json(store, layout.result_key(QUALITY_GRID, cell.cell_id, manifest))
        preds = [
            json.loads(line)
            for line in store.read_bytes(
                layout.result_key(QUALITY_GRID, cell.cell_id, manifest, "predictions.jsonl")
            ).splitlines()
        ]
        made_by = result["provenance"]["git_sha"]
        if made_by != head and log is not None:  # the cell id does not cover the training code itself
            print(
                f"[bench] quality {model}/{config} seed {cell.seed}: reusing a result made by commit {made_by}, "
                f"not {head}; give a new --quality-store to measure this code",
                file=log,
                flush=True,
            )
        if log is not None:
            print(
                f"[bench] quality {model}/{config} seed {cell.seed}: ROUGE-L "
                f"{result['metrics']['rougeL']['value']:.4f} ({time.perf_counter() - t0:.1f}s)",
                file=log,
                flush=True,
            )
        return result, [{**p, "id": f"{cell.seed}/{p['id']}"} for p in preds]

    def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
        def mean(key: str) -> float:
            return sum(r["train"][key] for r in results) / len(results)

        return {
            "rougeL": sum(r["metrics"]["rougeL"]["value"] for r in results) / len(results),
            "per_seed": [
                {
                    "seed": r["spec"]["seed"],
                    "cell_id": r["cell_id"],
                    "git_sha": r["provenance"]["git_sha"],
                    "rougeL": r["metrics"]["rougeL"]["value"],
                    "rougeL_ci95": r["metrics"]["rougeL"]["ci95"],
                    "bleu": r["metrics"]["bleu"]["value"],
                    "test_loss": r["train"]["test_loss"],
                    "steps": r["train"]["steps"],
                }
                for r in results
            ],
            "preset": results[0]["spec"]["preset"],
            "test_loss": mean("test_loss"),
            "padding_ratio": mean("padding_ratio"),
            "train_seconds": mean("seconds"),
        }

    rows = []
    for model, configs in quality_cells(models, seeds).items():
        got = {config: [run(model, config, cell) for cell in cells] for config, cells in configs.items()}
        fast = [p for _, preds in got["fast"] for p in preds]
        naive = [p for _, preds in got["naive"] for p in preds]
        samples = got["fast"][0][0]["spec"]["eval"]["bootstrap_samples"]
        cmp = paired_bootstrap(fast, naive, "rougeL", samples=samples)
        rows.append(
            {
                "model": model,
                "seeds": list(seeds),
                "fast": summary([r for r, _ in got["fast"]]),
                "naive": summary([r for r, _ in got["naive"]]),
                "pairs": cmp["n"],
                "diff": cmp["diff"],
                "diff_ci95": cmp["ci95"],
                "p_fast_better": cmp["p_a_better"],
                "no_worse": cmp["ci95"][1] >= 0,
            }
        )
    return rows


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


def quality_report(device: Any, quick: bool, store_uri: str) -> dict[str, Any]:
    """``--part quality``: the fast/naive cells (tiny-gpt2 and tiny-t5, three seeds; ``quick``: tiny-gpt2, one seed)
    and their verdict."""
    rows = run_quality(
        ["tiny-gpt2"] if quick else list(QUALITY_MODELS),
        QUALITY_SEEDS[:1] if quick else QUALITY_SEEDS,
        store_uri,
        log=sys.stderr,
    )
    summary = {
        "device": device_name(device),
        "quality_no_worse": all(r["no_worse"] for r in rows),
        "quality": {
            r["model"]: {
                "fast_rougeL": r["fast"]["rougeL"],
                "naive_rougeL": r["naive"]["rougeL"],
                "diff": r["diff"],
                "diff_ci95": r["diff_ci95"],
            }
            for r in rows
        },
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "device": summary["device"],
        "store": store_uri,
        "recipe": QUALITY_RECIPE,
        "quality": rows,
        "summary": summary,
    }


EPILOG = """examples:
  peftsum bench --quick                      # CPU: tiny models, about 2 minutes; last line = summary JSON
  peftsum bench --out bench.json             # on a GPU: GPT-2 small / T5-small shapes, random init
  peftsum bench --only gpt2/full --only generate   # cases whose label has these parts (gpt2/full/naive, …)
  peftsum bench --part quality               # fast vs naive ROUGE-L on trained tiny cells (paired bootstrap)

The whole report goes to --out (default runs/bench/bench.json); docs/performance.md explains every field."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer cases and examples (CPU: <= 3 minutes)")
    p.add_argument("--out", default="runs/bench/bench.json", help="JSON report path")
    p.add_argument(
        "--models",
        choices=("auto", "tiny", "real"),
        default="auto",
        help="auto = real architectures (random init) on CUDA, tiny models on CPU",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--only", action="append", help="run only cases whose label contains this (repeatable)")
    p.add_argument("--examples", type=int, help="training examples per case (default: by device and --quick)")
    p.add_argument("--gen-prompts", type=int, help="generation prompts per case")
    p.add_argument("--warmup-steps", type=int, help="optimizer steps not timed")
    p.add_argument(
        "--extended",
        action="store_true",
        help="also the CNN/DailyMail spread, every PEFT method and (CUDA) torch.compile",
    )
    p.add_argument(
        "--part",
        choices=("all", "train", "generate", "quality"),
        default="all",
        help="what to measure: all = train + generate; quality = train and score real cells, fast "
        "against naive (tiny models on the synthetic task; minutes)",
    )
    p.add_argument(
        "--quality-store",
        help="store for the quality cells (default: quality-store/ next to --out); "
        "done cells are reused (with a warning if another commit made them); "
        "--device/--models/--only/--compile do not apply to --part quality",
    )
    p.add_argument("--compile", choices=("auto", "on", "off"), help="train.compile for every fast-path case")
    p.add_argument(
        "--compile-backend",
        default="inductor",
        help="torch.compile backend of compiled cases (aot_eager: a CPU dry run of the compiled path in seconds)",
    )
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: 1 on CPU with --quick, else torch's)")


def main(args: argparse.Namespace) -> int:
    import torch

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    threads = args.threads or (1 if device.type == "cpu" and args.quick else None)
    if threads:
        # On a shared CPU, OpenMP's barriers stall whenever another process holds a core: small ops then cost
        # 10x more with 2 threads than with 1 (measured here). One thread keeps the ratios about the code.
        torch.set_num_threads(threads)
    plan = plan_for(device.type, args.quick, args.models, args.examples, args.gen_prompts, args.extended)
    plan = dataclasses.replace(plan, compile_backend=args.compile_backend)
    if args.warmup_steps is not None:
        plan = dataclasses.replace(plan, warmup_steps=args.warmup_steps)
    if args.compile:  # one setting over every fast-path case (bench/gpu.sh: an eager pass, then a compiled one)
        plan = dataclasses.replace(
            plan,
            train=[
                c if c.preset != "fast" else dataclasses.replace(c, train={**c.train, "compile": args.compile})
                for c in plan.train
            ],
        )
    real = args.models == "real" or (args.models == "auto" and device.type == "cuda")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def emit(partial: dict[str, Any]) -> None:
        partial["seconds"] = time.perf_counter() - t0
        out.write_text(json.dumps(partial, indent=2))

    if args.part == "quality":
        result = quality_report(device, args.quick, args.quality_store or str(out.parent / "quality-store"))
    else:
        parts = ("train", "generate") if args.part == "all" else (args.part,)
        result = run(plan, device, real, args.only, log=sys.stderr, parts=parts, emit=emit)
    result["seconds"] = time.perf_counter() - t0
    result["summary"]["seconds"] = round(result["seconds"], 1)
    out.write_text(json.dumps(result, indent=2))
    print(f"[bench] report: {out}", file=sys.stderr)
    print(json.dumps(result["summary"]))
    return 0
