"""An in-memory :class:`launcher.k8s.client.KubeApi`: the fake at the launcher's own Kubernetes boundary.

Jobs are stored as the API would return them (the submitted body plus ``metadata.creationTimestamp``); deletion is
immediate. ``fail_create`` names Jobs whose creation fails with a 500; ``create_delay`` holds each create call so
tests can observe how many run at once (``max_in_flight``).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

from launcher.k8s.client import KubeError


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeKube:
    def __init__(self, namespace: str = "peftsum", create_delay: float = 0.0) -> None:
        self.namespace = namespace
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[str]] = {}
        self.fail_create: set[str] = set()
        self.create_delay = create_delay
        self.calls: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        with self._lock:
            self.calls.append(("create", name))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.create_delay)
            with self._lock:
                if name in self.fail_create:
                    raise KubeError(f"create {name}: 500 Internal Server Error", 500)
                if name in self.jobs:
                    raise KubeError(f"create {name}: 409 AlreadyExists", 409, "AlreadyExists")
                job = copy.deepcopy(body)
                job["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
                job["metadata"]["uid"] = f"uid-{len(self.calls)}"
                job["status"] = {}
                self.jobs[name] = job
                return copy.deepcopy(job)
        finally:
            with self._lock:
                self.in_flight -= 1

    def get_job(self, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", name))
        job = self.jobs.get(name)
        return copy.deepcopy(job) if job else None

    def list_jobs(self, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_jobs", selector))
        return [copy.deepcopy(j) for j in self.jobs.values() if _matches(j, selector)]

    def delete_job(self, name: str) -> bool:
        self.calls.append(("delete", name))
        with self._lock:
            return self.jobs.pop(name, None) is not None

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_pods", selector))
        return [copy.deepcopy(p) for p in self.pods.values() if _matches(p, selector)]

    def pod_log(self, pod: str, container: str | None = None, tail: int | None = None,
                follow: bool = False) -> Iterator[str]:
        lines = self.logs.get(pod, [])
        return iter(lines[-tail:] if tail else lines)

    # helpers for tests
    def set_job_status(self, name: str, status: dict[str, Any]) -> None:
        self.jobs[name]["status"] = status

    def add_pod(self, pod: dict[str, Any]) -> None:
        self.pods[pod["metadata"]["name"]] = pod
