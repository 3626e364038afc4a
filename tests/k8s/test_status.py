"""Status classification on real-shaped Job/Pod JSON (as ``kubectl get -o json`` returns it), and grid_states
combining the store and the cluster, including after a Job's TTL removed it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from launcher.k8s import names
from launcher.k8s.status import classify, grid_states, summary
from peftsum.store import layout

FIXTURES = Path(__file__).with_name("fixtures")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def fixture(name: str) -> tuple[dict, list[dict]]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return data["job"], data["pods"]


def test_oomkilled_comes_from_the_container_status() -> None:
    job, pods = fixture("oomkilled")
    v = classify(False, {"state": "running", "attempt": "a1", "heartbeat_at": "2026-05-01T10:29:00+00:00"}, job,
                 pods, NOW)
    assert (v.state, v.source) == ("failed", "cluster")
    assert v.reason.startswith("BackoffLimitExceeded") and "OOMKilled" in v.reason


def test_exit_137_without_oomkilled_is_not_called_oom() -> None:
    job, pods = fixture("oomkilled")
    for pod in pods:
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] = "Error"
    v = classify(False, None, job, pods, NOW)
    assert v.state == "failed" and "OOMKilled" not in v.reason and "exit code 137" in v.reason


def test_deadline_exceeded_names_the_limit() -> None:
    job, pods = fixture("deadline")
    v = classify(False, {"state": "running"}, job, pods, NOW)
    assert v.state == "failed"
    assert "DeadlineExceeded" in v.reason and "activeDeadlineSeconds=3600" in v.reason


def test_bad_spec_exit_2_uses_the_cells_own_reason() -> None:
    job, pods = fixture("bad_spec")
    status = {"state": "failed", "reason": "bad spec: spec.json hashes to 0123456789ab, not the cell id",
              "exit_code": 2}
    v = classify(False, status, job, pods, NOW)
    assert v.state == "failed"
    assert v.reason == "bad spec (exit code 2, never retried): spec.json hashes to 0123456789ab, not the cell id"


def test_bad_spec_without_store_reason_uses_the_job_message() -> None:
    job, pods = fixture("bad_spec")
    v = classify(False, None, job, pods, NOW)
    assert "exit code 2 matching FailJob" in v.reason


def test_disruption_target_is_a_retry_not_a_failure() -> None:
    job, pods = fixture("disruption")
    v = classify(False, {"state": "pending", "reason": "preempted: checkpoint written"}, job, pods, NOW)
    assert v.state == "pending"
    assert "unschedulable: 0/4 nodes" in v.reason
    assert "preempted or evicted (PreemptionByScheduler" in v.reason and "not counted" in v.reason


def test_image_pull_backoff_is_reported_as_such() -> None:
    job, pods = fixture("image_pull")
    v = classify(False, None, job, pods, NOW)
    assert v.state == "pending" and v.reason.startswith("ImagePullBackOff: the image cannot be pulled")
    assert "registry.example/peftsum:0.1.0" in v.reason


def test_running_takes_progress_from_the_store() -> None:
    job, pods = fixture("running")
    v = classify(False, {"state": "running", "attempt": "a1", "progress": 0.25}, job, pods, NOW)
    assert (v.state, v.progress, v.source) == ("running", 0.25, "store")


def test_done_in_the_store_wins_over_a_failed_job() -> None:
    job, pods = fixture("oomkilled")
    assert classify(True, None, job, pods, NOW).state == "done"


def test_suspended_job_is_queued() -> None:
    job, _ = fixture("running")
    job["spec"]["suspend"] = True
    v = classify(False, None, job, [], NOW)
    assert v.state == "pending" and "Kueue" in v.reason


def test_completed_job_without_success_is_a_failure() -> None:
    job, pods = fixture("running")
    job["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert classify(False, None, job, pods, NOW).state == "failed"


@pytest.mark.parametrize(("status", "state", "text"), [
    (None, "pending", "not submitted"),
    ({"state": "failed", "reason": "CUDA error", "exit_code": 1}, "failed", "CUDA error (exit code 1)"),
    ({"state": "pending", "reason": "preempted: checkpoint written"}, "pending", "launcher submit` resumes"),
    ({"state": "running", "heartbeat_at": "2026-05-01T11:58:00+00:00", "progress": 0.5}, "running", "no Job"),
    ({"state": "running", "heartbeat_at": "2026-05-01T09:00:00+00:00"}, "failed", "lost"),
])
def test_without_a_job_the_store_decides(status: dict | None, state: str, text: str) -> None:
    v = classify(False, status, None, [], NOW)
    assert v.state == state and text in v.reason


def test_grid_states_combines_store_and_cluster_and_survives_ttl(small, store, fake) -> None:
    cells = [c.cell_id for c in small.cells]
    # cell 0: done in the store (its Job already removed by the TTL)
    attempt = "20260501T100000-abcdef"
    layout.write_json(store, layout.cell_key(small.name, cells[0], "attempts", attempt, "result.json"), {"x": 1})
    size = store.size(layout.cell_key(small.name, cells[0], "attempts", attempt, "result.json"))
    layout.commit_success(store, small.name, cells[0], attempt,
                          {f"attempts/{attempt}/result.json": {"bytes": size, "sha256": "0" * 64}})
    # cell 1: OOMKilled Job in the cluster
    job, pods = fixture("oomkilled")
    job["metadata"]["labels"][names.LABEL_CELL] = cells[1]
    fake.jobs[job["metadata"]["name"]] = job
    for pod in pods:
        pod["metadata"]["labels"][names.LABEL_CELL] = cells[1]
        fake.add_pod(pod)
    # cell 2: failed earlier, Job gone (TTL): the store's reason stays
    layout.write_status(store, small.name, cells[2], "failed", reason="bad spec: unknown method", exit_code=2)
    # cell 3: nothing at all
    states = grid_states(store, small, fake)
    assert [s.state for s in states] == ["done", "failed", "failed", "pending"]
    assert "OOMKilled" in states[1].reason
    assert states[2].reason == "bad spec: unknown method (exit code 2)"
    assert summary(states) == {"done": 1, "running": 0, "pending": 1, "failed": 2}
    # one list call each for Jobs and pods, whatever the grid size
    assert [c[0] for c in fake.calls].count("list_jobs") == 1
    # without a cluster the store alone still knows cells 0 and 2
    alone = grid_states(store, small, None)
    assert [s.state for s in alone] == ["done", "pending", "failed", "pending"]


def test_heartbeat_age_is_relative_to_now() -> None:
    beat = (NOW - timedelta(minutes=20)).isoformat()
    assert classify(False, {"state": "running", "heartbeat_at": beat}, None, [], NOW).state == "failed"


def test_a_pod_stuck_creating_points_at_its_volumes() -> None:
    """Credentials are Secret volumes: a missing Secret or key keeps the pod in ContainerCreating (FailedMount), not
    CreateContainerConfigError as a secretKeyRef did."""
    job, pods = fixture("running")
    pod = pods[-1]
    pod["status"] = {"phase": "Pending", "containerStatuses": [
        {"name": "cell", "state": {"waiting": {"reason": "ContainerCreating"}}}]}
    v = classify(False, None, job, [pod], NOW)
    assert v.state == "pending" and v.reason.startswith("ContainerCreating") and "FailedMount" in v.reason
