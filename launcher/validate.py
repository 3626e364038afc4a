"""``launcher validate``: check a grid without running anything (and without torch/transformers)."""

from __future__ import annotations

import json
from typing import Any

from peftsum.spec import Grid


def summary(grid: Grid, resolved: bool = False) -> dict[str, Any]:
    """The --json form: {"grid": name, "cells": [{cell_id, model, method, dataset, seed}, …]}; with ``resolved``
    each cell also carries ``spec``: every setting as the cell will run it (what spec.json holds and the id hashes)."""
    return {"grid": grid.name,
            "cells": [{"cell_id": c.cell_id, **{k: v for k, v in c.labels.items() if k != "seed"}, "seed": c.seed,
                       **({"spec": c.to_dict()} if resolved else {})}
                      for c in grid.cells]}


def print_summary(grid: Grid, as_json: bool, resolved: bool = False) -> None:
    data = summary(grid, resolved)
    if as_json or resolved:
        print(json.dumps(data, indent=2))
        return
    # A plain fixed-width table: rich's takes ~1.5 s for 1,000 rows, more than the whole validation.
    cols = ("cell_id", "model", "method", "dataset", "seed")
    rows = [[str(c[k]) for k in cols] for c in data["cells"]]
    widths = [max([len(k)] + [len(r[i]) for r in rows]) for i, k in enumerate(cols)]
    lines = [f"{grid.name}: {len(grid.cells)} cells", "  ".join(k.ljust(w) for k, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    print("\n".join(lines))
    print(f"{len(grid.cells)} cells OK")


def compat_rows() -> list[tuple[str, str, str]]:
    """(architecture, method, reason) for every refused pair of the compatibility table."""
    from peftsum.methods import METHODS

    return [(arch, name, reason) for name in METHODS.names()
            for arch, reason in sorted(METHODS.get(name).incompatible.items())]
