"""``launcher watch``: poll the store and the cluster until every cell is done or failed.

Polling (not a Kubernetes watch stream) because progress lives in the store's ``status.json`` and a Job may be
gone (TTL) while its cell's state is still known. The end conditions are explicit: every cell terminal, or the
timeout. Each change of a cell's state or reason is reported once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from launcher.k8s.client import KubeApi
from launcher.k8s.status import CellState, grid_states
from peftsum.spec import Grid
from peftsum.store import Store


def watch(store: Store, grid: Grid, api: KubeApi | None, *, interval: float = 10.0, timeout: float | None = None,
          on_change: Callable[[CellState], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> tuple[list[CellState], bool]:
    """Poll until every cell is terminal or ``timeout`` seconds pass; returns (last states, all terminal)."""
    seen: dict[str, tuple[str, str | None]] = {}
    start = time.monotonic()
    while True:
        states = grid_states(store, grid, api)
        for st in states:
            key = (st.state, st.reason)
            if seen.get(st.cell_id) != key:
                seen[st.cell_id] = key
                if on_change:
                    on_change(st)
        if all(st.terminal for st in states):
            return states, True
        if timeout is not None and time.monotonic() - start >= timeout:
            return states, False
        sleep(interval)
