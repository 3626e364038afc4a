"""Every registered method trains tiny-gpt2 and tiny-t5 (where compatible) through the one training path: the
trainable-parameter count matches a count made independently of peft, and the loss goes down."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from peftsum.data.features import Encoder
from peftsum.data.load import Example
from peftsum.data.synthetic import generate
from peftsum.methods import METHODS
from peftsum.methods.base import IA3_TARGETS, MethodContext
from peftsum.models.load import load_model
from peftsum.spec import parse_grid
from peftsum.spec.catalog import MODELS
from peftsum.spec.fields import build
from peftsum.spec.settings import TrainSettings
from peftsum.train import Hooks, Runtime, TokenLayout, train
from peftsum.train_plan import make_plan

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

MODEL_NAMES = ("tiny-gpt2", "tiny-t5")
PARAMS = {
    "lora": {"r": 4},
    "dora": {"r": 4},
    "adalora": {"init_r": 4, "target_r": 2},
    "loha": {"r": 4},
    "lokr": {"r": 4},
    "vera": {"r": 8},
    "prefix": {"num_virtual_tokens": 6},
    "prompt": {"num_virtual_tokens": 6},
    "ptuning": {"num_virtual_tokens": 6, "encoder_hidden_size": 16},
}
# Virtual tokens move the pretrained tiny-t5 slowly: 12 steps do not lower its loss, 40 do.
STEPS = {("tiny-t5", "prompt"): 40, ("tiny-t5", "ptuning"): 40}
LR = {"prefix": 3e-2, "prompt": 3e-2, "ptuning": 3e-2, "vera": 3e-2, "ia3": 1e-1, "bitfit": 1e-2}
# Model-free methods (lead) have nothing to train: tests/methods/test_lead.py covers them.
PAIRS = [(m, name) for m in MODEL_NAMES for name in METHODS.names() if METHODS.get(name).needs_model]


def _linear_dims(module: torch.nn.Module) -> tuple[int, int]:
    """(in, out) of nn.Linear or transformers' Conv1D (whose weight is stored transposed)."""
    w = module.weight
    return (w.shape[1], w.shape[0]) if isinstance(module, torch.nn.Linear) else (w.shape[0], w.shape[1])


def _targets(base: torch.nn.Module, suffixes: tuple[str, ...]) -> list[tuple[str, int, int]]:
    return [
        (n, *_linear_dims(m))
        for n, m in base.named_modules()
        if hasattr(m, "weight")
        and m.weight is not None
        and m.weight.ndim == 2
        and any(n == s or n.endswith("." + s) for s in suffixes)
    ]


def expected_trainable(method: str, base: torch.nn.Module, arch: str, p: dict) -> int | None:
    """Trainable parameters each method should add, counted from the base model's own modules."""
    cfg = base.config
    d = cfg.hidden_size
    attn = {"gpt2": ("c_attn",), "t5": ("q", "v")}[arch]
    if method == "none":
        return 0
    if method == "full":
        return sum(x.numel() for x in base.parameters())
    if method == "bitfit":
        return sum(x.numel() for n, x in base.named_parameters() if n.endswith(".bias"))
    if method in ("lora", "dora", "loha", "adalora"):
        r = p.get("r", p.get("init_r"))
        mods = _targets(base, attn)
        per = {
            "lora": lambda i, o: r * (i + o),
            "dora": lambda i, o: r * (i + o) + o,
            "loha": lambda i, o: 2 * r * (i + o),
            "adalora": lambda i, o: r * (i + o) + r,
        }[method]
        return sum(per(i, o) for _, i, o in mods)
    if method == "vera":
        return sum(o + p["r"] for _, i, o in _targets(base, attn))
    if method == "ia3":
        targets, ff = IA3_TARGETS[arch]
        return sum(i if any(n.endswith(f) for f in ff) else o for n, i, o in _targets(base, targets))
    if method == "lokr":
        return None  # peft's Kronecker factorisation; checked by parameter names instead
    vt = p["num_virtual_tokens"]  # one set, before the (encoder) input: peftsum.methods.virtual_tokens.input_prompt
    if method == "prompt":
        return vt * d
    if method == "ptuning":
        h = p["encoder_hidden_size"]
        return vt * d + (d * h + h) + (h * h + h) + (h * d + d)
    if method == "prefix":
        kv = cfg.num_hidden_layers * 2 * d  # a key and a value per layer and virtual token
        # With the projection (the default) a virtual token's d-wide embedding goes through Linear(d, d), tanh,
        # Linear(d, kv); without it the prefix table itself trains.
        return vt * d + (d * d + d) + (d * kv + kv) if p["projection"] else vt * kv
    raise AssertionError(f"no expected count for {method}: add one when registering a method")


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    rows = generate("dialogsum", "train", 12)
    return [Example(r["id"], r["dialogue"], r["summary"]) for r in rows]


@pytest.mark.parametrize(("model_name", "method_name"), PAIRS, ids=[f"{m}-{n}" for m, n in PAIRS])
def test_method_trains(model_name: str, method_name: str, examples: list[Example]) -> None:
    method = METHODS.get(method_name)
    info = MODELS[model_name]
    if info.arch in method.incompatible:
        pytest.skip(f"refused at validate time: {method.incompatible[info.arch]}")
    grid = parse_grid(
        f"name: t\naxes: {{model: [{model_name}], method: [{method_name}], dataset: [synthetic-dialogsum]}}\n"
    )
    cell = grid.cells[0]
    torch.manual_seed(0)
    model, tok = load_model(cell.model)
    for module in model.modules():  # no dropout noise: the same batch must give a steadily falling loss
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    params = build(method.params, PARAMS.get(method_name, {}), "params")
    expected = expected_trainable(method_name, model, info.arch, dataclasses.asdict(params))
    # One batch holding every example, one step per epoch: 12 optimizer steps on the same data must lower the loss.
    steps = STEPS.get((model_name, method_name), 12)
    settings = build(
        TrainSettings,
        {
            "epochs": steps,
            "learning_rate": LR.get(method_name, 5e-3),
            "batch_tokens": 10**6,
            "lr_scheduler": "constant",
            "checkpoint_every_seconds": None,
        },
        "train",
    )
    enc = Encoder(tok, info.family, "dialogue", info.context, "auto", 64)
    feats = enc.train(examples)
    plan = make_plan(feats, settings, seed=0, seq2seq=info.family == "seq2seq")
    model = (
        method.apply(model, params, MethodContext(info.arch, info.family, plan.total_steps)) if method.apply else model
    )
    trainable = sum(x.numel() for x in model.parameters() if x.requires_grad)
    if not method.trains:  # the baseline: scored as loaded, nothing trains (peftsum.cell freezes it)
        assert expected == 0 and method.apply is None
        return
    if expected is not None:
        assert trainable == expected
    else:
        named = sum(x.numel() for n, x in model.named_parameters() if x.requires_grad)
        assert named == sum(x.numel() for n, x in model.named_parameters() if "lokr_" in n) > 0
    total = sum(x.numel() for x in model.parameters())
    if method_name != "full":
        assert 0 < trainable < 0.2 * total
    report = train(
        model,
        feats,
        plan,
        settings,
        Runtime(torch.device("cpu"), "fp32", fused=False, compile=False),
        TokenLayout(tok.pad_token_id, info.family == "causal"),
        hooks=Hooks(on_step=method.on_step),
    )
    losses = report.loss_history
    assert len(losses) == steps
    # Virtual tokens and scaling vectors move the loss slowly in 12 steps; every method must still lower it.
    factor = 0.999 if method_name in ("prefix", "prompt", "ptuning", "ia3", "vera") else 0.99
    assert sum(losses[-3:]) / 3 < factor * sum(losses[:3]) / 3, losses


INCOMPATIBLE = [
    (arch, name, reason) for name in METHODS.names() for arch, reason in METHODS.get(name).incompatible.items()
]


@pytest.mark.parametrize(
    ("model_name", "method_name"), [("tiny-t5", "bitfit"), ("tiny-gpt2", "loha"), ("tiny-gpt2", "lokr")]
)
def test_incompatible_pair_fails_without_the_table(model_name: str, method_name: str) -> None:
    """What the compatibility table prevents: applying the method anyway fails (or trains nothing)."""
    info = MODELS[model_name]
    method = METHODS.get(method_name)
    assert info.arch in method.incompatible
    grid = parse_grid(f"name: t\naxes: {{model: [{model_name}], method: [lora], dataset: [synthetic-dialogsum]}}\n")
    model, _ = load_model(grid.cells[0].model)
    with pytest.raises((TypeError, ValueError)):
        method.apply(model, method.params(), MethodContext(info.arch, info.family, 10))


def test_every_table_entry_has_a_reason() -> None:
    assert INCOMPATIBLE, "the table should refuse at least bitfit on t5"
    for arch, name, reason in INCOMPATIBLE:
        assert len(reason) > 20, (arch, name)
