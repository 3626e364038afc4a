"""Opt-in: the rendered Job against a real API server (kind, minikube, a dev cluster). Skipped by default.

    PEFTSUM_TEST_KUBE_CONTEXT=kind-kind PEFTSUM_TEST_KUBE_NAMESPACE=default .venv/bin/pytest tests/k8s -k real

The Job is created suspended, so nothing runs and no image or S3 store is needed: the API server's own validation
(and admission: Pod Security "restricted" where the namespace enforces it) accepts it, it reads back with its hash
annotation, the launcher's label selectors find it, and it is deleted.
"""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

from launcher.k8s import names, render
from launcher.k8s.submit import create_or_keep, existing_hash

CONTEXT = os.environ.get("PEFTSUM_TEST_KUBE_CONTEXT")
pytestmark = pytest.mark.skipif(not CONTEXT, reason="set PEFTSUM_TEST_KUBE_CONTEXT to run against a real cluster")


def test_rendered_job_round_trip_on_a_real_api_server(small) -> None:
    from launcher.k8s.client import KubeClient

    namespace = os.environ.get("PEFTSUM_TEST_KUBE_NAMESPACE", "default")
    grid = dataclasses.replace(small, name=f"t{uuid.uuid4().hex[:8]}")
    cluster = dataclasses.replace(small.cluster, namespace=namespace, gpus=0, cpu="100m", memory="64Mi")
    job = render.cell_job(grid, grid.cells[0], cluster)
    job["spec"]["suspend"] = True  # never start a pod
    api = KubeClient(namespace, context=CONTEXT)
    try:
        assert create_or_keep(api, job, force=False)[0] == "created"
        assert create_or_keep(api, job, force=False)[0] == "unchanged"
        found = api.list_jobs(names.selector(grid.name, grid.cells[0].cell_id))
        assert [j["metadata"]["name"] for j in found] == [job["metadata"]["name"]]
        assert existing_hash(found[0]) == existing_hash(job)
    finally:
        api.delete_job(job["metadata"]["name"])
