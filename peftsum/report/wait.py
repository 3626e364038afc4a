"""``peftsum aggregate --wait``: the aggregation Job waits for the cells, reading only the store.

``launcher submit`` creates the aggregation Job together with the cell Jobs, so the report is built in the cluster
when nobody keeps a client open. That pod has no Kubernetes API access (no token is mounted) and needs none: the
store says when a cell is done (a verified ``_SUCCESS``), and ``status.json`` says when a cell cannot get further:

- it failed with exit code 2 (a bad spec: the Job's podFailurePolicy fails the Job at once), or its ``spec.json``
  does not hash to its id (the pod exits 2 before it can write a status);
- it failed as many times as its Job's ``backoffLimit`` allows (``attempts`` in status.json counts what the Job
  counts: a preempted attempt is not counted, as the podFailurePolicy ignores it);
- its latest attempt started longer ago than the Job's ``activeDeadlineSeconds`` (the Job ended: DeadlineExceeded);
- it is running on its last allowed attempt with a heartbeat older than ``lost_after`` (OOMKilled, or its node was
  lost: the pod could not write its failure).

The store is polled with backoff (30 s doubling to 10 min), bounded by a deadline; then the report is built with
what is done and every other cell listed with the reason the wait ended for it (:meth:`Waited.notes`). Every
function here is pure except :func:`wait_for_cells` and the two readers it calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from peftsum.exit_codes import EXIT_BAD_INPUT
from peftsum.spec import Cell, SpecError
from peftsum.store import Store, StoreError, layout

LOST_AFTER_S = 6 * 3600  # no status write for this long on the last allowed attempt: the pod is gone
FIRST_POLL_S, MAX_POLL_S = 30.0, 600.0


@dataclass
class Waited:
    """How the wait ended: ``ended`` (cell → why it cannot get further), ``open`` (cell → its state when the
    deadline passed), the ``done`` cells, and whether the deadline ended the wait."""

    done: list[str] = field(default_factory=list)
    ended: dict[str, str] = field(default_factory=dict)
    open: dict[str, str] = field(default_factory=dict)
    timed_out: bool = False
    waited_s: float = 0.0
    polls: int = 0

    def notes(self) -> dict[str, str]:
        """The reason the report shows for every cell that is not done."""
        out = {cid: f"the report stopped waiting: {why}" for cid, why in self.ended.items()}
        out.update({cid: f"still {state} when the report's wait ended after {self.waited_s / 3600:.1f} h"
                    for cid, state in self.open.items()})
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"done": sorted(self.done), "ended": dict(sorted(self.ended.items())),
                "open": dict(sorted(self.open.items())), "timed_out": self.timed_out,
                "waited_s": round(self.waited_s, 1), "polls": self.polls}


def attempt_started(attempt: Any) -> datetime | None:
    """When an attempt started, from its id (``<UTC %Y%m%dT%H%M%S>-<6 hex>``, ``layout.new_attempt_id``)."""
    try:
        return datetime.strptime(str(attempt).split("-", 1)[0], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _age(stamp: Any, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return (now - (when if when.tzinfo else when.replace(tzinfo=timezone.utc))).total_seconds()


def verdict(status: dict[str, Any] | None, *, max_attempts: int, job_deadline_s: float | None = None,
            lost_after_s: float = LOST_AFTER_S, now: datetime) -> str | None:
    """Why a cell that is not done cannot get further, or None while it still may (a pure function).

    Args:
        status: the cell's status.json, or None (not started yet).
        max_attempts: the cell Job's backoffLimit + 1.
        job_deadline_s: the cell Job's activeDeadlineSeconds, or None.
        lost_after_s: how old a heartbeat on the last allowed attempt may be.
        now: the current time.
    """
    if not status:
        return None
    state, reason, code = status.get("state"), status.get("reason"), status.get("exit_code")
    attempts = status.get("attempts") if isinstance(status.get("attempts"), int) else 0
    last = f"; last: {reason}" if reason else ""
    if state == "done":  # but no valid _SUCCESS (the caller checked): a torn commit no pod will repair
        return "status.json says done but _SUCCESS is missing or incomplete"
    if state == "failed" and code == EXIT_BAD_INPUT:
        return f"bad spec (exit code 2, never retried){last}"
    if state == "failed" and attempts >= max_attempts:
        return f"failed {attempts} times, all the attempts its Job allows (backoffLimit {max_attempts - 1}){last}"
    started = attempt_started(status.get("attempt"))
    if job_deadline_s is not None and started is not None and (now - started).total_seconds() > job_deadline_s:
        return (f"its last attempt started {(now - started).total_seconds() / 3600:.1f} h ago, beyond the Job's "
                f"activeDeadlineSeconds ({job_deadline_s:.0f} s): the Job has ended{last}")
    age = _age(status.get("heartbeat_at"), now)
    if state == "running" and attempts >= max_attempts and age is not None and age > lost_after_s:
        return (f"lost: its last allowed attempt ({attempts} of {max_attempts}) wrote no status for "
                f"{age / 3600:.1f} h (OOMKilled, or its node was lost?)")
    return None


def describe(status: dict[str, Any] | None) -> str:
    """A cell's state in a few words (for the cells still open)."""
    if not status:
        return "not started"
    state = str(status.get("state") or "unknown")
    if state == "running" and isinstance(status.get("progress"), (int, float)):
        return f"running ({100 * status['progress']:.0f}%)"
    return state + (f" ({status['reason']})" if status.get("reason") else "")


def cell_ids(store: Store, grid: str) -> list[str]:
    """The grid's cells: ``grid.json`` (written by ``launcher submit``), else every ``spec.json`` in the store, read
    as the report reads them (``collect.grid_cells``); none for a grid the store does not hold."""
    from peftsum.report.collect import GridNotFound, grid_cells

    try:
        return sorted(grid_cells(store, grid))
    except GridNotFound:
        return []


def bad_spec(store: Store, grid: str, cell_id: str) -> str | None:
    """Why the cell's spec.json can never run (its pod exits 2 before writing a status), or None."""
    try:
        cell = Cell.from_dict(layout.read_json(store, layout.cell_key(grid, cell_id, "spec.json")))
    except StoreError:
        return None  # not written yet, or unreadable now: the cell's own status will tell
    except (SpecError, ValueError, KeyError, TypeError) as err:
        return f"bad spec (exit code 2, never retried): {err}"
    if cell.cell_id != cell_id:
        return f"bad spec (exit code 2, never retried): spec.json hashes to {cell.cell_id}"
    return None


def wait_for_cells(store: Store, grid: str, *, deadline_s: float, max_attempts: int,
                   job_deadline_s: float | None = None, lost_after_s: float = LOST_AFTER_S,
                   first_poll_s: float = FIRST_POLL_S, max_poll_s: float = MAX_POLL_S, workers: int = 16,
                   clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                   now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                   log: Callable[[str], None] = print) -> Waited:
    """Poll the store until no cell of ``grid`` can change any more, or ``deadline_s`` seconds pass.

    Each poll reads ``_SUCCESS`` and ``status.json`` of every cell not yet done (``workers`` at a time: on S3 each
    read is a request); a done cell is not read again. Specs are checked once. Polls back off from
    ``first_poll_s`` to ``max_poll_s``, and the last sleep ends at the deadline.
    """
    start = clock()
    ids = cell_ids(store, grid)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bad = {cid: why for cid, why in zip(ids, pool.map(lambda c: bad_spec(store, grid, c), ids)) if why}
        done: set[str] = set()
        delay, polls = first_poll_s, 0
        while True:
            polls += 1
            pending = [c for c in ids if c not in done and c not in bad]

            def read(cid: str) -> tuple[str, bool, dict[str, Any] | None]:
                if layout.done_manifest(store, grid, cid) is not None:
                    return cid, True, None
                return cid, False, layout.read_status(store, grid, cid)

            ended, still = dict(bad), {}
            at = now()
            for cid, is_done, status in pool.map(read, pending):
                if is_done:
                    done.add(cid)
                    continue
                why = verdict(status, max_attempts=max_attempts, job_deadline_s=job_deadline_s,
                              lost_after_s=lost_after_s, now=at)
                if why:
                    ended[cid] = why
                else:
                    still[cid] = describe(status)
            waited = clock() - start
            log(f"{grid}: {len(done)} done, {len(ended)} cannot get further, {len(still)} running or pending "
                f"(poll {polls}, {waited / 60:.0f} min)")
            if not still or waited >= deadline_s:
                return Waited(sorted(done), ended, still, timed_out=bool(still), waited_s=waited, polls=polls)
            sleep(min(delay, deadline_s - waited))
            delay = min(delay * 2, max_poll_s)
