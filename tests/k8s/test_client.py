"""KubeClient (the only module importing ``kubernetes``) against a fake API server over real HTTP: the official
client's real requests, status codes mapped to KubeError / None / False, and the submit logic end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.k8s import names
from launcher.k8s.client import KubeClient, KubeError, KubeUnreachable
from launcher.k8s.submit import submit_grid
from tests.k8s.fake_apiserver import FakeApiServer


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeApiServer() as srv:
        config = tmp_path / "kubeconfig"
        config.write_text(srv.kubeconfig())
        monkeypatch.setenv("KUBECONFIG", str(config))
        yield srv


def test_job_round_trip_over_http(server: FakeApiServer) -> None:
    api = KubeClient("peftsum", context="fake")
    body = {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "g-000000000001", "labels": {names.LABEL_GRID: "g", names.LABEL_CELL: "c1"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "cell", "image": "x"}]}}}}
    created = api.create_job(body)
    assert created["metadata"]["creationTimestamp"]  # API-shaped (camelCase) dicts, not client models
    assert api.get_job("g-000000000001")["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert api.get_job("missing") is None
    with pytest.raises(KubeError) as err:
        api.create_job(body)
    assert err.value.status == 409 and err.value.reason == "AlreadyExists"
    assert [j["metadata"]["name"] for j in api.list_jobs(names.selector("g", "c1"))] == ["g-000000000001"]
    assert api.list_jobs(names.selector("g", "c2")) == []
    assert api.delete_job("g-000000000001") is True and api.delete_job("g-000000000001") is False
    methods = [m for m, _ in server.requests]
    assert methods.count("POST") == 2 and "DELETE" in methods
    assert any("labelSelector=" in path for _, path in server.requests)


def test_pod_log_lines(server: FakeApiServer) -> None:
    server.logs[("peftsum", "p1")] = "one\ntwo\nthree\n"
    api = KubeClient("peftsum", context="fake")
    assert list(api.pod_log("p1", container="cell")) == ["one", "two", "three"]
    assert list(api.pod_log("p1", tail=1)) == ["three"]
    with pytest.raises(KubeError):
        list(api.pod_log("nope"))


def test_submit_end_to_end_over_http(server: FakeApiServer, small, store) -> None:
    api = KubeClient("peftsum", context="fake")
    results = submit_grid(store, small, api, concurrency=2)
    assert {r.action for r in results} == {"created"}
    assert len(server.jobs) == len(small.cells)
    assert {r.action for r in submit_grid(store, small, api)} == {"unchanged"}


def test_unknown_context_is_unreachable(server: FakeApiServer) -> None:
    with pytest.raises(KubeUnreachable, match="nope"):
        KubeClient("peftsum", context="nope")


def test_server_down_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeApiServer() as srv:
        text = srv.kubeconfig()
    config = tmp_path / "kubeconfig"
    config.write_text(text)
    monkeypatch.setenv("KUBECONFIG", str(config))
    api = KubeClient("peftsum", context="fake")
    with pytest.raises(KubeUnreachable):
        api.list_jobs("a=b")
