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

from peftsum.store.base import (
    CorruptObject,
    MissingObject,
    Store,
    StoreDenied,
    StoreError,
    StoreUnavailable,
    check_key,
    sha256_file,
    short,
)

CELL_ID = re.compile(r"^[0-9a-f]{12}$")
ATTEMPT_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
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
    """status.json, or None if it is missing or not a JSON object (a status is advice, never trusted for
    doneness)."""
    try:
        status = read_json(store, cell_key(grid, cell_id, "status.json"))
    except (StoreError, ValueError, RecursionError):
        return None
    return status if isinstance(status, dict) else None


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


def manifest_shape_problem(manifest: Any) -> str | None:
    """Why ``manifest`` is not a well-formed ``_SUCCESS`` (docs/store.md), or None. Checked before anything trusts
    it: every file under the attempt it names, with a size and a sha256, and the attempt's result.json among them."""
    if not isinstance(manifest, dict):
        return f"not a JSON object but {type(manifest).__name__}"
    attempt = manifest.get("attempt_id")
    if not isinstance(attempt, str) or not ATTEMPT_ID.match(attempt):
        return f"attempt_id {short(attempt)} is not an attempt id"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return f"files {short(files, 80)} is not a non-empty mapping"
    for rel, meta in files.items():
        if not isinstance(rel, str) or not rel.startswith(f"attempts/{attempt}/"):
            return f"file {short(rel)} is not under attempts/{attempt}/"
        if not (isinstance(meta, dict) and type(meta.get("bytes")) is int and meta["bytes"] >= 0
                and isinstance(meta.get("sha256"), str) and SHA256.match(meta["sha256"])):
            return f"file {short(rel)}: entry {short(meta, 120)} needs an integer 'bytes' and a hex 'sha256'"
        try:
            check_key(rel)
        except StoreError as err:
            return str(err)
    if f"attempts/{attempt}/result.json" not in files:
        return f"lists no attempts/{attempt}/result.json"
    return None


def read_manifest(store: Store, grid: str, cell_id: str) -> dict[str, Any] | None:
    """The cell's ``_SUCCESS`` manifest, or None if there is none.

    Raises CorruptObject for a ``_SUCCESS`` that is unreadable as a manifest (not JSON, the wrong shape, a folder):
    never done, and ``launcher run`` moves it aside (``quarantine_manifest``). Other StoreErrors — a store that
    cannot be read at all — propagate: "nothing could be read" is not "nothing is done".
    """
    key = cell_key(grid, cell_id, "_SUCCESS")
    try:
        manifest = json.loads(store.read_bytes(key))
    except MissingObject:
        return None
    except (ValueError, RecursionError) as err:
        raise CorruptObject(f"{store.uri}/{key}: not JSON ({short(str(err), 120)})") from None
    problem = manifest_shape_problem(manifest)
    if problem:
        raise CorruptObject(f"{store.uri}/{key}: {problem}")
    return manifest


def quarantine_manifest(store: Store, grid: str, cell_id: str, why: str) -> str:
    """Move a ``_SUCCESS`` that fails verification aside, as ``_SUCCESS.corrupt-<time>`` beside a note of why, so a
    new attempt can commit (the first-writer-wins put would otherwise lose to it forever). Returns the new key."""
    key = cell_key(grid, cell_id, "_SUCCESS")
    aside = cell_key(grid, cell_id, f"_SUCCESS.corrupt-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    try:
        data = store.read_bytes(key)
    except (CorruptObject, MissingObject):
        data = b""  # a folder, or gone already
    store.write_bytes(aside, data)
    store.write_bytes(aside + ".why", (why + "\n").encode())
    store.delete(key)
    return aside


def manifest_problems(store: Store, grid: str, cell_id: str, manifest: dict[str, Any],
                      rehash: bool = False) -> Iterator[str]:
    """What is wrong with the files a manifest lists, lazily, one line per file ("<file>: <why>").

    Checked per file: present with the listed size; where the store keeps checksums (S3), the stored sha256 equal
    to the manifest's; with ``rehash`` the bytes themselves hashed (streamed), a corrupt read counting as wrong.
    """
    for rel, meta in sorted(manifest["files"].items()):
        key = cell_key(grid, cell_id, rel)
        try:
            info = store.stat(key)
        except (StoreDenied, StoreUnavailable):
            raise
        except StoreError as err:  # a folder or a link where the file should be
            yield f"{rel}: {err}"
            continue
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
            except (StoreDenied, StoreUnavailable):
                raise
            except StoreError as err:
                yield f"{rel}: {err}"


def check_done(store: Store, grid: str, cell_id: str, rehash: bool = False
               ) -> tuple[dict[str, Any] | None, str | None]:
    """(manifest, None) if the cell is done; (None, None) if it has no ``_SUCCESS``; (None, why) if its
    ``_SUCCESS`` is malformed or lists a file that is missing, resized or (S3, or ``rehash``) changed.

    A store that cannot be read raises (StoreDenied, StoreUnavailable): the caller must not take it for "not done".
    """
    try:
        manifest = read_manifest(store, grid, cell_id)
    except CorruptObject as err:
        return None, str(err)
    if manifest is None:
        return None, None
    problem = next(manifest_problems(store, grid, cell_id, manifest, rehash), None)
    return (None, problem) if problem else (manifest, None)


def done_manifest(store: Store, grid: str, cell_id: str, rehash: bool = False) -> dict[str, Any] | None:
    """The cell's manifest if the cell is done (``check_done``), else None."""
    return check_done(store, grid, cell_id, rehash)[0]


LEASE_SECONDS = 120  # a lease not renewed for this long belongs to a run that died


def take_lease(store: Store, grid: str, cell_id: str, owner: str, seconds: float = LEASE_SECONDS) -> str | None:
    """Claim the cell for ``owner`` (``cells/<id>/lease.json``, a conditional put). Returns None when taken, else
    who holds it: two ``launcher run``s of one grid never run one cell twice. An expired lease (its holder stopped
    renewing: killed) is taken over."""
    key = cell_key(grid, cell_id, "lease.json")
    for _ in range(2):
        body = json.dumps({"owner": owner, "expires_at": time.time() + seconds}).encode()
        if store.put_if_absent(key, body):
            return None
        try:
            held = json.loads(store.read_bytes(key))
            holder, expires = str(held["owner"]), float(held["expires_at"])
        except MissingObject:
            continue  # released meanwhile: try again
        except (CorruptObject, ValueError, KeyError, TypeError):
            holder, expires = "an unreadable lease", 0.0
        if expires > time.time():
            return holder
        store.delete(key)  # expired: take it over (a racing taker loses the conditional put above)
    return "another run (it took the lease just now)"


def renew_lease(store: Store, grid: str, cell_id: str, owner: str, seconds: float = LEASE_SECONDS) -> None:
    store.write_bytes(cell_key(grid, cell_id, "lease.json"),
                      json.dumps({"owner": owner, "expires_at": time.time() + seconds}).encode())


def release_lease(store: Store, grid: str, cell_id: str, owner: str) -> None:
    """Give the lease back if ``owner`` still holds it."""
    key = cell_key(grid, cell_id, "lease.json")
    try:
        if json.loads(store.read_bytes(key)).get("owner") == owner:
            store.delete(key)
    except (StoreError, ValueError, AttributeError):
        pass


def clear_checkpoints(store: Store, grid: str, cell_id: str) -> None:
    """Delete the cell's resumable checkpoints (a done cell with ``train.keep_checkpoints: false`` keeps none)."""
    store.delete_prefix(cell_key(grid, cell_id, "checkpoints"))


def result_key(grid: str, cell_id: str, manifest: dict[str, Any], name: str = "result.json") -> str:
    """Key of a file of the attempt the manifest names (readers use only that attempt)."""
    return cell_key(grid, cell_id, "attempts", manifest["attempt_id"], name)


def new_attempt_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + hashlib.sha256(
        f"{time.time_ns()}".encode()).hexdigest()[:6]
