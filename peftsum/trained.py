"""Load what a done cell trained, for any method, in one call: ``load_trained(store, grid, cell_id)``.

    from peftsum.trained import load_trained
    model, tokenizer = load_trained("s3://bucket/peftsum", "quickstart", "06c3eb14c993")   # or a pulled folder

The cell's ``_SUCCESS`` manifest names the attempt that counts; its ``result.json`` gives the spec (checked against
the cell id) and its artifact folder (docs/result.md, "The adapter folder"):

- PEFT methods: ``adapter/`` through ``PeftModel.from_pretrained`` on the base model its ``adapter_config.json``
  names (the public id, never a staged URI). Plain ``PeftModel.from_pretrained(base, folder)`` loads it too; this
  call also loads ``builtin:`` bases (the shipped tiny models) and lets prompt-learning adapters generate with the
  KV cache as the cell did (``peftsum.methods.wrap``).
- BitFit: ``adapter/``'s trained tensors put into the base model.
- Full fine-tuning: ``model/`` (only when the cell ran with ``train.keep_full_weights: true``).
- ``none``: the base model as the cell scored it. ``lead`` has no model.

The tokenizer is the one saved beside the weights (cells before it was saved: the base's). A remote store's files are
downloaded once into ``$PEFTSUM_CACHE/trained/`` and checked against the manifest's sha256; a local store (a
``launcher pull --adapters`` folder) is read in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peftsum.spec import Cell
from peftsum.spec.cell import ModelRef
from peftsum.store import Store, layout, open_store
from peftsum.store.base import CorruptObject, MissingObject, safe_join, sha256_file


class NotLoadable(LookupError):
    """The cell has no model to load: not done, model-free, full fine-tuning without kept weights, or the artifact
    files are not in this store (a pull without ``--adapters``)."""


def artifact_folder(store: Store | str, grid: str, cell_id: str) -> tuple[Path | None, dict[str, Any]]:
    """(local folder of the cell's ``adapter/`` or ``model/``, or None when it kept none; its result.json)."""
    store = open_store(store) if isinstance(store, str) else store
    manifest = layout.read_manifest(store, grid, cell_id)
    if manifest is None:
        raise NotLoadable(f"{store.uri}: cell {cell_id} of grid {grid!r} is not done (no _SUCCESS)")
    try:
        result = json.loads(store.read_bytes(layout.result_key(grid, cell_id, manifest)))
    except MissingObject:
        raise NotLoadable(f"{store.uri}: cell {cell_id}: its result.json is missing") from None
    prefix = f"attempts/{manifest['attempt_id']}/"
    artifacts = {rel: meta for rel, meta in manifest["files"].items()
                 if rel.removeprefix(prefix).startswith(("adapter/", "model/"))}
    kinds = {rel.removeprefix(prefix).split("/", 1)[0] for rel in artifacts}
    if not kinds:
        return None, result
    kind = "model" if "model" in kinds else "adapter"
    files = {rel: meta for rel, meta in artifacts.items() if rel.removeprefix(prefix).startswith(kind + "/")}
    root = getattr(store, "root", None)
    if root is not None:  # a local store: read in place (its sizes checked, as done_manifest does)
        for rel, meta in files.items():
            path = Path(root) / layout.cell_key(grid, cell_id, rel)
            if not path.is_file() or path.stat().st_size != meta["bytes"]:
                raise NotLoadable(f"{path}: missing or not the size the cell's _SUCCESS lists ({meta['bytes']} "
                                  f"bytes); pull the cell with `launcher pull --adapters`")
        return Path(root) / layout.cell_key(grid, cell_id, prefix + kind), result
    from peftsum.store.fetch import cache_root

    dest = cache_root() / "trained" / f"{cell_id}-{manifest['attempt_id']}"
    for rel, meta in files.items():
        target = safe_join(dest, rel.removeprefix(prefix))
        if target.is_file() and target.stat().st_size == meta["bytes"] and sha256_file(target) == meta["sha256"]:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        store.download(layout.cell_key(grid, cell_id, rel), part)
        if sha256_file(part) != meta["sha256"]:
            part.unlink(missing_ok=True)
            raise CorruptObject(f"{store.uri}: cell {cell_id}: {rel} differs from its _SUCCESS manifest's sha256")
        part.replace(target)
    return dest / kind, result


def load_trained(store: Store | str, grid: str, cell_id: str, *, base: str | None = None,
                 device: Any = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a done cell, whatever its method, in eval mode (fp32, on ``device``, default CPU).

    Args:
        store: a store URI (``s3://…``, a folder such as a ``launcher pull --adapters`` target) or a Store.
        base: where to load the base model from instead of the id the adapter records (a hub id, local path,
            ``s3://`` staged copy or ``builtin:`` id): e.g. the staged copy on a cluster without internet.
        device: where to put the model (``"cuda"``, a torch.device); None: CPU.

    Raises:
        NotLoadable: the cell is not done, has no model (``lead``), kept no weights (full fine-tuning without
            ``train.keep_full_weights``), or its artifact files are not in this store.
    """
    from peftsum.methods import METHODS
    from peftsum.models.load import load_model, load_tokenizer

    folder, result = artifact_folder(store, grid, cell_id)
    cell = Cell.from_dict(result["spec"])
    if cell.cell_id != cell_id:
        raise CorruptObject(f"cell {cell_id}: its result.json's spec hashes to {cell.cell_id}")
    method = METHODS.get(cell.method.type)
    if cell.model is None or not method.needs_model:
        raise NotLoadable(f"cell {cell_id} ({cell.method.name}) has no model: {cell.method.type} is model-free")
    prov = result.get("provenance") or {}
    if folder is None:
        if method.trains:
            raise NotLoadable(
                f"cell {cell_id} ({cell.method.name}, {cell.method.type}) kept no weights: full fine-tuning saves its "
                f"model under model/ only with train.keep_full_weights: true (a setting of the cell, so a new cell "
                f"id): run the cell again with it")
        model, tokenizer = load_model(_base_ref(cell.model, base or prov.get("base_model"),
                                                prov.get("base_model_revision")))
        return _ready(model, device), tokenizer
    tokenizer = load_tokenizer(str(folder)) if (folder / "tokenizer_config.json").is_file() else None
    if folder.name == "model":  # full fine-tuning with its weights kept
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        cls = AutoModelForCausalLM if cell.model.family == "causal" else AutoModelForSeq2SeqLM
        model = cls.from_pretrained(str(folder), dtype=torch.float32)
        tokenizer = tokenizer or load_tokenizer(base or prov.get("base_model") or cell.model.hub_id,
                                                prov.get("base_model_revision"))
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return _ready(model, device), tokenizer
    config = json.loads((folder / "adapter_config.json").read_text())
    ref = _base_ref(cell.model, base or config.get("base_model_name_or_path"),
                    config.get("revision") if base is None else None)
    model, base_tokenizer = load_model(ref)
    tokenizer = tokenizer or base_tokenizer
    if config.get("peft_type"):
        from peft import PeftModel

        from peftsum.methods.wrap import _generation_sees_the_cache

        model = PeftModel.from_pretrained(model, str(folder))
        if model.active_peft_config.is_prompt_learning:  # as peftsum.methods.wrap.peft_apply wrapped it to train
            model = _generation_sees_the_cache(model)
    else:  # partial tuning outside peft (BitFit): the trained tensors into the base
        from safetensors.torch import load_file

        tensors = load_file(str(folder / "adapter_model.safetensors"))
        missing = set(tensors) - {n for n, _ in model.named_parameters()}
        if missing:
            raise CorruptObject(f"cell {cell_id}: {folder}: tensors the base model has not: {sorted(missing)[:5]}")
        model.load_state_dict(tensors, strict=False)
    return _ready(model, device), tokenizer


def _base_ref(ref: ModelRef, hub_id: str | None, revision: str | None) -> ModelRef:
    """The cell's model, loaded from ``hub_id`` (the recorded public id, or the caller's ``base``)."""
    if not hub_id:
        return ref
    return ModelRef(name=ref.name, hub_id=hub_id, revision=revision, arch=ref.arch, context=ref.context)


def _ready(model: Any, device: Any) -> Any:
    if device is not None:
        model.to(device)
    return model.eval()
