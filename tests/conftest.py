"""Shared fixtures: the tiny models are built once into a per-session cache (no network, no hub)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Use the developer's cache when set (fast reruns), else one cache for the whole session."""
    cache = os.environ.get("PEFTSUM_CACHE") or str(tmp_path_factory.mktemp("peftsum-cache"))
    os.environ["PEFTSUM_CACHE"] = cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Path(cache)
