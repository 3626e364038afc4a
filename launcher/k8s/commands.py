"""The cluster commands of ``launcher``: render, submit, status, watch, logs, cancel; ``validate --k8s`` and
``report --k8s``. Argument parsing and printing only: the work is in the modules named for it.

The cluster is reached through :func:`connect` (tests replace it with a fake :class:`KubeApi`); stores through
:func:`open_store`. Exit codes: 0 success, 1 something failed on the cluster (named in the output), 2 bad input
(grid, arguments, a store that pods cannot share) before any API call.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from launcher.k8s.client import KubeApi, KubeError, KubeUnreachable
from peftsum.spec import Grid, SpecError, load_grid
from peftsum.spec.cluster import ClusterSettings, dns_label, http_url, pinned
from peftsum.store import Store, StoreError
from peftsum.store import open_store as _open_store

EXIT_OK, EXIT_FAILED, EXIT_BAD = 0, 1, 2
DEFAULT_CONCURRENCY = 8

RENDER_EPILOG = """examples:
  launcher render examples/paper.yaml -o manifests/      # manifests/paper-<cell_id>.yaml, one Job per cell
  kubectl apply -f manifests/                            # what `launcher submit` does, minus the store checks
  kubectl apply -f manifests/aggregate/                  # the report, once the cells are done

Writes kubectl-appliable YAML, one file per object; rendering twice gives identical bytes."""

SUBMIT_EPILOG = """examples:
  launcher submit examples/paper.yaml --dry-run          # validate, list what would be created
  launcher submit examples/paper.yaml --wait             # ... and watch to the end here
  launcher submit grid.yaml --context gpu --namespace ml # another kube context and namespace
  launcher submit grid.yaml --force                      # replace Jobs whose rendered spec changed

Writes grid.json and every spec.json to the (s3://) store first, skips cells already done, leaves identical Jobs
alone. With the cells it creates the aggregation Job <grid>-aggregate, which waits in the cluster until every cell
is done or cannot get further (cluster.report_wait_seconds at most), then builds the report: closing the laptop
is fine. exit codes: 0 all submitted, 1 some cell failed to submit (named) or conflicts, 2 invalid grid/store."""

STATUS_EPILOG = """examples:
  launcher status examples/paper.yaml                    # done / running / pending / failed per cell, with reasons
  launcher status examples/paper.yaml --json             # one object per cell
  launcher status grid.yaml --store-only                 # no cluster: the store's status.json alone

The store decides done; the cluster explains failures a cell cannot report (OOMKilled, deadline, image pull)."""

WATCH_EPILOG = """examples:
  launcher watch examples/paper.yaml                     # print each change until every cell is done or failed
  launcher watch grid.yaml --interval 30 --timeout 3600

exit codes: 0 every cell done, 1 some cell failed or the timeout passed."""

LOGS_EPILOG = """examples:
  launcher logs examples/paper.yaml 3f2a9c81d0e4         # the newest pod's log of that cell
  launcher logs examples/paper.yaml 3f2a -f --tail 50    # a unique id prefix works; follow the log"""

CANCEL_EPILOG = """examples:
  launcher cancel examples/paper.yaml --all              # delete every Job of the grid and its Pushgateway groups
  launcher cancel examples/paper.yaml 3f2a9c81d0e4       # one cell
  launcher cancel grid.yaml --all --pushgateway http://localhost:9091   # e.g. through a port-forward

Never touches the store: resubmitting resumes from the cells' checkpoints. If the cluster cannot be reached, the
Pushgateway groups are still deleted and the command exits 1."""


def connect(namespace: str, context: str | None) -> KubeApi:
    """The cluster API for ``namespace`` (replaced by a fake in tests)."""
    from launcher.k8s.client import KubeClient

    return KubeClient(namespace, context)


def open_store(uri: str) -> Store:
    """The store for ``uri`` (replaced by a local store in tests)."""
    return _open_store(uri)


def _raw(text: str) -> Callable[..., argparse.ArgumentParser]:
    return lambda sub, name, help: sub.add_parser(name, help=help, epilog=text,
                                                  formatter_class=argparse.RawDescriptionHelpFormatter)


def add_parsers(sub: Any) -> None:
    """Add render, submit, status, watch, logs and cancel to the ``launcher`` subparsers."""
    ren = _raw(RENDER_EPILOG)(sub, "render", "write one Kubernetes Job manifest per cell")
    ren.add_argument("grid", help="grid.yaml")
    ren.add_argument("-o", "--output", required=True, help="folder for the YAML files")
    ren.add_argument("--store", help="store URI (default: the grid's store)")
    ren.add_argument("--namespace", help="namespace (default: cluster.namespace)")

    sm = _raw(SUBMIT_EPILOG)(sub, "submit", "create one Kubernetes Job per cell not done yet")
    sm.add_argument("grid", help="grid.yaml")
    _cluster_args(sm)
    sm.add_argument("--dry-run", action="store_true", help="validate and list, create nothing, write nothing")
    sm.add_argument("--wait", action="store_true", help="watch here until every cell ends (the report is built "
                                                         "in the cluster either way)")
    sm.add_argument("--force", action="store_true", help="replace Jobs whose rendered spec changed, and failed Jobs")
    sm.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                    help="cells handled at once: store reads and API calls (default 8)")
    sm.add_argument("--interval", type=float, default=10.0, help="--wait: seconds between polls")

    st = _raw(STATUS_EPILOG)(sub, "status", "state of every cell, from the store and the cluster")
    st.add_argument("grid", help="grid.yaml")
    _cluster_args(st)
    st.add_argument("--json", action="store_true", help="print JSON")
    st.add_argument("--store-only", action="store_true", help="do not ask the cluster")

    wa = _raw(WATCH_EPILOG)(sub, "watch", "follow the grid until every cell is done or failed")
    wa.add_argument("grid", help="grid.yaml")
    _cluster_args(wa)
    wa.add_argument("--interval", type=float, default=10.0, help="seconds between polls (default 10)")
    wa.add_argument("--timeout", type=float, help="give up after this many seconds")

    lg = _raw(LOGS_EPILOG)(sub, "logs", "print a cell's pod log")
    lg.add_argument("grid", help="grid.yaml")
    lg.add_argument("cell", help="cell id (or a unique prefix)")
    _cluster_args(lg, store=False)
    lg.add_argument("-f", "--follow", action="store_true", help="follow the log")
    lg.add_argument("--tail", type=int, help="only the last N lines")

    ca = _raw(CANCEL_EPILOG)(sub, "cancel", "delete the grid's Jobs and Pushgateway groups (never the store)")
    ca.add_argument("grid", help="grid.yaml")
    ca.add_argument("cell", nargs="?", help="cell id (or a unique prefix); or --all")
    ca.add_argument("--all", action="store_true", help="every Job of the grid")
    _cluster_args(ca, store=False)
    ca.add_argument("--pushgateway", help="Pushgateway URL (default: cluster.pushgateway)")


def _cluster_args(p: argparse.ArgumentParser, store: bool = True) -> None:
    if store:
        p.add_argument("--store", help="store URI (default: the grid's store)")
    p.add_argument("--context", help="kube context (default: the current one)")
    p.add_argument("--namespace", help="namespace (default: cluster.namespace)")


COMMANDS = ("render", "submit", "status", "watch", "logs", "cancel")


def run(args: argparse.Namespace) -> int:
    """Dispatch one of :data:`COMMANDS`."""
    prog = f"launcher {args.command}"
    try:
        grid, cluster = _load(args)
        handler = {"render": _render, "submit": _submit, "status": _status, "watch": _watch, "logs": _logs,
                   "cancel": _cancel}[args.command]
        return handler(args, grid, cluster)
    except (SpecError, BadInput) as err:
        _err(f"{prog}: {err}")
        return EXIT_BAD
    except KubeUnreachable as err:
        _err(f"{prog}: {err}")
        return EXIT_FAILED
    except KubeError as err:
        _err(f"{prog}: Kubernetes API error: {err}")
        return EXIT_FAILED
    except StoreError as err:
        _err(f"{prog}: store error: {err}")
        return EXIT_FAILED


class BadInput(Exception):
    """An argument that cannot work (exit 2, before any API call)."""


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _load(args: argparse.Namespace) -> tuple[Grid, ClusterSettings]:
    grid = load_grid(args.grid, store=getattr(args, "store", None))
    cluster = grid.cluster
    if getattr(args, "namespace", None):
        cluster = dataclasses.replace(cluster, namespace=dns_label(args.namespace, "--namespace"))
    return grid, cluster


def _require_s3(grid: Grid) -> None:
    """Pods on other machines read specs and write results in the store: it must be s3://."""
    if not grid.store.startswith("s3://"):
        raise BadInput(f"{grid.source}: store: pods need a shared store: an s3:// URI, not {grid.store!r} "
                       f"(set `store:` in the grid or pass --store s3://bucket/prefix)")


def _shared_store(grid: Grid) -> Store:
    _require_s3(grid)
    return open_store(grid.store)


def _cell_id(grid: Grid, text: str) -> str:
    matches = [c.cell_id for c in grid.cells if c.cell_id.startswith(text.lower())] if len(text) >= 4 else []
    if len(matches) != 1:
        what = "no cell" if not matches else f"{len(matches)} cells"
        raise BadInput(f"{text!r}: {what} of grid {grid.name} match (give a cell id or a unique prefix of ≥ 4)")
    return matches[0]


def _render(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.render import write_manifests

    paths = write_manifests(grid, cluster, Path(args.output))
    print(f"{len(paths) - 1} cell Jobs + 1 aggregation Job (in aggregate/) → {args.output}")
    return EXIT_OK


def _submit(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.render import aggregate_job, cell_jobs
    from launcher.k8s.schema import validate_all
    from launcher.k8s.submit import submit_aggregate, submit_grid, submit_report_job

    if args.concurrency < 1:
        raise BadInput(f"--concurrency must be at least 1 (got {args.concurrency})")
    problems = validate_all([*cell_jobs(grid, cluster).values(), aggregate_job(grid, cluster)])
    if problems:
        raise BadInput("rendered objects fail the Kubernetes schema:\n  " + "\n  ".join(map(str, problems[:20])))
    store = _shared_store(grid)
    api = None if args.dry_run else connect(cluster.namespace, args.context)
    results = submit_grid(store, grid, api, cluster, force=args.force, dry_run=args.dry_run,
                          concurrency=args.concurrency)
    _print_submitted(grid, results)
    bad = [r for r in results if not r.ok]
    report = f"{grid.store}/{grid.name}/report/"
    waiting = cluster.report_wait_seconds is not None
    if waiting and bad:
        _err(f"aggregation Job not created: fix the cells above and submit again (it then waits for them and "
             f"builds the report at {report})")
    elif waiting:
        started = any(r.action in ("created", "replaced") for r in results)
        name, action = submit_report_job(grid, api, cluster, cells_started=started, dry_run=args.dry_run)
        print(f"aggregation Job {name}: {action}; it waits in the cluster (at most "
              f"{cluster.report_wait_seconds / 3600:.0f} h) until every cell is done or cannot get further, then "
              f"builds the report at {report}")
    if bad or args.dry_run or not args.wait:
        return EXIT_FAILED if bad else EXIT_OK
    rc = _watch_loop(store, grid, api, args.interval, None)
    if not waiting:
        name, action = submit_aggregate(grid, api, cluster)  # type: ignore[arg-type]
        print(f"aggregation Job {name}: {action}; `launcher status` / the report at {report}")
    return rc


def _print_submitted(grid: Grid, results: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{grid.name}: {len(results)} cells", title_justify="left")
    for col in ("job", "model", "method", "dataset", "action", "detail"):
        table.add_column(col)
    for r in results:
        axes = r.cell.labels
        table.add_row(r.job, axes["model"], axes["method"], axes["dataset"], r.action, r.detail or "")
    console = Console()
    console.print(table)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    print(", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
    for r in results:
        if not r.ok:
            _err(f"  {r.action}: cell {r.cell_id} ({r.job}): {r.detail}")


def _maybe_api(args: argparse.Namespace, cluster: ClusterSettings) -> KubeApi | None:
    if getattr(args, "store_only", False):
        return None
    try:
        return connect(cluster.namespace, args.context)
    except KubeUnreachable as err:
        _err(f"warning: {err}; showing the store's view only")
        return None


def _status(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.status import grid_states

    states = grid_states(open_store(grid.store), grid, _maybe_api(args, cluster))
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


def _watch_loop(store: Store, grid: Grid, api: KubeApi | None, interval: float, timeout: float | None) -> int:
    from launcher.k8s.status import summary
    from launcher.k8s.watch import watch

    def change(st: Any) -> None:
        progress = f" {100 * st.progress:.0f}%" if isinstance(st.progress, (int, float)) else ""
        print(f"{st.cell_id} {st.model}/{st.method}/{st.dataset}: {st.state}{progress}"
              f"{': ' + st.reason if st.reason else ''}", flush=True)

    states, finished = watch(store, grid, api, interval=interval, timeout=timeout, on_change=change)
    counts = summary(states)
    print(", ".join(f"{n} {state}" for state, n in counts.items()))
    if not finished:
        _err(f"launcher watch: stopped after {timeout:.0f}s with cells still pending or running")
    return EXIT_OK if finished and not counts["failed"] else EXIT_FAILED


def _watch(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    return _watch_loop(open_store(grid.store), grid, _maybe_api(args, cluster), args.interval, args.timeout)


def _logs(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.logs import cell_log

    cell_id = _cell_id(grid, args.cell)
    api = connect(cluster.namespace, args.context)
    try:
        for line in cell_log(api, grid.name, cell_id, tail=args.tail, follow=args.follow):
            print(line, flush=True)
    except LookupError as err:
        _err(f"launcher logs: {err}")
        return EXIT_FAILED
    return EXIT_OK


def _cancel(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.cancel import cancel
    from peftsum.telemetry import redact_url

    if bool(args.cell) == bool(args.all):
        raise BadInput("give one cell id or --all")
    cell_id = _cell_id(grid, args.cell) if args.cell else None
    gateway = http_url(args.pushgateway, "--pushgateway") if args.pushgateway else cluster.pushgateway
    api, why = None, None
    try:
        api = connect(cluster.namespace, args.context)
    except KubeUnreachable as err:
        why = str(err)
    out = cancel(grid.name, cell_id, api, gateway, why)
    what = f"cell {cell_id}" if cell_id else f"grid {grid.name}"
    print(f"{what}: deleted {len(out.jobs)} Job(s)" + (f": {', '.join(out.jobs)}" if out.jobs else ""))
    if gateway:
        print(f"{what}: deleted {len(out.groups)} Pushgateway group(s) on {redact_url(gateway)}")
    else:
        print("no Pushgateway configured (cluster.pushgateway or --pushgateway): no groups deleted")
    for e in out.errors:
        _err(f"launcher cancel: {e}")
    return EXIT_FAILED if out.errors else EXIT_OK


def validate_k8s(grid: Grid, version: str) -> int:
    """``launcher validate --k8s VERSION``: every rendered object against that version's schema."""
    from launcher.k8s.render import aggregate_job, cell_jobs
    from launcher.k8s.schema import SchemaError, validate_all

    try:
        objects = [*cell_jobs(grid).values(), aggregate_job(grid, grid.cluster)]
        problems = validate_all(objects, version)
    except SpecError as err:
        _err(f"launcher validate: {err}")
        return EXIT_BAD
    except SchemaError as err:
        _err(f"launcher validate: --k8s {version}: {err}")
        return EXIT_BAD
    if not pinned(grid.cluster.image or ""):
        _err(f"launcher validate: warning: {grid.source}: cluster.image {grid.cluster.image!r} is a tag: pin it by "
             f"digest (…@sha256:<64 hex>, as `docker push` prints it) so every pod runs the same image")
    for problem in problems:
        _err(f"launcher validate: {grid.source}: {problem}")
    if problems:
        return EXIT_BAD
    print(f"{len(objects)} objects valid against the Kubernetes {version} schema (strict)")
    return EXIT_OK


def report_k8s(args: argparse.Namespace) -> int:
    """``launcher report --k8s``: create the aggregation Job (replacing a finished one)."""
    from launcher.k8s.submit import submit_aggregate

    try:
        grid, cluster = _load(args)
        _require_s3(grid)
        name, action = submit_aggregate(grid, connect(cluster.namespace, args.context), cluster)
    except (SpecError, BadInput) as err:
        _err(f"launcher report: {err}")
        return EXIT_BAD
    except KubeError as err:
        _err(f"launcher report: {err}")
        return EXIT_FAILED
    print(f"aggregation Job {name}: {action}; the report goes to {grid.store}/{grid.name}/report/")
    return EXIT_OK
