"""Cost measurements in one place: phase wall time, peak RSS, peak GPU memory, GPU energy, local disk, parameter
counts.

GPU memory and energy come from torch and NVML when a GPU and pynvml are present; otherwise they are None, never
invented. Energy is the delta of NVML's total-energy counter (millijoules since driver load).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class PhaseTimer:
    """Wall seconds per named phase (load, train, generate, score, upload)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (symlinks not followed; 0 if it does not exist)."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # removed while walking (a checkpoint being pruned)
                continue
    return total


def hf_caches() -> list[Path]:
    """Where transformers/datasets keep downloaded models and datasets on this machine."""
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return [Path(os.environ.get("HF_HUB_CACHE", home / "hub")),
            Path(os.environ.get("HF_DATASETS_CACHE", home / "datasets"))]


class DiskMeter:
    """The most bytes one cell held on local disk at once: the caches it filled (models and datasets downloaded,
    tiny models built, token counts; the growth of the caches between :meth:`start` and :meth:`loaded`), plus what
    lies under its own folders (the work folder with checkpoints and artifacts staged before upload, and a local
    store's folder of the cell, checkpoints included).

    Sampled at the moments the footprint peaks (after loading, after each checkpoint is written and before older
    ones are pruned, after the artifacts are written, after the upload), each sample a walk of those folders. Not
    the whole machine's usage (the study's disk column): only what this cell added.
    """

    def __init__(self, folders: Iterable[Path], caches: Iterable[Path]) -> None:
        self.folders, self.caches = list(folders), list(caches)
        self.cache_start = sum(tree_bytes(c) for c in self.caches)
        self.cache_filled = 0
        self.peak = 0

    def loaded(self) -> None:
        """Call once the model and data are loaded: what the caches grew by is this cell's."""
        self.cache_filled = max(0, sum(tree_bytes(c) for c in self.caches) - self.cache_start)
        self.sample()

    def sample(self) -> int:
        used = self.cache_filled + sum(tree_bytes(f) for f in self.folders)
        self.peak = max(self.peak, used)
        return self.peak


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class EnergyMeter:
    """Joules consumed by GPU 0 since the meter was made, from NVML's monotonically increasing mJ counter.

    Deltas are accumulated reading to reading, so a counter reset (driver reload) loses nothing measured before
    it and never yields a negative value: after a reset the counter's new value is the energy since the reset.

    Args:
        counter: returns the counter in millijoules, or None where unavailable. Injected in tests; defaults to
            NVML's nvmlDeviceGetTotalEnergyConsumption.
    """

    def __init__(self, counter: Callable[[], int | None] | None = None) -> None:
        self.counter = counter if counter is not None else _nvml_energy_counter()
        self.last_mj = self.counter() if self.counter else None
        self.total_mj = 0

    def read(self) -> float | None:
        if self.last_mj is None or self.counter is None:
            return None
        now = self.counter()
        if now is None:
            return None
        self.total_mj += now - self.last_mj if now >= self.last_mj else now
        self.last_mj = now
        return self.total_mj / 1000.0


class NvmlMemory:
    """Peak device memory in use on GPU 0 according to NVML, over the calls to ``sample``.

    Unlike torch's ``max_memory_allocated`` this includes the CUDA context, the caching allocator's reserve and other
    processes: what the device really had to hold, which is what decides whether a larger model fits.

    Args:
        reader: returns used bytes, or None where unavailable. Injected in tests; defaults to NVML's
            nvmlDeviceGetMemoryInfo(...).used.
    """

    def __init__(self, reader: Callable[[], int | None] | None = None) -> None:
        self.reader = reader if reader is not None else _nvml_reader(lambda nv, h: nv.nvmlDeviceGetMemoryInfo(h).used)
        self.peak: int | None = None

    def sample(self) -> int | None:
        """Take a reading; returns the peak so far (None without NVML)."""
        now = self.reader() if self.reader is not None else None
        if now is not None:
            self.peak = now if self.peak is None else max(self.peak, now)
        return self.peak


def _nvml_reader(query: Callable[[Any, Any], Any]) -> Callable[[], int | None] | None:
    """A reader of ``query(pynvml, handle_of_gpu_0)``, or None if NVML or the query is unavailable here."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        query(pynvml, handle)
    except Exception:  # no pynvml, no driver, no GPU, or a GPU without this counter
        return None

    def read() -> int | None:
        try:
            return int(query(pynvml, handle))
        except Exception:
            return None

    return read


def _nvml_energy_counter() -> Callable[[], int | None] | None:
    return _nvml_reader(lambda nv, h: nv.nvmlDeviceGetTotalEnergyConsumption(h))


def gpu_info() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"gpu_name": None}
    return {"gpu_name": torch.cuda.get_device_name(0)}


def gpu_peak_bytes() -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def param_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters; for PEFT models the total includes the frozen base."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total
