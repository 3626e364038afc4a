"""How long ``peftsum aggregate`` takes on a large finished grid, and whether its cost is linear in cells.

Writes synthetic finished grids (tests/report/fake_cells.py: realistic result.json, predictions.jsonl, eda.json,
_SUCCESS, a few failed/running cells) of 250, 500 and 1,000 cells into a temporary local store, then times
``peftsum.report.aggregate(store, grid)`` on each (best of ``--repeat`` runs, after one untimed warm-up on a small
grid so lazy imports are not counted). Every size spreads its cells over the same 5 datasets, so the per-dataset
work (figures) is the same and the difference between sizes is the per-cell cost. Prints one JSON line per size,
the largest last:

    {"cells": 1000, "seconds": 1.23, "per_cell_ms": 1.23, ...}

The target (issue: HTML report) is <= 5 s for 1,000 cells, with a per-cell cost that does not grow with the grid.
Only the aggregation is timed, not writing the fake grid. Usage:

    .venv/bin/python bench/aggregate_bench.py                     # whatever peftsum.report is now
    .venv/bin/python bench/aggregate_bench.py --sizes 1000 --check  # exit 1 when over --budget seconds
    git show 3f298bb:peftsum/report.py > /tmp/report_head.py    # the Markdown-only aggregator, for comparison
    .venv/bin/python bench/aggregate_bench.py --aggregate /tmp/report_head.py   # another implementation
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _load_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_aggregate(path: str | None) -> Callable[..., Any]:
    """``aggregate(store, grid)`` from peftsum.report, or from a file that defines it."""
    module = _load_file(Path(path), "bench_report_under_test") if path else importlib.import_module("peftsum.report")
    return module.aggregate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,500,1000", help="comma-separated cell counts (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=30, help="evaluation examples per cell (default: 30)")
    parser.add_argument("--seeds", type=int, default=1, help="values on the seed axis (default: 1)")
    parser.add_argument("--datasets", type=int, default=5,
                        help="datasets the cells are spread over, the same for every size so the per-dataset "
                             "work (figures) is constant (default: 5)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size; the best counts (default: 3)")
    parser.add_argument("--no-failures", action="store_true", help="every cell done (default: a few are not)")
    parser.add_argument("--aggregate", metavar="FILE", help="a .py file defining aggregate(store, grid) to time "
                                                            "instead of peftsum.report")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds allowed for 1,000 cells (default: 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 when 1,000 cells (measured, or projected "
                                                             "from the sizes run) take more than --budget")
    parser.add_argument("--keep", metavar="DIR", help="write the stores under DIR and keep them")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    os.environ.setdefault("MPLBACKEND", "Agg")  # figures without a display
    sys.path.insert(0, str(REPO))
    from peftsum.store import open_store

    fake = _load_file(REPO / "tests" / "report" / "fake_cells.py", "peftsum_bench_fake_cells")
    aggregate = load_aggregate(args.aggregate)

    with tempfile.TemporaryDirectory(prefix="peftsum-bench-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        # Warm-up: imports the report's lazy dependencies (matplotlib…) outside the timed runs.
        warm = base / "warmup"
        fake.write_fake_grid(warm, "warmup", 12, seeds=1, with_failures=True, n_examples=args.examples)
        t0 = time.perf_counter()
        aggregate(open_store(str(warm)), "warmup")
        print(f"warm-up (12 cells, imports included): {time.perf_counter() - t0:.2f} s", file=sys.stderr)

        lines = []
        for n in sizes:
            root = base / f"store-{n}"
            grid = f"bench-{n}"
            t0 = time.perf_counter()
            fake.write_fake_grid(root, grid, n, seeds=args.seeds, with_failures=not args.no_failures,
                                 n_examples=args.examples, n_datasets=args.datasets)
            written = time.perf_counter() - t0
            store = open_store(str(root))
            runs = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                aggregate(store, grid)
                runs.append(time.perf_counter() - t0)
            best = min(runs)
            line = {"cells": n, "seconds": round(best, 4), "per_cell_ms": round(1000 * best / n, 4),
                    "median_seconds": round(statistics.median(runs), 4), "runs": len(runs),
                    "datasets": args.datasets, "examples_per_cell": args.examples, "write_seconds": round(written, 2)}
            lines.append(line)
            print(json.dumps(line), flush=True)

    fit = None
    if len(lines) > 1:
        # Linear cost means seconds = fixed + marginal x cells with the same marginal between every pair of sizes.
        xs, ys = [ln["cells"] for ln in lines], [ln["seconds"] for ln in lines]
        fit = statistics.linear_regression(xs, ys)
        steps = ", ".join(f"{xs[i]}->{xs[i + 1]}: {1000 * (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]):.2f}"
                          for i in range(len(xs) - 1))
        print(f"least squares: {fit.intercept:.2f} s fixed + {1000 * fit.slope:.2f} ms per cell; "
              f"marginal ms per cell between sizes: {steps} (equal = linear)", file=sys.stderr)
    measured = next((ln["seconds"] for ln in lines if ln["cells"] == 1000), None)
    if measured is not None:
        at_1000, how = measured, "measured"
    elif fit is not None:
        at_1000, how = fit.intercept + 1000 * fit.slope, "projected from the fit"
    else:
        at_1000, how = lines[-1]["seconds"] * 1000 / lines[-1]["cells"], "projected per cell"
    verdict = "within" if at_1000 <= args.budget else "OVER"
    print(f"1,000 cells: {at_1000:.2f} s, {how} ({verdict} the {args.budget:g} s budget)", file=sys.stderr)
    return 1 if args.check and at_1000 > args.budget else 0


if __name__ == "__main__":
    sys.exit(main())
