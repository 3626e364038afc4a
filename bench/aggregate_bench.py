"""How long ``peftsum aggregate`` takes on a large finished grid, where the time goes, and whether its cost is
linear in cells.

Writes synthetic finished grids (tests/report/fake_cells.py: realistic result.json, predictions.jsonl, eda.json,
_SUCCESS, a few failed/running cells) of 250, 500 and 1,000 cells into a temporary local store, then builds each
report ``--repeat`` times, cold every time (no figure or result cache exists; only Python's imports are warm, from
one untimed warm-up on a small grid). Every size spreads its cells over the same 5 datasets, so the per-dataset work
(15 figures) is the same and the difference between sizes is the per-cell cost.

Two things are timed separately, as the issue asks:

- **report**: ``aggregate(store, grid, significance=False)``, everything but the paired bootstraps: reading the
  results, tables, figures, writing every file. The target is <= 5 s for 1,000 cells.
- **significance**: the default paired-bootstrap comparisons alone (``analysis.comparisons``: reads
  predictions.jsonl of the cells involved, 1,000 resamples per comparison), on the same worker pool aggregate uses.

For each, wall seconds and CPU seconds (this process + the worker processes' CPU for their jobs) per phase, the
median over the runs. Prints a per-phase table per size to stderr and one JSON line per size to stdout, the largest
last, then a least-squares line through the sizes (equal marginal cost per cell between sizes = linear), and the
load average before and after (the machine may be shared: compare runs at similar load)::

    {"cells": 1000, "report_s": 2.9, "report_cpu_s": 4.1, "significance_s": 1.2, "phases": {...}, ...}

Usage:

    .venv/bin/python bench/aggregate_bench.py                       # 250, 500, 1000 cells, 5 runs each
    .venv/bin/python bench/aggregate_bench.py --sizes 1000 --check  # exit 1 when the median is over --budget
    .venv/bin/python bench/aggregate_bench.py --workers 1           # everything in one process
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
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


def cpu_now() -> float:
    """CPU seconds of this process and of its reaped children (pool workers are reaped when the pool closes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def time_report(report: ModuleType, store: Any, grid: str, workers: int | None) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    w0, c0 = time.perf_counter(), cpu_now()
    report.aggregate(store, grid, significance=False, workers=workers, timings=phases)
    return {"wall_s": time.perf_counter() - w0, "cpu_s": cpu_now() - c0, "phases": phases}


def time_significance(report: ModuleType, store: Any, grid: str, workers: int | None) -> dict[str, Any]:
    from peftsum.report import analysis

    c = report.collect(store, grid)  # not timed: the report phase above times collect
    w0, c0 = time.perf_counter(), cpu_now()
    with report.worker_pool(workers) as pool:
        comps = analysis.comparisons(store, c, pool=pool)
    return {"wall_s": time.perf_counter() - w0, "cpu_s": cpu_now() - c0, "comparisons": len(comps)}


def median_phases(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    names = list(dict.fromkeys(k for r in runs for k in r["phases"]))
    return {k: {m: round(statistics.median(r["phases"].get(k, {}).get(m, 0.0) for r in runs), 3)
                for m in ("wall_s", "cpu_s")} for k in names}


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,500,1000", help="comma-separated cell counts (default: %(default)s)")
    parser.add_argument("--examples", type=int, default=30, help="evaluation examples per cell (default: 30)")
    parser.add_argument("--seeds", type=int, default=1, help="values on the seed axis (default: 1)")
    parser.add_argument("--datasets", type=int, default=5,
                        help="datasets the cells are spread over, the same for every size so the per-dataset "
                             "work (figures) is constant (default: 5)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per size; the median counts (default: 5)")
    parser.add_argument("--workers", type=int, default=None,
                        help="report worker processes (default: every core; 1 = no pool)")
    parser.add_argument("--no-significance", action="store_true", help="skip timing the paired bootstraps")
    parser.add_argument("--no-failures", action="store_true", help="every cell done (default: a few are not)")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds allowed for 1,000 cells (default: 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 when 1,000 cells (measured, or projected "
                                                             "from the sizes run) take more than --budget")
    parser.add_argument("--keep", metavar="DIR", help="write the stores under DIR and keep them (reused if there)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    sys.path.insert(0, str(REPO))
    import peftsum.report as report
    from peftsum.store import open_store

    fake = _load_file(REPO / "tests" / "report" / "fake_cells.py", "peftsum_bench_fake_cells")
    print(f"load average before: {load()} ({os.cpu_count()} cores)", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="peftsum-bench-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        # Warm-up: imports the report's lazy dependencies (matplotlib…) outside the timed runs.
        warm = base / "warmup"
        if not (warm / "warmup" / "grid.json").exists():
            fake.write_fake_grid(warm, "warmup", 12, seeds=1, with_failures=True, n_examples=args.examples)
        t0 = time.perf_counter()
        report.aggregate(open_store(str(warm)), "warmup", workers=args.workers)
        print(f"warm-up (12 cells, imports included): {time.perf_counter() - t0:.2f} s", file=sys.stderr)

        lines = []
        for n in sizes:
            root = base / f"store-{n}-s{args.seeds}-e{args.examples}-d{args.datasets}"
            grid = f"bench-{n}"
            t0 = time.perf_counter()
            if not (root / grid / "grid.json").exists():
                fake.write_fake_grid(root, grid, n, seeds=args.seeds, with_failures=not args.no_failures,
                                     n_examples=args.examples, n_datasets=args.datasets)
            written = time.perf_counter() - t0
            store = open_store(str(root))
            load_before = load()
            runs = [time_report(report, store, grid, args.workers) for _ in range(args.repeat)]
            sig = [] if args.no_significance else [time_significance(report, store, grid, args.workers)
                                                   for _ in range(args.repeat)]
            walls = [r["wall_s"] for r in runs]
            line: dict[str, Any] = {
                "cells": n, "report_s": round(statistics.median(walls), 3),
                "report_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
                "report_runs_s": [round(w, 3) for w in walls],
                "per_cell_ms": round(1000 * statistics.median(walls) / n, 3),
                "phases": median_phases(runs)}
            if sig:
                line |= {"significance_s": round(statistics.median(s["wall_s"] for s in sig), 3),
                         "significance_cpu_s": round(statistics.median(s["cpu_s"] for s in sig), 3),
                         "comparisons": sig[0]["comparisons"]}
            line |= {"runs": len(runs), "datasets": args.datasets, "examples_per_cell": args.examples,
                     "seeds": args.seeds, "workers": args.workers or report.workers_wanted(),
                     "load_before": load_before, "load_after": load(), "write_seconds": round(written, 2)}
            lines.append(line)
            print(f"\n{n} cells: report {line['report_s']:.2f} s wall / {line['report_cpu_s']:.2f} s CPU "
                  f"(median of {len(runs)}: {', '.join(f'{w:.2f}' for w in walls)}); load {load_before}",
                  file=sys.stderr)
            print(f"  {'phase':<22}{'wall s':>9}{'CPU s':>9}", file=sys.stderr)
            for name, v in line["phases"].items():
                print(f"  {name:<22}{v['wall_s']:>9.3f}{v['cpu_s']:>9.3f}", file=sys.stderr)
            if sig:
                print(f"  paired bootstraps, separately: {line['significance_s']:.2f} s wall / "
                      f"{line['significance_cpu_s']:.2f} s CPU for {line['comparisons']} comparisons",
                      file=sys.stderr)
            print(json.dumps(line), flush=True)

    fit = None
    if len(lines) > 1:
        # Linear cost means seconds = fixed + marginal x cells with the same marginal between every pair of sizes.
        xs, ys = [ln["cells"] for ln in lines], [ln["report_s"] for ln in lines]
        fit = statistics.linear_regression(xs, ys)
        steps = ", ".join(f"{xs[i]}->{xs[i + 1]}: {1000 * (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]):.2f}"
                          for i in range(len(xs) - 1))
        print(f"\nleast squares: {fit.intercept:.2f} s fixed + {1000 * fit.slope:.2f} ms per cell; "
              f"marginal ms per cell between sizes: {steps} (equal = linear)", file=sys.stderr)
    measured = next((ln["report_s"] for ln in lines if ln["cells"] == 1000), None)
    if measured is not None:
        at_1000, how = measured, "measured (median)"
    elif fit is not None:
        at_1000, how = fit.intercept + 1000 * fit.slope, "projected from the fit"
    else:
        at_1000, how = lines[-1]["report_s"] * 1000 / lines[-1]["cells"], "projected per cell"
    verdict = "within" if at_1000 <= args.budget else "OVER"
    print(f"1,000 cells: {at_1000:.2f} s, {how} ({verdict} the {args.budget:g} s budget); load average after: "
          f"{load()}", file=sys.stderr)
    return 1 if args.check and at_1000 > args.budget else 0


if __name__ == "__main__":
    sys.exit(main())
