"""The frozen Cell: everything that determines one result, and its id.

``cell_id = sha256(canonical_json(cell))[:12]``. Device-dependent settings (precision/fused ``auto``) are hashed as
written; what they resolved to is recorded in the result's provenance.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from peftsum.spec.catalog import DatasetRef, ModelRef  # defined with their catalogs; most users import them here
from peftsum.spec.settings import DataSettings, EvalSettings, TrainSettings


@dataclass(frozen=True)
class MethodRef:
    name: str  # variant name from the grid (e.g. lora-r64)
    type: str  # registered method
    params: dict[str, Any]  # validated parameters, every default filled in


@dataclass(frozen=True)
class Cell:
    model: ModelRef | None
    method: MethodRef
    dataset: DatasetRef
    train: TrainSettings
    eval: EvalSettings
    data: DataSettings
    seed: int
    preset: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return canonical_json(self.to_dict())

    @functools.cached_property  # frozen, so computed once (hashing a cell costs ~0.3 ms; the launcher asks often)
    def cell_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    @property
    def labels(self) -> dict[str, str]:
        """Human-readable axes: model / method / dataset (+ seed)."""
        return {"model": self.model.name if self.model else "-", "method": self.method.name,
                "dataset": self.dataset.name, "seed": str(self.seed)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cell:
        """Rebuild a Cell from spec.json; settings are re-validated by their dataclasses."""
        from peftsum.spec.fields import build

        return cls(
            model=ModelRef(**d["model"]) if d.get("model") else None,
            method=MethodRef(**d["method"]),
            dataset=DatasetRef(**d["dataset"]),
            train=build(TrainSettings, d["train"], "train"),
            eval=build(EvalSettings, d["eval"], "eval"),
            data=build(DataSettings, d["data"], "data"),
            seed=int(d["seed"]),
            preset=d["preset"],
        )


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, tuples as lists, UTF-8 kept verbatim."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
