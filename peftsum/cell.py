"""``peftsum cell``: run one cell end to end, idempotently.

load data → load model → apply method → train (resumable) → generate → score → measure → write the attempt's
files → ``_SUCCESS`` last (first writer wins). This module begins and ends the attempt (status.json, tracking, the
exit code); ``peftsum.attempt`` runs it and ``peftsum.predict`` is its model-specific half. Exit codes
(docs/architecture.md, "Exit codes"): 0 done (or already done), 1 failed, 2 the spec or the configuration can
never run (a person must fix it), 3 retryable (preempted, the store unreachable or full).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from peftsum.attempt import execute, log, quietly
from peftsum.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, EXIT_RETRY
from peftsum.preempt import Preempted, Preemption
from peftsum.prepare import method_params as method_params  # re-exported: where tests and callers find it
from peftsum.result import environment
from peftsum.spec import Cell, SpecError
from peftsum.store import Store, StoreError, layout
from peftsum.store.base import MissingObject, StoreDenied, UnsafeKeyError
from peftsum.tracking import Tracker, open_tracker


def exit_code(err: BaseException) -> int:
    """The exit code an exception ends a cell with: 2 only when retrying can never help."""
    if isinstance(err, (SpecError, StoreDenied, UnsafeKeyError)):
        return EXIT_BAD_INPUT
    if isinstance(err, (Preempted, OSError)):  # StoreUnavailable, a plain StoreError, an I/O error
        return EXIT_RETRY
    return EXIT_FAILED


def load_spec(store: Store, grid: str, cell_id: str) -> Cell:
    """Read ``cells/<id>/spec.json`` and check that it hashes to ``cell_id`` (else SpecError: exit 2). A store that
    cannot be read raises its StoreError (unavailable: exit 3; denied: exit 2, naming the bucket)."""
    try:
        data = layout.read_json(store, layout.cell_key(grid, cell_id, "spec.json"))
    except MissingObject as err:
        raise SpecError("spec.json", cell_id, f"no cell spec: {err} (was the grid submitted?)") from None
    except (ValueError, RecursionError) as err:
        raise SpecError("spec.json", cell_id, f"the cell spec is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise SpecError("spec.json", cell_id, "the cell spec is not a JSON object")
    cell = Cell.from_dict(data)
    if cell.cell_id != cell_id:
        raise SpecError("spec.json", cell_id, f"hashes to {cell.cell_id}, not to the cell id it is stored under")
    return cell


def _set_status(store: Store, grid: str, cell_id: str, state: str, **fields: Any) -> None:
    """Write status.json, but never let a failing store hide the cell's own outcome (exit code, log)."""
    try:
        layout.write_status(store, grid, cell_id, state, **fields)
    except StoreError as err:
        log(cell_id, f"could not write status.json ({state}): {err}")


def run_cell(store: Store, grid: str, cell: Cell, telemetry: Any = None) -> int:
    """Run ``cell`` into ``store``; returns the process exit code.

    A ``_SUCCESS`` that fails verification (malformed, or a listed file missing or changed) is moved aside
    (``_SUCCESS.corrupt-<time>``) and the cell runs again: otherwise the new attempt would lose the first-writer
    race to it on every run. SIGTERM/SIGINT anywhere ends the attempt with exit 3 (``peftsum.preempt``).

    Args:
        telemetry: a ``peftsum.telemetry.CellMetrics`` to keep current (pushed or scraped by the caller), or None.
    """
    cell_id = cell.cell_id
    attempt = None
    tracker = Tracker()
    try:
        with Preemption() as preemption:
            manifest, problem = layout.check_done(store, grid, cell_id)
            if manifest is not None:
                log(cell_id, "already done")
                if not cell.train.keep_checkpoints:  # a kill between _SUCCESS and the cleanup left them
                    layout.clear_checkpoints(store, grid, cell_id)
                return EXIT_OK
            if problem:
                aside = layout.quarantine_manifest(store, grid, cell_id, problem)
                log(cell_id, f"_SUCCESS failed verification ({problem}); moved aside to {aside}, running again")
            attempt = layout.new_attempt_id()
            started = layout.now_iso()
            layout.begin_attempt(store, grid, cell_id, attempt, os.environ.get("PEFTSUM_JOB_UID") or None,
                                 progress=0.0, started_at=started)
            tracker = open_tracker(grid, cell.to_dict(), cell_id, attempt, {
                "mlflow.source.git.commit": environment()["git_sha"] or "unknown",
                "peftsum.store": f"{store.uri}/{layout.cell_key(grid, cell_id)}"})
            with tempfile.TemporaryDirectory(prefix=f"peftsum-{cell_id}-") as tmp:
                result = execute(store, grid, cell, attempt, started, Path(tmp), telemetry, preemption, tracker)
    except Exception as err:
        code = exit_code(err)
        tracker.end("KILLED" if isinstance(err, Preempted) else "FAILED")
        state = "pending" if isinstance(err, Preempted) else "failed"  # pending: not counted as a failure
        reason = f"bad spec: {err}" if isinstance(err, SpecError) else f"{type(err).__name__}: {err}"
        _set_status(store, grid, cell_id, state, reason=reason, exit_code=code, attempt=attempt)
        log(cell_id, f"{state} (exit {code}): {reason}")
        if code == EXIT_FAILED:
            import traceback

            traceback.print_exc()
        return code
    if result is None:  # another attempt committed first: its result stands, ours is discarded
        tracker.end("KILLED")
        with quietly(cell_id):
            store.delete_prefix(layout.cell_key(grid, cell_id, "attempts", attempt))
        winner = layout.done_manifest(store, grid, cell_id) or {}
        _set_status(store, grid, cell_id, "done", exit_code=EXIT_OK, attempt=winner.get("attempt_id"), progress=1.0)
        log(cell_id, "another attempt finished first; keeping its result")
        return EXIT_OK
    m = result["metrics"]
    _set_status(store, grid, cell_id, "done", exit_code=EXIT_OK, attempt=attempt, progress=1.0,
                metrics={k: m[k]["value"] for k in ("rougeL", "bleu")})
    attempt_uri = f"{store.uri}/{layout.cell_key(grid, cell_id, 'attempts', attempt)}"
    tracker.finish(result, {"peftsum.artifacts": attempt_uri, "peftsum.result": f"{attempt_uri}/result.json"})
    if telemetry is not None:
        telemetry.succeeded({k: v["value"] for k, v in m.items() if isinstance(v, dict) and "value" in v})
    log(cell_id, f"done: ROUGE-L {m['rougeL']['value']:.3f}, BLEU {m['bleu']['value']:.3f}")
    return EXIT_OK
