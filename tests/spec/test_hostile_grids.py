"""Hostile grid files (issue 15, items 7, 10, 11, 12): each is refused by `launcher validate` with exit 2 and a
message naming the file and the field or position, never a traceback, an exhausted machine or a run-time crash."""

from __future__ import annotations

import os
import resource
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from launcher.cli import main as launcher_main
from peftsum.spec import SpecError, parse_grid
from peftsum.spec.catalog import MIN_SOURCE_TOKENS, MODELS, PROMPT_TEMPLATE_TOKENS
from peftsum.spec.errors import VALUE_REPR_MAX
from peftsum.spec.strict_yaml import ALIAS_BUDGET, MAX_DEPTH

ROOT = Path(__file__).resolve().parents[2]
AXES = "axes: {model: [tiny-gpt2], method: [lora], dataset: [synthetic-dialogsum]}\n"
BASE = "name: t\n" + AXES


def _validate(tmp_path: Path, content: str | bytes, capsys: pytest.CaptureFixture[str],
              *args: str) -> tuple[int, str]:
    grid_file = tmp_path / "grid.yaml"
    if isinstance(content, str):
        content = content.encode()
    grid_file.write_bytes(content)
    rc = launcher_main(["validate", str(grid_file), *args])
    out, err = capsys.readouterr()
    return rc, out + err


# --- item 7: alias bombs ---------------------------------------------------------------------------------------


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" list: ``width ** levels`` strings from a few hundred bytes of YAML (flow style)."""
    items = [f"&l0 [{', '.join(['lol'] * width)}]"]
    items += [f"&l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return f"[{', '.join(items)}]"


BOMB_PLACES = {
    "seed": (BASE + "defaults:\n  seed: {bomb}\n", "defaults.seed"),
    "name": ("name: {bomb}\n" + AXES, "name"),
    "learning_rate": (BASE + "defaults:\n  train:\n    learning_rate: {bomb}\n", "defaults.train.learning_rate"),
    "cluster": (BASE + "cluster: {bomb}\n", "cluster"),
}


@pytest.mark.parametrize("place", sorted(BOMB_PLACES))
def test_alias_bomb_is_refused_at_load(place: str, tmp_path: Path) -> None:
    """Reproduction: ``launcher validate grid.yaml`` where ``defaults.seed`` (or ``name``, ``learning_rate``,
    ``cluster``) is a 9-level billion-laughs list (9**9 = 387M strings from ~300 bytes) grew to 8 GB in 120 s: the
    value was formatted into the "must be an integer" message. Now the loader stops at ALIAS_BUDGET expanded
    nodes, naming file, field and line. Run in a child limited to 1.5 GB of address space and 60 s."""
    template, field = BOMB_PLACES[place]
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(template.replace("{bomb}", _bomb()))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1536 * 2**20, 1536 * 2**20))

    proc = subprocess.run([sys.executable, "-m", "launcher.cli", "validate", str(grid_file)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, preexec_fn=limit, check=False)
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-3000:]
    assert proc.returncode == 2, output[-3000:]
    assert str(grid_file) in output and field in output and "alias" in output
    assert len(output) < 2000  # one bounded line


def test_aliases_within_budget_still_load() -> None:
    """Anchors reused a few times (or expanding to just under the budget) are ordinary YAML and keep working."""
    text = BASE + textwrap.dedent("""\
        defaults:
          train: &fast {epochs: 1, learning_rate: 1.0e-3}
        methods:
          lora: {type: lora, train: *fast}
          lora8: {type: lora, r: 8, train: *fast}
        """)
    assert parse_grid(text).cells[0].train.epochs == 1.0
    width = int(ALIAS_BUDGET ** 0.5) - 1  # two levels: width + width**2 aliased nodes, under the budget
    near = _bomb(levels=2, width=width).replace("lol", "1")
    with pytest.raises(SpecError) as info:  # loads, then fails as a seed that is a list, not as a bomb
        parse_grid(BASE + f"defaults:\n  seed: {near}\n")
    assert "must be an integer" in str(info.value)


def test_spec_error_message_is_bounded() -> None:
    """Reproduction: ``SpecError("f", value, "…")`` with a value whose repr is huge (a list sharing one sub-list a
    million times, a 10**5-character string, a 3000-digit integer) put all of it in the message (or raised
    ValueError for the integer: Python refuses to print more than 4300 digits)."""
    shared = [[["x"] * 100] * 100] * 100  # 10**6 strings, three small lists in memory
    for value in (shared, "y" * 100_000, 10**3000, -(10**5000), {"k": shared}):
        message = str(SpecError("defaults.seed", value, "must be an integer", file="grid.yaml"))
        assert message.startswith("grid.yaml: defaults.seed: must be an integer (got ")
        assert len(message) < 120 + VALUE_REPR_MAX
    assert "'gpt2'" in str(SpecError("axes.model", "gpt2", "appears twice"))  # small values shown whole


# --- item 10: tracebacks instead of exit 2 -----------------------------------------------------------------------


@pytest.mark.parametrize(("content", "position"), [
    (BASE.encode("utf-16"), "line 1, column 1"),  # UTF-16 with its byte-order mark
    (BASE.encode("utf-16-le"), "line 1, column 2"),  # without one: a NUL after every ASCII character
    (BASE.encode() + "defaults: {seed: 1}  # caf\xe9\n".encode("latin-1"), "line 3, column 27"),
], ids=["utf16-bom", "utf16-no-bom", "latin1"])
def test_non_utf8_file_exits_2(content: bytes, position: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: ``launcher validate grid.yaml`` of a file saved as UTF-16 or Latin-1 printed a
    UnicodeDecodeError traceback (read_text(encoding="utf-8")). Now: exit 2, the file, the position, UTF-8 asked."""
    rc, output = _validate(tmp_path, content, capsys)
    assert rc == 2, output
    assert str(tmp_path / "grid.yaml") in output and position in output and "UTF-8" in output


def test_complex_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: a grid with a YAML complex key, ``? [a, b]\\n: 1`` (or ``{? {x: 1}: 2}`` under ``cluster``),
    died with ``TypeError: unhashable type: 'list'`` in the duplicate-key check."""
    rc, output = _validate(tmp_path, BASE + "? [a, b]\n: 1\n", capsys)
    assert rc == 2 and "line 3, column 3" in output and "mapping key" in output, output
    rc, output = _validate(tmp_path, BASE + "cluster:\n  node_selector: {? {x: 1}: 2}\n", capsys)
    assert rc == 2 and "cluster.node_selector" in output and "mapping key" in output, output


def test_deep_nesting_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: ``defaults: {seed: [[[[…]]]]}`` with 1,000 levels raised RecursionError in PyYAML's composer;
    nesting of a few levels more than MAX_DEPTH through aliases must be refused too (it would recurse later)."""
    rc, output = _validate(tmp_path, BASE + "defaults:\n  seed: " + "[" * 1000 + "]" * 1000 + "\n", capsys)
    assert rc == 2 and "defaults.seed[0][0]" in output and f"deeper than {MAX_DEPTH}" in output, output
    deep = MAX_DEPTH // 2 + 5
    text = BASE + f"defaults:\n  train: &a {'[' * deep}{']' * deep}\n  eval: {'[' * deep}*a{']' * deep}\n"
    rc, output = _validate(tmp_path, text, capsys)
    assert rc == 2 and "defaults.eval" in output and "aliases expanded" in output, output
    rc, output = _validate(tmp_path, BASE + "cluster:\n  pod: {affinity: &a {nodeAffinity: {x: *a}}}\n", capsys)
    assert rc == 2 and "cluster.pod.affinity.nodeAffinity.x" in output and "recursive" in output, output


BIG = "1" + "0" * 400  # 1e400: above the largest float (1.8e308)
HUGE_INTEGER = [
    ("defaults.train.learning_rate", f"defaults:\n  train: {{learning_rate: {BIG}}}\n"),
    ("defaults.train.checkpoint_every_seconds", f"defaults:\n  train: {{checkpoint_every_seconds: {BIG}}}\n"),
    ("defaults.train.max_grad_norm", f"defaults:\n  train: {{max_grad_norm: {BIG}}}\n"),
    ("defaults.eval.max_new_tokens", f"defaults:\n  eval: {{max_new_tokens: {BIG}}}\n"),
    ("defaults.data.max_length_quantile", f"defaults:\n  data: {{max_length_quantile: {BIG}}}\n"),
    ("methods.lora.dropout", f"methods:\n  lora: {{dropout: {BIG}}}\n"),
    ("cluster.ttl_seconds_after_finished", f"cluster:\n  ttl_seconds_after_finished: {BIG}\n"),
    ("cluster.cpu", f"cluster:\n  cpu: {BIG}\n"),
    ("defaults.seed", f"defaults:\n  seed: 1{'0' * 5000}\n"),  # more digits than Python converts (4300)
]


@pytest.mark.parametrize(("field", "body"), HUGE_INTEGER, ids=[f for f, _ in HUGE_INTEGER])
def test_huge_integer_exits_2(field: str, body: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: ``defaults: {train: {learning_rate: 1000…0}}`` (an integer literal of 401 digits) raised
    ``OverflowError: int too large to convert to float`` in fields.check_value (every int and float setting, and
    cluster.cpu's quantity); a 5,001-digit literal raised ValueError in PyYAML's int constructor."""
    rc, output = _validate(tmp_path, BASE + body, capsys)
    assert rc == 2, output
    assert str(tmp_path / "grid.yaml") in output and f"{field}:" in output, output
    assert len(output) < 1000


# --- item 11: linear expansion ----------------------------------------------------------------------------------

_TIMING_CHILD = """\
import gc, sys, time
from peftsum.spec import parse_grid

def grid(n):
    models = ", ".join(f"m{i}" for i in range(n))
    return f"name: t\\naxes:\\n  model: [{models}]\\n  method: [lead]\\n  dataset: [synthetic-dialogsum]\\n"

def cost(n):
    text = grid(n)
    gc.collect()
    t0 = time.perf_counter()
    assert len(parse_grid(text).cells) == 1
    return time.perf_counter() - t0

cost(1000)  # warm up
print(min(cost(10_000), cost(10_000)), flush=True)
print(cost(100_000), flush=True)
"""


def test_expansion_is_linear_in_an_axis() -> None:
    """Reproduction: ``launcher validate`` of a grid whose one axis has 100,000 values took 200 s: the duplicate
    check called ``list.count`` for every value. Measured in one child process: 100k values must cost less than
    20x what 10k cost (linear: ~10x). The model axis of the model-free ``lead`` method keeps it cheap (one cell);
    the child is stopped once it is over 20x, so the old code fails in a minute instead of 200 s."""
    proc = subprocess.Popen([sys.executable, "-c", _TIMING_CHILD], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        small = float(proc.stdout.readline() or "nan")
        assert small == small, proc.stderr.read()
        deadline = 20 * small + 1.0  # + process noise
        ready, _, _ = select.select([proc.stdout], [], [], deadline)
        assert ready, f"100k values took over {deadline:.1f} s (10k: {small:.2f} s): not linear"
        large = float(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    assert large < 20 * small, (small, large)


def test_seed_axis_duplicate_still_named() -> None:
    """The one-pass duplicate check names the same value as before: the first one that appears twice."""
    with pytest.raises(SpecError) as info:
        parse_grid("name: t\naxes: {model: [gpt2], method: [lora], dataset: [dialogsum], seed: [1, 2, 3, 2, 1]}\n")
    assert (info.value.path, info.value.value) == ("axes.seed", 1)


def test_exclude_matches_as_before() -> None:
    """Exclude entries are matched through sets now: same cells as the entry-by-entry comparison."""
    text = textwrap.dedent("""\
        name: t
        axes: {model: [gpt2, t5-small], method: [full, lora], dataset: [dialogsum, samsum], seed: [1, 2]}
        exclude:
          - {model: gpt2, method: full}
          - {dataset: samsum, seed: 2.0}
          - {model: [gpt2]}
          - {method: lora, model: t5-small, dataset: dialogsum, seed: 1}
        """)
    combos = {(c.model.name, c.method.name, c.dataset.name, c.seed) for c in parse_grid(text).cells}
    expected = {(m, meth, d, s) for m in ("gpt2", "t5-small") for meth in ("full", "lora")
                for d in ("dialogsum", "samsum") for s in (1, 2)
                if not (m == "gpt2" and meth == "full") and not (d == "samsum" and s == 2)
                and (meth, m, d, s) != ("lora", "t5-small", "dialogsum", 1)}
    assert combos == expected


# --- item 12: valid grids that crashed at run time ---------------------------------------------------------------

LENGTHS = [
    ("max-new-tokens-causal", "defaults:\n  eval: {max_new_tokens: 1024}\n", "defaults.eval.max_new_tokens", "1024"),
    ("max-target-tokens-causal", "models:\n  tiny-gpt2: {data: {max_target_tokens: 1000}}\n",
     "models.tiny-gpt2.data.max_target_tokens", "1000"),
    ("context-beyond-positions", "models:\n  tiny-gpt2: {context: 2048}\n", "models.tiny-gpt2.context", "2048"),
    ("context-beyond-positions-renamed",
     "models:\n  long: {hub_id: openai-community/gpt2, family: causal, context: 4096}\n"
     "axes: {model: [long], method: [lora], dataset: [dialogsum]}\n", "models.long.context", "4096"),
    ("context-too-small-for-defaults", "models:\n  mini: {hub_id: org/mini, family: causal, context: 128}\n"
     "axes: {model: [mini], method: [lora], dataset: [dialogsum]}\n", "models.mini.context", "128"),
    ("bart-target-beyond-decoder", "defaults:\n  data: {max_target_tokens: 1024}\n"
     "axes: {model: [bart-base], method: [lora], dataset: [dialogsum]}\n", "defaults.data.max_target_tokens", "1024"),
    ("bart-source-uncapped", "methods:\n  lora: {data: {max_source_tokens: null}}\n"
     "axes: {model: [bart-base], method: [lora], dataset: [dialogsum]}\n",
     "methods.lora.data.max_source_tokens", "None"),
]


@pytest.mark.parametrize(("body", "field", "value"), [c[1:] for c in LENGTHS], ids=[c[0] for c in LENGTHS])
def test_lengths_the_model_cannot_hold_exit_2(body: str, field: str, value: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: ``eval.max_new_tokens: 1024`` on tiny-gpt2 (512 positions) validated, then the cell died with
    ``IndexError: index out of range in self`` in generation; ``models: {tiny-gpt2: {context: 2048}}`` likewise
    (the encoder then kept sources of up to 2,048 tokens). The spec knows the window and the positions of catalog
    hub ids: exit 2 naming the layer that set the length and its value."""
    text = ("name: t\n" + body) if "\naxes:" in body else (BASE + body)
    rc, output = _validate(tmp_path, text, capsys)
    assert rc == 2, output
    assert f"{field}: " in output and f"(got {value})" in output, output


def test_lengths_that_fit_still_validate() -> None:
    """T5's relative positions have no hard limit; a causal model takes what its window holds."""
    assert parse_grid(BASE.replace("tiny-gpt2", "tiny-t5") + "defaults:\n  eval: {max_new_tokens: 1024}\n")
    limit = MODELS["tiny-gpt2"].context - PROMPT_TEMPLATE_TOKENS - MIN_SOURCE_TOKENS - 1
    assert parse_grid(BASE + f"defaults:\n  eval: {{max_new_tokens: {limit}}}\n").cells[0].eval.max_new_tokens == limit
    with pytest.raises(SpecError):
        parse_grid(BASE + f"defaults:\n  eval: {{max_new_tokens: {limit + 1}}}\n")
    assert parse_grid(BASE + "models:\n  tiny-gpt2: {context: 256}\n").cells[0].model.context == 256


def test_length_constants_match_the_encoder() -> None:
    """The spec's bounds are those of peftsum.data (which the ML-free spec cannot import): every causal template's
    fixed text fits PROMPT_TEMPLATE_TOKENS even at one token per UTF-8 byte, the encoder's smallest source budget
    is MIN_SOURCE_TOKENS, and the tiny GPT-2 is built with the positions the catalog declares."""
    from peftsum.data.features import source_budget
    from peftsum.data.prompts import TEMPLATES

    assert max(len(causal.replace("{source}", "").encode()) for causal, _ in TEMPLATES.values()) \
        <= PROMPT_TEMPLATE_TOKENS
    assert source_budget("auto", 64, "causal", 1000, 20) == MIN_SOURCE_TOKENS
    tiny = (ROOT / "peftsum" / "models" / "tiny.py").read_text()
    assert f"n_positions={MODELS['tiny-gpt2'].positions}," in tiny


def test_ttl_beyond_int32_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: ``cluster: {ttl_seconds_after_finished: 1.0e+300}`` with ``launcher validate --k8s 1.31``
    (Job.spec.ttlSecondsAfterFinished is int32): refused at grid validation as an integer out of [0, 2**31-1]."""
    body = "cluster:\n  image: registry.example/peftsum:0.1.0\n  ttl_seconds_after_finished: 1.0e+300\n"
    for args in ((), ("--k8s", "1.31")):
        rc, output = _validate(tmp_path, BASE + body, capsys, *args)
        assert rc == 2, output
        assert "cluster.ttl_seconds_after_finished: is out of range: must be in [0, 2147483647]" in output

