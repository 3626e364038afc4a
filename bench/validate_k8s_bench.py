"""How long ``launcher validate grid.yaml --k8s 1.31`` takes on a generated 1,000-cell grid (target: <= 3 s).

Writes a grid of 5 models x 10 LoRA variants x 4 datasets x 5 seeds = 1,000 cells with an s3:// store and a
cluster section into a temporary folder, then times the whole command in a fresh interpreter (imports, grid
checks, rendering 1,001 Jobs, validating each against Kubernetes 1.31's strict schema, printing the summary) as
the best and the median of ``--repeat`` runs, plus an in-process breakdown of one run. Prints one JSON line:

    {"cells": 1000, "objects": 1001, "seconds": 2.1, "median_seconds": 2.3, "cpu_seconds": 2.0,
     "breakdown": {"load_grid": 0.4, ...}, "load_average_1m": 0.3, ...}

The load average is printed because wall time on a shared machine says as much about the neighbours as about
the code; compare ``cpu_seconds`` across runs taken under different load.

Usage:

    .venv/bin/python bench/validate_k8s_bench.py                 # best of 3, --json output (no table)
    .venv/bin/python bench/validate_k8s_bench.py --table         # with the printed table of 1,000 rows
    .venv/bin/python bench/validate_k8s_bench.py --check         # exit 1 when over --budget seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ["gpt2", "gpt2-medium", "t5-small", "t5-base", "bart-base"]
DATASETS = ["dialogsum", "samsum", "cnn_dailymail", "synthetic-news"]
SEEDS = [1, 2, 3, 4, 5]
RANKS = range(1, 11)


def grid_yaml() -> str:
    """A valid 1,000-cell grid (every model supports LoRA)."""
    variants = "\n".join(f"  lora-r{r}: {{type: lora, r: {r}, alpha: {2 * r}}}" for r in RANKS)
    return (f"name: bench\nstore: s3://bucket/peftsum\n"
            f"axes:\n  model: [{', '.join(MODELS)}]\n  method: [{', '.join(f'lora-r{r}' for r in RANKS)}]\n"
            f"  dataset: [{', '.join(DATASETS)}]\n  seed: [{', '.join(map(str, SEEDS))}]\n"
            f"methods:\n{variants}\n"
            "cluster:\n  namespace: peftsum\n  image: registry.example/peftsum:0.1.0\n  gpus: 1\n"
            "  node_selector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}\n"
            "  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]\n"
            "  pushgateway: http://pushgateway.monitoring:9091\n")


def time_command(path: Path, version: str, table: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run. CPU time (user + sys of the child) is the steadier number on a
    machine where other processes compete for the cores; wall time is what the user waits."""
    argv = [sys.executable, "-m", "launcher.cli", "validate", str(path), "--k8s", version]
    if not table:
        argv.append("--json")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"launcher validate failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def breakdown(path: Path, version: str) -> dict[str, float]:
    """Seconds per step of one in-process run (a fresh interpreter, so nothing is cached before)."""
    code = f"""
import json, time
t = time.perf_counter()
from launcher.k8s import render, schema
from peftsum.spec import load_grid
out = {{"imports": time.perf_counter() - t}}
t = time.perf_counter(); grid = load_grid({str(path)!r}); out["load_grid"] = time.perf_counter() - t
t = time.perf_counter()
objects = [*render.cell_jobs(grid).values(), render.aggregate_job(grid, grid.cluster)]
out["render"] = time.perf_counter() - t
t = time.perf_counter(); vals = schema.validators({version!r}); out["build_validators"] = time.perf_counter() - t
t = time.perf_counter(); problems = schema.validate_all(objects, {version!r}); out["validate"] = time.perf_counter() - t
assert not problems, problems[:3]
out["objects"] = len(objects)
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--version", default="1.31")
    parser.add_argument("--table", action="store_true", help="time the table output instead of --json")
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--check", action="store_true", help="exit 1 when the best run is over --budget")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(grid_yaml())
        runs = [time_command(path, args.version, args.table) for _ in range(args.repeat)]
        parts = breakdown(path, args.version)
    objects = parts.pop("objects")
    walls = [w for w, _ in runs]
    result = {"cells": len(MODELS) * len(RANKS) * len(DATASETS) * len(SEEDS), "objects": objects,
              "seconds": round(min(walls), 3), "median_seconds": round(statistics.median(walls), 3),
              "cpu_seconds": round(min(c for _, c in runs), 3),
              "runs": [round(w, 3) for w in walls], "table": args.table,
              "breakdown": {k: round(v, 3) for k, v in parts.items()}, "budget": args.budget,
              "load_average_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}
    print(json.dumps(result))
    return 1 if args.check and min(walls) > args.budget else 0


if __name__ == "__main__":
    sys.exit(main())
