"""``launcher logs``: the log of a cell's newest pod (the current or last attempt)."""

from __future__ import annotations

from collections.abc import Iterator

from launcher.k8s import names
from launcher.k8s.client import KubeApi


def newest_pod(api: KubeApi, grid: str, cell_id: str) -> str | None:
    """Name of the cell's most recently created pod, or None."""
    pods = api.list_pods(names.selector(grid, cell_id))
    if not pods:
        return None
    pods.sort(key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
    return pods[-1]["metadata"]["name"]


def cell_log(api: KubeApi, grid: str, cell_id: str, tail: int | None = None, follow: bool = False) -> Iterator[str]:
    """Lines of the cell's newest pod log; LookupError when the cell has no pod (yet, or any more)."""
    pod = newest_pod(api, grid, cell_id)
    if pod is None:
        raise LookupError(f"cell {cell_id} has no pod in namespace {api.namespace} (not started, or removed with "
                          f"its Job); its status.json in the store has the last reason")
    return api.pod_log(pod, container="cell", tail=tail, follow=follow)
