"""``launcher run``: the embedded default. Each cell in its own ``peftsum cell`` process, then the report.

Specs go to the store first (the store is the single source of truth, as on the cluster); done cells are skipped;
a failed cell is reported and the others go on.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from peftsum.spec import Cell, Grid
from peftsum.store import LocalStore, Store, StoreError
from peftsum.store import cells as layout


@dataclass
class Outcome:
    cell: Cell
    state: str  # done | skipped | failed
    exit_code: int | None
    seconds: float
    reason: str | None = None
    log: Path | None = None


def write_specs(store: Store, grid: Grid, threads: int = 16) -> None:
    """grid.json and every cell's spec.json; in parallel, since on S3 each is a round trip (1,000 cells: 1,001)."""
    layout.write_json(store, layout.grid_key(grid.name, "grid.json"), grid.to_dict())
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda c: layout.write_json(store, layout.cell_key(grid.name, c.cell_id, "spec.json"),
                                                  c.to_dict()), grid.cells))


def cell_command(store: Store, grid: str, cell_id: str) -> list[str]:
    return [sys.executable, "-m", "peftsum.cli", "cell", "--store", store.uri, "--grid", grid, "--cell", cell_id]


def run_one(store: Store, grid: str, cell: Cell, log_dir: Path, threads: int | None) -> Outcome:
    """Run one cell in a child process, its output to ``log_dir/<id>.log``."""
    t0 = time.monotonic()
    log_path = log_dir / f"{cell.cell_id}.log"
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # split the cores between concurrent cells
    with log_path.open("w") as log:
        proc = subprocess.run(cell_command(store, grid, cell.cell_id), stdout=log, stderr=subprocess.STDOUT,
                              env=env, check=False)
    seconds = time.monotonic() - t0
    if not isinstance(store, LocalStore):  # keep the log with the cell's other files
        with contextlib.suppress(StoreError):
            store.upload(layout.cell_key(grid, cell.cell_id, "cell.log"), log_path)
    if proc.returncode == 0 and layout.done_manifest(store, grid, cell.cell_id):
        return Outcome(cell, "done", 0, seconds, log=log_path)
    status = layout.read_status(store, grid, cell.cell_id) or {}
    reason = status.get("reason") or f"exit code {proc.returncode}; see {log_path}"
    return Outcome(cell, "failed", proc.returncode, seconds, reason, log_path)


def log_folder(store: Store, grid: str) -> Path:
    """Where cell logs go on this machine: beside the cells for a local store, ``./logs/<grid>/`` for a remote
    one (each log is also uploaded next to the cell), or ``$PEFTSUM_LOG_DIR/<grid>/logs``."""
    if os.environ.get("PEFTSUM_LOG_DIR"):
        return Path(os.environ["PEFTSUM_LOG_DIR"]) / grid / "logs"
    if isinstance(store, LocalStore):
        return store.root / grid / "logs"
    return Path("logs") / grid


def run_grid(store: Store, grid: Grid, jobs: int = 1, on_event=None) -> list[Outcome]:
    """Run every not-done cell of ``grid`` with at most ``jobs`` at a time; returns one Outcome per cell."""
    write_specs(store, grid)
    log_dir = log_folder(store, grid.name)
    log_dir.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    todo = []
    for cell in grid.cells:
        if layout.done_manifest(store, grid.name, cell.cell_id):
            outcomes.append(Outcome(cell, "skipped", 0, 0.0, "already done"))
            if on_event:
                on_event("skipped", outcomes[-1])
        else:
            todo.append(cell)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs)) if jobs > 1 else None

    def work(cell: Cell) -> Outcome:
        if on_event:
            on_event("start", Outcome(cell, "running", None, 0.0))
        out = run_one(store, grid.name, cell, log_dir, threads)
        if on_event:
            on_event(out.state, out)
        return out

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes += list(pool.map(work, todo))
    return outcomes
