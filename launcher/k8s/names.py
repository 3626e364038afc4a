"""Names, labels and annotations every peftsum Kubernetes object carries (pure functions).

Job name: ``<grid>-<cell_id>``. The grid name is a DNS-1123 label of ≤ 40 characters and a cell id is
12 hex digits, so a cell Job name is at most 53 characters; :func:`job_name` still checks the rule, so a change
upstream cannot produce a name the API server refuses. Human-readable model/method/dataset names are sanitised
into label values (selectable) and kept verbatim in annotations (readable).
"""

from __future__ import annotations

import re

from peftsum.spec import Cell, Grid
from peftsum.spec.k8s_values import is_dns_label

_LABEL_BAD = re.compile(r"[^A-Za-z0-9_.-]+")

GROUP = "peftsum.io"
LABEL_GRID = f"{GROUP}/grid"
LABEL_CELL = f"{GROUP}/cell"
LABEL_ROLE = f"{GROUP}/role"  # cell | aggregate
ANNOTATION_HASH = f"{GROUP}/job-hash"
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
AGGREGATE_SUFFIX = "aggregate"


def job_name(grid: str, suffix: str) -> str:
    """``<grid>-<suffix>``, checked to be a DNS-1123 label of ≤ 63 characters."""
    name = f"{grid}-{suffix}"
    if not is_dns_label(name):
        raise ValueError(f"Job name {name!r} is not a DNS-1123 label of at most 63 characters")
    return name


def cell_job_name(grid: str, cell_id: str) -> str:
    return job_name(grid, cell_id)


def aggregate_job_name(grid: str) -> str:
    return job_name(grid, AGGREGATE_SUFFIX)


def label_value(text: str) -> str:
    """A valid label value for any text: runs of other characters become '_', ≤ 63, alphanumeric at both ends."""
    value = _LABEL_BAD.sub("_", text)[:63].strip("_.-")
    return value or "none"


def selector(grid: str, cell_id: str | None = None, role: str | None = None) -> str:
    """A label selector for the grid's objects (one cell's, or one role's)."""
    parts = [f"{LABEL_GRID}={grid}"]
    if cell_id:
        parts.append(f"{LABEL_CELL}={cell_id}")
    if role:
        parts.append(f"{LABEL_ROLE}={role}")
    return ",".join(parts)


def common_labels(grid: Grid, role: str) -> dict[str, str]:
    """Labels on every object of the grid (``app.kubernetes.io/*`` and ``peftsum.io/*``)."""
    return {"app.kubernetes.io/name": "peftsum", "app.kubernetes.io/instance": grid.name,
            "app.kubernetes.io/component": role, "app.kubernetes.io/part-of": "peftsum",
            "app.kubernetes.io/managed-by": "peftsum-launcher", LABEL_GRID: grid.name, LABEL_ROLE: role}


def cell_labels(grid: Grid, cell: Cell, cell_id: str) -> dict[str, str]:
    """Common labels plus the cell id and its sanitised axes (for ``kubectl get jobs -l peftsum.io/method=lora``)."""
    axes = cell.labels
    return {**common_labels(grid, "cell"), LABEL_CELL: cell_id,
            f"{GROUP}/model": label_value(axes["model"]), f"{GROUP}/method": label_value(axes["method"]),
            f"{GROUP}/dataset": label_value(axes["dataset"]), f"{GROUP}/seed": label_value(axes["seed"])}


def cell_annotations(cell: Cell) -> dict[str, str]:
    """The axes verbatim, plus the model's hub id and the dataset id (annotations allow any text)."""
    axes = cell.labels
    out = {f"{GROUP}/model": axes["model"], f"{GROUP}/method": axes["method"], f"{GROUP}/dataset": axes["dataset"],
           f"{GROUP}/seed": axes["seed"], f"{GROUP}/dataset-id": cell.dataset.id}
    if cell.model is not None:
        out[f"{GROUP}/model-id"] = cell.model.hub_id
    return out
