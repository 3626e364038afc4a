"""grid.yaml → validated Grid → list of frozen Cells.

Everything a user can get wrong is caught here, before anything runs or any API is called: each problem raises
:class:`SpecError` naming the file, the field path and the value. The file is read by :mod:`peftsum.spec.strict_yaml`,
its ``models:`` / ``datasets:`` / ``methods:`` entries checked by :mod:`peftsum.spec.declarations`, and each
combination of the axes becomes a Cell in :mod:`peftsum.spec.resolve`. Precedence of settings, lowest first:
preset < defaults < datasets.<d> < models.<m> < methods.<variant> < include entry.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peftsum.methods import METHODS
from peftsum.spec.cell import Cell
from peftsum.spec.cluster import ClusterSettings
from peftsum.spec.declarations import (
    Variant,
    as_mapping,
    dataset_entry,
    method_variant,
    model_entry,
    safe_name,
    section_layers,
)
from peftsum.spec.errors import SpecError
from peftsum.spec.fields import build
from peftsum.spec.k8s_values import is_dns_label
from peftsum.spec.presets import PRESETS
from peftsum.spec.resolve import resolve_cell
from peftsum.spec.settings import SECTIONS
from peftsum.spec.strict_yaml import decode, read_document
from peftsum.spec.tracking import TrackingSettings

NAME_MAX = 40

TOP_KEYS = {"name", "store", "defaults", "axes", "methods", "models", "datasets", "exclude", "include", "cluster",
            "tracking"}
DEFAULT_KEYS = {"preset", "seed", "train", "eval", "data"}
AXIS_KEYS = ("model", "method", "dataset", "seed")
INCLUDE_KEYS = {*AXIS_KEYS, *SECTIONS}


@dataclass(frozen=True)
class Grid:
    name: str
    store: str
    cells: list[Cell]
    cluster: ClusterSettings
    source: str  # file the grid came from
    tracking: TrackingSettings = dataclasses.field(default_factory=TrackingSettings)  # not in any cell's identity

    def to_dict(self) -> dict[str, Any]:
        """The resolved grid as written to ``<store>/<grid>/grid.json``."""
        return {"name": self.name, "store": self.store, "cluster": dataclasses.asdict(self.cluster),
                "tracking": dataclasses.asdict(self.tracking), "cells": {c.cell_id: c.to_dict() for c in self.cells}}


def load_grid(path: str | Path, store: str | None = None) -> Grid:
    """Read, validate and expand a grid file. Raises SpecError naming the file on any problem."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SpecError("", path, f"cannot read grid file: {err.strerror}", file=path) from None
    try:
        return parse_grid(decode(data), source=path, store=store)
    except SpecError as err:
        raise err.in_file(path) from None


def parse_grid(text: str, source: str = "<string>", store: str | None = None) -> Grid:
    """Validate and expand a grid given as YAML text (``source`` names it in the Grid)."""
    return expand(read_document(text), source=source, store=store)


def _list(value: Any, path: str, allow_empty: bool = True) -> list[Any]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise SpecError(path, value, "must be a list")
    if not value and not allow_empty:
        raise SpecError(path, value, "must not be empty")
    return value


def expand(doc: Any, source: str = "<string>", store: str | None = None) -> Grid:
    """Validate a parsed grid document and expand its axes into Cells (a pure function)."""
    doc = as_mapping(doc, "", TOP_KEYS)
    if not doc:
        raise SpecError("", doc, "the grid is empty")

    name = doc.get("name")
    if not isinstance(name, str) or len(name) > NAME_MAX or not is_dns_label(name):
        raise SpecError("name", name, f"must be a DNS-1123 label (lowercase letters, digits, '-') of at most "
                                      f"{NAME_MAX} characters")
    store_uri = store or doc.get("store") or "./runs"
    if not isinstance(store_uri, str):
        raise SpecError("store", store_uri, "must be a path or URI string")

    defaults = as_mapping(doc.get("defaults"), "defaults", DEFAULT_KEYS)
    preset = defaults.get("preset", "fast")
    if preset not in PRESETS:
        raise SpecError("defaults.preset", preset, f"unknown preset; known: {', '.join(PRESETS)}")
    base_seed = _seed(defaults.get("seed", 42), "defaults.seed")
    default_layers = section_layers(defaults, "defaults")

    models = {k: model_entry(k, v) for k, v in as_mapping(doc.get("models"), "models").items()}
    datasets = {k: dataset_entry(k, v) for k, v in as_mapping(doc.get("datasets"), "datasets").items()}
    variants = {k: method_variant(k, v) for k, v in as_mapping(doc.get("methods"), "methods").items()}
    cluster = build(ClusterSettings, doc.get("cluster"), "cluster")
    tracking = build(TrackingSettings, doc.get("tracking"), "tracking")

    axes = as_mapping(doc.get("axes"), "axes", set(AXIS_KEYS))
    include = _list(doc.get("include"), "include")
    if not axes and not include:
        raise SpecError("axes", None, "must define model, method and dataset axes (or give include entries)")
    combos: list[tuple[dict[str, Any], str]] = []
    if axes:
        values = {}
        for key in ("model", "method", "dataset"):
            if key not in axes:
                raise SpecError(f"axes.{key}", None, "is required")
            values[key] = [safe_name(v, f"axes.{key}[{i}]") for i, v in
                           enumerate(_list(axes[key], f"axes.{key}", allow_empty=False))]
        values["seed"] = [_seed(s, f"axes.seed[{i}]") for i, s in
                          enumerate(_list(axes.get("seed", [base_seed]), "axes.seed", allow_empty=False))]
        for key, vals in values.items():
            dup = _first_duplicate(vals)
            if dup is not None:
                raise SpecError(f"axes.{key}", dup, "appears twice in the axis")
        for model, method, dataset, seed in itertools.product(*(values[k] for k in AXIS_KEYS)):
            combos.append(({"model": model, "method": method, "dataset": dataset, "seed": seed}, "axes"))

    excludes = []
    for i, ex in enumerate(_list(doc.get("exclude"), "exclude")):
        ex = as_mapping(ex, f"exclude[{i}]", set(AXIS_KEYS))
        if not ex:
            raise SpecError(f"exclude[{i}]", ex, "an empty exclude entry would remove every cell")
        excludes.append(ex)
    combos = _without_excluded(combos, excludes)

    for i, entry in enumerate(include):
        entry = as_mapping(entry, f"include[{i}]", INCLUDE_KEYS)
        for key in ("model", "method", "dataset"):
            if key not in entry:
                raise SpecError(f"include[{i}].{key}", None, "is required (model may be null for lead)")
            if not (key == "model" and entry[key] is None):
                safe_name(entry[key], f"include[{i}].{key}")
        entry["seed"] = _seed(entry.get("seed", base_seed), f"include[{i}].seed")
        combos.append((entry, f"include[{i}]"))

    cells: list[Cell] = []
    seen: dict[str, str] = {}
    # An axis cell's settings depend on its model (unless its method is model-free), method and dataset, not on its
    # seed: resolved once per such triple, so a long axis costs one hash per cell.
    resolved: dict[tuple[str | None, str, str], Cell] = {}
    for combo, where in combos:
        key = (combo["model"] if _needs_model(combo["method"], variants) else None, combo["method"], combo["dataset"])
        if where == "axes" and key in resolved:
            cell = resolved[key]
            if cell.seed != combo["seed"]:
                cell = dataclasses.replace(cell, seed=combo["seed"])
        else:
            cell = resolve_cell(combo, where, preset, default_layers, models, datasets, variants)
            if where == "axes":
                resolved[key] = cell
        cid = cell.cell_id
        if cid in seen and cell.model is None and where == "axes":
            continue  # a model-free method crossed with several models is still one cell per dataset
        if cid in seen:
            raise SpecError(where, combo_label(combo), f"duplicate cell {cid} (same as {seen[cid]})")
        seen[cid] = f"{where} {combo_label(combo)}"
        cells.append(cell)
    if not cells:
        raise SpecError("exclude", len(excludes), "the grid expands to zero cells")
    return Grid(name=name, store=store_uri, cells=cells, cluster=cluster, source=source, tracking=tracking)


def _needs_model(method_name: str, variants: Mapping[str, Variant]) -> bool:
    mtype = variants[method_name][0] if method_name in variants else method_name
    return mtype not in METHODS or METHODS.get(mtype).needs_model  # an unknown method is refused by resolve_cell


def _first_duplicate(values: list[Any]) -> Any:
    """The first value of ``values`` that appears more than once (counted in one pass: an axis may have 100,000
    values; axis values are validated names and seeds, hashable)."""
    counts = collections.Counter(values)
    return next((v for v in values if counts[v] > 1), None)


def _without_excluded(combos: list[tuple[dict[str, Any], str]], excludes: list[dict[str, Any]]
                      ) -> list[tuple[dict[str, Any], str]]:
    """The axis combinations no exclude entry matches (an entry matches a combination equal on each of its keys).
    Entries are grouped by their set of keys (at most 15 sets), so each combination costs a few set look-ups
    whatever the number of entries."""
    groups: dict[tuple[str, ...], set[tuple[Any, ...]]] = {}
    for ex in excludes:
        keys = tuple(sorted(ex))
        try:
            groups.setdefault(keys, set()).add(tuple(ex[k] for k in keys))
        except TypeError:  # an unhashable value (a list, a mapping) equals no axis value: the entry matches nothing
            continue
    return [(c, where) for c, where in combos
            if not any(tuple(c[k] for k in keys) in wanted for keys, wanted in groups.items())]


def combo_label(combo: Mapping[str, Any]) -> str:
    return "/".join(str(combo.get(k)) for k in AXIS_KEYS)


def _seed(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise SpecError(path, value, "must be an integer in [0, 2**32)")
    return value
