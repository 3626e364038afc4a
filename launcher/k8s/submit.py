"""``launcher submit``: write the specs to the store, then create one Job per cell that is not done.

The store is written first (``grid.json`` and every ``spec.json``): a pod reads its spec from there, so a Job can
never run a spec the store does not hold. Cells with a verified ``_SUCCESS`` are skipped. A Job that already
exists with the same rendered-Job hash is left alone (resubmitting is a no-op); one with another hash means the
grid changed under a live Job: an error naming the cell, unless ``force`` replaces it. A failed Job with the same
hash is only recreated with ``force`` (the failure is reported, not silently retried). Creation runs with bounded
concurrency; every failure is collected and reported with its cell, none is swallowed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from launcher.k8s import names, render
from launcher.k8s.client import KubeApi, KubeError
from launcher.local import write_specs
from peftsum.spec import Cell, Grid
from peftsum.spec.cluster import ClusterSettings
from peftsum.store import Store, layout

# action of one cell: created | unchanged | replaced | skipped (done) | conflict | failed | planned (dry run)
OK_ACTIONS = ("created", "unchanged", "replaced", "skipped", "planned")


@dataclass(frozen=True)
class Submitted:
    """What submit did for one cell."""

    cell: Cell
    cell_id: str
    job: str
    action: str
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.action in OK_ACTIONS


def existing_hash(job: dict[str, Any]) -> str | None:
    return ((job.get("metadata") or {}).get("annotations") or {}).get(names.ANNOTATION_HASH)


def _failed(job: dict[str, Any]) -> bool:
    return any(c.get("type") == "Failed" and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def create_retrying(api: KubeApi, body: dict[str, Any], retries: int = 10, wait: float = 1.0) -> None:
    """Create ``body`` right after deleting a Job of the same name: deletion is asynchronous, so a 409 is retried."""
    for _ in range(retries):
        try:
            api.create_job(body)
            return
        except KubeError as err:
            if err.status != 409:
                raise
            time.sleep(wait)
    raise KubeError(f"Job {body['metadata']['name']} still exists after deleting it ({retries} tries)", 409)


def create_or_keep(api: KubeApi, body: dict[str, Any], force: bool, wait: float = 1.0) -> tuple[str, str | None]:
    """Create ``body`` unless the same Job exists; returns (action, detail). Raises KubeError on API failure.

    With ``force`` an existing Job whose hash differs (or that failed) is deleted and created again.
    """
    name, new_hash = body["metadata"]["name"], existing_hash(body)
    current = api.get_job(name)
    if current is None:
        try:
            api.create_job(body)
            return "created", None
        except KubeError as err:
            if err.status != 409:
                raise
            current = api.get_job(name)  # created by someone else in between: compare with that one
            if current is None:
                raise
    same = existing_hash(current) == new_hash
    if same and not (force and _failed(current)):
        return "unchanged", "Job failed earlier; --force recreates it" if _failed(current) else None
    if not force:
        return "conflict", (f"Job {name} exists with job-hash {existing_hash(current)}, the grid now renders "
                            f"{new_hash}; cancel it or resubmit with --force")
    api.delete_job(name)
    create_retrying(api, body, wait=wait)
    return "replaced", None


def submit_grid(store: Store, grid: Grid, api: KubeApi | None, cluster: ClusterSettings | None = None, *,
                force: bool = False, dry_run: bool = False, concurrency: int = 8) -> list[Submitted]:
    """Submit every not-done cell of ``grid``; one :class:`Submitted` per cell, in grid order.

    Args:
        store: where specs are written and done cells are found (an S3 store on a cluster).
        api: the cluster; may be None with ``dry_run``.
        cluster: the settings to render with (default: the grid's, e.g. with the CLI's --namespace applied).
        force: replace Jobs whose hash differs, and failed Jobs.
        dry_run: write nothing, create nothing; report what would be created.
        concurrency: at most this many cells handled at once (store reads and API calls).
    """
    cluster = cluster or grid.cluster
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
    jobs = render.cell_jobs(grid, cluster)
    if not dry_run:
        write_specs(store, grid)

    def work(cell: Cell) -> Submitted:  # the done check is a store read (S3: a request), so it runs in the pool too
        cid = cell.cell_id
        name = jobs[cid]["metadata"]["name"]
        if layout.done_manifest(store, grid.name, cid) is not None:
            return Submitted(cell, cid, name, "skipped", "done in the store")
        if dry_run or api is None:
            return Submitted(cell, cid, name, "planned")
        try:
            action, detail = create_or_keep(api, jobs[cid], force)
        except KubeError as err:
            action, detail = "failed", str(err)
        return Submitted(cell, cid, name, action, detail)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(work, grid.cells))


def _finished(job: dict[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def submit_aggregate(grid: Grid, api: KubeApi, cluster: ClusterSettings | None = None) -> tuple[str, str]:
    """``launcher report --k8s``: create the aggregation Job that builds the report now, replacing a finished
    earlier one (a report is rebuilt from the store each time). One still running (e.g. the waiting one
    ``launcher submit`` created) is left alone. Returns (Job name, action)."""
    body = render.aggregate_job(grid, cluster or grid.cluster, wait=False)
    name = body["metadata"]["name"]
    current = api.get_job(name)
    if current is None:
        api.create_job(body)
        return name, "created"
    if not _finished(current):
        return name, "running already"
    api.delete_job(name)
    create_retrying(api, body)
    return name, "replaced"


def submit_report_job(grid: Grid, api: KubeApi | None, cluster: ClusterSettings | None = None, *,
                      cells_started: bool, dry_run: bool = False, wait: float = 1.0) -> tuple[str, str]:
    """``launcher submit``: create the aggregation Job that waits in the cluster for the cells, then builds the
    report (``render.aggregate_job`` with ``wait``). Returns (Job name, action).

    A second submit of the same grid leaves it alone (same job-hash: unchanged), also once it has finished, unless
    this submit started cells (``cells_started``: created or replaced Jobs), whose results a finished report lacks.
    A submit that renders it differently (cells added or removed, another image or wait) replaces it, running or
    not: until it builds the report it only reads the store, so nothing is lost.
    """
    body = render.aggregate_job(grid, cluster or grid.cluster, wait=True)
    name = body["metadata"]["name"]
    if dry_run or api is None:
        return name, "planned"
    current = api.get_job(name)
    if current is None:
        try:
            api.create_job(body)
            return name, "created"
        except KubeError as err:
            if err.status != 409:
                raise
            current = api.get_job(name)
            if current is None:
                raise
    if existing_hash(current) == existing_hash(body) and not (cells_started and _finished(current)):
        return name, "unchanged"
    api.delete_job(name)
    create_retrying(api, body, wait=wait)
    return name, "replaced"
