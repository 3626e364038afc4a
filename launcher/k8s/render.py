"""Build the grid's Kubernetes objects: pure functions from (grid, cell, cluster settings) to dicts.

Each Job comes from a Jinja template in ``job_templates/`` parsed into data at once (:mod:`launcher.k8s.templates`),
so what the launcher validates, hashes, compares and creates is data, never text; the pod's values come from
:mod:`launcher.k8s.pod`. A grid's cell Jobs share one parse (:func:`cell_jobs`, see the templates module for why);
:func:`cell_job` renders one Job afresh, and the two agree (tested). No I/O happens here besides
:func:`write_manifests`.

The Job's hash (``peftsum.io/job-hash``) is the SHA-256 of the canonical JSON of the rendered Job without that
annotation: ``launcher submit`` compares it with the Job already in the cluster to tell "same Job, nothing to do"
from "the grid changed under an existing Job".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from launcher.k8s import names
from launcher.k8s.pod import AGGREGATE_CPU, AGGREGATE_RESOURCES, pod_metadata, pod_values, resources
from launcher.k8s.templates import AGGREGATE_TEMPLATE, CELL_TEMPLATE, Skeleton, render_text
from peftsum.spec import Cell, Grid
from peftsum.spec.cluster import ClusterSettings

REPORT_BUILD_SECONDS = 7200  # the aggregation Job's time to build the report once its wait is over
OWN_VALUES = ("name", "labels", "annotations", "pod_labels", "pod_annotations", "args")  # per Job; the rest shared
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, ASCII (what :func:`job_hash` hashes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def job_hash(obj: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the object's canonical JSON, ignoring its own hash annotation."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != names.ANNOTATION_HASH}
    return _digest(canonical({**obj, "metadata": meta}))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its ``peftsum.io/job-hash`` annotation set."""
    obj["metadata"].setdefault("annotations", {})[names.ANNOTATION_HASH] = job_hash(obj)
    return obj


def job_values(cluster: ClusterSettings, pod: dict[str, Any], backoff_limit: int) -> dict[str, Any]:
    """The values every Job of a kind shares: namespace, queue, retry and time limits, the pod."""
    return {"namespace": cluster.namespace, "queue": cluster.queue, "suspend": bool(cluster.queue),
            "backoff_limit": backoff_limit, "active_deadline_seconds": cluster.active_deadline_seconds,
            "ttl_seconds_after_finished": cluster.ttl_seconds_after_finished, "pod": pod}


def _queued(labels: dict[str, str], cluster: ClusterSettings) -> dict[str, str]:
    """Labels plus Kueue's queue label when the grid names a queue."""
    return {**labels, names.KUEUE_QUEUE: cluster.queue} if cluster.queue else labels


def cell_shared(grid: Grid, cluster: ClusterSettings) -> dict[str, Any]:
    """The template values all cell Jobs of ``grid`` share."""
    pod = pod_values(grid, cluster, container="cell", res=resources(cluster.cpu, cluster.memory, cluster.gpus),
                     placement=True)
    return job_values(cluster, pod, cluster.backoff_limit)


def cell_own(grid: Grid, cell: Cell, cluster: ClusterSettings) -> dict[str, Any]:
    """The template values of ``cell``'s Job alone (:data:`OWN_VALUES`)."""
    cell_id = cell.cell_id
    labels, annotations = _queued(names.cell_labels(grid, cell, cell_id), cluster), names.cell_annotations(cell)
    pod_labels, pod_annotations = pod_metadata(cluster, labels, annotations)
    return {"name": names.cell_job_name(grid.name, cell_id), "labels": labels, "annotations": annotations,
            "pod_labels": pod_labels, "pod_annotations": pod_annotations,
            "args": ["cell", "--store", grid.store, "--grid", grid.name, "--cell", cell_id]}


def cell_job(grid: Grid, cell: Cell, cluster: ClusterSettings) -> dict[str, Any]:
    """The Job that runs ``cell``: ``peftsum cell --store <grid.store> --grid <name> --cell <id>``."""
    return _with_hash(render_text(CELL_TEMPLATE, **cell_shared(grid, cluster), **cell_own(grid, cell, cluster)))


def cells_digest(grid: Grid) -> str:
    """A digest of the grid's cell ids (the aggregation Job's annotation: a submit that adds cells changes it)."""
    return _digest(",".join(sorted(c.cell_id for c in grid.cells)))


def aggregate_job(grid: Grid, cluster: ClusterSettings, wait: bool | None = None) -> dict[str, Any]:
    """The Job that builds the report: ``peftsum aggregate --grid <name> --store <grid.store>`` (no GPU).

    With ``wait`` (default: when ``cluster.report_wait_seconds`` is set) it is the Job ``launcher submit`` creates
    with the cells: ``--wait`` polls the store until every cell is done or cannot get further (``--max-attempts``:
    the cells' backoffLimit + 1; ``--job-deadline``: their activeDeadlineSeconds), at most
    ``report_wait_seconds``, then builds the report. Its own deadline leaves :data:`REPORT_BUILD_SECONDS` to build.
    Without it, the report is built at once (``launcher report --k8s``).
    """
    wait = cluster.report_wait_seconds is not None if wait is None else wait
    if wait and cluster.report_wait_seconds is None:
        raise ValueError("aggregate_job(wait=True) needs cluster.report_wait_seconds")
    args = ["aggregate", "--grid", grid.name, "--store", grid.store]
    values = job_values(cluster, pod_values(grid, cluster, container="aggregate", res=AGGREGATE_RESOURCES,
                                            placement=False,
                                            env=[{"name": "PEFTSUM_REPORT_WORKERS", "value": AGGREGATE_CPU}]), 2)
    if wait:
        args += ["--wait", str(cluster.report_wait_seconds), "--max-attempts", str(cluster.backoff_limit + 1)]
        if cluster.active_deadline_seconds is not None:
            args += ["--job-deadline", str(cluster.active_deadline_seconds)]
        values["active_deadline_seconds"] = cluster.report_wait_seconds + REPORT_BUILD_SECONDS
    labels = _queued(names.common_labels(grid, "aggregate"), cluster)
    annotations = {f"{names.GROUP}/cells": str(len(grid.cells)), f"{names.GROUP}/cells-digest": cells_digest(grid)}
    pod_labels, pod_annotations = pod_metadata(cluster, labels, annotations)
    return _with_hash(render_text(
        AGGREGATE_TEMPLATE, **values, name=names.aggregate_job_name(grid.name), labels=labels,
        annotations=annotations, pod_labels=pod_labels, pod_annotations=pod_annotations, args=args))


def cell_jobs(grid: Grid, cluster: ClusterSettings | None = None) -> dict[str, dict[str, Any]]:
    """cell id → its Job (:func:`cell_job`'s), in grid order: one parse of the template for all of them."""
    cluster = cluster or grid.cluster
    skeleton = Skeleton(CELL_TEMPLATE, cell_shared(grid, cluster), OWN_VALUES)
    return {cell.cell_id: _with_hash(skeleton.fill(**cell_own(grid, cell, cluster))) for cell in grid.cells}


def to_yaml(obj: dict[str, Any]) -> str:
    """Stable, kubectl-appliable YAML of one object (block style, keys sorted, Unicode kept)."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=120)


def write_manifests(grid: Grid, cluster: ClusterSettings, out: Path) -> list[Path]:
    """Write one file per object: ``<out>/<job>.yaml`` for every cell, ``<out>/aggregate/<grid>-aggregate.yaml``.

    The aggregation Job (the waiting one ``launcher submit`` creates, when ``cluster.report_wait_seconds`` is set)
    sits in a subfolder so ``kubectl apply -f <out>`` starts the cells only; ``kubectl apply -f <out>/aggregate``
    adds the report.
    """
    paths = []
    objects = [*cell_jobs(grid, cluster).values()]
    (out / "aggregate").mkdir(parents=True, exist_ok=True)
    for obj in objects:
        path = out / f"{obj['metadata']['name']}.yaml"
        path.write_text(to_yaml(obj), encoding="utf-8")
        paths.append(path)
    agg = aggregate_job(grid, cluster)
    path = out / "aggregate" / f"{agg['metadata']['name']}.yaml"
    path.write_text(to_yaml(agg), encoding="utf-8")
    paths.append(path)
    return paths
