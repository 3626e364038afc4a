"""``launcher cancel``: delete a grid's Jobs (all, or one cell's) and its Pushgateway groups; never the store.

The two halves are independent: a cluster that cannot be reached does not stop the Pushgateway cleanup, and a
Pushgateway that is down does not stop the Jobs' deletion; each outcome is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from launcher.k8s import names
from launcher.k8s.client import KubeApi, KubeError


@dataclass
class Cancelled:
    """What cancel did: Jobs deleted, Pushgateway groups deleted, and what failed."""

    jobs: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def delete_jobs(api: KubeApi, grid: str, cell_id: str | None = None) -> list[str]:
    """Delete the grid's Jobs (cells and aggregation), or only one cell's; returns the names deleted."""
    deleted = []
    for job in api.list_jobs(names.selector(grid, cell_id)):
        name = job["metadata"]["name"]
        if api.delete_job(name):
            deleted.append(name)
    return sorted(deleted)


def cancel(grid: str, cell_id: str | None, api: KubeApi | None, gateway: str | None,
           api_error: str | None = None) -> Cancelled:
    """Delete Jobs through ``api`` (None: cluster unreachable, ``api_error`` says why) and the gateway's groups."""
    out = Cancelled()
    if api is not None:
        try:
            out.jobs = delete_jobs(api, grid, cell_id)
        except KubeError as err:
            out.errors.append(f"Jobs: {err}")
    else:
        out.errors.append(f"Jobs: not deleted, the cluster is unreachable: {api_error}")
    if gateway:
        from peftsum.telemetry import delete_grid_groups, redact_url

        try:
            out.groups = delete_grid_groups(gateway, grid, cell_id)
        except (OSError, ValueError) as err:
            out.errors.append(f"Pushgateway {redact_url(gateway)}: {err}")
    return out
