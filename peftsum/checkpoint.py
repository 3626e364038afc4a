"""Resumable checkpoints in the store: ``cells/<id>/checkpoints/<step>/`` with a COMPLETE marker written last.

A checkpoint holds the trainable tensors (safetensors), the optimizer and scheduler state and the RNG state
(torch.save), and the trainer's counters and evaluation history (JSON); with ``train.select_best``, also the best
evaluation's trainable tensors (``best.safetensors``) when they are not the checkpoint's own. Only a checkpoint
whose COMPLETE marker exists is ever loaded, so a process killed mid-upload leaves the previous one in charge.

COMPLETE lists every file with its size and sha256 (local folders keep no checksums of their own). Resuming tries
the newest checkpoint first and falls back to older ones: a checkpoint with a missing, resized or changed file, or
one that does not load, is deleted (when the store could be read at all) and the next older one tried; with none
usable, training starts over. A damaged checkpoint costs the steps since the previous one, never the cell.

``Checkpointer.save_training`` and ``resume`` are what the training loop calls: they gather that state from the
loop's objects and put it back, so the format is written and read in this module only.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peftsum.store import Store, StoreError
from peftsum.store.base import StoreDenied, StoreUnavailable, sha256_file
from peftsum.store.layout import cell_key, clear_checkpoints

if TYPE_CHECKING:
    from peftsum.train import TrainReport

FILES = ("weights.safetensors", "training.pt", "state.json")
BEST = "best.safetensors"


@dataclass
class Resumed:
    """Where a resumed training goes on from."""

    step: int
    trained: bool  # the end-of-training checkpoint: its weights are the ones to generate with, nothing to train
    best: dict[str, Any] | None  # the best evaluation's trainable weights (select_best), when one was chosen


class Checkpointer:
    """Args:
        workdir: where checkpoints are staged before upload (the cell's work folder, so its disk use is measured).
        on_written: called after a checkpoint is written and before older ones are pruned (disk use peaks there).
        extra_state: returns what the cell keeps in every checkpoint's state.json beside the trainer's counters
            (its wall seconds so far); ``loaded_state`` is the state of the checkpoint resumed from.
    """

    def __init__(self, store: Store, grid: str, cell_id: str, keep: int = 2, workdir: Path | None = None,
                 on_written: Any = None, extra_state: Any = None) -> None:
        self.store, self.grid, self.cell_id, self.keep = store, grid, cell_id, keep
        self.workdir, self.on_written, self.extra_state = workdir, on_written, extra_state
        self.loaded_state: dict[str, Any] | None = None

    def _key(self, *parts: str) -> str:
        return cell_key(self.grid, self.cell_id, "checkpoints", *parts)

    def complete_steps(self) -> list[int]:
        steps = set()
        for key in self.store.list(self._key()):
            parts = key.split("/")
            if parts[-1] == "COMPLETE" and parts[-2].isdigit():
                steps.add(int(parts[-2]))
        return sorted(steps)

    def save(self, step: int, weights: dict[str, Any], training: dict[str, Any], state: dict[str, Any],
             best: dict[str, Any] | None = None) -> int:
        """Write checkpoint ``step`` (and ``best``, the best evaluation's weights, if given); returns its size in
        bytes. Older ones beyond ``keep`` are deleted."""
        import torch
        from safetensors.torch import save_file

        name = f"{step:09d}"
        with tempfile.TemporaryDirectory(prefix="peftsum-ckpt-", dir=self.workdir) as tmp:
            tmp = Path(tmp)
            save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / FILES[0])
            torch.save(training, tmp / FILES[1])
            extra = self.extra_state() if self.extra_state is not None else {}
            (tmp / FILES[2]).write_text(json.dumps({**state, **extra}, sort_keys=True))
            files = list(FILES)
            if best is not None:
                save_file({k: v.detach().contiguous().cpu() for k, v in best.items()}, tmp / BEST)
                files.append(BEST)
            listing = {f: {"bytes": (tmp / f).stat().st_size, "sha256": sha256_file(tmp / f)} for f in files}
            for f in files:
                self.store.upload(self._key(name, f), tmp / f)
            size = sum(meta["bytes"] for meta in listing.values())
            if self.on_written is not None:
                self.on_written()
        self.store.write_bytes(self._key(name, "COMPLETE"), json.dumps({"files": listing}, sort_keys=True).encode())
        for old in self.complete_steps()[: -self.keep]:
            self.store.delete_prefix(self._key(f"{old:09d}"))
        return size

    def save_training(self, step: int, params: dict[str, Any], optimizer: Any, scheduler: Any,
                      report: TrainReport, best: dict[str, Any] | None, trained: bool = False) -> int:
        """Checkpoint the training after ``step``: the trainable tensors ``params``, the optimizer, scheduler and
        RNG states and ``report``'s counters; ``best``, the best evaluation's weights, unless they are these.
        ``trained``: the final checkpoint, the weights to generate with and no optimizer or scheduler state.
        Returns its size in bytes."""
        import torch

        training: dict[str, Any] = {"rng_cpu": torch.get_rng_state()}
        if not trained:
            training |= {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        if torch.cuda.is_available():
            training["rng_cuda"] = torch.cuda.get_rng_state()
        state = {
            "step": step,
            "loss_history": report.loss_history,
            "tokens": report.tokens,
            "padded_tokens": report.padded_tokens,
            "seconds": report.seconds,
            "history": report.history,
            "best": report.best,
            "trained": trained,
        }
        best_is_current = trained or (report.best is not None and report.history[report.best]["step"] == step)
        return self.save(step, params, training, state, best=None if best_is_current else best)

    def resume(self, params: dict[str, Any], optimizer: Any, scheduler: Any, report: TrainReport) -> Resumed | None:
        """Load the newest usable checkpoint into ``params`` (the trainable tensors by name) and ``report``'s
        counters and, unless training had ended, the optimizer, scheduler and RNG states; None when there is
        none."""
        import torch

        loaded = self.load_latest()
        if loaded is None:
            return None
        weights, training, state, best = loaded
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor)
        trained = bool(state.get("trained"))
        if not trained:
            optimizer.load_state_dict(training["optimizer"])
            scheduler.load_state_dict(training["scheduler"])
            torch.set_rng_state(training["rng_cpu"])
            if torch.cuda.is_available() and "rng_cuda" in training:
                torch.cuda.set_rng_state(training["rng_cuda"])
        report.resumed_from_step = report.steps = state["step"]
        report.loss_history, report.seconds = state["loss_history"], state["seconds"]
        report.tokens, report.padded_tokens = state["tokens"], state["padded_tokens"]
        report.history, report.best = state.get("history", []), state.get("best")
        if report.best is not None and best is None:  # the best was this checkpoint's own weights
            best = weights
        return Resumed(state["step"], trained, best)

    def load_latest(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any] | None] | None:
        """(weights, training, state, best weights or None) of the newest usable checkpoint, or None."""
        for step in reversed(self.complete_steps()):
            name = f"{step:09d}"
            try:
                loaded = self._load(name)
            except (StoreDenied, StoreUnavailable):
                raise  # the store, not the checkpoint: retry the cell later
            except (StoreError, ValueError, RuntimeError, KeyError, EOFError, OSError) as err:
                print(f"[checkpoint] {name} is unusable ({type(err).__name__}: {err}); deleting it and trying the "
                      "previous one", flush=True)
                self.store.delete_prefix(self._key(name))
                continue
            self.loaded_state = loaded[2]
            return loaded
        return None

    def _load(self, name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        import torch
        from safetensors.torch import load_file

        listing = json.loads(self.store.read_bytes(self._key(name, "COMPLETE")) or b"{}").get("files")
        files = list(listing) if listing else [*FILES, *([BEST] if self.store.stat(self._key(name, BEST)) else [])]
        tmp = Path(tempfile.mkdtemp(prefix="peftsum-resume-", dir=self.workdir))
        try:
            for f in files:
                self.store.download(self._key(name, f), tmp / f)
                if listing and sha256_file(tmp / f) != listing[f].get("sha256"):
                    raise StoreError(f"{f}: content differs from the checksum in COMPLETE")
            weights = load_file(tmp / FILES[0])
            training = torch.load(tmp / FILES[1], weights_only=True)
            state = json.loads((tmp / FILES[2]).read_text())
            if not isinstance(state, dict) or not isinstance(state.get("step"), int):
                raise ValueError(f"{FILES[2]} holds no step counter")
            best = load_file(tmp / BEST) if BEST in files else None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return weights, training, state, best

    def clear(self) -> None:
        clear_checkpoints(self.store, self.grid, self.cell_id)
