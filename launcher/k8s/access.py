"""What every cluster command shares: reaching the cluster (:func:`connect`) and the store (:func:`open_store`),
the seams tests replace with a fake :class:`KubeApi` and a local store; loading the grid with its command-line
overrides; resolving a cell id; the error for input that cannot work (exit 2 before any API call; the codes are
``peftsum.exit_codes``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from launcher.k8s.client import KubeApi, KubeUnreachable
from peftsum.spec import Grid, load_grid
from peftsum.spec.cluster import ClusterSettings, dns_label
from peftsum.store import Store
from peftsum.store import open_store as _open_store


class BadInput(Exception):
    """An argument that cannot work (exit 2, before any API call)."""


def err(text: str) -> None:
    print(text, file=sys.stderr)


def connect(namespace: str, context: str | None) -> KubeApi:
    """The cluster API for ``namespace`` (replaced by a fake in tests)."""
    from launcher.k8s.client import KubeClient

    return KubeClient(namespace, context)


def open_store(uri: str) -> Store:
    """The store for ``uri`` (replaced by a local store in tests)."""
    return _open_store(uri)


def load(args: argparse.Namespace) -> tuple[Grid, ClusterSettings]:
    """The grid (``--store`` overriding its store) and its cluster settings (``--namespace`` overriding)."""
    grid = load_grid(args.grid, store=getattr(args, "store", None))
    cluster = grid.cluster
    if getattr(args, "namespace", None):
        cluster = dataclasses.replace(cluster, namespace=dns_label(args.namespace, "--namespace"))
    return grid, cluster


def require_s3(grid: Grid) -> None:
    """Pods on other machines read specs and write results in the store: it must be s3://."""
    if not grid.store.startswith("s3://"):
        raise BadInput(f"{grid.source}: store: pods need a shared store: an s3:// URI, not {grid.store!r} "
                       f"(set `store:` in the grid or pass --store s3://bucket/prefix)")


def shared_store(grid: Grid) -> Store:
    """The grid's store, which must be one the pods share."""
    require_s3(grid)
    return open_store(grid.store)


def cell_id(grid: Grid, text: str) -> str:
    """The id of the grid's one cell that ``text`` (an id or a unique prefix of ≥ 4) names."""
    matches = [c.cell_id for c in grid.cells if c.cell_id.startswith(text.lower())] if len(text) >= 4 else []
    if len(matches) != 1:
        what = "no cell" if not matches else f"{len(matches)} cells"
        raise BadInput(f"{text!r}: {what} of grid {grid.name} match (give a cell id or a unique prefix of ≥ 4)")
    return matches[0]


def maybe_api(args: argparse.Namespace, cluster: ClusterSettings) -> KubeApi | None:
    """The cluster API, or None with ``--store-only`` or when the cluster cannot be reached (a warning)."""
    if getattr(args, "store_only", False):
        return None
    try:
        return connect(cluster.namespace, args.context)
    except KubeUnreachable as error:
        err(f"warning: {error}; showing the store's view only")
        return None
