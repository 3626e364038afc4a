"""The store commands of ``launcher``: ``pull`` (results home, verified, resumable), ``verify`` (re-hash in place)
and ``stage`` (copy a grid's models and datasets into the store, for clusters without internet)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from peftsum.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from peftsum.spec import SpecError, load_grid
from peftsum.store import StoreDenied, StoreError, open_store

PULL_EPILOG = """examples:
  launcher pull examples/paper.yaml --to results/                  # results + eda of every done cell
  launcher pull grid.yaml --store s3://b/p --to out --adapters     # + the adapters (PeftModel.from_pretrained)
  launcher pull grid.yaml --to out --adapters --predictions --report

The target mirrors the store layout, so it is a local store itself: `launcher report grid.yaml --store out`.
Every file is checked against its cell's _SUCCESS manifest (sha256); rerunning skips what is already there.
exit codes: 0 all selected files of all done cells pulled, 1 some file failed verification or download, or the
store could not be read (unreachable), 2 invalid grid, or a store that refuses access (missing bucket, denied)."""

VERIFY_EPILOG = """examples:
  launcher verify examples/paper.yaml                     # every done cell's files re-hashed in the store
  launcher verify grid.yaml --store ./pulled              # or a pulled copy

exit codes: 0 nothing corrupt (cells not done are listed), 1 some cell's manifest is malformed or its files differ
from it, or the store could not be read (unreachable), 2 invalid grid, or a store that refuses access."""

STAGE_EPILOG = """examples:
  launcher stage examples/paper.yaml --store s3://bucket/peftsum --out staged.yaml

Runs `peftsum stage` (needs the ML stack and, for hub ids, the internet, once): models to
<store>/_staged/models/<name>/, dataset splits to <store>/_staged/datasets/<name>/<split>.jsonl, and prints the
models:/datasets: overrides to merge into the grid so pods read them from the store."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("pull", help="download a grid's results (and adapters, predictions, report)",
                       epilog=PULL_EPILOG, formatter_class=fmt)
    p.add_argument("grid", help="grid.yaml")
    p.add_argument("--store", help="store URI (default: the grid's store)")
    p.add_argument("--to", required=True, help="target folder (mirrors the store layout)")
    p.add_argument("--adapters", action="store_true", help="also adapters (and full weights if kept)")
    p.add_argument("--predictions", action="store_true", help="also predictions.jsonl")
    p.add_argument("--report", action="store_true", help="also the grid's report/")
    v = sub.add_parser("verify", help="re-hash every done cell's files against its manifest",
                       epilog=VERIFY_EPILOG, formatter_class=fmt)
    v.add_argument("grid", help="grid.yaml")
    v.add_argument("--store", help="store URI (default: the grid's store)")
    s = sub.add_parser("stage", help="copy the grid's models and datasets into the store", epilog=STAGE_EPILOG,
                       formatter_class=fmt)
    s.add_argument("grid", help="grid.yaml")
    s.add_argument("--store", help="store URI (default: the grid's store)")
    s.add_argument("--out", help="also write the overrides (YAML) to this file")


def _open(args: argparse.Namespace, command: str):
    try:
        grid = load_grid(args.grid, store=args.store)
        return grid, open_store(grid.store)
    except (SpecError, StoreError) as err:
        print(f"launcher {command}: {err}", file=sys.stderr)
        return None, None


def pull_command(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from launcher.pull import pull

    grid, store = _open(args, "pull")
    if grid is None:
        return EXIT_BAD_INPUT
    ids = [c.cell_id for c in grid.cells]
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} files"),
                  DownloadColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(f"pull {grid.name}", total=None)
        done = {"n": 0}

        def progress(key: str, nbytes: int) -> None:
            done["n"] += 1
            bar.update(task, completed=done["n"], description=f"pull {key.rsplit('/', 1)[-1]}")

        try:
            stats = pull(store, grid.name, ids, Path(args.to), adapters=args.adapters,
                         predictions=args.predictions, report=args.report, progress=progress)
        except StoreError as err:
            print(f"launcher pull: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT if isinstance(err, StoreDenied) else EXIT_FAILED
    print(f"{grid.name}: {len(ids) - len(stats.not_done)}/{len(ids)} cells done; pulled {stats.files} files "
          f"({stats.bytes / 1e6:.1f} MB), {stats.skipped} already there and verified → {args.to}")
    for cid in stats.not_done:
        print(f"  not done: {cid}")
    for msg in stats.failed:
        print(f"  FAILED: {msg}", file=sys.stderr)
    return EXIT_FAILED if stats.failed else EXIT_OK


def verify_command(args: argparse.Namespace) -> int:
    from launcher.pull import verify

    grid, store = _open(args, "verify")
    if grid is None:
        return EXIT_BAD_INPUT
    try:
        verdicts = verify(store, grid.name, [c.cell_id for c in grid.cells])
    except StoreError as err:  # nothing could be read: not "nothing is done"
        print(f"launcher verify: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(err, StoreDenied) else EXIT_FAILED
    for v in verdicts:
        print(f"{v.cell_id}  {v.state:9} {v.detail}")
    counts = {s: sum(v.state == s for v in verdicts) for s in ("verified", "not-done", "corrupt")}
    print(f"{grid.name}: {counts['verified']} verified, {counts['not-done']} not done, {counts['corrupt']} corrupt")
    return EXIT_FAILED if counts["corrupt"] else EXIT_OK


def stage_command(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "peftsum.cli", "stage", args.grid]
    if args.store:
        cmd += ["--store", args.store]
    if args.out:
        cmd += ["--out", args.out]
    return subprocess.run(cmd, check=False).returncode  # the ML side does the reading; launcher stays light


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "pull": pull_command, "verify": verify_command, "stage": stage_command}
