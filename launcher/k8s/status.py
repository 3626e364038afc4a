"""Where each cell of a submitted grid stands: done / running / pending / failed, and why.

The store comes first: a verified ``_SUCCESS`` is *done* whatever the cluster says, and ``status.json`` (kept
current by the cell) gives progress and the cell's own failure reason. The cluster comes second and explains what
a cell cannot write itself: an OOM kill (read from the container status, not guessed from exit 137), the Job's
deadline, a bad spec that stopped the Job (podFailurePolicy on exit code 2), preemption, an image that cannot be
pulled, a pod that cannot be scheduled. After the Job's TTL has removed it, the store alone still tells done and
failed cells apart; a cell whose ``status.json`` says running with an old heartbeat and no Job is reported lost.
All functions here are pure except :func:`grid_states`, which reads the store and the :class:`KubeApi`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from launcher.k8s import names
from launcher.k8s.client import KubeApi
from peftsum.spec import Cell, Grid
from peftsum.store import Store, layout

STATES = ("done", "running", "pending", "failed")
TERMINAL = ("done", "failed")
STALE_HEARTBEAT_S = 15 * 60  # a running cell writes status.json at least every few minutes
IMAGE_PROBLEMS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull")
CONFIG_PROBLEMS = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class CellState:
    """One row of ``launcher status``."""

    cell_id: str
    model: str
    method: str
    dataset: str
    state: str  # done | running | pending | failed
    reason: str | None = None
    progress: float | None = None  # 0–1 from status.json while running
    source: str = "store"  # which side decided: store | cluster

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


@dataclass(frozen=True)
class Verdict:
    """What :func:`classify` concluded for one cell."""

    state: str
    reason: str | None = None
    progress: float | None = None
    source: str = "store"


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def _created(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def termination(pod: dict[str, Any]) -> tuple[str | None, int | None]:
    """(reason, exit code) of the pod's terminated container: ``OOMKilled`` comes from the kubelet's container
    status, never inferred from exit code 137 (a SIGKILL from elsewhere also gives 137)."""
    cs = _container_status(pod)
    term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
    if not term:
        return None, None
    return term.get("reason"), term.get("exitCode")


def _exit_text(pod: dict[str, Any]) -> str | None:
    reason, code = termination(pod)
    if reason is None and code is None:
        return None
    if reason == "OOMKilled":
        return "OOMKilled (the container hit its memory limit; raise cluster.memory or lower batch_tokens)"
    return f"{reason or 'terminated'} (exit code {code})"


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why a not-running pod is stuck or gone: image pull, container config, scheduling, disruption, exit."""
    status = pod.get("status") or {}
    disruption = _condition(pod, "DisruptionTarget")
    if disruption:
        return (f"preempted or evicted ({disruption.get('reason', 'DisruptionTarget')}: "
                f"{disruption.get('message', '')}".rstrip(": ") + "); not counted against backoffLimit")
    waiting = (_container_status(pod).get("state") or {}).get("waiting") or {}
    why = waiting.get("reason")
    if why in IMAGE_PROBLEMS:
        return f"{why}: the image cannot be pulled ({waiting.get('message', '')}".rstrip() + ")"
    if why in CONFIG_PROBLEMS:
        return f"{why}: {waiting.get('message', '')} (a missing Secret or key?)"
    if why == "CrashLoopBackOff":
        return f"CrashLoopBackOff: {waiting.get('message', '')}"
    if why == "ContainerCreating":  # the kubelet pulls the image and mounts the volumes (the credential files)
        return ("ContainerCreating: pulling the image or mounting volumes (if it lasts, `kubectl describe pod`: "
                "FailedMount names a missing Secret, key or PVC)")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"unschedulable: {cond.get('message') or cond.get('reason')}"
    if status.get("phase") == "Failed":
        return _exit_text(pod) or status.get("reason") or "pod failed"
    return None


def _job_failure(job: dict[str, Any], pods: list[dict[str, Any]], store_reason: str | None,
                 cell_reason: str | None) -> str:
    """Why a Failed Job failed. ``store_reason`` is status.json's reason with its exit code, ``cell_reason`` as the
    cell wrote it."""
    cond = _condition(job, "Failed") or {}
    why, message = cond.get("reason"), cond.get("message") or ""
    last = pods[-1] if pods else None
    if why == "DeadlineExceeded":
        limit = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return f"DeadlineExceeded: the Job ran longer than activeDeadlineSeconds={limit}"
    if why == "PodFailurePolicy":
        detail = (cell_reason or "").removeprefix("bad spec: ") or message
        return f"bad spec (exit code 2, never retried): {detail}".rstrip(": ")
    if why == "BackoffLimitExceeded":
        tail = _exit_text(last) if last else None
        return f"BackoffLimitExceeded: every retry failed; last attempt {tail or store_reason or 'failed'}"
    return f"{why or 'Failed'}: {message or store_reason or ''}".rstrip(": ")


def _heartbeat_age(status: dict[str, Any], now: datetime) -> float | None:
    try:
        beat = datetime.fromisoformat(str(status.get("heartbeat_at")))
    except ValueError:
        return None
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=timezone.utc)
    return (now - beat).total_seconds()


def classify(done: bool, status: dict[str, Any] | None, job: dict[str, Any] | None, pods: list[dict[str, Any]],
             now: datetime | None = None) -> Verdict:
    """The state of one cell from what the store and the cluster say (a pure function).

    Args:
        done: the store has a verified ``_SUCCESS`` for the cell.
        status: the cell's ``status.json``, or None.
        job: the cell's Job as the API returns it, or None (never submitted, deleted, or removed by its TTL).
        pods: the Job's pods, any order.
        now: the current time (for the heartbeat age); defaults to now.
    """
    if done:
        return Verdict("done")
    now = now or datetime.now(timezone.utc)
    status = status or {}
    progress = status.get("progress")
    store_state, store_reason = status.get("state"), status.get("reason")
    if store_state == "failed" and status.get("exit_code") is not None and store_reason:
        store_reason = f"{store_reason} (exit code {status['exit_code']})"
    if job is None:
        return _without_job(store_state, store_reason, progress, status, now)

    pods = sorted(pods, key=_created)
    if _condition(job, "Failed"):
        return Verdict("failed", _job_failure(job, pods, store_reason, status.get("reason")), source="cluster")
    if _condition(job, "Complete"):
        return Verdict("failed", "the Job succeeded but the store has no valid _SUCCESS for the cell "
                                 "(check the store URI and credentials)", source="cluster")
    if (job.get("spec") or {}).get("suspend"):
        return Verdict("pending", "queued: the Job is suspended until Kueue admits it", source="cluster")
    current = pods[-1] if pods else None
    earlier = [p for p in pods[:-1] if (p.get("status") or {}).get("phase") == "Failed"]
    retry = f"; retrying after: {pod_problem(earlier[-1])}" if earlier and pod_problem(earlier[-1]) else ""
    if current is None:
        return Verdict("pending", "Job created, no pod yet" + retry, source="cluster")
    phase = (current.get("status") or {}).get("phase")
    if phase == "Running":
        if store_state == "running":
            return Verdict("running", f"attempt {status.get('attempt')}" + retry, progress, source="store")
        return Verdict("running", "pod running, cell starting" + retry, source="cluster")
    problem = pod_problem(current)
    if phase == "Failed" or problem:
        again = "; the Job will retry" if phase == "Failed" else ""
        return Verdict("pending", (problem or "pod failed") + again + retry, source="cluster")
    return Verdict("pending", f"pod {phase or 'Pending'}" + retry, source="cluster")


def _without_job(store_state: str | None, store_reason: str | None, progress: float | None,
                 status: dict[str, Any], now: datetime) -> Verdict:
    if store_state is None:
        return Verdict("pending", "not submitted (no Job, no status.json)")
    if store_state == "failed":
        return Verdict("failed", store_reason or "failed (no reason recorded)")
    if store_state == "done":
        return Verdict("failed", "status.json says done but _SUCCESS is missing or incomplete")
    age = _heartbeat_age(status, now)
    if store_state == "running":
        if age is not None and age > STALE_HEARTBEAT_S:
            return Verdict("failed", f"lost: status.json says running but its heartbeat is {age / 60:.0f} min old "
                                     f"and the cell has no Job (killed, or removed by the Job's TTL); `launcher "
                                     f"submit` resumes it from its last checkpoint")
        return Verdict("running", "running (no Job found: deleted?)", progress)
    return Verdict("pending", f"{store_reason or 'pending'}; no Job: `launcher submit` resumes it")


def grid_states(store: Store, grid: Grid, api: KubeApi | None, workers: int = 16) -> list[CellState]:
    """One :class:`CellState` per cell, in grid order: the store for every cell, the cluster when ``api`` is set.

    One list call for Jobs and one for pods cover the whole grid (by label), whatever its size; the store reads
    (two per cell, each a request on S3) run ``workers`` at a time.
    """
    jobs: dict[str, dict[str, Any]] = {}
    pods: dict[str, list[dict[str, Any]]] = {}
    if api is not None:
        selector = names.selector(grid.name, role="cell")
        for job in api.list_jobs(selector):
            jobs[(job.get("metadata") or {}).get("labels", {}).get(names.LABEL_CELL, "")] = job
        for pod in api.list_pods(selector):
            pods.setdefault((pod.get("metadata") or {}).get("labels", {}).get(names.LABEL_CELL, ""), []).append(pod)
    now = datetime.now(timezone.utc)

    def one(cell: Cell) -> CellState:
        cid = cell.cell_id
        done = layout.done_manifest(store, grid.name, cid) is not None
        status = None if done else layout.read_status(store, grid.name, cid)
        verdict = classify(done, status, jobs.get(cid), pods.get(cid, []), now)
        axes = cell.labels
        return CellState(cid, axes["model"], axes["method"], axes["dataset"], verdict.state, verdict.reason,
                         verdict.progress, verdict.source)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, grid.cells))


def summary(states: list[CellState]) -> dict[str, int]:
    """Count of cells per state, every state present (0 when none)."""
    return {s: sum(c.state == s for c in states) for s in STATES}
