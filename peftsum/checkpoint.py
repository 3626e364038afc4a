"""Resumable checkpoints in the store: ``cells/<id>/checkpoints/<step>/`` with a COMPLETE marker written last.

A checkpoint holds the trainable tensors (safetensors), the optimizer and scheduler state and the RNG state
(torch.save), and the trainer's counters (JSON). Only a checkpoint whose COMPLETE marker exists is ever loaded, so
a process killed mid-upload leaves the previous one in charge.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from peftsum.store import Store
from peftsum.store.cells import cell_key

FILES = ("weights.safetensors", "training.pt", "state.json")


class Checkpointer:
    def __init__(self, store: Store, grid: str, cell_id: str, keep: int = 2) -> None:
        self.store, self.grid, self.cell_id, self.keep = store, grid, cell_id, keep

    def _key(self, *parts: str) -> str:
        return cell_key(self.grid, self.cell_id, "checkpoints", *parts)

    def complete_steps(self) -> list[int]:
        steps = set()
        for key in self.store.list(self._key()):
            parts = key.split("/")
            if parts[-1] == "COMPLETE" and parts[-2].isdigit():
                steps.add(int(parts[-2]))
        return sorted(steps)

    def save(self, step: int, weights: dict[str, Any], training: dict[str, Any], state: dict[str, Any]) -> int:
        """Write checkpoint ``step``; returns its size in bytes. Older ones beyond ``keep`` are deleted."""
        import torch
        from safetensors.torch import save_file

        name = f"{step:09d}"
        with tempfile.TemporaryDirectory(prefix="peftsum-ckpt-") as tmp:
            tmp = Path(tmp)
            save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / FILES[0])
            torch.save(training, tmp / FILES[1])
            (tmp / FILES[2]).write_text(json.dumps(state, sort_keys=True))
            size = 0
            for f in FILES:
                self.store.upload(self._key(name, f), tmp / f)
                size += (tmp / f).stat().st_size
        self.store.write_bytes(self._key(name, "COMPLETE"), b"")
        for old in self.complete_steps()[: -self.keep]:
            self.store.delete_prefix(self._key(f"{old:09d}"))
        return size

    def load_latest(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]] | None:
        """(weights, training, state) of the newest complete checkpoint, or None."""
        steps = self.complete_steps()
        if not steps:
            return None
        import torch
        from safetensors.torch import load_file

        name = f"{steps[-1]:09d}"
        tmp = Path(tempfile.mkdtemp(prefix="peftsum-resume-"))
        try:
            for f in FILES:
                self.store.download(self._key(name, f), tmp / f)
            weights = load_file(tmp / FILES[0])
            training = torch.load(tmp / FILES[1], weights_only=True)
            state = json.loads((tmp / FILES[2]).read_text())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return weights, training, state

    def clear(self) -> None:
        self.store.delete_prefix(self._key())
