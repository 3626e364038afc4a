"""The store layout (docs/store.md) and the rules for when a cell is done.

    <grid>/grid.json
    <grid>/cells/<id>/spec.json | status.json | checkpoints/<step>/… | attempts/<attempt>/… | _SUCCESS
    <grid>/report/…

A cell is done when ``_SUCCESS`` exists and every file it lists exists with the listed size; ``verify_cell``
re-hashes them too. ``_SUCCESS`` is written last with a conditional put, so the first writer wins.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from peftsum.store.base import Store, StoreError, check_key, sha256_file

CELL_ID = re.compile(r"^[0-9a-f]{12}$")
STATES = ("pending", "running", "done", "failed")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def grid_key(grid: str, *parts: str) -> str:
    return check_key("/".join((grid, *parts)))


def cell_key(grid: str, cell_id: str, *parts: str) -> str:
    if not CELL_ID.match(cell_id):
        raise StoreError(f"invalid cell id {cell_id!r}: expected 12 hex digits")
    return grid_key(grid, "cells", cell_id, *parts)


def read_json(store: Store, key: str) -> Any:
    return json.loads(store.read_bytes(key))


def write_json(store: Store, key: str, obj: Any) -> None:
    store.write_bytes(key, (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


_COUNTED: dict[tuple[str, str, str], dict[str, Any]] = {}  # (grid, cell, attempt) → {attempts, job}: begin_attempt


def write_status(store: Store, grid: str, cell_id: str, state: str, **fields: Any) -> dict[str, Any]:
    """Replace status.json with ``state`` and ``fields`` (reason, exit_code, attempt, progress…). An attempt begun with
    :func:`begin_attempt` keeps its ``attempts`` count and ``job`` in every status it writes."""
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    counted = _COUNTED.get((grid, cell_id, str(fields.get("attempt"))), {})
    status = {"state": state, "reason": None, "exit_code": None, "attempt": None, "progress": None,
              "heartbeat_at": now_iso(), **counted, **fields}
    write_json(store, cell_key(grid, cell_id, "status.json"), status)
    return status


def begin_attempt(store: Store, grid: str, cell_id: str, attempt: str, job: str | None = None,
                  **fields: Any) -> dict[str, Any]:
    """Write status.json ``running`` for a new attempt, with ``attempts``: how many attempts of this cell its Job's
    ``backoffLimit`` has counted so far, this one included (the aggregation Job stops waiting for a cell that failed
    that many times). One more than the previous status's count, except after a preemption (state ``pending``, exit
    code 3: the Job's podFailurePolicy ignores a disrupted pod) and except when ``job`` (the Job's uid, from
    ``$PEFTSUM_JOB_UID``) differs from the previous attempt's: a resubmitted cell's new Job counts from 1.
    """
    prev = read_status(store, grid, cell_id) or {}
    same_job = prev.get("job") == job
    count = prev.get("attempts") if same_job and isinstance(prev.get("attempts"), int) else 0
    if not (same_job and count and prev.get("state") == "pending" and prev.get("exit_code") == 3):
        count += 1
    _COUNTED[(grid, cell_id, attempt)] = {"attempts": count, "job": job}
    return write_status(store, grid, cell_id, "running", attempt=attempt, **fields)


def read_status(store: Store, grid: str, cell_id: str) -> dict[str, Any] | None:
    try:
        return read_json(store, cell_key(grid, cell_id, "status.json"))
    except (StoreError, ValueError):
        return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def object_sha256(store: Store, key: str) -> str:
    """SHA-256 of a stored object, streamed through a temporary file (full weights can be many GB: never whole in
    memory). StoreError if it is missing or its bytes disagree with the checksum the store keeps."""
    with tempfile.TemporaryDirectory(prefix="peftsum-hash-") as tmp:
        path = Path(tmp) / "object"
        store.download(key, path)
        return sha256_file(path)


def commit_success(store: Store, grid: str, cell_id: str, attempt_id: str,
                   files: dict[str, dict[str, Any]]) -> bool:
    """Write the ``_SUCCESS`` manifest last, first writer wins. Returns False if another attempt already won.

    Args:
        files: key relative to the cell folder → {"bytes": int, "sha256": str}, for every file of the attempt.
    """
    manifest = {"attempt_id": attempt_id, "files": files, "finished_at": now_iso()}
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    return store.put_if_absent(cell_key(grid, cell_id, "_SUCCESS"), data)


def read_manifest(store: Store, grid: str, cell_id: str) -> dict[str, Any] | None:
    try:
        manifest = read_json(store, cell_key(grid, cell_id, "_SUCCESS"))
    except (StoreError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def manifest_problems(store: Store, grid: str, cell_id: str, manifest: dict[str, Any],
                      rehash: bool = False) -> Iterator[str]:
    """What is wrong with the files a manifest lists, lazily, one line per file ("<file>: <why>").

    Checked per file: present with the listed size; where the store keeps checksums (S3), the stored sha256 equal
    to the manifest's; with ``rehash`` the bytes themselves hashed (streamed), a corrupt read counting as wrong.
    """
    for rel, meta in sorted(manifest["files"].items()):
        key = cell_key(grid, cell_id, rel)
        info = store.stat(key)
        if info is None:
            yield f"{rel}: missing"
        elif info.bytes != meta.get("bytes"):
            yield f"{rel}: {info.bytes} bytes, the manifest says {meta.get('bytes')}"
        elif info.sha256 is not None and info.sha256 != meta.get("sha256"):
            yield f"{rel}: the store's checksum differs from the manifest (replaced or tampered since the commit)"
        elif rehash:
            try:
                if object_sha256(store, key) != meta.get("sha256"):
                    yield f"{rel}: content differs from the manifest"
            except StoreError as err:
                yield f"{rel}: {err}"


def done_manifest(store: Store, grid: str, cell_id: str, rehash: bool = False) -> dict[str, Any] | None:
    """The cell's manifest if the cell is done (``_SUCCESS`` present, ``manifest_problems`` finds nothing — it
    stops at the first problem), else None."""
    manifest = read_manifest(store, grid, cell_id)
    if manifest is None or next(manifest_problems(store, grid, cell_id, manifest, rehash), None) is not None:
        return None
    return manifest


def result_key(grid: str, cell_id: str, manifest: dict[str, Any], name: str = "result.json") -> str:
    """Key of a file of the attempt the manifest names (readers use only that attempt)."""
    return cell_key(grid, cell_id, "attempts", manifest["attempt_id"], name)


def new_attempt_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + hashlib.sha256(
        f"{time.time_ns()}".encode()).hexdigest()[:6]
