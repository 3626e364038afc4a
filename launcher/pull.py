"""``launcher pull`` and ``launcher verify``: bring a grid's results home, and check them where they are.

Pull mirrors the store layout under the target folder, so the target is itself a local store (``launcher report
grid.yaml --store DIR`` works on it). Only files named by a cell's ``_SUCCESS`` manifest are pulled, each checked
against the manifest's sha256; a file already there with the right hash is skipped, so an interrupted pull resumes
where it stopped. Every key goes through the store's key checks and ``safe_join``: nothing lands outside the target.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peftsum.store import Store, StoreError, layout
from peftsum.store.base import safe_join, sha256_file

ALWAYS = ("result.json", "eda.json")  # small, and what the report needs


def wanted(rel: str, adapters: bool, predictions: bool) -> bool:
    """Is the attempt file ``attempts/<id>/<name…>`` selected by the flags?"""
    name = rel.split("/", 2)[2] if rel.count("/") >= 2 else rel
    if name in ALWAYS:
        return True
    if name == "predictions.jsonl":
        return predictions
    if name.startswith(("adapter/", "model/")):
        return adapters
    return adapters and predictions  # anything else: only when everything is asked for


@dataclass
class PullStats:
    files: int = 0
    bytes: int = 0
    skipped: int = 0
    not_done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def plan(store: Store, grid: str, cell_ids: Iterable[str], adapters: bool, predictions: bool
         ) -> tuple[list[tuple[str, dict[str, Any] | None]], list[str]]:
    """(key, manifest entry) of every file to pull, and the cells that are not done."""
    files: list[tuple[str, dict[str, Any] | None]] = []
    not_done = []
    for cid in cell_ids:
        manifest = layout.done_manifest(store, grid, cid)
        if manifest is None:
            not_done.append(cid)
            continue
        files.append((layout.cell_key(grid, cid, "_SUCCESS"), None))
        files.append((layout.cell_key(grid, cid, "spec.json"), None))
        for rel, meta in sorted(manifest["files"].items()):
            if wanted(rel, adapters, predictions):
                files.append((layout.cell_key(grid, cid, rel), meta))
    return files, not_done


def pull(store: Store, grid: str, cell_ids: Iterable[str], dest: Path, *, adapters: bool, predictions: bool,
         report: bool, progress: Callable[[str, int], None] | None = None) -> PullStats:
    """Download the selected files of every done cell (and the report) into ``dest``, verified."""
    dest = Path(dest)
    files, not_done = plan(store, grid, cell_ids, adapters, predictions)
    if report:
        files += [(key, None) for key in store.list(layout.grid_key(grid, "report"))]
    files.append((layout.grid_key(grid, "grid.json"), None))
    stats = PullStats(not_done=not_done)
    for key, meta in files:
        target = safe_join(dest, key)
        if meta is not None and target.is_file() and target.stat().st_size == meta["bytes"] \
                and sha256_file(target) == meta["sha256"]:
            stats.skipped += 1
            if progress:
                progress(key, 0)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.pull")
        try:
            store.download(key, part)  # S3 verifies its stored checksum on the way
            if meta is not None and sha256_file(part) != meta["sha256"]:
                raise StoreError(f"{key}: sha256 differs from the cell's _SUCCESS manifest")
            os.replace(part, target)
        except StoreError as err:
            part.unlink(missing_ok=True)
            if key.endswith("/grid.json"):  # older stores may lack it; the cells are what matter
                continue
            stats.failed.append(str(err))
            continue
        stats.files += 1
        stats.bytes += target.stat().st_size
        if progress:
            progress(key, target.stat().st_size)
    return stats


@dataclass
class Verdict:
    cell_id: str
    state: str  # verified | not-done | corrupt
    detail: str = ""


def verify(store: Store, grid: str, cell_ids: Iterable[str]) -> list[Verdict]:
    """Re-hash every file of every done cell in place. A manifest that is malformed, or whose files no longer
    match, is *corrupt*. Raises StoreError when the store cannot be read (never "not done")."""
    out = []
    for cid in cell_ids:
        manifest, problem = layout.check_done(store, grid, cid, rehash=True)
        if manifest is not None:
            out.append(Verdict(cid, "verified", f"{len(manifest['files'])} files"))
        else:
            out.append(Verdict(cid, "corrupt", problem) if problem else Verdict(cid, "not-done"))
    return out
