"""``launcher render`` and ``launcher submit``: the commands that put the grid's Jobs on disk or in the cluster.
Argument handling and printing only: the work is in :mod:`launcher.k8s.render` and :mod:`launcher.k8s.submit`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from launcher.k8s import access
from launcher.k8s.access import BadInput
from launcher.k8s.follow_commands import watch_loop
from peftsum.exit_codes import EXIT_FAILED, EXIT_OK
from peftsum.spec import Grid
from peftsum.spec.cluster import ClusterSettings


def render(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.render import write_manifests

    paths = write_manifests(grid, cluster, Path(args.output))
    print(f"{len(paths) - 1} cell Jobs + 1 aggregation Job (in aggregate/) → {args.output}")
    return EXIT_OK


def submit(args: argparse.Namespace, grid: Grid, cluster: ClusterSettings) -> int:
    from launcher.k8s.render import aggregate_job, cell_jobs
    from launcher.k8s.schema import validate_all
    from launcher.k8s.submit import submit_aggregate, submit_grid, submit_report_job

    if args.concurrency < 1:
        raise BadInput(f"--concurrency must be at least 1 (got {args.concurrency})")
    problems = validate_all([*cell_jobs(grid, cluster).values(), aggregate_job(grid, cluster)])
    if problems:
        raise BadInput("rendered objects fail the Kubernetes schema:\n  " + "\n  ".join(map(str, problems[:20])))
    store = access.shared_store(grid)
    api = None if args.dry_run else access.connect(cluster.namespace, args.context)
    results = submit_grid(store, grid, api, cluster, force=args.force, dry_run=args.dry_run,
                          concurrency=args.concurrency)
    _print_submitted(grid, results)
    bad = [r for r in results if not r.ok]
    report = f"{grid.store}/{grid.name}/report/"
    waiting = cluster.report_wait_seconds is not None
    if waiting and bad:
        access.err(f"aggregation Job not created: fix the cells above and submit again (it then waits for them and "
             f"builds the report at {report})")
    elif waiting:
        started = any(r.action in ("created", "replaced") for r in results)
        name, action = submit_report_job(grid, api, cluster, cells_started=started, dry_run=args.dry_run)
        print(f"aggregation Job {name}: {action}; it waits in the cluster (at most "
              f"{cluster.report_wait_seconds / 3600:.0f} h) until every cell is done or cannot get further, then "
              f"builds the report at {report}")
    if bad or args.dry_run or not args.wait:
        return EXIT_FAILED if bad else EXIT_OK
    rc = watch_loop(store, grid, api, args.interval, None)
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
            access.err(f"  {r.action}: cell {r.cell_id} ({r.job}): {r.detail}")
