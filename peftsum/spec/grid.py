"""grid.yaml → validated Grid → list of frozen Cells.

Everything a user can get wrong is caught here, before anything runs or any API is called: each problem raises
:class:`SpecError` naming the file, the field path and the value. Precedence of settings, lowest first:
preset < defaults < datasets.<d> < models.<m> < methods.<variant> < include entry.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from peftsum.methods import METHODS
from peftsum.spec.catalog import ARCH_FAMILY, DATASETS, MODELS, DatasetInfo, ModelInfo
from peftsum.spec.cell import Cell, DatasetRef, MethodRef, ModelRef
from peftsum.spec.cluster import ClusterSettings
from peftsum.spec.errors import SpecError
from peftsum.spec.fields import build, check_keys, merge
from peftsum.spec.settings import PRESETS, SECTIONS, DataSettings, EvalSettings, preset_layer

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")  # model/dataset/variant names: no spaces or control chars

TOP_KEYS = {"name", "store", "defaults", "axes", "methods", "models", "datasets", "exclude", "include", "cluster"}
DEFAULT_KEYS = {"preset", "seed", "train", "eval", "data"}
AXIS_KEYS = ("model", "method", "dataset", "seed")
MODEL_KEYS = {"hub_id", "arch", "family", "context", "revision", *SECTIONS}
DATASET_KEYS = {"source", "id", "kind", "source_column", "summary_column", "config", "revision", "id_column",
                "references", *SECTIONS}
INCLUDE_KEYS = {*AXIS_KEYS, *SECTIONS}


@dataclass(frozen=True)
class Grid:
    name: str
    store: str
    cells: list[Cell]
    cluster: ClusterSettings
    source: str  # file the grid came from

    def to_dict(self) -> dict[str, Any]:
        """The resolved grid as written to ``<store>/<grid>/grid.json``."""
        return {"name": self.name, "store": self.store, "cluster": dataclasses.asdict(self.cluster),
                "cells": {c.cell_id: c.to_dict() for c in self.cells}}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses duplicate keys (PyYAML silently keeps the last one)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _unicode_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """Strings must be real text: a lone surrogate escape ("\\ud83d") cannot be hashed, stored or sent to K8s."""
    value = loader.construct_scalar(node)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{value!r} is not valid Unicode text (a lone surrogate escape such as \\ud83d)",
            node.start_mark) from None
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:str", _unicode_str)


def load_grid(path: str | Path, store: str | None = None) -> Grid:
    """Read, validate and expand a grid file. Raises SpecError naming the file on any problem."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SpecError("", path, f"cannot read grid file: {err.strerror}", file=path) from None
    try:
        return parse_grid(text, source=path, store=store)
    except SpecError as err:
        raise err.in_file(path) from None


def parse_grid(text: str, source: str = "<string>", store: str | None = None) -> Grid:
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise SpecError("", where, f"invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise SpecError("", str(err), "invalid YAML") from None
    return expand(doc, source=source, store=store)


def _mapping(value: Any, path: str, keys: set[str] | None = None) -> dict[str, Any]:
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


def _list(value: Any, path: str, allow_empty: bool = True) -> list[Any]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise SpecError(path, value, "must be a list")
    if not value and not allow_empty:
        raise SpecError(path, value, "must not be empty")
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value or len(value) > 200:
        raise SpecError(path, value, "must be a name of letters, digits, '.', '_', '-' or '/' (no '..')")
    return value


def _sections(layer: Mapping[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {s: _mapping(layer.get(s), f"{path}.{s}" if path else s) for s in SECTIONS}


def expand(doc: Any, source: str = "<string>", store: str | None = None) -> Grid:
    """Validate a parsed grid document and expand its axes into Cells (a pure function)."""
    doc = _mapping(doc, "", TOP_KEYS)
    if not doc:
        raise SpecError("", doc, "the grid is empty")

    name = doc.get("name")
    if not isinstance(name, str) or len(name) > NAME_MAX or not DNS_LABEL.fullmatch(name):
        raise SpecError("name", name, f"must be a DNS-1123 label (lowercase letters, digits, '-') of at most "
                                      f"{NAME_MAX} characters")
    store_uri = store or doc.get("store") or "./runs"
    if not isinstance(store_uri, str):
        raise SpecError("store", store_uri, "must be a path or URI string")

    defaults = _mapping(doc.get("defaults"), "defaults", DEFAULT_KEYS)
    preset = defaults.get("preset", "fast")
    if preset not in PRESETS:
        raise SpecError("defaults.preset", preset, f"unknown preset; known: {', '.join(PRESETS)}")
    base_seed = _seed(defaults.get("seed", 42), "defaults.seed")
    default_layers = _sections(defaults, "defaults")

    models = {k: _model(k, v) for k, v in _mapping(doc.get("models"), "models").items()}
    datasets = {k: _dataset(k, v) for k, v in _mapping(doc.get("datasets"), "datasets").items()}
    variants = {k: _variant(k, v) for k, v in _mapping(doc.get("methods"), "methods").items()}
    cluster = build(ClusterSettings, doc.get("cluster"), "cluster")

    axes = _mapping(doc.get("axes"), "axes", set(AXIS_KEYS))
    include = _list(doc.get("include"), "include")
    if not axes and not include:
        raise SpecError("axes", None, "must define model, method and dataset axes (or give include entries)")
    combos: list[tuple[dict[str, Any], str]] = []
    if axes:
        values = {}
        for key in ("model", "method", "dataset"):
            if key not in axes:
                raise SpecError(f"axes.{key}", None, "is required")
            values[key] = [_name(v, f"axes.{key}[{i}]") for i, v in
                           enumerate(_list(axes[key], f"axes.{key}", allow_empty=False))]
        values["seed"] = [_seed(s, f"axes.seed[{i}]") for i, s in
                          enumerate(_list(axes.get("seed", [base_seed]), "axes.seed", allow_empty=False))]
        for key, vals in values.items():
            dup = next((v for v in vals if vals.count(v) > 1), None)
            if dup is not None:
                raise SpecError(f"axes.{key}", dup, "appears twice in the axis")
        for model, method, dataset, seed in itertools.product(*(values[k] for k in AXIS_KEYS)):
            combos.append(({"model": model, "method": method, "dataset": dataset, "seed": seed}, "axes"))

    excludes = []
    for i, ex in enumerate(_list(doc.get("exclude"), "exclude")):
        ex = _mapping(ex, f"exclude[{i}]", set(AXIS_KEYS))
        if not ex:
            raise SpecError(f"exclude[{i}]", ex, "an empty exclude entry would remove every cell")
        excludes.append(ex)
    combos = [(c, where) for c, where in combos if not any(all(c[k] == v for k, v in ex.items())
                                                             for ex in excludes)]

    for i, entry in enumerate(include):
        entry = _mapping(entry, f"include[{i}]", INCLUDE_KEYS)
        for key in ("model", "method", "dataset"):
            if key not in entry:
                raise SpecError(f"include[{i}].{key}", None, "is required (model may be null for lead)")
            if not (key == "model" and entry[key] is None):
                _name(entry[key], f"include[{i}].{key}")
        entry["seed"] = _seed(entry.get("seed", base_seed), f"include[{i}].seed")
        combos.append((entry, f"include[{i}]"))

    cells: list[Cell] = []
    seen: dict[str, str] = {}
    for combo, where in combos:
        cell = _cell(combo, where, preset, default_layers, models, datasets, variants)
        cid = cell.cell_id
        if cid in seen and cell.model is None and where == "axes":
            continue  # a model-free method crossed with several models is still one cell per dataset
        if cid in seen:
            raise SpecError(where, combo_label(combo), f"duplicate cell {cid} (same as {seen[cid]})")
        seen[cid] = f"{where} {combo_label(combo)}"
        cells.append(cell)
    if not cells:
        raise SpecError("exclude", len(excludes), "the grid expands to zero cells")
    return Grid(name=name, store=store_uri, cells=cells, cluster=cluster, source=source)


def _resolve_names(eval_settings: EvalSettings, data: DataSettings, dinfo: DatasetInfo,
                   models: Mapping[str, tuple[ModelInfo, dict]], data_layers: tuple[tuple[str, Any], ...]
                   ) -> tuple[EvalSettings, DataSettings]:
    """Settings that name something of the grid, resolved into what the cell runs with (not device-dependent, so
    not hashed as written): ``eval.references: auto`` becomes the dataset's default, ``data.length_tokenizer`` a
    model name becomes that model's hub id (a path or s3:// URI stays)."""
    if eval_settings.references == "auto":
        eval_settings = dataclasses.replace(eval_settings, references=dinfo.references)
    name = data.length_tokenizer
    if name in models:
        resolved = models[name][0].hub_id
    elif name in MODELS:
        resolved = MODELS[name].hub_id
    elif name.startswith("s3://") or _path_exists(name):
        resolved = name
    else:
        where = next((f"{label}.length_tokenizer" for label, layer in reversed(data_layers)
                      if layer and "length_tokenizer" in layer), "data.length_tokenizer")
        raise SpecError(where, name, "must be a model name (the catalog's or the grid's models section), an "
                                     "existing path or an s3:// URI")
    return eval_settings, dataclasses.replace(data, length_tokenizer=resolved)


@functools.lru_cache(maxsize=256)
def _path_exists(path: str) -> bool:
    return Path(path).expanduser().exists()


def combo_label(combo: Mapping[str, Any]) -> str:
    return "/".join(str(combo.get(k)) for k in AXIS_KEYS)


def _seed(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise SpecError(path, value, "must be an integer in [0, 2**32)")
    return value


def _model(name: str, raw: Any) -> tuple[ModelInfo, dict[str, dict[str, Any]]]:
    path = f"models.{name}"
    _name(name, path)
    raw = _mapping(raw, path, MODEL_KEYS)
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
    return ModelInfo(hub_id, arch, context, revision), _sections(raw, path)


def _dataset(name: str, raw: Any) -> tuple[DatasetInfo, dict[str, dict[str, Any]]]:
    path = f"datasets.{name}"
    _name(name, path)
    raw = _mapping(raw, path, DATASET_KEYS)
    layers = _sections(raw, path)
    raw = {k: v for k, v in raw.items() if k not in SECTIONS}
    if name in DATASETS and not raw:  # settings only: the catalog's dataset with this grid's layers
        return DATASETS[name], layers
    base = dataclasses.asdict(DATASETS[name]) if name in DATASETS else {}
    merged = {**base, **raw}
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
    return DatasetInfo(**merged), layers


def _variant(name: str, raw: Any) -> tuple[str, dict[str, Any], dict[str, dict[str, Any]]]:
    path = f"methods.{name}"
    _name(name, path)
    raw = _mapping(raw, path)
    mtype = raw.get("type", name)
    if mtype not in METHODS:
        raise SpecError(f"{path}.type", mtype, f"unknown method; known: {', '.join(METHODS.names())}")
    raw_params = {k: v for k, v in raw.items() if k not in ("type", *SECTIONS)}
    params = dataclasses.asdict(build(METHODS.get(mtype).params, raw_params, path))
    return mtype, params, _sections(raw, path)


def _cell(combo: Mapping[str, Any], where: str, preset: str, default_layers: Mapping[str, dict],
          models: Mapping[str, tuple[ModelInfo, dict]], datasets: Mapping[str, tuple[DatasetInfo, dict]],
          variants: Mapping[str, tuple[str, dict, dict]]) -> Cell:
    model_name, method_name, dataset_name = combo["model"], combo["method"], combo["dataset"]
    if method_name in variants:
        mtype, params, method_layers = variants[method_name]
    elif method_name in METHODS:
        mtype, method_layers = method_name, {}
        params = dataclasses.asdict(METHODS.get(mtype).params())
    else:
        known = sorted(set(METHODS.names()) | set(variants))
        raise SpecError(f"{where}.method", method_name, f"unknown method; known: {', '.join(known)}")
    method = METHODS.get(mtype)
    if not method.needs_model:  # lead: no model, one cell per dataset whatever the model axis says
        info, model_layers = None, {}
    elif model_name in models:
        info, model_layers = models[model_name]
    elif model_name in MODELS:
        info, model_layers = MODELS[model_name], {}
    else:
        raise SpecError(f"{where}.model", model_name,
                        f"unknown model; known: {', '.join(sorted(MODELS))} (or declare it under models: with "
                        f"family and context)")
    if dataset_name in datasets:
        dinfo, dataset_layers = datasets[dataset_name]
    elif dataset_name in DATASETS:
        dinfo, dataset_layers = DATASETS[dataset_name], {}
    else:
        raise SpecError(f"{where}.dataset", dataset_name,
                        f"unknown dataset; known: {', '.join(sorted(DATASETS))} (or declare it under datasets:)")
    reason = method.incompatible.get(info.arch) if info else None
    if reason:
        raise SpecError(f"{where}", f"{model_name} x {method_name}",
                        f"method {mtype!r} cannot be applied to {info.arch} models: {reason}")

    family = ARCH_FAMILY[info.arch] if info else None
    settings = {}
    layers_of: dict[str, tuple[tuple[str, Any], ...]] = {}
    for section, cls in SECTIONS.items():
        layers = merge(preset_layer(preset, section, family), default_layers[section], dataset_layers.get(section),
                       model_layers.get(section),
                       method_layers.get(section), _mapping(combo.get(section), f"{where}.{section}"))
        # Report the path of the layer that supplied the bad value: check each layer's own keys first.
        labelled = ((f"defaults.{section}", default_layers[section]),
                    (f"datasets.{dataset_name}.{section}", dataset_layers.get(section)),
                    (f"models.{model_name}.{section}", model_layers.get(section)),
                    (f"methods.{method_name}.{section}", method_layers.get(section)),
                    (f"{where}.{section}", combo.get(section)))
        layers_of[section] = labelled
        for label, layer in labelled:
            if layer:
                check_keys(cls, layer, label)
        try:
            settings[section] = build(cls, layers, f"{where}.{section}")
        except SpecError:
            # A cross-field problem of the merged settings (a later layer may legitimately complete an earlier
            # one, so layers are only built alone once the merge fails): name the first layer invalid on its own.
            for label, layer in labelled:
                if layer:
                    build(cls, merge(preset_layer(preset, section, family), layer), label)
            raise
    settings["eval"], settings["data"] = _resolve_names(settings["eval"], settings["data"], dinfo, models,
                                                        layers_of["data"])

    return Cell(
        model=ModelRef(model_name, info.hub_id, info.revision, info.arch, info.context) if info else None,
        method=MethodRef(method_name, mtype, params),
        dataset=DatasetRef(name=dataset_name, **dataclasses.asdict(dinfo)),
        train=settings["train"], eval=settings["eval"], data=settings["data"],
        seed=combo["seed"], preset=preset,
    )
