"""The report without the client: ``launcher submit`` also creates ``<grid>-aggregate``, which waits in the cluster
reading only the store (``peftsum aggregate --wait``, peftsum/report/wait.py) and then builds the report with what
is done. Submit logic against the in-memory fake cluster and the fake API server over HTTP; the wait against moto's
real S3 server and a local store; cells count their attempts in status.json."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from launcher.k8s import names, render
from launcher.k8s.submit import submit_grid, submit_report_job
from peftsum.report import wait
from peftsum.spec import parse_grid
from peftsum.store import LocalStore, layout, open_store

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
AGG = "small-aggregate"


def _args(job: dict) -> list[str]:
    return job["spec"]["template"]["spec"]["containers"][0]["args"]


def _finish(fake, name: str, kind: str = "Complete") -> None:
    fake.set_job_status(name, {"conditions": [{"type": kind, "status": "True"}]})


# --- submit creates it, once ----------------------------------------------------------------------------------------


def test_submit_creates_the_waiting_aggregation_job_once(small, store, fake) -> None:
    results = submit_grid(store, small, fake)
    started = any(r.action == "created" for r in results)
    assert submit_report_job(small, fake, cells_started=started) == (AGG, "created")
    job = fake.jobs[AGG]
    assert _args(job) == ["aggregate", "--grid", "small", "--store", "s3://bucket/runs", "--wait", "604800",
                          "--max-attempts", "4", "--job-deadline", "86400"]
    assert job["spec"]["activeDeadlineSeconds"] == 604800 + render.REPORT_BUILD_SECONDS
    assert job["metadata"]["labels"][names.LABEL_ROLE] == "aggregate"
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False  # it reads the store only, never the API
    # a second submit: nothing new, the aggregation Job is left alone, also once it has finished
    creates = [c for c in fake.calls if c[0] == "create"]
    again = submit_grid(store, small, fake)
    assert submit_report_job(small, fake, cells_started=any(r.action == "created" for r in again)) == \
        (AGG, "unchanged")
    _finish(fake, AGG)
    assert submit_report_job(small, fake, cells_started=False) == (AGG, "unchanged")
    assert [c for c in fake.calls if c[0] in ("create", "delete")] == creates


def test_a_finished_report_is_redone_when_the_submit_started_cells(small, store, fake) -> None:
    submit_grid(store, small, fake)
    submit_report_job(small, fake, cells_started=True)
    _finish(fake, AGG)
    name = names.cell_job_name("small", small.cells[0].cell_id)
    fake.set_job_status(name, {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
    forced = submit_grid(store, small, fake, force=True)
    assert [r.action for r in forced].count("replaced") == 1
    assert submit_report_job(small, fake, cells_started=True) == (AGG, "replaced")
    assert fake.jobs[AGG]["status"] == {}


def test_a_submit_that_adds_cells_replaces_it_even_while_it_waits(small, small_text: str, store, fake) -> None:
    submit_grid(store, small, fake)
    submit_report_job(small, fake, cells_started=True)
    before = fake.jobs[AGG]["metadata"]["annotations"]
    bigger = parse_grid(small_text.replace("method: [lora, none]", "method: [lora, none, ia3]"), source="small.yaml")
    assert len(bigger.cells) > len(small.cells)
    submit_grid(store, bigger, fake)
    assert submit_report_job(bigger, fake, cells_started=True) == (AGG, "replaced")
    after = fake.jobs[AGG]["metadata"]["annotations"]
    assert after["peftsum.io/cells"] == str(len(bigger.cells)) != before["peftsum.io/cells"]
    assert after[f"{names.GROUP}/cells-digest"] != before[f"{names.GROUP}/cells-digest"]
    assert len([n for n in fake.jobs if n == AGG]) == 1  # a fixed name: never two


def test_cli_submit_without_wait_leaves_a_report_job(tmp_path: Path, small_text: str, cli_cluster, capsys) -> None:
    from launcher.cli import main

    grid = tmp_path / "small.yaml"
    grid.write_text(small_text)
    assert main(["submit", str(grid), "--dry-run"]) == 0
    assert "aggregation Job small-aggregate: planned" in capsys.readouterr().out and cli_cluster.jobs == {}
    assert main(["submit", str(grid)]) == 0
    assert AGG in cli_cluster.jobs and "--wait" in _args(cli_cluster.jobs[AGG])
    # report_wait_seconds: null: no waiting Job; `launcher report --k8s` builds the report at once
    grid.write_text(small_text + "  report_wait_seconds: null\n")
    cli_cluster.jobs.clear()
    assert main(["submit", str(grid)]) == 0
    assert AGG not in cli_cluster.jobs
    assert main(["report", str(grid), "--k8s"]) == 0
    assert "--wait" not in _args(cli_cluster.jobs[AGG])


def test_no_report_job_when_cells_failed_to_submit(tmp_path: Path, small_text: str, cli_cluster, capsys) -> None:
    from launcher.cli import main

    grid = tmp_path / "small.yaml"
    grid.write_text(small_text)
    cli_cluster.fail_create.add(f"small-{parse_grid(small_text).cells[0].cell_id}")
    assert main(["submit", str(grid)]) == 1
    assert AGG not in cli_cluster.jobs and "aggregation Job not created" in capsys.readouterr().err


def test_report_job_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small, store) -> None:
    """The official client's real requests: create, then a second submit that reads it and leaves it alone."""
    from launcher.k8s.client import KubeClient
    from tests.k8s.fake_apiserver import FakeApiServer

    with FakeApiServer() as server:
        config = tmp_path / "kubeconfig"
        config.write_text(server.kubeconfig())
        monkeypatch.setenv("KUBECONFIG", str(config))
        api = KubeClient("peftsum", context="fake")
        submit_grid(store, small, api)
        assert submit_report_job(small, api, cells_started=True) == (AGG, "created")
        assert submit_report_job(small, api, cells_started=False) == (AGG, "unchanged")
        assert len(server.jobs) == len(small.cells) + 1


# --- when a cell cannot get further (pure) -------------------------------------------------------------------------


def _status(state: str, *, attempts: int = 1, code: int | None = None, started: datetime = NOW,
            beat: datetime = NOW, reason: str | None = None) -> dict:
    return {"state": state, "attempts": attempts, "exit_code": code, "reason": reason,
            "attempt": started.strftime("%Y%m%dT%H%M%S") + "-abcdef", "heartbeat_at": beat.isoformat()}


@pytest.mark.parametrize(("status", "ends"), [
    (None, None),
    (_status("running"), None),
    (_status("pending", code=3, reason="Preempted"), None),
    (_status("failed", code=1, attempts=3, reason="boom"), None),  # the Job retries once more
    (_status("failed", code=2, reason="bad spec: x"), "bad spec (exit code 2, never retried); last: bad spec: x"),
    (_status("failed", code=1, attempts=4, reason="boom"), "failed 4 times, all the attempts its Job allows "
                                                           "(backoffLimit 3); last: boom"),
    (_status("failed", code=3, attempts=4, reason="OSError"), "failed 4 times"),  # I/O errors count too
    (_status("running", started=NOW - timedelta(hours=25)), "beyond the Job's activeDeadlineSeconds"),
    (_status("running", attempts=4, beat=NOW - timedelta(hours=7)), "lost: its last allowed attempt (4 of 4)"),
    (_status("running", attempts=3, beat=NOW - timedelta(hours=7)), None),  # a retry may be pending, unscheduled
    (_status("done"), "status.json says done but _SUCCESS is missing"),
])
def test_verdict(status: dict | None, ends: str | None) -> None:
    got = wait.verdict(status, max_attempts=4, job_deadline_s=86400, now=NOW)
    assert (got is None) if ends is None else (got is not None and ends in got)


# --- the wait, against moto's S3 ------------------------------------------------------------------------------------


def _grid_in(store, text: str):
    grid = parse_grid(text, source="small.yaml")
    layout.write_json(store, layout.grid_key(grid.name, "grid.json"),
                      {"name": grid.name, "cells": {c.cell_id: c.to_dict() for c in grid.cells}})
    for c in grid.cells:
        layout.write_json(store, layout.cell_key(grid.name, c.cell_id, "spec.json"), c.to_dict())
    return grid


def _commit(store, grid: str, cid: str) -> None:
    key = layout.cell_key(grid, cid, "attempts", "a1", "result.json")
    layout.write_json(store, key, {"ok": True})
    layout.commit_success(store, grid, cid, "a1", {"attempts/a1/result.json": {
        "bytes": store.size(key), "sha256": layout.object_sha256(store, key)}})


def test_wait_polls_s3_with_backoff_until_no_cell_can_change(s3, small_text: str) -> None:
    store = open_store(s3.uri)
    grid = _grid_in(store, small_text)
    a, b, c, d = (cell.cell_id for cell in grid.cells)
    now = datetime.now(timezone.utc)
    stamp = lambda: now.strftime("%Y%m%dT%H%M%S") + "-abcdef"  # noqa: E731
    layout.write_status(store, "small", a, "running", attempt=stamp(), attempts=1)
    layout.write_status(store, "small", b, "failed", attempt=stamp(), attempts=1, exit_code=1, reason="boom")
    _commit(store, "small", d)
    world = iter([
        lambda: (_commit(store, "small", a),  # a finishes; b fails again, its last allowed attempt
                 layout.write_status(store, "small", b, "failed", attempt=stamp(), attempts=2, exit_code=1,
                                     reason="boom")),
        lambda: layout.write_status(store, "small", c, "failed", attempt=stamp(), attempts=1, exit_code=2,
                                    reason="bad spec: no"),
    ])
    sleeps: list[float] = []
    clock = {"t": 0.0}

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock["t"] += seconds
        next(world)()

    out = wait.wait_for_cells(store, "small", deadline_s=3600, max_attempts=2, job_deadline_s=86400,
                              sleep=sleep, clock=lambda: clock["t"], log=lambda m: None)
    assert sleeps == [30.0, 60.0] and out.polls == 3 and not out.timed_out
    assert out.done == sorted([a, d]) and set(out.ended) == {b, c} and out.open == {}
    assert out.ended[c].startswith("bad spec") and out.ended[b].startswith("failed 2 times")


def test_wait_ends_at_its_deadline_and_backs_off_to_ten_minutes(small_text: str, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    grid = _grid_in(store, small_text)
    sleeps: list[float] = []
    clock = {"t": 0.0}

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock["t"] += seconds

    out = wait.wait_for_cells(store, "small", deadline_s=3000, max_attempts=4, sleep=sleep,
                              clock=lambda: clock["t"], log=lambda m: None)
    assert sleeps == [30, 60, 120, 240, 480, 600, 600, 600, 270]  # the last sleep ends at the deadline
    assert out.timed_out and set(out.open) == {c.cell_id for c in grid.cells}
    assert set(out.open.values()) == {"not started"}
    assert all("still not started when the report's wait ended" in n for n in out.notes().values())


def test_a_spec_that_cannot_run_ends_the_wait_for_its_cell(small_text: str, tmp_path: Path) -> None:
    """A spec.json that does not hash to its id makes the pod exit 2 before any status.json: read from the store."""
    store = LocalStore(tmp_path / "store")
    grid = _grid_in(store, small_text)
    victim = grid.cells[0].cell_id
    spec = layout.read_json(store, layout.cell_key("small", victim, "spec.json"))
    spec["seed"] = 7
    layout.write_json(store, layout.cell_key("small", victim, "spec.json"), spec)
    out = wait.wait_for_cells(store, "small", deadline_s=0, max_attempts=4, log=lambda m: None)
    assert out.ended[victim].startswith("bad spec (exit code 2, never retried): spec.json hashes to")


# --- the aggregation Job's command end to end ----------------------------------------------------------------------


def test_peftsum_aggregate_wait_builds_the_report_with_the_reasons(tmp_path: Path, capsys) -> None:
    from peftsum.cli import main
    from tests.report import fake_cells

    root = tmp_path / "store"
    ids = fake_cells.write_fake_grid(root, "fake", 12, seed=0, with_failures=True)
    store = LocalStore(root)
    not_done = [cid for cid in ids if layout.done_manifest(store, "fake", cid) is None]
    bad, failing, running = not_done[:3]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-abcdef"
    layout.write_status(store, "fake", bad, "failed", attempt=stamp, attempts=1, exit_code=2, reason="bad spec: x")
    layout.write_status(store, "fake", failing, "failed", attempt=stamp, attempts=2, exit_code=1, reason="OOM")
    layout.write_status(store, "fake", running, "running", attempt=stamp, attempts=1, progress=0.5)
    assert main(["aggregate", "--grid", "fake", "--store", str(root), "--wait", "0.5", "--max-attempts", "2",
                 "--job-deadline", "86400"]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("report/index.html")
    waited = json.loads((root / "fake" / "report" / "wait.json").read_text())
    assert waited["timed_out"] is True and running in waited["open"] and {bad, failing} <= waited["ended"].keys()
    report = (root / "fake" / "report" / "report.md").read_text()
    assert "the report stopped waiting: bad spec (exit code 2" in report
    assert "the report stopped waiting: failed 2 times" in report
    assert "still running (50%) when the report's wait ended" in report


# --- attempts in status.json ----------------------------------------------------------------------------------------


def test_cells_count_their_attempts_per_job(tmp_path: Path) -> None:
    """``attempts`` counts what the Job's backoffLimit counts: each start, not a resume after preemption, and from
    1 again under a new Job (a resubmitted cell). Every status the attempt writes keeps the count."""
    store, cid = LocalStore(tmp_path / "s"), "0123456789ab"

    def start(attempt: str, job: str | None = "uid-1") -> dict:
        layout.begin_attempt(store, "g", cid, attempt, job, progress=0.0)
        return layout.read_status(store, "g", cid)

    assert start("a1")["attempts"] == 1
    layout.write_status(store, "g", cid, "running", attempt="a1", progress=0.4)  # a heartbeat keeps the count
    assert layout.read_status(store, "g", cid)["attempts"] == 1
    layout.write_status(store, "g", cid, "failed", attempt="a1", exit_code=1, reason="boom")
    assert layout.read_status(store, "g", cid) | {"attempts": 1, "job": "uid-1"} == layout.read_status(store, "g", cid)
    assert start("a2")["attempts"] == 2  # retried: counted
    layout.write_status(store, "g", cid, "pending", attempt="a2", exit_code=3, reason="Preempted")
    assert start("a3")["attempts"] == 2  # after a preemption: not counted (podFailurePolicy Ignore)
    assert start("a4")["attempts"] == 3  # a3 died without a word (OOMKilled): counted
    assert start("a5", job="uid-2")["attempts"] == 1  # a new Job (submit --force) starts again
