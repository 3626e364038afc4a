"""The fake grids the report tests read carry exactly the result.json schema of ``peftsum.result``: built through
its constructors, they cannot drift from what real cells write."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from peftsum.result import required_keys


def _keys(tree: dict[str, Any], data: dict[str, Any], where: str = "") -> list[str]:
    """Every difference between the schema's key tree and ``data``'s keys, as ``path: what``."""
    problems = [f"{where}{k}: missing" for k in tree if k not in data]
    problems += [f"{where}{k}: not in the schema" for k in data if k not in tree]
    for key, sub in tree.items():
        if sub is not None and isinstance(data.get(key), dict):
            problems += _keys(sub, data[key], f"{where}{key}.")
    return problems


def test_fake_results_have_exactly_the_schema_keys(tmp_path: Path, fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "schema", 6)  # trained, untrained (none) and model-free (lead) cells
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("schema/cells/*/attempts/*/result.json"))]
    assert {r["spec"]["method"]["type"] for r in results} >= {"full", "lora", "none", "lead"}
    for result in results:
        assert _keys(required_keys(), result) == [], result["cell_id"]
