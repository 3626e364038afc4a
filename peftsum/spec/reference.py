"""Render the grid.yaml reference (``docs/grid-reference.md``) from the declarations themselves.

Every table comes from code: the settings dataclasses and their field metadata, each registered method's
parameters and compatibility table, the model and dataset catalogs and the presets. Regenerate with::

    python -m peftsum.spec.reference > docs/grid-reference.md

Pure of ML like the rest of :mod:`peftsum.spec`: method modules are imported through the lazy registry, and they
import peft only inside ``apply``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any

from peftsum.methods import METHODS
from peftsum.spec.catalog import ARCH_FAMILY, DATASETS, MODELS
from peftsum.spec.cluster import ClusterSettings, PodSettings
from peftsum.spec.fields import reference_rows
from peftsum.spec.presets import PRESETS, PerFamily
from peftsum.spec.settings import SECTIONS
from peftsum.spec.tracking import TrackingSettings

_BARE_EXPONENT = re.compile(r"^(-?\d+)(e[-+]?\d+)$")


def yaml_scalar(value: Any) -> str:
    """A value as it would be written in grid.yaml (``5.0e-05``, not ``5e-05``, which PyYAML reads as a string)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        m = _BARE_EXPONENT.match(text)
        return f"{m.group(1)}.0{m.group(2)}" if m else text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    if isinstance(value, PerFamily):
        return "{" + ", ".join(f"{k}: {yaml_scalar(v)}" for k, v in dataclasses.asdict(value).items()) + "}"
    return str(value)


def _default_text(text: str) -> str:
    """Fix up a default rendered by ``reference_rows`` (``str(value)``) into grid.yaml spelling."""
    if text in ("True", "False"):
        return text.lower()
    m = _BARE_EXPONENT.match(text)
    return f"{m.group(1)}.0{m.group(2)}" if m else text


def _cell(text: str) -> str:
    """Escape a table cell: pipes would split the column, newlines the row."""
    return re.sub(r"(?<!\\)\|", r"\\|", text).replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def settings_table(cls: type, prefix: str = "") -> list[str]:
    """Key / type and range / default / meaning of one settings dataclass."""
    rows = [
        (f"`{prefix}{key}`", kind, f"`{_default_text(default)}`", _cell(doc))
        for key, kind, default, doc in reference_rows(cls)
    ]
    return _table(("key", "type and range", "default", "meaning"), rows)


def _preset_rows(preset: str) -> list[tuple[str, str]]:
    rows = []
    for section, values in PRESETS[preset].items():
        for key, value in values.items():
            rows.append((f"`{section}.{key}`", f"`{yaml_scalar(value)}`"))
    return rows


def _methods() -> list[str]:
    lines = [
        "## Methods",
        "",
        "Each method is a registered name (`peftsum/methods/<name>.py`). Use it directly in `axes.method`, or "
        "declare variants under `methods:` with `type: <name>` plus the parameters below; a variant may also "
        "carry `train` / `eval` / `data` overrides.",
        "",
    ]
    lines += _table(
        ("method", "trains", "parameters", "what it is"),
        (
            (
                f"`{name}`",
                "yes" if METHODS.get(name).trains else "no (baseline)",
                ", ".join(f"`{f.name}`" for f in dataclasses.fields(METHODS.get(name).params)) or "–",
                _cell(METHODS.get(name).doc),
            )
            for name in METHODS.names()
        ),
    )
    lines.append("")
    for name in METHODS.names():
        method = METHODS.get(name)
        lines += [f"### `{name}`", "", _cell(method.doc) + ".", ""]
        if dataclasses.fields(method.params):
            lines += settings_table(method.params, prefix="")
        else:
            lines.append(
                "No parameters: a `methods:` variant of this type takes only `type` and the "
                "`train` / `eval` / `data` overrides."
            )
        lines.append("")
    return lines


def _compat() -> list[str]:
    archs = list(ARCH_FAMILY)
    lines = [
        "## Compatibility",
        "",
        "Model architecture × method pairs that `launcher validate` refuses (exit code 2), with the reason. "
        "`causal` and `seq2seq` are the architectures of models declared under `models:` with only a `family`. "
        "`launcher validate --compat` prints the same list.",
        "",
    ]
    header = ("method", *(f"{a} ({ARCH_FAMILY[a]})" if a != ARCH_FAMILY[a] else a for a in archs))
    rows = []
    for name in METHODS.names():
        refused = METHODS.get(name).incompatible
        rows.append((f"`{name}`", *("✗" if a in refused else "✓" for a in archs)))
    lines += _table(header, rows)
    lines.append("")
    reasons = [
        (f"`{name}`", f"`{arch}`", _cell(reason))
        for name in METHODS.names()
        for arch, reason in sorted(METHODS.get(name).incompatible.items())
    ]
    if reasons:
        lines += _table(("method", "architecture", "reason"), reasons)
        lines.append("")
    return lines


def _models() -> list[str]:
    lines = [
        "## Model catalog",
        "",
        "Names usable in `axes.model` without a `models:` entry. `context` is the source window in tokens "
        "(`n_positions` for causal models, the encoder input length for seq2seq). `builtin:` models are small "
        "models pretrained on a synthetic corpus and shipped with peftsum, their files checked against committed "
        "digests at load ([models.md](models.md)). `revision` null = the hub's default branch. A `models:` entry "
        "may not declare a larger `context` than the model's learned position embeddings (`positions`: GPT-2 and "
        "BART 1024, `tiny-gpt2` 512; T5 has relative positions), and `eval.max_new_tokens` / "
        "`data.max_target_tokens` must fit the window ([troubleshooting.md](troubleshooting.md)).",
        "",
    ]
    lines += _table(
        ("name", "hub id", "arch", "family", "context", "revision"),
        (
            (f"`{name}`", f"`{m.hub_id}`", m.arch, m.family, str(m.context), yaml_scalar(m.revision))
            for name, m in MODELS.items()
        ),
    )
    lines.append("")
    return lines


def _datasets() -> list[str]:
    lines = [
        "## Dataset catalog",
        "",
        "Names usable in `axes.dataset` without a `datasets:` entry. `kind` picks the prompt wording; "
        "`id column` null = examples are numbered `<split>-<row>`. `revision` null = the default branch. "
        "`references`: what `eval.references: auto` becomes for the dataset.",
        "",
    ]
    lines += _table(
        (
            "name",
            "source",
            "id",
            "config",
            "revision",
            "kind",
            "source column",
            "summary column",
            "id column",
            "references",
        ),
        (
            (
                f"`{name}`",
                d.source,
                f"`{d.id}`",
                yaml_scalar(d.config),
                yaml_scalar(d.revision),
                d.kind,
                f"`{d.source_column}`",
                f"`{d.summary_column}`",
                yaml_scalar(d.id_column),
                d.references,
            )
            for name, d in DATASETS.items()
        ),
    )
    lines.append("")
    return lines


def _presets() -> list[str]:
    lines = [
        "## Presets",
        "",
        "`defaults.preset` picks the lowest settings layer (preset < defaults < datasets.<d> < models.<m> < "
        "methods.<variant> < include entry). A `{causal: …, seq2seq: …}` value is chosen by the model's family.",
        "",
    ]
    for name in PRESETS:
        rows = _preset_rows(name)
        lines += [f"### `{name}`", ""]
        if rows:
            lines += _table(("setting", "value"), rows)
        else:
            lines.append("Changes nothing: every setting keeps the default in the tables above.")
        lines.append("")
    return lines


def render() -> str:
    """The whole reference as Markdown."""
    lines = [
        "# grid.yaml reference",
        "",
        "<!-- Generated by `python -m peftsum.spec.reference > docs/grid-reference.md`; do not edit by hand. -->",
        "",
        "Every table below is generated from the code that validates the grid, so it lists exactly what "
        "`launcher validate` accepts. The guide to the file as a whole is [grid.md](grid.md).",
        "",
        "Ranges: `[a, b]` includes both ends, `(a, b)` excludes them. Numbers in YAML: write `5.0e-5`, not "
        "`5e-5` (PyYAML reads the latter as a string).",
        "",
    ]
    for section, cls in SECTIONS.items():
        lines += [
            f"## `{section}` settings",
            "",
            _cell((cls.__doc__ or "").strip()),
            "",
            f"Set under `defaults.{section}`, `datasets.<dataset>.{section}`, `models.<model>.{section}`, "
            f"`methods.<variant>.{section}` or an `include` entry's `{section}`.",
            "",
        ]
        lines += settings_table(cls)
        lines.append("")
    lines += [
        "## `cluster` settings",
        "",
        _cell((ClusterSettings.__doc__ or "").strip()),
        "How each key shapes the Job, and what the failure states mean: [operations.md](operations.md).",
        "",
    ]
    lines += settings_table(ClusterSettings)
    lines += ["", "### `cluster.pod` settings", "", _cell((PodSettings.__doc__ or "").strip()), ""]
    lines += settings_table(PodSettings, "pod.")
    lines += ["", "## `tracking` settings", "", _cell(" ".join((TrackingSettings.__doc__ or "").split())),
              "What a run holds and how a resumed cell continues it: [operations.md](operations.md#mlflow-tracking).",
              ""]
    lines += settings_table(TrackingSettings)
    lines.append("")
    lines += _presets()
    lines += _methods()
    lines += _compat()
    lines += _models()
    lines += _datasets()
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
