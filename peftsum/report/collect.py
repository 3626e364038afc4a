"""Read what the cells left in the store: results of done cells, the state of the others, predictions on demand.

JSON only (grid.json, status.json, _SUCCESS, result.json, predictions.jsonl, eda.json): no ML stack. Everything read
here is checked against the shape the report uses (``peftsum.report.schema``) as it is read, and this is the only
place that reads cell files: a done cell whose result.json or eda.json cannot be read or has the wrong shape is
listed as not done with the reason (never fatal for the grid's report), and unusable predictions read as missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from peftsum.report import schema
from peftsum.report.labels import UNKNOWN, labels
from peftsum.report.parallel import is_local, pmap
from peftsum.store import MissingObject, Store, StoreError, layout


@dataclass
class Collected:
    grid: str
    results: list[dict[str, Any]]  # result.json of every done cell (checked: schema.check_result)
    not_done: list[dict[str, Any]]  # {cell_id, model, method, dataset, seed, state, reason, progress}
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # cell_id → _SUCCESS of done cells
    edas: dict[str, dict[str, Any]] = field(default_factory=dict)  # cell_id → eda.json of done cells that have one
    problems: dict[str, str] = field(default_factory=dict)  # cell_id → why a done cell's predictions went unused


class GridNotFound(StoreError):
    """The store holds neither ``<grid>/grid.json`` nor any ``<grid>/cells/*/spec.json``: a typo, or another store.
    ``grids``: the grid names the store does hold (None if they could not be listed)."""

    def __init__(self, store: Store, grid: str, grids: list[str] | None) -> None:
        there = ("it holds no grid" if grids == [] else "its grids could not be listed" if grids is None
                 else "grids there: " + ", ".join(grids))
        super().__init__(f"no grid {grid!r} in store {store.uri} (no {grid}/grid.json and no cells): {there}")
        self.grid, self.grids = grid, grids


def grid_cells(store: Store, grid: str) -> dict[str, dict[str, Any] | None]:
    """cell id → its spec (None where it cannot be read or lacks the axes): grid.json's cells (written by
    ``launcher run`` / ``submit``), else every ``cells/<id>/spec.json``. :class:`GridNotFound` if there is neither."""
    try:
        cells = layout.read_json(store, layout.grid_key(grid, "grid.json"))["cells"]
        if not isinstance(cells, dict):
            raise TypeError("grid.json: cells is not an object")
        loaded: dict[str, Any] = dict(cells)
    except (StoreError, ValueError, KeyError, TypeError, RecursionError):
        ids = {k.split("/")[2] for k in store.list(layout.grid_key(grid, "cells")) if k.endswith("/spec.json")}
        if not ids and not store.stat(layout.grid_key(grid, "grid.json")):
            raise GridNotFound(store, grid, grid_names(store)) from None
        loaded = {cid: _read_json(store, layout.cell_key(grid, cid, "spec.json"))[0] for cid in ids}
    out = {}
    for cid, spec in loaded.items():
        try:
            out[str(cid)] = schema.check_spec(spec)
        except schema.Malformed:
            out[str(cid)] = None
    return out


def grid_names(store: Store, limit: int = 50) -> list[str] | None:
    """Names of the grids in ``store`` (top-level folders with a grid.json or cells/), at most ``limit``; None where
    the store cannot list folders."""
    try:
        if is_local(store):
            root = store.root  # type: ignore[attr-defined]
            names = [p.name for p in (sorted(root.iterdir()) if root.is_dir() else [])
                     if p.is_dir() and not p.is_symlink() and ((p / "grid.json").is_file() or (p / "cells").is_dir())]
        elif hasattr(store, "client") and hasattr(store, "bucket"):  # S3: one delimited listing, one probe per name
            base = f"{store.prefix.rstrip('/')}/" if getattr(store, "prefix", "") else ""
            page = store.client.list_objects_v2(Bucket=store.bucket, Prefix=base, Delimiter="/", MaxKeys=1000)
            names = []
            for p in page.get("CommonPrefixes", [])[: 4 * limit]:
                name = p["Prefix"][len(base):].rstrip("/")
                probe = store.client.list_objects_v2(Bucket=store.bucket, Prefix=f"{base}{name}/cells/", MaxKeys=1)
                if probe.get("KeyCount") or store.stat(layout.grid_key(name, "grid.json")):
                    names.append(name)
        else:
            return None
    except Exception:  # only for the error message: never hide the real error behind another
        return None
    return [n for n in names if not n.startswith(("_", "."))][:limit]


def collect(store: Store, grid: str, pool: Any = None, cpu: list[float] | None = None) -> Collected:
    """Results of the done cells and the state of the others, in cell-id order.

    Args:
        pool: a multiprocessing pool (``peftsum.report.worker_pool``) to read the cells in, in chunks; the result
            is the same as without one.
        cpu: if given, the CPU seconds spent in workers are appended to it.

    Raises:
        GridNotFound: the store has no such grid (nothing to report: no report is written).
    """
    items = sorted(grid_cells(store, grid).items())
    if (pool is not None or not is_local(store)) and len(items) >= PARALLEL_FROM:
        size = max(16, -(-len(items) // (4 * getattr(pool, "_processes", 2))))
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        parts = pmap(pool, _collect_chunk, [(store, grid, chunk) for chunk in chunks], cpu=cpu, store=store)
    else:
        parts = [_collect_chunk(store, grid, items)]
    out = Collected(grid, [], [])
    for part in parts:
        for kind, cell_id, payload, manifest, eda in part:
            if kind == "done":
                out.results.append(payload)
                out.manifests[cell_id] = manifest
                if eda is not None:
                    out.edas[cell_id] = eda
            else:
                out.not_done.append(payload)
    return out


PARALLEL_FROM = 64  # cells; below this a pool's start-up and pickling cost more than they save
CHECKS = {"eda.json": schema.check_eda, "predictions.jsonl": schema.check_predictions}  # result.json: check_result


def _collect_chunk(store: Store, grid: str, items: list[tuple[str, dict[str, Any] | None]]
                   ) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]]:
    """("done", id, result, manifest, eda) or ("not_done", id, entry, None, None) per cell."""
    return [_collect_one(store, grid, cell_id, spec) for cell_id, spec in items]


def _collect_one(store: Store, grid: str, cell_id: str, spec: dict[str, Any] | None
                 ) -> tuple[str, str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    try:
        manifest = layout.done_manifest(store, grid, cell_id)
    except StoreError as err:  # e.g. a manifest naming an unsafe key: never done, never fatal
        manifest, status = None, {"state": "failed", "reason": f"bad _SUCCESS manifest: {err}"}
    else:
        status = None
    if manifest is not None:
        result, why = read_checked(store, grid, cell_id, manifest, "result.json")
        if result is None and why is None:
            why = "result.json: missing"
        eda, eda_why = (None, None) if why else read_checked(store, grid, cell_id, manifest, "eda.json")
        if why is None and eda_why is None:
            return "done", cell_id, result, manifest, eda  # type: ignore[return-value]
        status = {"state": "failed", "reason": why or eda_why}
    if status is None:
        raw, why = _read_json(store, layout.cell_key(grid, cell_id, "status.json"), missing_ok=True)
        try:
            status = schema.check_status(raw) if raw is not None else None
        except schema.Malformed as err:
            why = f"malformed status.json: {err}"
        if why:
            status = {"state": "unknown", "reason": why}
        status = status or {"state": "missing", "reason": "not started"}
        if status.get("state") == "done":
            status = {"state": "failed", "reason": "status says done but _SUCCESS is missing or incomplete"}
    lab = UNKNOWN if spec is None else labels(spec)
    reason = status.get("reason")
    if spec is None:
        reason = "its spec (grid.json or spec.json) cannot be read or lacks method/dataset/seed" + (
            f"; {reason}" if reason else "")
    return "not_done", cell_id, {"cell_id": cell_id, **lab, "state": status.get("state"), "reason": reason,
                                 "progress": status.get("progress")}, None, None


def _read_json(store: Store, key: str, jsonl: bool = False, missing_ok: bool = False) -> tuple[Any, str | None]:
    """(parsed JSON, None), or (None, why it cannot be read); (None, None) for a missing file with ``missing_ok``."""
    name = key.rsplit("/", 1)[-1]
    try:
        data = store.read_bytes(key)
    except MissingObject:
        return None, None if missing_ok else f"{name}: missing"
    except StoreError as err:
        return None, f"unreadable {name}: {err}"
    try:
        if jsonl:
            return [json.loads(line) for line in data.splitlines() if line.strip()], None
        return json.loads(data), None
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError; RecursionError: deep nesting
        return None, f"unreadable {name}: not JSON ({str(err)[:120]})"


def read_checked(store: Store, grid: str, cell_id: str, manifest: dict[str, Any], name: str
                 ) -> tuple[Any, str | None]:
    """A file of the attempt the manifest names, checked (``peftsum.report.schema``): (content, None); (None, None)
    if absent; (None, why) if it cannot be read or has the wrong shape. Picklable arguments: workers call it."""
    try:
        key = layout.result_key(grid, cell_id, manifest, name)
    except StoreError as err:
        return None, f"unreadable {name}: {err}"
    doc, why = _read_json(store, key, name.endswith(".jsonl"), missing_ok=True)
    if doc is None:
        return None, why
    try:
        if name == "result.json":
            return schema.check_result(doc, cell_id), None
        check = CHECKS.get(name)
        return (check(doc) if check else doc), None
    except schema.Malformed as err:
        return None, f"malformed {name}: {err}"


def read_attempt_json(store: Store, c: Collected, cell_id: str, name: str) -> Any:
    """A JSON file of the attempt the cell's manifest names, checked like everything collect reads; None if
    missing, unreadable or malformed (why goes to ``c.problems``, which the report shows)."""
    if cell_id not in c.manifests:
        return None
    doc, why = read_checked(store, c.grid, cell_id, c.manifests[cell_id], name)
    if why:
        c.problems[cell_id] = why
    return doc
