"""``peftsum stage``: copy the models and datasets a grid uses into the store, once, for clusters without internet.

Models are copied file by file from where from_pretrained would read them (the hub snapshot, a local folder, the
built-in tiny models); dataset splits are written as ``<split>.jsonl`` with the grid's column names, which the local
loader reads back; the reference tokenizer of a shared length filter (``data.length_tokenizer``), when it is not one
of the grid's models, is staged as a tokenizer-only model folder. The output is the grid overrides that point the
grid at the staged copies; beside each staged model, ``SOURCE_FILE`` keeps the id it was staged from, which the
cell's adapter records as its base (the staged URI resolves only inside the cluster).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peftsum.spec import Grid
from peftsum.spec.cell import DatasetRef, ModelRef
from peftsum.store import Store
from peftsum.store.base import MissingObject, sha256_file

PREFIX = "_staged"
SPLITS = ("train", "validation", "test")
# Written beside a staged model's files: where it was staged from (the grid's hub id, local path or builtin: id, and
# revision). The staged URI is only where a pod reads the copy; adapters record this public id instead
# (peftsum.artifacts.public_base), so they load anywhere.
SOURCE_FILE = "peftsum-staged-from.json"


def _model_folder(ref: ModelRef) -> Path:
    from peftsum.models.load import resolve_path

    path = resolve_path(ref.hub_id)
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download  # a hub id: needs the internet once, here, not in the pod

    return Path(snapshot_download(path, revision=ref.revision))


def stage_model(store: Store, name: str, ref: ModelRef, log: Any = print) -> str:
    """Upload the model's files under ``_staged/models/<name>/``, and ``SOURCE_FILE`` naming where they came from;
    returns its s3:// (or local) URI."""
    folder = _model_folder(ref)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != SOURCE_FILE)
    for i, path in enumerate(files, 1):
        key = f"{PREFIX}/models/{name}/{path.relative_to(folder).as_posix()}"
        info = store.stat(key)
        if info is not None and info.bytes == path.stat().st_size and info.sha256 in (None, sha256_file(path)):
            log(f"  model {name}: {i}/{len(files)} {path.relative_to(folder)} already staged")
            continue  # staging is done once: a rerun uploads only what is missing or changed
        store.upload(key, path.resolve())
        log(f"  model {name}: {i}/{len(files)} {path.relative_to(folder)}")
    origin = staged_from(folder) or {"hub_id": ref.hub_id, "revision": ref.revision}  # a copy of a staged copy
    source = (json.dumps({"hub_id": origin["hub_id"], "revision": origin.get("revision"), "name": name}, indent=2)
              + "\n").encode()
    key = f"{PREFIX}/models/{name}/{SOURCE_FILE}"
    try:
        current = store.read_bytes(key)
    except MissingObject:
        current = None
    if current != source:
        store.write_bytes(key, source)  # also added by a rerun over a model staged before this file existed
    return f"{store.uri}/{PREFIX}/models/{name}"


def staged_from(folder: str | Path) -> dict[str, Any] | None:
    """What a staged model's local copy (``folder``) was staged from: {"hub_id", "revision", "name"}, or None for a
    folder that is no staged copy (or one staged before peftsum recorded it)."""
    path = Path(folder) / SOURCE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("hub_id"), str) and data["hub_id"] else None


def stage_tokenizer(store: Store, name: str, hub_id: str, log: Any = print) -> str:
    """Upload a model's tokenizer files alone under ``_staged/models/<name>/``; returns its URI."""
    import tempfile

    from peftsum.models.load import load_tokenizer

    with tempfile.TemporaryDirectory(prefix="peftsum-stage-") as tmp:
        load_tokenizer(hub_id).save_pretrained(tmp)
        for path in sorted(Path(tmp).iterdir()):
            store.upload(f"{PREFIX}/models/{name}/{path.name}", path)
            log(f"  tokenizer {name}: {path.name}")
    return f"{store.uri}/{PREFIX}/models/{name}"


def stage_dataset(store: Store, name: str, ref: DatasetRef, log: Any = print) -> str:
    """Write every split that exists as ``_staged/datasets/<name>/<split>.jsonl``; returns its URI."""
    from peftsum.data.load import LOADERS

    staged = 0
    for split in SPLITS:
        try:
            rows = LOADERS.get(ref.source)(ref, split, None)
        except (FileNotFoundError, ValueError, KeyError) as err:  # a dataset without this split
            log(f"  dataset {name}: no {split} split ({type(err).__name__}); skipped")
            continue
        keep = [c for c in (ref.id_column, ref.source_column, ref.summary_column) if c]
        lines = [json.dumps({c: row.get(c) for c in keep}, ensure_ascii=False) for row in rows]
        store.write_bytes(f"{PREFIX}/datasets/{name}/{split}.jsonl", ("\n".join(lines) + "\n").encode())
        staged += 1
        log(f"  dataset {name}: {split} {len(rows)} rows")
    if not staged:
        raise FileNotFoundError(f"dataset {name}: no split could be read")
    return f"{store.uri}/{PREFIX}/datasets/{name}"


def stage_grid(store: Store, grid: Grid, log: Any = print) -> dict[str, Any]:
    """Stage every model, dataset and reference tokenizer of ``grid``; returns the ``models:``/``datasets:``
    overrides to use them."""
    from peftsum.spec.catalog import MODELS

    models: dict[str, ModelRef] = {}
    datasets: dict[str, DatasetRef] = {}
    tokenizers: set[str] = set()
    for cell in grid.cells:
        if cell.model is not None and not cell.model.hub_id.startswith("s3://"):
            models[cell.model.name] = cell.model
        if not cell.dataset.id.startswith("s3://"):
            datasets[cell.dataset.name] = cell.dataset
        if cell.data.length_filter and not cell.data.length_tokenizer.startswith("s3://"):
            tokenizers.add(cell.data.length_tokenizer)
    out: dict[str, Any] = {"models": {}, "datasets": {}}
    for name, ref in sorted(models.items()):
        out["models"][name] = {"hub_id": stage_model(store, name, ref, log), "arch": ref.arch,
                               "context": ref.context, "revision": None}
    staged_ids = {ref.hub_id: name for name, ref in models.items()}
    for hub_id in sorted(tokenizers - set(staged_ids)):  # the grid's own models carry their tokenizer already
        name = next((n for n, m in MODELS.items() if m.hub_id == hub_id), None)
        if name is None:  # a local path: the grid names it by path, which a pod cannot read; stage it by name
            name = Path(hub_id).name or "length-tokenizer"
        info = MODELS.get(name)
        out["models"][name] = {"hub_id": stage_tokenizer(store, name, hub_id, log), "revision": None,
                               "arch": info.arch if info else "causal", "context": info.context if info else 1024}
    for name, ref in sorted(datasets.items()):
        out["datasets"][name] = {"source": "local", "id": stage_dataset(store, name, ref, log), "kind": ref.kind,
                                 "source_column": ref.source_column, "summary_column": ref.summary_column,
                                 "references": ref.references, **({"id_column": ref.id_column} if ref.id_column
                                                                  else {})}
    return out
