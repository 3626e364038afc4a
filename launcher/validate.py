"""``launcher validate``: check a grid without running anything (and without torch/transformers)."""

from __future__ import annotations

import json
from typing import Any

from peftsum.spec import Grid


def summary(grid: Grid) -> dict[str, Any]:
    """The --json form: {"grid": name, "cells": [{cell_id, model, method, dataset, seed}, …]}."""
    return {"grid": grid.name,
            "cells": [{"cell_id": c.cell_id, **{k: v for k, v in c.labels.items() if k != "seed"}, "seed": c.seed}
                      for c in grid.cells]}


def print_summary(grid: Grid, as_json: bool) -> None:
    data = summary(grid)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{grid.name}: {len(grid.cells)} cells", title_justify="left")
    for col in ("cell_id", "model", "method", "dataset", "seed"):
        table.add_column(col)
    for c in data["cells"]:
        table.add_row(c["cell_id"], c["model"], c["method"], c["dataset"], str(c["seed"]))
    Console().print(table)
    print(f"{len(grid.cells)} cells OK")


def compat_rows() -> list[tuple[str, str, str]]:
    """(architecture, method, reason) for every refused pair of the compatibility table."""
    from peftsum.methods import METHODS

    return [(arch, name, reason) for name in METHODS.names()
            for arch, reason in sorted(METHODS.get(name).incompatible.items())]
