"""Submit logic against the fake cluster (tests/k8s/fake_kube.py) and a local store standing in for S3."""

from __future__ import annotations

import dataclasses

import pytest

from launcher.k8s import names, render
from launcher.k8s.submit import submit_aggregate, submit_grid
from peftsum.store import layout


def _mark_done(store, grid: str, cell_id: str) -> None:
    key = layout.cell_key(grid, cell_id, "attempts", "a1", "result.json")
    layout.write_json(store, key, {"ok": True})
    layout.commit_success(store, grid, cell_id, "a1", {"attempts/a1/result.json": {"bytes": store.size(key),
                                                                                   "sha256": "0" * 64}})


def test_writes_specs_first_then_creates_one_job_per_cell(small, store, fake) -> None:
    results = submit_grid(store, small, fake)
    assert [r.action for r in results] == ["created"] * len(small.cells)
    assert layout.read_json(store, layout.grid_key(small.name, "grid.json"))["name"] == "small"
    for cell in small.cells:
        spec = layout.read_json(store, layout.cell_key(small.name, cell.cell_id, "spec.json"))
        assert spec == cell.to_dict()
        job = fake.jobs[names.cell_job_name(small.name, cell.cell_id)]
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
            "cell", "--store", "s3://bucket/runs", "--grid", "small", "--cell", cell.cell_id]


def test_skips_cells_done_in_the_store(small, store, fake) -> None:
    done = small.cells[0].cell_id
    _mark_done(store, small.name, done)
    results = submit_grid(store, small, fake)
    assert results[0].action == "skipped" and results[0].detail == "done in the store"
    assert names.cell_job_name(small.name, done) not in fake.jobs
    assert len(fake.jobs) == len(small.cells) - 1


def test_resubmitting_the_same_grid_is_a_no_op(small, store, fake) -> None:
    submit_grid(store, small, fake)
    created = [c for c in fake.calls if c[0] == "create"]
    again = submit_grid(store, small, fake)
    assert {r.action for r in again} == {"unchanged"}
    assert [c for c in fake.calls if c[0] == "create"] == created  # nothing new created


def test_changed_spec_is_a_conflict_naming_the_cell(small, store, fake) -> None:
    submit_grid(store, small, fake)
    changed = dataclasses.replace(small.cluster, memory="64Gi")
    results = submit_grid(store, small, fake, changed)
    assert {r.action for r in results} == {"conflict"}
    assert all(not r.ok and "--force" in r.detail and r.job in r.detail for r in results)
    job = fake.jobs[results[0].job]
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "32Gi"


def test_force_replaces_changed_jobs(small, store, fake) -> None:
    submit_grid(store, small, fake)
    changed = dataclasses.replace(small.cluster, memory="64Gi")
    results = submit_grid(store, small, fake, changed, force=True)
    assert {r.action for r in results} == {"replaced"}
    for r in results:
        limits = fake.jobs[r.job]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["memory"] == "64Gi"
        expected = render.cell_job(small, r.cell, changed)["metadata"]["annotations"][names.ANNOTATION_HASH]
        assert fake.jobs[r.job]["metadata"]["annotations"][names.ANNOTATION_HASH] == expected
    assert submit_grid(store, small, fake, changed)[0].action == "unchanged"


def test_failed_job_is_kept_unless_forced(small, store, fake) -> None:
    submit_grid(store, small, fake)
    name = names.cell_job_name(small.name, small.cells[0].cell_id)
    fake.set_job_status(name, {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
    first = submit_grid(store, small, fake)[0]
    assert first.action == "unchanged" and "--force" in first.detail
    forced = submit_grid(store, small, fake, force=True)
    assert forced[0].action == "replaced" and fake.jobs[name]["status"] == {}
    assert {r.action for r in forced[1:]} == {"unchanged"}  # running Jobs are not restarted by --force


def test_partial_failure_reports_every_failed_cell(small, store, fake) -> None:
    bad = {names.cell_job_name(small.name, c.cell_id) for c in small.cells[1:3]}
    fake.fail_create |= bad
    results = submit_grid(store, small, fake)
    failed = [r for r in results if r.action == "failed"]
    assert {r.job for r in failed} == bad
    assert all("500" in r.detail for r in failed)
    assert [r.action for r in results if r.job not in bad] == ["created"] * (len(small.cells) - 2)


def test_concurrency_is_bounded(paper, store) -> None:
    from tests.k8s.fake_kube import FakeKube

    fake = FakeKube(create_delay=0.02)
    results = submit_grid(store, paper, fake, concurrency=3)
    assert len(fake.jobs) == len(paper.cells) == 36 and all(r.ok for r in results)
    assert fake.max_in_flight == 3  # reached, never exceeded


def test_concurrency_must_be_positive(small, store, fake) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        submit_grid(store, small, fake, concurrency=0)


def test_dry_run_writes_and_creates_nothing(small, store) -> None:
    results = submit_grid(store, small, None, dry_run=True)
    assert {r.action for r in results} == {"planned"}
    assert store.list(small.name) == []


def test_create_race_compares_with_the_winner(small, store, fake) -> None:
    """Another launcher created the same Job between our get and create: same hash, so unchanged."""
    body = render.cell_job(small, small.cells[0], small.cluster)
    real_get = fake.get_job
    seen = {"n": 0}

    def racing_get(name: str):
        seen["n"] += 1
        if seen["n"] == 1:
            fake.create_job(body)
            return None
        return real_get(name)

    fake.get_job = racing_get
    results = submit_grid(store, dataclasses.replace(small, cells=small.cells[:1]), fake)
    assert results[0].action == "unchanged"


def test_aggregate_job_is_created_then_replaced_when_finished(small, fake) -> None:
    name, action = submit_aggregate(small, fake)
    assert (name, action) == ("small-aggregate", "created")
    assert fake.jobs[name]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "aggregate", "--grid", "small", "--store", "s3://bucket/runs"]
    assert submit_aggregate(small, fake)[1] == "running already"
    fake.set_job_status(name, {"conditions": [{"type": "Complete", "status": "True"}]})
    assert submit_aggregate(small, fake)[1] == "replaced"
    assert fake.jobs[name]["status"] == {}
