"""Read what the cells left in the store: results of done cells, the state of the others, predictions on demand.

JSON only (grid.json, status.json, _SUCCESS, result.json, predictions.jsonl, eda.json): no ML stack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from peftsum.report.parallel import is_local, pmap
from peftsum.store import Store, StoreError
from peftsum.store import cells as layout


@dataclass
class Collected:
    grid: str
    results: list[dict[str, Any]]  # result.json of every done cell
    not_done: list[dict[str, Any]]  # {cell_id, model, method, dataset, seed, state, reason, progress}
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # cell_id → _SUCCESS of done cells


def labels(spec: dict[str, Any]) -> dict[str, Any]:
    """Human-readable axes of a cell spec (model '-' for model-free baselines)."""
    return {"model": (spec.get("model") or {}).get("name", "-"), "method": spec["method"]["name"],
            "method_type": spec["method"]["type"], "dataset": spec["dataset"]["name"], "seed": spec["seed"]}


def collect(store: Store, grid: str, pool: Any = None, cpu: list[float] | None = None) -> Collected:
    """Results of the done cells and the state of the others, in cell-id order.

    Args:
        pool: a multiprocessing pool (``peftsum.report.worker_pool``) to read the cells in, in chunks; the result
            is the same as without one.
        cpu: if given, the CPU seconds spent in workers are appended to it.
    """
    try:
        cells = layout.read_json(store, layout.grid_key(grid, "grid.json"))["cells"]
    except (StoreError, ValueError, KeyError):
        ids = {k.split("/")[2] for k in store.list(layout.grid_key(grid, "cells")) if k.endswith("/spec.json")}
        cells = {cid: layout.read_json(store, layout.cell_key(grid, cid, "spec.json")) for cid in ids}
    items = sorted(cells.items())
    if (pool is not None or not is_local(store)) and len(items) >= PARALLEL_FROM:
        size = max(16, -(-len(items) // (4 * getattr(pool, "_processes", 2))))
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        parts = pmap(pool, _collect_chunk, [(store, grid, chunk) for chunk in chunks], cpu=cpu, store=store)
    else:
        parts = [_collect_chunk(store, grid, items)]
    out = Collected(grid, [], [])
    for part in parts:
        for kind, cell_id, payload, manifest in part:
            if kind == "done":
                out.results.append(payload)
                out.manifests[cell_id] = manifest
            else:
                out.not_done.append(payload)
    return out


PARALLEL_FROM = 64  # cells; below this a pool's start-up and pickling cost more than they save


def _collect_chunk(store: Store, grid: str, items: list[tuple[str, dict[str, Any]]]
                   ) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    """("done", id, result, manifest) or ("not_done", id, entry, None) per cell."""
    return [_collect_one(store, grid, cell_id, spec) for cell_id, spec in items]


def _collect_one(store: Store, grid: str, cell_id: str, spec: dict[str, Any]
                 ) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
    try:
        manifest = layout.done_manifest(store, grid, cell_id)
    except StoreError as err:  # e.g. a manifest naming an unsafe key: never done, never fatal
        manifest, status = None, {"state": "failed", "reason": f"bad _SUCCESS manifest: {err}"}
    else:
        status = None
    if manifest is not None:
        try:
            return "done", cell_id, layout.read_json(store, layout.result_key(grid, cell_id, manifest)), manifest
        except (StoreError, ValueError) as err:
            status = {"state": "failed", "reason": f"unreadable result.json: {err}"}
    if status is None:
        status = layout.read_status(store, grid, cell_id) or {"state": "missing", "reason": "not started"}
        if status.get("state") == "done":
            status = {"state": "failed", "reason": "status says done but _SUCCESS is missing or incomplete"}
    return "not_done", cell_id, {"cell_id": cell_id, **labels(spec), "state": status.get("state"),
                                 "reason": status.get("reason"), "progress": status.get("progress")}, None


def read_attempt_json(store: Store, c: Collected, cell_id: str, name: str) -> Any:
    """A JSON file of the attempt the cell's manifest names; None if missing or unreadable."""
    try:
        data = store.read_bytes(layout.result_key(c.grid, cell_id, c.manifests[cell_id], name))
    except (StoreError, KeyError):
        return None
    try:
        if name.endswith(".jsonl"):
            return [json.loads(line) for line in data.splitlines() if line.strip()]
        return json.loads(data)
    except ValueError:
        return None
