"""The report's worker pool: figures, cell reads and prediction reads spread over the cores.

Drawing and JSON parsing are CPU-bound Python, so threads would not run them in parallel; the pool forks, so
workers start at once with whatever the caller's ``preload`` imported (the report's: matplotlib, warmed up). The
pool knows nothing of what its jobs do: any module of the report may use it. A pool that fails or stalls (a worker
killed for memory loses its task, and the pool would wait for it forever) never fails the report: the work is
redone here.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

POOL_TIMEOUT_S = 600.0  # longest wait for a batch of jobs before redoing them in this process


def workers_wanted() -> int:
    """Worker processes: every core, unless ``PEFTSUM_REPORT_WORKERS`` says otherwise (0 or 1: no pool)."""
    env = os.environ.get("PEFTSUM_REPORT_WORKERS", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            pass
    return os.cpu_count() or 1


@contextmanager
def worker_pool(workers: int | None = None, preload: Callable[[], None] | None = None) -> Iterator[Any]:
    """A fork pool of ``workers`` processes (default :func:`workers_wanted`), or None when fewer than two are
    wanted or fork is unavailable; callers then do the work in this process. ``preload`` runs here once before the
    fork, so every worker inherits what it imported and cached instead of paying for it on its first job."""
    import multiprocessing

    n = workers_wanted() if workers is None else workers
    if n < 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield None
        return
    if preload is not None:
        preload()
    pool = multiprocessing.get_context("fork").Pool(n)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


def timed(fn: Callable[..., Any], args: tuple) -> tuple[Any, float]:
    """``(fn(*args), CPU seconds it took)``, measured in the process that ran it."""
    c0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - c0


READ_THREADS = 16  # concurrent reads from a remote store (I/O-bound: threads overlap the round trips)


class Pending:
    """Results of :func:`submit`, in job order: ``get()`` waits for the pool, or computes them here."""

    def __init__(self, fn: Callable[..., Any], jobs: Sequence[tuple], handle: Any) -> None:
        self.fn, self.jobs, self.handle = fn, jobs, handle

    @property
    def in_workers(self) -> bool:
        """Whether the jobs run in worker processes (whose CPU time this process's clock does not see)."""
        return self.handle is not None and not isinstance(self.handle, list)

    def get(self) -> list[tuple[Any, float]]:
        if self.handle is not None:
            try:
                if isinstance(self.handle, list):  # futures of a thread pool
                    return [f.result(timeout=POOL_TIMEOUT_S) for f in self.handle]
                return self.handle.get(timeout=POOL_TIMEOUT_S)
            except Exception as err:  # any pool failure (a raising job too): redo the work here
                print(f"peftsum report: worker pool failed ({type(err).__name__}: {err}); working in-process",
                      file=sys.stderr)
        return [timed(self.fn, args) for args in self.jobs]


def submit(pool: Any, fn: Callable[..., Any], jobs: Sequence[tuple], chunksize: int = 1,
           store: Any = None) -> Pending:
    """Start ``fn(*args)`` for every args tuple in ``pool`` (None: nothing starts until ``get``).

    ``store``: the store the jobs read. Only a local folder's jobs go to the process pool; a remote store's client
    (boto3) neither pickles nor survives a fork, and its reads wait on the network, so they run in threads here.
    """
    handle: Any = None
    if jobs and store is not None and not is_local(store):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(READ_THREADS, len(jobs))) as threads:
            handle = [threads.submit(timed, fn, args) for args in jobs]  # all done when the with block ends
        return Pending(fn, jobs, handle)
    if pool is not None and jobs:
        handle = pool.starmap_async(timed, [(fn, args) for args in jobs], chunksize=chunksize)
    return Pending(fn, jobs, handle)


def is_local(store: Any) -> bool:
    from peftsum.store import LocalStore

    return isinstance(store, LocalStore)


def pmap(pool: Any, fn: Callable[..., Any], jobs: Sequence[tuple], chunksize: int = 1,
         cpu: list[float] | None = None, store: Any = None) -> list[Any]:
    """``[fn(*args) for args in jobs]``, in ``pool`` when there is one (see :func:`submit` for ``store``); the CPU
    seconds spent in worker processes are appended to ``cpu``."""
    pending = submit(pool, fn, jobs, chunksize, store)
    done = pending.get()
    if cpu is not None and pending.in_workers:
        cpu.append(sum(seconds for _, seconds in done))
    return [out for out, _ in done]
