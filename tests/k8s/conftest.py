"""Fixtures of the Kubernetes tests: example grids, a local store, the fake cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.k8s import access
from peftsum.spec import Grid, load_grid, parse_grid
from peftsum.store import LocalStore
from tests.k8s.fake_kube import FakeKube

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "examples" / "paper.yaml"

SMALL = """
name: small
store: s3://bucket/runs
axes:
  model: [tiny-gpt2, tiny-t5]
  method: [lora, none]
  dataset: [synthetic-dialogsum]
cluster:
  namespace: peftsum
  image: registry.example/peftsum:0.1.0
  pushgateway: http://pushgateway.monitoring:9091
"""


@pytest.fixture(scope="session")
def paper() -> Grid:
    return load_grid(PAPER)


@pytest.fixture
def small() -> Grid:
    return parse_grid(SMALL, source="small.yaml")


@pytest.fixture
def small_text() -> str:
    """SMALL as text (a fixture: ``from conftest import`` is ambiguous once several conftest.py files load)."""
    return SMALL


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def fake() -> FakeKube:
    return FakeKube()


@pytest.fixture
def cli_cluster(monkeypatch: pytest.MonkeyPatch, fake: FakeKube, store: LocalStore) -> FakeKube:
    """The launcher's CLI wired to the fake cluster and a local store standing in for s3://."""
    monkeypatch.setattr(access, "connect", lambda namespace, context: fake)
    monkeypatch.setattr(access, "open_store", lambda uri: store)
    return fake
