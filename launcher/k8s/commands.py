"""The cluster commands of ``launcher``: render, submit, status, watch, logs, cancel; ``validate --k8s`` and
``report --k8s``. Their arguments and dispatch: render and submit are in :mod:`launcher.k8s.submit_commands`,
status, watch, logs and cancel in :mod:`launcher.k8s.follow_commands`, and what they share (the cluster and store
seams tests replace, exit codes) in :mod:`launcher.k8s.access`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from launcher.k8s import access, follow_commands, submit_commands
from launcher.k8s.access import BadInput
from launcher.k8s.client import KubeError, KubeUnreachable
from peftsum.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from peftsum.spec import Grid, SpecError
from peftsum.spec.cluster import pinned
from peftsum.store import StoreError

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
        grid, cluster = access.load(args)
        handler = {"render": submit_commands.render, "submit": submit_commands.submit,
                   "status": follow_commands.status, "watch": follow_commands.watch, "logs": follow_commands.logs,
                   "cancel": follow_commands.cancel}[args.command]
        return handler(args, grid, cluster)
    except (SpecError, BadInput) as err:
        access.err(f"{prog}: {err}")
        return EXIT_BAD_INPUT
    except KubeUnreachable as err:
        access.err(f"{prog}: {err}")
        return EXIT_FAILED
    except KubeError as err:
        access.err(f"{prog}: Kubernetes API error: {err}")
        return EXIT_FAILED
    except StoreError as err:
        access.err(f"{prog}: store error: {err}")
        return EXIT_FAILED


def validate_k8s(grid: Grid, version: str) -> int:
    """``launcher validate --k8s VERSION``: every rendered object against that version's schema."""
    from launcher.k8s.render import aggregate_job, cell_jobs
    from launcher.k8s.schema import SchemaError, validate_all

    try:
        objects = [*cell_jobs(grid).values(), aggregate_job(grid, grid.cluster)]
        problems = validate_all(objects, version)
    except SpecError as err:
        access.err(f"launcher validate: {err}")
        return EXIT_BAD_INPUT
    except SchemaError as err:
        access.err(f"launcher validate: --k8s {version}: {err}")
        return EXIT_BAD_INPUT
    if not pinned(grid.cluster.image or ""):
        access.err(f"launcher validate: warning: {grid.source}: cluster.image {grid.cluster.image!r} is a tag: pin it "
                   f"by digest (…@sha256:<64 hex>, as `docker push` prints it) so every pod runs the same image")
    for problem in problems:
        access.err(f"launcher validate: {grid.source}: {problem}")
    if problems:
        return EXIT_BAD_INPUT
    print(f"{len(objects)} objects valid against the Kubernetes {version} schema (strict)")
    return EXIT_OK


def report_k8s(args: argparse.Namespace) -> int:
    """``launcher report --k8s``: create the aggregation Job (replacing a finished one)."""
    from launcher.k8s.submit import submit_aggregate

    try:
        grid, cluster = access.load(args)
        access.require_s3(grid)
        name, action = submit_aggregate(grid, access.connect(cluster.namespace, args.context), cluster)
    except (SpecError, BadInput) as err:
        access.err(f"launcher report: {err}")
        return EXIT_BAD_INPUT
    except KubeError as err:
        access.err(f"launcher report: {err}")
        return EXIT_FAILED
    print(f"aggregation Job {name}: {action}; the report goes to {grid.store}/{grid.name}/report/")
    return EXIT_OK
