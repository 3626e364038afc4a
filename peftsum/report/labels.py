"""How the report names a cell: its axes read from a spec as stored in JSON, and the short names built from them.

The report's one home for labels. ``peftsum.spec.Cell.labels`` names a validated :class:`~peftsum.spec.Cell`; the
report reads specs as JSON (result.json's ``spec``, grid.json) of any schema version, checked only for the axes
(``peftsum.report.schema.check_spec``), and rebuilding a Cell from one would re-validate every setting for four
names (a result written with a setting since removed would fail; a thousand cost time). Both name a model-free
cell's model ``-``.
"""

from __future__ import annotations

from typing import Any

UNKNOWN = {"model": "?", "method": "?", "method_type": "?", "dataset": "?", "seed": "?"}  # a spec we cannot read


def labels(spec: dict[str, Any]) -> dict[str, Any]:
    """Human-readable axes of a cell spec (model '-' for model-free baselines)."""
    return {"model": (spec.get("model") or {}).get("name", "-"), "method": spec["method"]["name"],
            "method_type": spec["method"]["type"], "dataset": spec["dataset"]["name"], "seed": spec["seed"]}


def cell_name(spec: dict[str, Any], seed: bool = True) -> str:
    """``model/method/s<seed>``, or ``model/method`` where the seed goes without saying (one seed, or a table's own
    column): how figures and tables name a cell."""
    lab = labels(spec)
    return f"{lab['model']}/{lab['method']}" + (f"/s{lab['seed']}" if seed else "")


def comparison_name(spec: dict[str, Any]) -> str:
    """``model/method (seed <seed>)``: side A or B of a paired comparison."""
    lab = labels(spec)
    return f"{lab['model']}/{lab['method']} (seed {lab['seed']})"
