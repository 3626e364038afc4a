"""What one ``peftsum bench`` run measures: its training and generation cases per device, and the length spreads
their synthetic data is drawn from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1  # of the JSON report (--out)

# (median, sigma, lo, hi) of a log-normal in GPT-2 tokens, for source and summary. Fitted by eye to the published
# length statistics: DialogSum dialogues ~190 tokens (long tail to ~1,000), summaries ~30; CNN/DailyMail articles
# ~780 tokens, highlights ~60.
SPREADS: dict[str, tuple[tuple[float, float, int, int], tuple[float, float, int, int]]] = {
    "dialogsum": ((170, 0.45, 40, 1200), (28, 0.35, 6, 120)),
    "cnn_dailymail": ((700, 0.45, 120, 2500), (58, 0.3, 15, 128)),
}
TEMPLATE_TOKENS = 12  # the prompt template's tokens around the source (peftsum.data.prompts), roughly
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


