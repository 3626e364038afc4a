"""``launcher status``, ``watch``, ``logs`` and ``cancel``: the commands that follow a submitted grid, and stop it.
Argument handling and printing only: the work is in :mod:`launcher.k8s.status`, ``watch``, ``logs``, ``cancel``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from launcher.k8s import access
from launcher.k8s.access import BadInput
from launcher.k8s.client import KubeApi, KubeUnreachable
from peftsum.exit_codes import EXIT_FAILED, EXIT_OK
from peftsum.spec import Grid
from peftsum.spec.cluster import ClusterSettings, http_url
from peftsum.store import Store


def status(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.status import grid_states

    states = grid_states(access.open_store(grid.store), grid, access.maybe_api(args, cluster))
    if args.json:
        print(json.dumps([dataclasses.asdict(s) for s in states], indent=2))
        return EXIT_OK
    _print_states(grid, states)
    return EXIT_OK


def _print_states(grid: Grid, states: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from launcher.k8s.status import summary

    table = Table(title=f"{grid.name}: {len(states)} cells", title_justify="left")
    for col in ("cell_id", "model", "method", "dataset", "state", "progress", "reason"):
        table.add_column(col)
    for s in states:
        progress = f"{100 * s.progress:.0f}%" if isinstance(s.progress, (int, float)) else ""
        table.add_row(s.cell_id, s.model, s.method, s.dataset, s.state, progress, s.reason or "")
    Console().print(table)
    print(", ".join(f"{n} {state}" for state, n in summary(states).items()))


def watch_loop(store: Store, grid: Grid, api: KubeApi | None, interval: float, timeout: float | None) -> int:
    from launcher.k8s.status import summary
    from launcher.k8s.watch import watch as follow

    def change(st: Any) -> None:
        progress = f" {100 * st.progress:.0f}%" if isinstance(st.progress, (int, float)) else ""
        print(f"{st.cell_id} {st.model}/{st.method}/{st.dataset}: {st.state}{progress}"
              f"{': ' + st.reason if st.reason else ''}", flush=True)

    states, finished = follow(store, grid, api, interval=interval, timeout=timeout, on_change=change)
    counts = summary(states)
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    if not finished:
        access.err(f"launcher watch: stopped after {timeout:.0f}s with cells still pending or running")
    return EXIT_OK if finished and not counts["failed"] else EXIT_FAILED


def watch(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    return watch_loop(access.open_store(grid.store), grid, access.maybe_api(args, cluster), args.interval,
                      args.timeout)


def logs(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.logs import cell_log

    cell_id = access.cell_id(grid, args.cell)
    api = access.connect(cluster.namespace, args.context)
    try:
        for line in cell_log(api, grid.name, cell_id, tail=args.tail, follow=args.follow):
            print(line, flush=True)
    except LookupError as err:
        access.err(f"launcher logs: {err}")
        return EXIT_FAILED
    return EXIT_OK


def cancel(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.cancel import cancel as cancel_grid
    from peftsum.telemetry import redact_url

    if bool(args.cell) == bool(args.all):
        raise BadInput("give one cell id or --all")
    cell_id = access.cell_id(grid, args.cell) if args.cell else None
    gateway = http_url(args.pushgateway, "--pushgateway") if args.pushgateway else cluster.pushgateway
    api, why = None, None
    try:
        api = access.connect(cluster.namespace, args.context)
    except KubeUnreachable as err:
        why = str(err)
    out = cancel_grid(grid.name, cell_id, api, gateway, why)
    what = f"cell {cell_id}" if cell_id else f"grid {grid.name}"
    print(f"{what}: deleted {len(out.jobs)} Job(s)" + (f": {', '.join(out.jobs)}" if out.jobs else ""))
    if gateway:
        print(f"{what}: deleted {len(out.groups)} Pushgateway group(s) on {redact_url(gateway)}")
    else:
        print("no Pushgateway configured (cluster.pushgateway or --pushgateway): no groups deleted")
    for e in out.errors:
        access.err(f"launcher cancel: {e}")
    return EXIT_FAILED if out.errors else EXIT_OK
