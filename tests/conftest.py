"""Shared fixtures: one peftsum cache per session (dataset caches, token counts; the tiny models are shipped in the
package), the hub offline, and the S3 test server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Use the developer's cache when set (fast reruns), else one cache for the whole session."""
    cache = os.environ.get("PEFTSUM_CACHE") or str(tmp_path_factory.mktemp("peftsum-cache"))
    os.environ["PEFTSUM_CACHE"] = cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Path(cache)


class S3Env:
    """A bucket on the test S3 server: ``uri`` (s3://bucket/peftsum), a boto3 ``client`` straight to moto (for
    tampering behind the store's back), ``faults`` of the proxy every peftsum request goes through."""

    def __init__(self, bucket: str, client, faults, endpoint: str) -> None:
        self.bucket, self.client, self.faults, self.endpoint = bucket, client, faults, endpoint
        self.uri = f"s3://{bucket}/peftsum"


@pytest.fixture(scope="session")
def s3_server():
    """moto's real S3 HTTP server on a free port, behind the fault-injecting proxy of tests/s3server.py."""
    pytest.importorskip("moto")
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns failure output
    from tests.s3server import Faults, free_port, start_proxy

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    faults = Faults()
    proxy = start_proxy(port, faults)
    yield {"moto": f"http://127.0.0.1:{port}", "proxy": f"http://127.0.0.1:{proxy.server_address[1]}",
           "faults": faults}
    proxy.shutdown()
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> S3Env:
    """A fresh bucket; the environment points peftsum (and its subprocesses) at it through the proxy."""
    import re

    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server["proxy"]}.items():
        monkeypatch.setenv(key, value)
    faults = s3_server["faults"]
    faults.fail_next, faults.every, faults.seen, faults.status, faults.injected[:] = 0, 0, 0, 503, []
    faults.when = lambda method, path: True
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + f"-{os.getpid()}"
    client = boto3.client("s3", endpoint_url=s3_server["moto"], region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return S3Env(bucket, client, faults, s3_server["proxy"])
