"""The grid's own declarations: its ``models:``, ``datasets:`` and ``methods:`` entries, each checked on its own.

An entry becomes what a cell names (a :class:`ModelRef`, a :class:`DatasetRef`, a method variant's validated
parameters) and the settings layers it carries. Also the shape checks every part of a grid document shares
(mappings with known string keys, safe names, the per-section layers).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peftsum.methods import METHODS
from peftsum.spec.catalog import ARCH_FAMILY, DATASETS, MODELS, DatasetRef, ModelRef
from peftsum.spec.errors import SpecError
from peftsum.spec.fields import build
from peftsum.spec.settings import SECTIONS

Layers = dict[str, dict[str, Any]]  # section (train / eval / data) -> the settings an entry sets in it
Variant = tuple[str, dict[str, Any], Layers]  # a methods: entry: method type, validated parameters, layers

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")  # model/dataset/variant names: no spaces or control chars
# An entry's keys: the ref's fields (its name is the entry's key), plus a model's family and the settings sections.
MODEL_KEYS = {*(f.name for f in dataclasses.fields(ModelRef) if f.name != "name"), "family", *SECTIONS}
DATASET_KEYS = {*(f.name for f in dataclasses.fields(DatasetRef) if f.name != "name"), *SECTIONS}


def as_mapping(value: Any, path: str, keys: set[str] | None = None) -> dict[str, Any]:
    """``value`` as a dict (null: empty) of string keys, each one of ``keys`` when given."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(path, value, "must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(path, key, "keys must be strings")
        if keys is not None and key not in keys:
            raise SpecError(f"{path}.{key}" if path else key, value[key],
                            f"unknown key; known keys: {', '.join(sorted(keys))}")
    return dict(value)


def safe_name(value: Any, path: str) -> str:
    """A model, dataset or variant name: it becomes part of paths and labels."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value or len(value) > 200:
        raise SpecError(path, value, "must be a name of letters, digits, '.', '_', '-' or '/' (no '..')")
    return value


def section_layers(layer: Mapping[str, Any], path: str) -> Layers:
    """The train / eval / data settings a part of the grid sets (empty where it sets none)."""
    return {s: as_mapping(layer.get(s), f"{path}.{s}" if path else s) for s in SECTIONS}


def model_entry(name: str, raw: Any) -> tuple[ModelRef, Layers]:
    """``models.<name>``: a catalog model overridden, or a model the catalog does not know (its family and
    context then required)."""
    path = f"models.{name}"
    safe_name(name, path)
    raw = as_mapping(raw, path, MODEL_KEYS)
    known = MODELS.get(name)
    arch = raw.get("arch") or raw.get("family") or (known.arch if known else None)
    if arch is None:
        raise SpecError(f"{path}.family", None, "is required for a model outside the registry (causal or seq2seq): "
                                                "its family cannot be known offline")
    if arch not in ARCH_FAMILY:
        raise SpecError(f"{path}.{'arch' if 'arch' in raw else 'family'}", arch,
                        f"must be one of {', '.join(ARCH_FAMILY)}")
    if "family" in raw and raw["family"] not in ("causal", "seq2seq"):
        raise SpecError(f"{path}.family", raw["family"], "must be causal or seq2seq")
    context = raw.get("context", known.context if known else None)
    if isinstance(context, bool) or not isinstance(context, int) or not 16 <= context <= 1_048_576:
        raise SpecError(f"{path}.context", context, "must be an integer in [16, 1048576] (tokens)")
    hub_id = raw.get("hub_id", known.hub_id if known else name)
    if not isinstance(hub_id, str) or not hub_id or ".." in hub_id.split("/"):
        raise SpecError(f"{path}.hub_id", hub_id, "must be a hub id, local path or s3:// URI without '..'")
    revision = raw.get("revision", known.revision if known else None)
    if revision is not None and not isinstance(revision, str):
        raise SpecError(f"{path}.revision", revision, "must be a branch/tag name or null")
    ref = ModelRef(name, hub_id, revision, arch, context)
    if ref.positions is not None and context > ref.positions:
        raise SpecError(f"{path}.context", context, f"is larger than {hub_id} supports: its learned position "
                                                    f"embeddings stop at {ref.positions} tokens")
    return ref, section_layers(raw, path)


def dataset_entry(name: str, raw: Any) -> tuple[DatasetRef, Layers]:
    """``datasets.<name>``: a catalog dataset overridden (or only given settings), or a dataset of its own."""
    path = f"datasets.{name}"
    safe_name(name, path)
    raw = as_mapping(raw, path, DATASET_KEYS)
    layers = section_layers(raw, path)
    raw = {k: v for k, v in raw.items() if k not in SECTIONS}
    if name in DATASETS and not raw:  # settings only: the catalog's dataset with this grid's layers
        return DATASETS[name], layers
    base = dataclasses.asdict(DATASETS[name]) if name in DATASETS else {}
    merged = {**base, **raw, "name": name}
    merged.setdefault("references", "per_row")
    for key in ("source", "id", "kind", "source_column", "summary_column"):
        if not isinstance(merged.get(key), str) or not merged[key]:
            raise SpecError(f"{path}.{key}", merged.get(key), "is required (a non-empty string)")
    for key, allowed in (("source", ("hub", "local", "synthetic")), ("kind", ("dialogue", "news")),
                         ("references", ("per_row", "grouped"))):
        if merged[key] not in allowed:
            raise SpecError(f"{path}.{key}", merged[key], f"must be one of {', '.join(allowed)}")
    if merged["source"] == "synthetic" and merged["id"] not in ("dialogsum", "news"):
        raise SpecError(f"{path}.id", merged["id"], "synthetic generators are dialogsum and news")
    if merged["source"] == "local" and ".." in Path(merged["id"]).parts:
        raise SpecError(f"{path}.id", merged["id"], "local dataset paths must not contain '..'")
    for key in ("config", "revision", "id_column"):
        if merged.get(key) is not None and not isinstance(merged[key], str):
            raise SpecError(f"{path}.{key}", merged[key], "must be a string or null")
    return DatasetRef(**merged), layers


def method_variant(name: str, raw: Any) -> Variant:
    """``methods.<name>``: a registered method (``type``, the name itself by default) with parameters."""
    path = f"methods.{name}"
    safe_name(name, path)
    raw = as_mapping(raw, path)
    mtype = raw.get("type", name)
    if mtype not in METHODS:
        raise SpecError(f"{path}.type", mtype, f"unknown method; known: {', '.join(METHODS.names())}")
    raw_params = {k: v for k, v in raw.items() if k not in ("type", *SECTIONS)}
    params = dataclasses.asdict(build(METHODS.get(mtype).params, raw_params, path))
    return mtype, params, section_layers(raw, path)
