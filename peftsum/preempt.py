"""Preemption of a whole cell: SIGTERM (a pod evicted or preempted) and SIGINT (Ctrl-C) end the cell with exit
code 3 and status ``pending`` wherever it is — loading, training, generation, scoring or upload.

Inside ``deferred()`` (a training step, the commit of ``_SUCCESS``) a signal is only remembered: the training loop
finishes its step, writes a checkpoint and raises ``Preempted`` itself. Anywhere else the handler raises
``Preempted`` at once; the trained weights are already in a checkpoint (``train`` writes one when training ends),
so a resumed attempt starts at generation.

``PEFTSUM_FAULT_SIGTERM`` makes the cell signal itself at a named point (``step:<n>`` after optimizer step n,
``generate`` before generation), so tests preempt at an exact place instead of racing a status poll.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """The cell was signalled to stop; it can be resumed (exit code 3)."""


class Preemption:
    """Installs the handlers for the ``with`` block (main thread only: elsewhere signals cannot be handled)."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal that asked the cell to stop, once one has
        self._deferred = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in HANDLED}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        if not self._deferred:
            raise Preempted(f"{signal.Signals(signum).name} received; the cell resumes from its last checkpoint")

    @property
    def stop_requested(self) -> bool:
        """A SIGTERM or SIGINT has asked the cell to stop."""
        return self.received is not None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals inside this block wait for the block to end (``stop_requested`` tells)."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1


def fault_point(name: str, step: int | None = None) -> None:
    """Send this process SIGTERM if ``$PEFTSUM_FAULT_SIGTERM`` names this point (tests only)."""
    want = os.environ.get("PEFTSUM_FAULT_SIGTERM")
    if want and want == (f"{name}:{step}" if step is not None else name):
        os.kill(os.getpid(), signal.SIGTERM)
