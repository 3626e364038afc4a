"""grid.yaml → validated Grid → list of frozen Cells.

Everything a user can get wrong is caught here, before anything runs or any API is called: each problem raises
:class:`SpecError` naming the file, the field path and the value. Precedence of settings, lowest first:
preset < defaults < datasets.<d> < models.<m> < methods.<variant> < include entry.
"""

from __future__ import annotations

import codecs
import collections
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
from peftsum.spec.catalog import (
    ARCH_FAMILY,
    DATASETS,
    LEARNED_POSITIONS,
    MIN_SOURCE_TOKENS,
    MODELS,
    POSITIONS,
    PROMPT_TEMPLATE_TOKENS,
    DatasetInfo,
    ModelInfo,
)
from peftsum.spec.cell import Cell, DatasetRef, MethodRef, ModelRef
from peftsum.spec.cluster import ClusterSettings
from peftsum.spec.errors import SpecError, bounded_repr
from peftsum.spec.fields import build, check_keys, merge
from peftsum.spec.settings import PRESETS, SECTIONS, DataSettings, EvalSettings, preset_layer
from peftsum.spec.tracking import TrackingSettings

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")  # model/dataset/variant names: no spaces or control chars

TOP_KEYS = {"name", "store", "defaults", "axes", "methods", "models", "datasets", "exclude", "include", "cluster",
            "tracking"}
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
    tracking: TrackingSettings = dataclasses.field(default_factory=TrackingSettings)  # not in any cell's identity

    def to_dict(self) -> dict[str, Any]:
        """The resolved grid as written to ``<store>/<grid>/grid.json``."""
        return {"name": self.name, "store": self.store, "cluster": dataclasses.asdict(self.cluster),
                "tracking": dataclasses.asdict(self.tracking), "cells": {c.cell_id: c.to_dict() for c in self.cells}}


# What a grid file may make the loader build. A grid is small: these bounds are far above any real one, and far
# below what would exhaust memory or the interpreter's stack.
ALIAS_BUDGET = 10_000  # nodes that YAML aliases (*name) may add to the document, all aliases together
MAX_DEPTH = 100  # nesting of lists and mappings, aliases expanded
MAX_INT_LITERAL = 1_000  # characters of an integer literal (Python refuses to convert more than 4,300 digits)
_INT_TAG = "tag:yaml.org,2002:int"


class _Refused(yaml.MarkedYAMLError):
    """A document the loader refuses to build, at a known field path."""

    def __init__(self, path: str, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.path = path


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also refuses duplicate keys (PyYAML silently keeps the last one) and, while composing, what
    could exhaust memory or the stack later: aliases that expand past ``ALIAS_BUDGET`` nodes (a "billion laughs"
    bomb is a few hundred bytes, and cheap until something walks or prints it), recursive aliases, nesting deeper
    than ``MAX_DEPTH``, list or mapping keys (``? [a, b]``: unhashable) and integer literals too long to convert.
    Each refusal names the field path and the line."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._segments: list[str] = []  # field path of the node being composed
        self._depth = 0
        self._open: set[str] = set()  # anchors whose node is being composed (an alias to one is recursive)
        self._expanded = 0  # nodes added by aliases so far
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, nesting depth) with aliases expanded

    def _path(self) -> str:
        return "".join(self._segments).lstrip(".")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if parent is None:
            segment = ""
        elif isinstance(parent, yaml.SequenceNode):
            segment = f"[{index}]"
        elif index is None:  # a mapping key: only a plain value can be one
            event = self.peek_event()
            target = self.anchors.get(event.anchor) if isinstance(event, yaml.AliasEvent) else None
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)) or \
                    isinstance(target, (yaml.SequenceNode, yaml.MappingNode)):
                raise _Refused(self._path(), "a mapping key must be a plain string, not a list or mapping (a YAML "
                                             "complex key such as '? [a, b]')", event.start_mark)
            return super().compose_node(parent, index)
        else:
            segment = f".{index.value}" if isinstance(index, yaml.ScalarNode) else ".?"
        self._segments.append(segment)
        try:
            return self._compose(parent, index)
        finally:
            self._segments.pop()

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(self._path(), f"alias *{event.anchor} refers to a node that contains it (a recursive "
                                             f"structure)", event.start_mark)
            if event.anchor in self.anchors:
                nodes, depth = self._size(self.anchors[event.anchor])
                self._expanded += nodes
                if self._expanded > ALIAS_BUDGET:
                    raise _Refused(self._path(), f"YAML aliases expand the document by more than {ALIAS_BUDGET:,} "
                                                 f"values (an alias bomb?): write the values out instead",
                                   event.start_mark)
                if self._depth + depth > MAX_DEPTH:
                    raise _Refused(self._path(), f"nests lists and mappings deeper than {MAX_DEPTH} levels "
                                                 f"(aliases expanded)", event.start_mark)
            return super().compose_node(parent, index)
        collection = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(self._path(), f"nests lists and mappings deeper than {MAX_DEPTH} levels",
                               event.start_mark)
        if event.anchor is not None:
            self._open.add(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open.discard(event.anchor)
            self._depth -= collection
        if node.tag == _INT_TAG and len(node.value) > MAX_INT_LITERAL:
            raise _Refused(self._path(), f"an integer literal of {len(node.value):,} characters is longer than any "
                                         f"setting accepts", node.start_mark)
        return node

    def _size(self, root: yaml.Node) -> tuple[int, int]:
        """(nodes, nesting depth) of ``root`` with every alias inside it expanded; memoised, so all calls together
        visit each node once."""
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if id(node) in self._sizes:
                continue
            children = [] if isinstance(node, yaml.ScalarNode) else \
                node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
            if done:
                sizes = [self._sizes[id(c)] for c in children]
                self._sizes[id(node)] = (1 + sum(n for n, _ in sizes),
                                         (not isinstance(node, yaml.ScalarNode)) + max((d for _, d in sizes),
                                                                                       default=0))
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in self._sizes)
        return self._sizes[id(root)]


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {bounded_repr(key)}",
                                                    key_node.start_mark)
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
            None, None, f"{bounded_repr(value)} is not valid Unicode text (a lone surrogate escape such as \\ud83d)",
            node.start_mark) from None
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:str", _unicode_str)


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"


def _decode(data: bytes) -> str:
    """The grid file's text. Grid files are UTF-8 (a UTF-8 byte-order mark is allowed); anything else is refused
    naming the position of the first byte that is not UTF-8."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                          (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise SpecError("", "line 1, column 1", f"the file is {encoding} text (it starts with a {encoding} "
                                                    f"byte-order mark): grid files must be UTF-8; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError("", f"line {line}, column {column}",
                        f"the file is not UTF-8 text: byte 0x{data[err.start]:02x} at line {line}, column {column} "
                        f"cannot be decoded (grid files must be UTF-8; save it as UTF-8)") from None


def load_grid(path: str | Path, store: str | None = None) -> Grid:
    """Read, validate and expand a grid file. Raises SpecError naming the file on any problem."""
    path = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SpecError("", path, f"cannot read grid file: {err.strerror}", file=path) from None
    try:
        return parse_grid(_decode(data), source=path, store=store)
    except SpecError as err:
        raise err.in_file(path) from None


def parse_grid(text: str, source: str = "<string>", store: str | None = None) -> Grid:
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as err:
        raise SpecError(err.path, _where(err.problem_mark), err.problem) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise SpecError("", _where(mark), f"invalid YAML: {err.problem or err.context}") from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (NUL, other control characters)
        before = text[: err.position]
        where = f"line {before.count(chr(10)) + 1}, column {err.position - before.rfind(chr(10))}"
        char = chr(err.character) if isinstance(err.character, int) else err.character
        raise SpecError("", where, f"invalid YAML: the character {char!r} at {where} is not allowed in YAML text "
                                   f"(a binary or UTF-16 file? grid files are UTF-8 text)") from None
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
    tracking = build(TrackingSettings, doc.get("tracking"), "tracking")

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
            dup = _first_duplicate(vals)
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
    combos = _without_excluded(combos, excludes)

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
            cell = _cell(combo, where, preset, default_layers, models, datasets, variants)
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


def _needs_model(method_name: str, variants: Mapping[str, tuple[str, dict, dict]]) -> bool:
    mtype = variants[method_name][0] if method_name in variants else method_name
    return mtype not in METHODS or METHODS.get(mtype).needs_model  # an unknown method is refused by _cell


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


def _check_lengths(info: ModelInfo, model_name: str, eval_settings: EvalSettings, data: DataSettings,
                   layers_of: Mapping[str, tuple[tuple[str, Any], ...]]) -> None:
    """Refuse token lengths the model's positions cannot hold: at run time they are an IndexError (a position past
    the model's embeddings), after the data is loaded. A causal model reads prompt, source and the summary (trained
    on or generated) in one window, whose context is a hard limit (the encoder gives the source what is left, at
    least ``MIN_SOURCE_TOKENS``); an encoder-decoder with learned positions (BART) limits its decoder and, with
    ``data.max_source_tokens: null`` (no cap), its encoder. T5's relative positions have no such limit."""

    def refuse(section: str, key: str, value: Any, why: str) -> None:
        origin = next((f"{label}.{key}" for label, layer in reversed(layers_of[section]) if layer and key in layer),
                      None)
        if origin is None:  # the default value: the declared context is what is too small
            raise SpecError(f"models.{model_name}.context", info.context,
                            f"is too small for {section}.{key} = {value}: {why}")
        raise SpecError(origin, value, f"does not fit {model_name} ({info.context}-token context): {why}")

    lengths = (("eval", "max_new_tokens", eval_settings.max_new_tokens),
               ("data", "max_target_tokens", data.max_target_tokens))
    if info.family == "causal":
        rest = PROMPT_TEMPLATE_TOKENS + MIN_SOURCE_TOKENS + 1
        for section, key, value in lengths:
            if value + rest > info.context:
                refuse(section, key, value,
                       f"a causal model reads prompt and summary in one window, and a {value}-token summary needs "
                       f"{value + rest} (up to {PROMPT_TEMPLATE_TOKENS} for the prompt's template, at least "
                       f"{MIN_SOURCE_TOKENS} of source, 1 for EOS)")
    elif info.arch in LEARNED_POSITIONS:
        limit = info.positions or info.context
        for section, key, value in lengths:
            if value + (key == "max_target_tokens") > limit:  # a training target also carries EOS
                refuse(section, key, value, f"its decoder has {limit} learned positions (a trained summary also "
                                            f"carries EOS)")
        if data.max_source_tokens is None:
            refuse("data", "max_source_tokens", None,
                   f"no source cap cannot work with learned positions: its encoder reads at most {limit} tokens "
                   f"(use auto, which fits the source to the window)")


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
    positions = POSITIONS.get(hub_id)
    if positions is not None and context > positions:
        raise SpecError(f"{path}.context", context, f"is larger than {hub_id} supports: its learned position "
                                                    f"embeddings stop at {positions} tokens")
    return ModelInfo(hub_id, arch, context, revision, positions), _sections(raw, path)


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
    if info is not None:
        _check_lengths(info, model_name, settings["eval"], settings["data"], layers_of)

    return Cell(
        model=ModelRef(model_name, info.hub_id, info.revision, info.arch, info.context) if info else None,
        method=MethodRef(method_name, mtype, params),
        dataset=DatasetRef(name=dataset_name, **dataclasses.asdict(dinfo)),
        train=settings["train"], eval=settings["eval"], data=settings["data"],
        seed=combo["seed"], preset=preset,
    )
