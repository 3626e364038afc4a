"""``launcher run``: the embedded default. Each cell in its own ``peftsum cell`` process, then the report.

Specs go to the store first (the store is the single source of truth, as on the cluster); done cells are skipped;
a failed cell is reported and the others go on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from peftsum.exit_codes import EXIT_RETRY
from peftsum.spec import Cell, Grid
from peftsum.store import LocalStore, Store, StoreError, layout


@dataclass
class Outcome:
    cell: Cell
    state: str  # done | skipped (done before) | failed | interrupted | elsewhere (another run has it)
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


class Children:
    """The running cell processes, so a SIGTERM/SIGINT to ``launcher run`` reaches them: each checkpoints and exits
    3 (status pending), and no new cell starts. Without this the cells would be orphaned, still training."""

    def __init__(self) -> None:
        self.procs: set[subprocess.Popen] = set()
        self.stopping: int | None = None
        self.lock = threading.Lock()

    def stop(self, signum: int, frame: object = None) -> None:
        self.stopping = signum
        with self.lock:
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    @contextlib.contextmanager
    def forwarding(self) -> Iterator[None]:
        """Forward SIGTERM and SIGINT to the children for the ``with`` block (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run(self, cmd: list[str], log: IO[bytes], env: dict[str, str]) -> int:
        with self.lock:
            if self.stopping is not None:
                return EXIT_RETRY
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            self.procs.add(proc)
        try:
            return proc.wait()
        finally:
            with self.lock:
                self.procs.discard(proc)




@contextlib.contextmanager
def open_log(store: Store, grid: str, cell_id: str, log_dir: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """The cell's log, opened for writing without following a link planted where it goes (store.md)."""
    if isinstance(store, LocalStore) and log_dir == log_folder(store, grid):
        key = layout.grid_key(grid, "logs", f"{cell_id}.log")
        with store.open_for_append(key) as f:
            yield f, store.root / key
    else:
        with LocalStore(log_dir).open_for_append(f"{cell_id}.log") as f:
            yield f, log_dir / f"{cell_id}.log"


def run_one(store: Store, grid: str, cell: Cell, log_dir: Path, threads: int | None,
            children: Children | None = None, env: Mapping[str, str] | None = None) -> Outcome:
    """Run one cell in a child process under the cell's lease, its output to ``log_dir/<id>.log``; ``env`` adds
    to the launcher's environment (the grid's tracking variables)."""
    t0 = time.monotonic()
    children = children or Children()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    holder = layout.take_lease(store, grid, cell.cell_id, owner)
    if holder is not None:
        return Outcome(cell, "elsewhere", None, 0.0, f"another run holds its lease ({holder})")
    env = {**os.environ, **(env or {})}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # split the cores between concurrent cells
    renewing = threading.Event()

    def renew() -> None:
        while not renewing.wait(layout.LEASE_SECONDS / 4):
            with contextlib.suppress(StoreError):
                layout.renew_lease(store, grid, cell.cell_id, owner)

    renewer = threading.Thread(target=renew, daemon=True)
    renewer.start()
    try:
        with open_log(store, grid, cell.cell_id, log_dir) as (log, log_path):
            code = children.run(cell_command(store, grid, cell.cell_id), log, env)
    finally:
        renewing.set()
        renewer.join()
        layout.release_lease(store, grid, cell.cell_id, owner)
    seconds = time.monotonic() - t0
    if not isinstance(store, LocalStore):  # keep the log with the cell's other files
        with contextlib.suppress(StoreError):
            store.upload(layout.cell_key(grid, cell.cell_id, "cell.log"), log_path)
    manifest, problem = layout.check_done(store, grid, cell.cell_id)
    if code == 0 and manifest is not None:
        return Outcome(cell, "done", 0, seconds, log=log_path)
    if code == EXIT_RETRY and children.stopping is not None:
        return Outcome(cell, "interrupted", code, seconds, "stopped by a signal; rerun to resume", log_path)
    status = layout.read_status(store, grid, cell.cell_id) or {}
    reason = status.get("reason") or problem or f"exit code {code}; see {log_path}"
    return Outcome(cell, "failed", code, seconds, reason, log_path)


def log_folder(store: Store, grid: str) -> Path:
    """Where cell logs go on this machine: beside the cells for a local store, ``./logs/<grid>/`` for a remote
    one (each log is also uploaded next to the cell), or ``$PEFTSUM_LOG_DIR/<grid>/logs``."""
    if os.environ.get("PEFTSUM_LOG_DIR"):
        return Path(os.environ["PEFTSUM_LOG_DIR"]) / grid / "logs"
    if isinstance(store, LocalStore):
        return store.root / grid / "logs"
    return Path("logs") / grid


def run_grid(store: Store, grid: Grid, jobs: int = 1, on_event=None) -> list[Outcome]:
    """Run every not-done cell of ``grid`` with at most ``jobs`` at a time; returns one Outcome per cell.

    A signal (SIGTERM, SIGINT) is forwarded to the running cells, which checkpoint and exit 3; cells not yet
    started are reported ``interrupted``. Raises StoreError when the store cannot be read or written at all.
    """
    write_specs(store, grid)
    if isinstance(store, LocalStore):
        store.remove_stale_temp(grid.name)  # left by writers killed mid-write
    log_dir = log_folder(store, grid.name)
    outcomes: list[Outcome] = []
    todo = []
    for cell in grid.cells:
        manifest, problem = layout.check_done(store, grid.name, cell.cell_id)
        if manifest is not None:
            outcomes.append(Outcome(cell, "skipped", 0, 0.0, "already done"))
            if on_event:
                on_event("skipped", outcomes[-1])
        else:
            if problem and on_event:  # the cell moves the bad _SUCCESS aside and runs again
                on_event("repair", Outcome(cell, "repair", None, 0.0, problem))
            todo.append(cell)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs)) if jobs > 1 else None
    children = Children()

    def work(cell: Cell) -> Outcome:
        if children.stopping is not None:
            out = Outcome(cell, "interrupted", None, 0.0, "not started: launcher run was stopped")
        else:
            if on_event:
                on_event("start", Outcome(cell, "running", None, 0.0))
            try:
                out = run_one(store, grid.name, cell, log_dir, threads, children,
                              grid.tracking.environment(grid.name))
            except StoreError as err:  # its log or lease could not be written: this cell fails, the rest go on
                out = Outcome(cell, "failed", None, 0.0, f"{type(err).__name__}: {err}")
        if on_event:
            on_event(out.state, out)
        return out

    with children.forwarding(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes += list(pool.map(work, todo))
    return outcomes
