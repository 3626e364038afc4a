"""One combination of the grid's axes (or one ``include`` entry) → its Cell.

The model, method and dataset it names are looked up in the grid's declarations, then the catalogs; each settings
section is merged from its layers (preset < defaults < datasets.<d> < models.<m> < methods.<variant> < include
entry) and validated, a bad value reported at the layer that supplied it; settings that name something of the grid
are resolved, and token lengths the model cannot hold refused.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peftsum.methods import METHODS
from peftsum.spec.catalog import (
    DATASETS,
    LEARNED_POSITIONS,
    MIN_SOURCE_TOKENS,
    MODELS,
    PROMPT_TEMPLATE_TOKENS,
    DatasetRef,
    ModelRef,
)
from peftsum.spec.cell import Cell, MethodRef
from peftsum.spec.declarations import Layers, Variant, as_mapping
from peftsum.spec.errors import SpecError
from peftsum.spec.fields import build, check_keys, merge
from peftsum.spec.presets import preset_layer
from peftsum.spec.settings import SECTIONS, DataSettings, EvalSettings

Labelled = tuple[tuple[str, Any], ...]  # (field path prefix, the layer's settings) of one section, lowest first


def resolve_cell(combo: Mapping[str, Any], where: str, preset: str, default_layers: Layers,
                 models: Mapping[str, tuple[ModelRef, Layers]], datasets: Mapping[str, tuple[DatasetRef, Layers]],
                 variants: Mapping[str, Variant]) -> Cell:
    """The Cell of ``combo`` (``where``: the field path it came from, ``axes`` or ``include[i]``)."""
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
        model, model_layers = None, {}
    elif model_name in models:
        model, model_layers = models[model_name]
    elif model_name in MODELS:
        model, model_layers = MODELS[model_name], {}
    else:
        raise SpecError(f"{where}.model", model_name,
                        f"unknown model; known: {', '.join(sorted(MODELS))} (or declare it under models: with "
                        f"family and context)")
    if dataset_name in datasets:
        dataset, dataset_layers = datasets[dataset_name]
    elif dataset_name in DATASETS:
        dataset, dataset_layers = DATASETS[dataset_name], {}
    else:
        raise SpecError(f"{where}.dataset", dataset_name,
                        f"unknown dataset; known: {', '.join(sorted(DATASETS))} (or declare it under datasets:)")
    reason = method.incompatible.get(model.arch) if model else None
    if reason:
        raise SpecError(f"{where}", f"{model_name} x {method_name}",
                        f"method {mtype!r} cannot be applied to {model.arch} models: {reason}")

    family = model.family if model else None
    settings = {}
    layers_of: dict[str, Labelled] = {}
    for section, cls in SECTIONS.items():
        layers = merge(preset_layer(preset, section, family), default_layers[section], dataset_layers.get(section),
                       model_layers.get(section),
                       method_layers.get(section), as_mapping(combo.get(section), f"{where}.{section}"))
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
    settings["eval"], settings["data"] = _resolve_names(settings["eval"], settings["data"], dataset, models,
                                                        layers_of["data"])
    if model is not None:
        _check_lengths(model, settings["eval"], settings["data"], layers_of)

    return Cell(
        model=model,
        method=MethodRef(method_name, mtype, params),
        dataset=dataset,
        train=settings["train"], eval=settings["eval"], data=settings["data"],
        seed=combo["seed"], preset=preset,
    )


def _resolve_names(eval_settings: EvalSettings, data: DataSettings, dataset: DatasetRef,
                   models: Mapping[str, tuple[ModelRef, Layers]], data_layers: Labelled
                   ) -> tuple[EvalSettings, DataSettings]:
    """Settings that name something of the grid, resolved into what the cell runs with (not device-dependent, so
    not hashed as written): ``eval.references: auto`` becomes the dataset's default, ``data.length_tokenizer`` a
    model name becomes that model's hub id (a path or s3:// URI stays)."""
    if eval_settings.references == "auto":
        eval_settings = dataclasses.replace(eval_settings, references=dataset.references)
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


def _check_lengths(model: ModelRef, eval_settings: EvalSettings, data: DataSettings,
                   layers_of: Mapping[str, Labelled]) -> None:
    """Refuse token lengths the model's positions cannot hold: at run time they are an IndexError (a position past
    the model's embeddings), after the data is loaded. A causal model reads prompt, source and the summary (trained
    on or generated) in one window, whose context is a hard limit (the encoder gives the source what is left, at
    least ``MIN_SOURCE_TOKENS``); an encoder-decoder with learned positions (BART) limits its decoder and, with
    ``data.max_source_tokens: null`` (no cap), its encoder. T5's relative positions have no such limit."""

    model_name = model.name

    def refuse(section: str, key: str, value: Any, why: str) -> None:
        origin = next((f"{label}.{key}" for label, layer in reversed(layers_of[section]) if layer and key in layer),
                      None)
        if origin is None:  # the default value: the declared context is what is too small
            raise SpecError(f"models.{model_name}.context", model.context,
                            f"is too small for {section}.{key} = {value}: {why}")
        raise SpecError(origin, value, f"does not fit {model_name} ({model.context}-token context): {why}")

    lengths = (("eval", "max_new_tokens", eval_settings.max_new_tokens),
               ("data", "max_target_tokens", data.max_target_tokens))
    if model.family == "causal":
        rest = PROMPT_TEMPLATE_TOKENS + MIN_SOURCE_TOKENS + 1
        for section, key, value in lengths:
            if value + rest > model.context:
                refuse(section, key, value,
                       f"a causal model reads prompt and summary in one window, and a {value}-token summary needs "
                       f"{value + rest} (up to {PROMPT_TEMPLATE_TOKENS} for the prompt's template, at least "
                       f"{MIN_SOURCE_TOKENS} of source, 1 for EOS)")
    elif model.arch in LEARNED_POSITIONS:
        limit = model.positions or model.context
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
