"""`launcher validate`: malformed grids are refused (exit 2, field path and value named); valid grids expand to
stable cells with the documented precedence of settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from launcher.cli import main as launcher_main
from peftsum.spec import Cell, SpecError, load_grid, parse_grid

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

BASE = """\
name: t
axes:
  model: [gpt2]
  method: [lora]
  dataset: [dialogsum]
"""


def grid(body: str = "", axes: str | None = None, name: str = "t") -> str:
    """A small valid grid with ``body`` appended (and the axes replaced when given)."""
    axes = axes if axes is not None else "  model: [gpt2]\n  method: [lora]\n  dataset: [dialogsum]\n"
    return f"name: {name}\naxes:\n{axes}" + textwrap.dedent(body)


# (id, grid text, exact field path of the SpecError, substring of the message naming the bad value)
MALFORMED = [
    ("unknown-top-level-key", grid("bogus_section: zzz-value\n"), "bogus_section", "zzz-value"),
    ("unknown-key-defaults-train", grid("defaults:\n  train: {epochz: 77}\n"), "defaults.train.epochz", "77"),
    ("unknown-key-defaults", grid("defaults:\n  trian: {epochs: 3}\n"), "defaults.trian", "epochs"),
    ("string-for-epochs", grid("defaults:\n  train: {epochs: three}\n"), "defaults.train.epochs", "'three'"),
    ("bool-for-int", grid("defaults:\n  eval: {num_beams: true}\n"), "defaults.eval.num_beams", "True"),
    ("bool-for-seed", grid("defaults:\n  seed: true\n"), "defaults.seed", "True"),
    ("float-for-int", grid("defaults:\n  eval: {max_new_tokens: 12.5}\n"), "defaults.eval.max_new_tokens", "12.5"),
    ("empty-axis", grid(axes="  model: []\n  method: [lora]\n  dataset: [dialogsum]\n"), "axes.model", "[]"),
    ("missing-axes-model", grid(axes="  method: [lora]\n  dataset: [dialogsum]\n"), "axes.model", "None"),
    ("no-axes-at-all", "name: t\n", "axes", "None"),
    (
        "unknown-axis",
        grid(axes="  model: [gpt2]\n  method: [lora]\n  dataset: [dialogsum]\n  optimiser: [adam]\n"),
        "axes.optimiser",
        "adam",
    ),
    (
        "unknown-model",
        grid(axes="  model: [gpt3-turbo]\n  method: [lora]\n  dataset: [dialogsum]\n"),
        "axes.model",
        "gpt3-turbo",
    ),
    (
        "unknown-method",
        grid(axes="  model: [gpt2]\n  method: [lorax]\n  dataset: [dialogsum]\n"),
        "axes.method",
        "lorax",
    ),
    (
        "unknown-dataset",
        grid(axes="  model: [gpt2]\n  method: [lora]\n  dataset: [xsum-nope]\n"),
        "axes.dataset",
        "xsum-nope",
    ),
    (
        "incompatible-tiny-t5-bitfit",
        grid(axes="  model: [tiny-t5]\n  method: [bitfit]\n  dataset: [dialogsum]\n"),
        "axes",
        "tiny-t5 x bitfit",
    ),
    (
        "incompatible-gpt2-loha",
        grid(axes="  model: [gpt2]\n  method: [loha]\n  dataset: [dialogsum]\n"),
        "axes",
        "gpt2 x loha",
    ),
    (
        "incompatible-gpt2-lokr",
        grid(axes="  model: [gpt2]\n  method: [lokr]\n  dataset: [dialogsum]\n"),
        "axes",
        "gpt2 x lokr",
    ),
    (
        "duplicate-cell-include",
        grid("include:\n  - {model: gpt2, method: lora, dataset: dialogsum}\n"),
        "include[0]",
        "gpt2/lora/dialogsum/42",
    ),
    ("zero-cells", grid("exclude:\n  - {model: gpt2}\n"), "exclude", "zero cells"),
    ("empty-exclude-entry", grid("exclude:\n  - {}\n"), "exclude[0]", "{}"),
    ("name-uppercase", grid(name="Paper"), "name", "'Paper'"),
    ("name-too-long", grid(name="a" * 41), "name", "a" * 41),
    ("name-underscore", grid(name="my_grid"), "name", "'my_grid'"),
    ("name-trailing-newline", grid(name='"paper\\n"'), "name", "'paper\\n'"),
    (
        "axis-value-trailing-newline",
        grid(axes='  model: [gpt2]\n  method: [lora]\n  dataset: ["dialogsum\\n"]\n'),
        "axes.dataset[0]",
        "'dialogsum\\n'",
    ),
    ("warmup-ratio-5", grid("defaults:\n  train: {warmup_ratio: 5}\n"), "defaults.train.warmup_ratio", "5"),
    ("learning-rate-0", grid("defaults:\n  train: {learning_rate: 0}\n"), "defaults.train.learning_rate", "0"),
    ("epochs-nan", grid("defaults:\n  train: {epochs: .nan}\n"), "defaults.train.epochs", "nan"),
    ("negative-epochs", grid("defaults:\n  train: {epochs: -2}\n"), "defaults.train.epochs", "-2"),
    ("lora-dropout-1", grid("methods:\n  lora: {type: lora, dropout: 1.0}\n"), "methods.lora.dropout", "1.0"),
    (
        "method-section-out-of-range",
        grid("methods:\n  lora: {type: lora, train: {grad_accum: 0}}\n"),
        "methods.lora.train.grad_accum",
        "0",
    ),
    (
        "model-section-bad-type",
        grid("models:\n  gpt2: {train: {group_by_length: maybe}}\n"),
        "models.gpt2.train.group_by_length",
        "'maybe'",
    ),
    (
        "include-section-out-of-range",
        grid("include:\n  - {model: gpt2, method: lora, dataset: samsum, eval: {num_beams: 99}}\n"),
        "include[0].eval.num_beams",
        "99",
    ),
    (
        "bad-choice",
        grid("defaults:\n  train: {lr_scheduler: exponential}\n"),
        "defaults.train.lr_scheduler",
        "'exponential'",
    ),
    (
        "both-batch-limits-null",
        grid("defaults:\n  train: {batch_size: null, batch_tokens: null}\n"),
        "defaults.train.batch_size",
        "None",
    ),
    ("invalid-yaml-syntax", "name: t\naxes: {model: [gpt2\n", "", "line "),
    ("yaml-python-tag", grid("store: !!python/object/apply:os.system ['echo pwned']\n"), "", "python/object/apply"),
    ("duplicate-yaml-key", BASE + "name: u\n", "", "duplicate key 'name'"),
    ("unknown-preset", grid("defaults:\n  preset: turbo\n"), "defaults.preset", "'turbo'"),
    ("cluster-gpus-2", grid("cluster:\n  gpus: 2\n"), "cluster.gpus", "2"),
    ("cluster-unknown-key", grid("cluster:\n  gpu_type: a100\n"), "cluster.gpu_type", "'a100'"),
    ("seed-negative", grid("defaults:\n  seed: -1\n"), "defaults.seed", "-1"),
    (
        "axis-seed-too-large",
        grid(axes="  model: [gpt2]\n  method: [lora]\n  dataset: [dialogsum]\n  seed: [1, 4294967296]\n"),
        "axes.seed[1]",
        "4294967296",
    ),
    ("method-param-unknown", grid("methods:\n  lora: {rank: 8}\n"), "methods.lora.rank", "8"),
    ("method-type-unknown", grid("methods:\n  lora: {type: superlora}\n"), "methods.lora.type", "'superlora'"),
    (
        "adalora-target-gt-init",
        grid(
            "methods:\n  ada: {type: adalora, init_r: 4, target_r: 8}\n",
            axes="  model: [gpt2]\n  method: [ada]\n  dataset: [dialogsum]\n",
        ),
        "methods.ada.target_r",
        "8",
    ),
    (
        "model-outside-registry-no-family",
        grid(
            "models:\n  my-model: {hub_id: org/my-model, context: 512}\n",
            axes="  model: [my-model]\n  method: [lora]\n  dataset: [dialogsum]\n",
        ),
        "models.my-model.family",
        "None",
    ),
    (
        "model-bad-context",
        grid(
            "models:\n  my-model: {hub_id: org/my-model, family: causal, context: 8}\n",
            axes="  model: [my-model]\n  method: [lora]\n  dataset: [dialogsum]\n",
        ),
        "models.my-model.context",
        "8",
    ),
    (
        "axis-duplicate-value",
        grid(axes="  model: [gpt2, t5-small, gpt2]\n  method: [lora]\n  dataset: [dialogsum]\n"),
        "axes.model",
        "'gpt2'",
    ),
    (
        "axis-value-with-dotdot",
        grid(axes="  model: [gpt2]\n  method: [lora]\n  dataset: ['../etc']\n"),
        "axes.dataset[0]",
        "'../etc'",
    ),
    ("grid-is-a-list", "- name: t\n- axes: {}\n", "", "must be a mapping"),
    ("empty-file", "", "", "empty"),
    ("comments-only-file", "# nothing here\n", "", "empty"),
    ("axes-not-a-mapping", "name: t\naxes: [gpt2, lora]\n", "axes", "['gpt2', 'lora']"),
    # the study's protocol settings (data filter, validation, selection)
    (
        "length-quantile-zero",
        grid("defaults:\n  data: {max_length_quantile: 0}\n"),
        "defaults.data.max_length_quantile",
        "0",
    ),
    (
        "length-quantile-above-one",
        grid("defaults:\n  data: {max_length_quantile: 1.5}\n"),
        "defaults.data.max_length_quantile",
        "1.5",
    ),
    (
        "max-total-tokens-zero",
        grid("defaults:\n  data: {max_total_tokens: 0}\n"),
        "defaults.data.max_total_tokens",
        "0",
    ),
    (
        "max-total-tokens-negative",
        grid("models:\n  gpt2:\n    data: {max_total_tokens: -500}\n"),
        "models.gpt2.data.max_total_tokens",
        "-500",
    ),
    (
        "length-tokenizer-unknown",
        grid("defaults:\n  data: {length_tokenizer: no-such-model-or-path}\n"),
        "defaults.data.length_tokenizer",
        "no-such-model-or-path",
    ),
    (
        "select-best-without-eval",
        grid("defaults:\n  train: {select_best: eval_loss}\n"),
        "defaults.train.select_best",
        "eval_loss",
    ),
    (
        "select-best-with-eval-off",
        grid("defaults:\n  preset: seed-paper\n  train: {eval_every: off}\n"),
        "defaults.train.select_best",
        "eval_loss",
    ),
    ("eval-every-zero", grid("defaults:\n  train: {eval_every: 0}\n"), "defaults.train.eval_every", "0"),
    ("references-unknown", grid("defaults:\n  eval: {references: all}\n"), "defaults.eval.references", "all"),
    ("metric-profile-unknown", grid("defaults:\n  eval: {metric_profile: hf}\n"), "defaults.eval.metric_profile", "hf"),
    (
        "lone-surrogate-escape",
        grid(
            'models:\n  gpt2: {hub_id: "org/x\\ud83d"}\n',
            axes="  model: [gpt2]\n  method: [lora]\n  dataset: [dialogsum]\n",
        ),
        "",
        "not valid Unicode text",
    ),
]

assert len({case[0] for case in MALFORMED}) == len(MALFORMED) >= 25
assert len({case[1] for case in MALFORMED}) == len(MALFORMED), "every malformed grid must be distinct"


@pytest.mark.parametrize(("text", "path", "value"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_parse_grid_rejects(text: str, path: str, value: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_grid(text)
    err = info.value
    assert err.path == path
    message = str(err)
    assert (path or "<root>") in message
    assert value in message


@pytest.mark.parametrize(("text", "path", "value"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_cli_validate_exits_2(
    text: str, path: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(text, encoding="utf-8")
    rc = launcher_main(["validate", str(grid_file)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""  # nothing listed for an invalid grid
    assert str(grid_file) in err  # the file
    assert (path or "<root>") in err  # the field path
    assert value in err  # the bad value


def test_load_grid_names_the_file(tmp_path: Path) -> None:
    grid_file = tmp_path / "bad.yaml"
    grid_file.write_text(grid("defaults:\n  train: {warmup_ratio: 5}\n"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_grid(grid_file)
    assert info.value.file == str(grid_file)
    assert str(info.value).startswith(f"{grid_file}: defaults.train.warmup_ratio:")


def test_cli_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert launcher_main(["validate", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_cli_validate_without_grid_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher_main(["validate"]) == 2
    assert "grid file is required" in capsys.readouterr().err


def test_python_tag_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = grid(f"store: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError):
        parse_grid(text)
    assert not marker.exists()


def test_compat_table_lists_refused_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher_main(["validate", "--compat"]) == 0
    rows = {tuple(line.split()[:2]) for line in capsys.readouterr().out.splitlines()}
    assert {("t5", "bitfit"), ("gpt2", "loha"), ("gpt2", "lokr")} <= rows
    assert ("gpt2", "lora") not in rows


# --- valid grids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "n_cells"), [("quickstart", 7), ("paper", 36), ("methods", 14)])
def test_examples_expand(name: str, n_cells: int) -> None:
    g = load_grid(EXAMPLES / f"{name}.yaml")
    assert g.name == name
    assert len(g.cells) == n_cells
    assert len({c.cell_id for c in g.cells}) == n_cells


def test_paper_grid_is_the_full_product() -> None:
    g = load_grid(EXAMPLES / "paper.yaml")
    combos = {(c.model.name, c.method.name, c.dataset.name) for c in g.cells}
    models = ["gpt2", "gpt2-medium", "gpt2-large", "t5-small", "t5-base", "t5-large"]
    assert combos == {
        (m, meth, d) for m in models for meth in ("full", "lora") for d in ("dialogsum-test", "samsum", "cnn_dailymail")
    }
    assert g.store == "s3://peftsum/runs"
    assert g.cluster.gpus == 1


def test_methods_grid_covers_every_method() -> None:
    from peftsum.methods import METHODS

    g = load_grid(EXAMPLES / "methods.yaml")
    assert sorted(c.method.type for c in g.cells) == sorted(METHODS.names())
    prefix = next(c for c in g.cells if c.method.name == "prefix")
    assert prefix.train.learning_rate == pytest.approx(1e-2)
    assert prefix.method.params["num_virtual_tokens"] == 20


def test_cli_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    rc = launcher_main(["validate", str(EXAMPLES / "quickstart.yaml"), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    data = json.loads(out)
    assert set(data) == {"grid", "cells"}
    assert data["grid"] == "quickstart"
    assert len(data["cells"]) == 7
    expected = {c.cell_id for c in load_grid(EXAMPLES / "quickstart.yaml").cells}
    assert {c["cell_id"] for c in data["cells"]} == expected
    for c in data["cells"]:
        assert {"cell_id", "model", "method", "dataset", "seed"} <= set(c)
        assert c["model"] in ("tiny-gpt2", "tiny-t5", "-")  # "-": lead has no model
        assert c["method"] in ("full", "lora", "none", "lead")
        assert c["dataset"] == "synthetic-dialogsum"
        assert c["seed"] == 42


def test_cli_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher_main(["validate", str(EXAMPLES / "quickstart.yaml")]) == 0
    out = capsys.readouterr().out
    assert "7 cells OK" in out


def test_cell_ids_stable_and_hex() -> None:
    text = (EXAMPLES / "paper.yaml").read_text()
    a = [c.cell_id for c in parse_grid(text).cells]
    b = [c.cell_id for c in parse_grid(text).cells]
    assert a == b
    assert all(re.fullmatch(r"[0-9a-f]{12}", cid) for cid in a)


def test_cell_id_is_sha256_of_canonical_json() -> None:
    import hashlib

    cell = parse_grid(BASE).cells[0]
    assert cell.cell_id == hashlib.sha256(cell.canonical_json().encode()).hexdigest()[:12]
    # A round trip through spec.json gives the same id.
    assert Cell.from_dict(json.loads(cell.canonical_json())).cell_id == cell.cell_id


def test_cell_ids_same_across_processes() -> None:
    """Same grid → same ids, always: another interpreter with another hash seed computes the same ids."""
    code = (
        "import json; from peftsum.spec import load_grid; "
        "print(json.dumps([c.cell_id for c in load_grid('examples/paper.yaml').cells]))"
    )
    ids = []
    for hash_seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert proc.returncode == 0, proc.stderr
        ids.append(json.loads(proc.stdout))
    assert ids[0] == ids[1] == [c.cell_id for c in load_grid(EXAMPLES / "paper.yaml").cells]


def test_train_setting_changes_id() -> None:
    base = parse_grid(BASE).cells[0]
    changed = parse_grid(BASE + "defaults:\n  train: {epochs: 4}\n").cells[0]
    same = parse_grid(BASE + "defaults:\n  train: {epochs: 3}\n").cells[0]  # the default, written out
    assert changed.cell_id != base.cell_id
    assert same.cell_id == base.cell_id
    assert parse_grid(BASE + "defaults:\n  seed: 7\n").cells[0].cell_id != base.cell_id
    assert parse_grid(BASE + "methods:\n  lora: {r: 8}\n").cells[0].cell_id != base.cell_id


def test_bare_yaml_on_off_means_the_on_off_choice() -> None:
    """YAML 1.1 reads a bare ``off`` as false: for an on/off setting that is what the user meant, same cell id."""
    bare = parse_grid(BASE + "defaults:\n  train: {compile: off, fused_optimizer: on}\n").cells[0]
    quoted = parse_grid(BASE + "defaults:\n  train: {compile: 'off', fused_optimizer: 'on'}\n").cells[0]
    assert (bare.train.compile, bare.train.fused_optimizer) == ("off", "on")
    assert bare.cell_id == quoted.cell_id
    with pytest.raises(SpecError, match="must be a string"):  # a boolean elsewhere is still an error
        parse_grid(BASE + "defaults:\n  train: {lr_scheduler: off}\n")


def test_key_order_does_not_change_id() -> None:
    a = parse_grid(BASE + "defaults:\n  train: {epochs: 4, learning_rate: 1.0e-3}\n").cells[0]
    b = parse_grid(BASE + "defaults:\n  train: {learning_rate: 0.001, epochs: 4}\n").cells[0]
    assert a.cell_id == b.cell_id


PRECEDENCE = """\
name: prec
defaults:
  preset: seed-paper
  train: {learning_rate: 1.0e-4, weight_decay: 0.02}
models:
  gpt2: {train: {learning_rate: 2.0e-4, grad_accum: 2}}
methods:
  lora: {type: lora, r: 8, train: {learning_rate: 3.0e-4}}
axes:
  model: [gpt2, t5-small]
  method: [full, lora]
  dataset: [dialogsum]
include:
  - {model: gpt2, method: lora, dataset: samsum, train: {learning_rate: 4.0e-4, epochs: 1}}
"""


def test_precedence_preset_defaults_model_method_include() -> None:
    cells = {(c.model.name, c.method.name, c.dataset.name): c for c in parse_grid(PRECEDENCE).cells}
    assert len(cells) == 5
    t5_full = cells["t5-small", "full", "dialogsum"]
    gpt2_full = cells["gpt2", "full", "dialogsum"]
    gpt2_lora = cells["gpt2", "lora", "dialogsum"]
    t5_lora = cells["t5-small", "lora", "dialogsum"]
    inc = cells["gpt2", "lora", "samsum"]
    # defaults over preset
    assert t5_full.train.learning_rate == pytest.approx(1e-4)
    assert t5_full.train.weight_decay == pytest.approx(0.02)
    assert t5_full.train.epochs == 8.0  # preset value kept where nothing overrides it
    assert t5_full.train.grad_accum == 5
    # models.<m> over defaults
    assert gpt2_full.train.learning_rate == pytest.approx(2e-4)
    assert gpt2_full.train.grad_accum == 2
    assert gpt2_full.train.weight_decay == pytest.approx(0.02)
    # methods.<variant> over models.<m>
    assert gpt2_lora.train.learning_rate == pytest.approx(3e-4)
    assert gpt2_lora.train.grad_accum == 2
    assert gpt2_lora.method.params["r"] == 8
    assert t5_lora.train.learning_rate == pytest.approx(3e-4)
    assert t5_lora.train.grad_accum == 5
    # include entry over everything
    assert inc.train.learning_rate == pytest.approx(4e-4)
    assert inc.train.epochs == 1.0
    assert inc.train.grad_accum == 2
    assert inc.seed == 42


def test_seed_paper_preset() -> None:
    text = """\
name: sp
defaults: {preset: seed-paper}
axes:
  model: [gpt2, t5-small]
  method: [full]
  dataset: [dialogsum]
"""
    cells = {c.model.name: c for c in parse_grid(text).cells}
    assert cells["gpt2"].train.batch_size == 20
    assert cells["t5-small"].train.batch_size == 30
    for c in cells.values():
        t = c.train
        assert c.preset == "seed-paper"
        assert t.grad_accum == 5
        assert t.gradient_checkpointing is True
        assert t.learning_rate == pytest.approx(5e-5)
        assert t.weight_decay == pytest.approx(0.01)
        assert t.lr_scheduler == "constant"
        assert t.epochs == 8.0
        assert t.warmup_ratio == 0.0
        assert t.batch_tokens is None
        # the study's load_best_model_at_end: validation every epoch, the lowest validation loss kept
        assert t.eval_every == "epoch"
        assert t.select_best == "eval_loss"
        assert c.eval.metric_profile == "evaluate"


def test_fast_preset_defaults() -> None:
    t = parse_grid(BASE).cells[0].train
    assert t.batch_size is None
    assert t.batch_tokens == 16384
    assert t.group_by_length is True
    assert t.precision == "auto"
    # fast leaves validation and selection off unless asked, and keeps peftsum's metric profile
    assert t.eval_every == "off"
    assert t.select_best == "off"
    assert parse_grid(BASE).cells[0].eval.metric_profile == "peftsum"
    asked = parse_grid(grid("defaults:\n  train: {eval_every: epoch, select_best: rougeL}\n"))
    assert (asked.cells[0].train.eval_every, asked.cells[0].train.select_best) == ("epoch", "rougeL")


def test_seed_axis_and_exclude() -> None:
    text = grid(
        "exclude:\n  - {model: gpt2, method: full}\n",
        axes="  model: [gpt2, t5-small]\n  method: [full, lora]\n  dataset: [dialogsum]\n  seed: [1, 2, 3]\n",
    )
    cells = parse_grid(text).cells
    combos = {(c.model.name, c.method.name, c.seed) for c in cells}
    assert len(cells) == 9
    assert not any(m == "gpt2" and meth == "full" for m, meth, _ in combos)
    assert {s for *_, s in combos} == {1, 2, 3}


def test_model_outside_registry_with_family() -> None:
    text = grid(
        "models:\n  my-model: {hub_id: org/my-model, family: seq2seq, context: 2048}\n",
        axes="  model: [my-model]\n  method: [lora]\n  dataset: [dialogsum]\n",
    )
    cell = parse_grid(text).cells[0]
    assert cell.model.hub_id == "org/my-model"
    assert cell.model.family == "seq2seq"
    assert cell.model.context == 2048


def test_later_layer_may_complete_an_earlier_one() -> None:
    """Cross-field rules apply to the merged settings: defaults may null batch_tokens if a method sets batch_size."""
    text = grid("defaults:\n  train: {batch_tokens: null}\nmethods:\n  lora: {type: lora, train: {batch_size: 8}}\n")
    train = parse_grid(text).cells[0].train
    assert train.batch_size == 8
    assert train.batch_tokens is None
    with pytest.raises(SpecError) as info:  # …but a cell the method does not complete is still refused
        parse_grid(
            grid(
                "defaults:\n  train: {batch_tokens: null}\n",
                axes="  model: [gpt2]\n  method: [full]\n  dataset: [dialogsum]\n",
            )
        )
    assert info.value.path == "defaults.train.batch_size"


def test_bad_value_overridden_later_is_still_refused() -> None:
    text = grid("defaults:\n  train: {warmup_ratio: 5}\nmethods:\n  lora: {type: lora, train: {warmup_ratio: 0.1}}\n")
    with pytest.raises(SpecError) as info:
        parse_grid(text)
    assert info.value.path == "defaults.train.warmup_ratio"


def test_name_length_boundary() -> None:
    assert parse_grid(grid(name="a" * 40)).name == "a" * 40


def test_store_override() -> None:
    assert parse_grid(BASE).store == "./runs"
    assert parse_grid(BASE, store="/data/runs").store == "/data/runs"


def test_validate_is_fast_and_ml_free() -> None:
    """`launcher validate` of the paper grid: under a second, importing neither torch, transformers nor peft."""
    code = textwrap.dedent("""\
        import contextlib, io, json, sys, time
        t0 = time.perf_counter()
        from launcher.cli import main
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["validate", "examples/paper.yaml", "--json"])
        elapsed = time.perf_counter() - t0
        cells = len(json.loads(buf.getvalue())["cells"])
        resolved = io.StringIO()
        with contextlib.redirect_stdout(resolved):
            rc += main(["validate", "examples/paper.yaml", "--json", "--resolved"])
        specs = [c["spec"] for c in json.loads(resolved.getvalue())["cells"]]
        heavy = [m for m in ("torch", "transformers", "peft", "datasets") if m in sys.modules]
        print(json.dumps({"rc": rc, "elapsed": elapsed, "cells": cells, "heavy": heavy, "specs": specs}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0
    assert report["cells"] == 36
    assert report["heavy"] == []
    assert report["elapsed"] < 1.0, report
    # --resolved: every paper cell selects the best epoch by validation loss and scores as `evaluate` does
    assert len(report["specs"]) == 36
    for spec in report["specs"]:
        assert (spec["train"]["eval_every"], spec["train"]["select_best"]) == ("epoch", "eval_loss")
        assert spec["eval"]["metric_profile"] == "evaluate"
        assert spec["eval"]["references"] in ("per_row", "grouped")
        assert spec["data"]["length_tokenizer"]  # resolved to a hub id


def test_tiny_model_recipe_version_is_part_of_the_cell() -> None:
    """A new tiny-model recipe gives new cell ids; a cell of another recipe is refused, not run on other weights."""
    from peftsum.models.tiny import ensure_tiny
    from peftsum.spec.catalog import TINY_VERSION

    cell = parse_grid("name: t\naxes: {model: [tiny-gpt2], method: [full], dataset: [synthetic-dialogsum]}\n").cells[0]
    assert cell.model.hub_id == f"builtin:tiny-gpt2@{TINY_VERSION}"
    with pytest.raises(ValueError, match=f"tiny-gpt2@v0.*tiny-gpt2@{TINY_VERSION}"):
        ensure_tiny("tiny-gpt2@v0")
