"""``peftsum bench``'s arguments and its entry: the plan for the device, the run, the report and its summary."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from peftsum.bench.cases import plan_for
from peftsum.bench.quality import quality_report
from peftsum.bench.throughput import run

EPILOG = """examples:
  peftsum bench --quick                      # CPU: tiny models, about 2 minutes; last line = summary JSON
  peftsum bench --out bench.json             # on a GPU: GPT-2 small / T5-small shapes, random init
  peftsum bench --only gpt2/full --only generate   # cases whose label has these parts (gpt2/full/naive, …)
  peftsum bench --part quality               # fast vs naive ROUGE-L on trained tiny cells (paired bootstrap)

The whole report goes to --out (default runs/bench/bench.json); docs/performance.md explains every field."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer cases and examples (CPU: <= 3 minutes)")
    p.add_argument("--out", default="runs/bench/bench.json", help="JSON report path")
    p.add_argument(
        "--models",
        choices=("auto", "tiny", "real"),
        default="auto",
        help="auto = real architectures (random init) on CUDA, tiny models on CPU",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--only", action="append", help="run only cases whose label contains this (repeatable)")
    p.add_argument("--examples", type=int, help="training examples per case (default: by device and --quick)")
    p.add_argument("--gen-prompts", type=int, help="generation prompts per case")
    p.add_argument("--warmup-steps", type=int, help="optimizer steps not timed")
    p.add_argument(
        "--extended",
        action="store_true",
        help="also the CNN/DailyMail spread, every PEFT method and (CUDA) torch.compile",
    )
    p.add_argument(
        "--part",
        choices=("all", "train", "generate", "quality"),
        default="all",
        help="what to measure: all = train + generate; quality = train and score real cells, fast "
        "against naive (tiny models on the synthetic task; minutes)",
    )
    p.add_argument(
        "--quality-store",
        help="store for the quality cells (default: quality-store/ next to --out); "
        "done cells are reused (with a warning if another commit made them); "
        "--device/--models/--only/--compile do not apply to --part quality",
    )
    p.add_argument("--compile", choices=("auto", "on", "off"), help="train.compile for every fast-path case")
    p.add_argument(
        "--compile-backend",
        default="inductor",
        help="torch.compile backend of compiled cases (aot_eager: a CPU dry run of the compiled path in seconds)",
    )
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: 1 on CPU with --quick, else torch's)")


def main(args: argparse.Namespace) -> int:
    import torch

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    threads = args.threads or (1 if device.type == "cpu" and args.quick else None)
    if threads:
        # On a shared CPU, OpenMP's barriers stall whenever another process holds a core: small ops then cost
        # 10x more with 2 threads than with 1 (measured here). One thread keeps the ratios about the code.
        torch.set_num_threads(threads)
    plan = plan_for(device.type, args.quick, args.models, args.examples, args.gen_prompts, args.extended)
    plan = dataclasses.replace(plan, compile_backend=args.compile_backend)
    if args.warmup_steps is not None:
        plan = dataclasses.replace(plan, warmup_steps=args.warmup_steps)
    if args.compile:  # one setting over every fast-path case (bench/gpu.sh: an eager pass, then a compiled one)
        plan = dataclasses.replace(
            plan,
            train=[
                c if c.preset != "fast" else dataclasses.replace(c, train={**c.train, "compile": args.compile})
                for c in plan.train
            ],
        )
    real = args.models == "real" or (args.models == "auto" and device.type == "cuda")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def emit(partial: dict[str, Any]) -> None:
        partial["seconds"] = time.perf_counter() - t0
        out.write_text(json.dumps(partial, indent=2))

    if args.part == "quality":
        result = quality_report(device, args.quick, args.quality_store or str(out.parent / "quality-store"))
    else:
        parts = ("train", "generate") if args.part == "all" else (args.part,)
        result = run(plan, device, real, args.only, log=sys.stderr, parts=parts, emit=emit)
    result["seconds"] = time.perf_counter() - t0
    result["summary"]["seconds"] = round(result["seconds"], 1)
    out.write_text(json.dumps(result, indent=2))
    print(f"[bench] report: {out}", file=sys.stderr)
    print(json.dumps(result["summary"]))
    return 0
