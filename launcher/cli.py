"""``launcher``: validate a grid, run it on this machine or submit it to Kubernetes, follow it, build its report."""

from __future__ import annotations

import argparse
import sys
import threading
import time

from launcher import store_commands
from launcher.k8s import commands as k8s_commands
from peftsum.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from peftsum.spec import SpecError, load_grid

VALIDATE_EPILOG = """examples:
  launcher validate examples/paper.yaml            # table of cell id / model / method / dataset
  launcher validate examples/paper.yaml --json     # {"grid": ..., "cells": [...]}
  launcher validate examples/paper.yaml --json --resolved  # ... each with every setting the cell runs with
  launcher validate --compat                       # the model x method compatibility table
  launcher validate examples/paper.yaml --k8s 1.31 # and every rendered Job against Kubernetes 1.31's schema

exit codes: 0 valid, 2 invalid (the message names the file, the field path and the value)."""

RUN_EPILOG = """examples:
  launcher run examples/quickstart.yaml                 # results in ./runs/quickstart/
  launcher run grid.yaml --store /data/runs --jobs 2    # two cells at a time

Each cell runs in its own `peftsum cell` process; done cells are skipped, so rerunning resumes the grid. A cell
another run is running (its lease in the store) is skipped. SIGTERM/Ctrl-C reaches the running cells: each
checkpoints and stops, and a rerun resumes them.
exit codes: 0 every cell done, 1 some cell failed (the others still ran; see the report), is being run by
another launcher, or the store failed,
2 invalid grid or a store that refuses access, 3 interrupted by a signal (rerun to resume)."""


REPORT_EPILOG = """examples:
  launcher report examples/quickstart.yaml                # ./runs/quickstart/report/index.html
  launcher report grid.yaml --store /data/runs --open     # and open it in the default browser
  launcher report examples/paper.yaml --k8s               # build it in the cluster (the aggregation Job)

Reads JSON only (results, predictions, eda.json): no ML stack. Cells not done are listed, never fatal.
exit codes: 0 report written, 1 the store failed, 2 invalid grid, or a grid the store does not hold (its grids
are listed)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launcher", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check a grid and list its cells", epilog=VALIDATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("grid", nargs="?", help="grid.yaml")
    v.add_argument("--json", action="store_true", help="print the cells as JSON")
    v.add_argument("--resolved", action="store_true", help="with each cell's fully resolved settings (JSON): presets, "
                                                           "defaults, model/method layers and names resolved")
    v.add_argument("--compat", action="store_true", help="print the compatibility table")
    v.add_argument("--k8s", metavar="VERSION", help="also validate the rendered objects against this Kubernetes "
                                                   "version's OpenAPI schema (e.g. 1.31)")
    r = sub.add_parser("run", help="run a grid on this machine, then build the report", epilog=RUN_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("grid", help="grid.yaml")
    r.add_argument("--store", help="store URI (default: the grid's store, else ./runs)")
    r.add_argument("--jobs", type=int, default=1, help="cells at a time (default 1)")
    rep = sub.add_parser("report", help="build the comparison report from the store", epilog=REPORT_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("grid", help="grid.yaml")
    rep.add_argument("--store", help="store URI (default: the grid's store, else ./runs)")
    rep.add_argument("--open", action="store_true", help="open index.html in a browser")
    rep.add_argument("--k8s", action="store_true", help="submit the aggregation Job instead of aggregating here")
    rep.add_argument("--context", help="--k8s: kube context (default: the current one)")
    rep.add_argument("--namespace", help="--k8s: namespace (default: cluster.namespace)")
    k8s_commands.add_parsers(sub)
    store_commands.add_parsers(sub)
    args = parser.parse_args(argv)

    if args.command == "validate":
        return _validate(args)
    if args.command == "report":
        return k8s_commands.report_k8s(args) if args.k8s else _report(args)
    if args.command in k8s_commands.COMMANDS:
        return k8s_commands.run(args)
    if args.command in store_commands.COMMANDS:
        return store_commands.COMMANDS[args.command](args)
    return _run(args)


def _report(args: argparse.Namespace) -> int:
    from peftsum.report import aggregate
    from peftsum.store import StoreError, open_store

    try:
        grid = load_grid(args.grid, store=args.store)
        path = aggregate(open_store(grid.store), grid.name)
    except SpecError as err:
        print(f"launcher report: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreError as err:  # a grid the store does not hold is a wrong name or store: 2
        from peftsum.report.collect import GridNotFound

        print(f"launcher report: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT if isinstance(err, GridNotFound) else EXIT_FAILED
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(f"file://{path}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from launcher.validate import compat_rows, print_summary

    if args.compat:
        for arch, method, reason in compat_rows():
            print(f"{arch:8} {method:8} {reason}")
        if not args.grid:
            return EXIT_OK
    if not args.grid:
        print("launcher validate: a grid file is required (or --compat)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        grid = load_grid(args.grid)
    except SpecError as err:
        print(f"launcher validate: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print_summary(grid, args.json, args.resolved)
    if args.k8s:
        return k8s_commands.validate_k8s(grid, args.k8s)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from launcher.local import run_grid
    from peftsum.exit_codes import EXIT_RETRY
    from peftsum.report import aggregate
    from peftsum.store import StoreDenied, StoreError, layout, open_store

    console = Console(stderr=True, emoji=False, highlight=False)
    if args.jobs < 1:
        console.print(f"launcher run: --jobs must be at least 1 (got {args.jobs})")
        return EXIT_BAD_INPUT
    try:
        grid = load_grid(args.grid, store=args.store)
        store = open_store(grid.store)
    except SpecError as err:
        console.print(f"launcher run: {err}", markup=False)
        return EXIT_BAD_INPUT
    except StoreError as err:
        console.print(f"launcher run: {err}", markup=False)
        return EXIT_BAD_INPUT
    total = len(grid.cells)
    finished = {"n": 0}
    running: dict[str, float] = {}
    lock = threading.Lock()
    t_start = time.monotonic()

    def label(o) -> str:
        lab = o.cell.labels
        return f"{o.cell.cell_id} {lab['model']}/{lab['method']}/{lab['dataset']}"

    def on_event(kind: str, o) -> None:
        with lock:
            if kind == "start":
                running[o.cell.cell_id] = time.monotonic()
                console.print(f"[{finished['n']}/{total}] start   {label(o)}", markup=False)
                return
            if kind == "repair":
                console.print(f"[{finished['n']}/{total}] repair  {label(o)}: {o.reason}; its _SUCCESS is moved "
                              "aside and the cell runs again", markup=False)
                return
            running.pop(o.cell.cell_id, None)
            finished["n"] += 1
            extra = f" ({o.seconds:.0f}s)" if kind == "done" else (f": {o.reason}" if o.reason else "")
            console.print(f"[{finished['n']}/{total}] {kind:7} {label(o)}{extra}", markup=False)

    stop = threading.Event()

    def heartbeat() -> None:  # live progress of running cells from their status.json
        while not stop.wait(10):
            with lock:
                ids = list(running)
            for cid in ids:
                st = layout.read_status(store, grid.name, cid) or {}
                if st.get("step"):
                    console.print(f"        … {cid} step {st['step']}/{st.get('total_steps')} "
                                  f"loss {st.get('loss', float('nan')):.3f}", markup=False)

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    console.print(f"{grid.name}: {total} cells → {store.uri}/{grid.name}", markup=False)
    try:
        outcomes = run_grid(store, grid, jobs=args.jobs, on_event=on_event)
    except StoreError as err:
        console.print(f"launcher run: the store cannot be used: {err}", markup=False)
        return EXIT_BAD_INPUT if isinstance(err, StoreDenied) else EXIT_FAILED
    finally:
        stop.set()
        beat.join(timeout=30)  # the report forks workers: no thread may be mid-I/O holding a lock then
    report_failed = False
    try:
        report = aggregate(store, grid.name)
    except StoreError as err:  # a full or read-only store: say so, the cells' own results stand
        report, report_failed = f"not written ({err})", True
    failed = [o for o in outcomes if o.state == "failed"]
    interrupted = [o for o in outcomes if o.state == "interrupted"]
    elsewhere = [o for o in outcomes if o.state == "elsewhere"]
    done = sum(o.state in ("done", "skipped") for o in outcomes)
    console.print(f"{done}/{total} cells done, {len(failed)} failed"
                  + (f", {len(interrupted)} interrupted (rerun to resume)" if interrupted else "")
                  + (f", {len(elsewhere)} being run by another launcher" if elsewhere else "")
                  + f" in {time.monotonic() - t_start:.0f}s; report: {report}", markup=False)
    for o in failed:
        console.print(f"  failed {label(o)}: {o.reason}", markup=False)
    if interrupted:
        return EXIT_RETRY
    return EXIT_FAILED if failed or elsewhere or report_failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
