"""Adapters that load anywhere (docs/result.md, "Loading what a cell trained"): small cells of every trained method on
tiny-gpt2 (and the T5-only LoHa/LoKr with LoRA on tiny-t5), pulled with ``launcher pull --adapters``, load through
``peftsum.trained.load_trained`` and regenerate the cell's predictions exactly; each artifact folder has the
tokenizer and a Hub model card with the cell's scores. A LoRA adapter trained from a model staged in S3 records the
public id, not the s3:// URI, and loads with plain ``PeftModel.from_pretrained``. About a minute on 2 cores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from peftsum.cell import run_cell
from peftsum.data.contract import Example
from peftsum.data.features import Encoder
from peftsum.generate import generate
from peftsum.spec import Cell, parse_grid
from peftsum.store import layout, open_store
from peftsum.trained import NotLoadable, artifact_folder, load_trained

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

REPO = Path(__file__).resolve().parents[1]
QUICKSTART_LORA = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())["methods"]["lora"]
SMALL = {"train": {"epochs": 1, "max_steps": 3, "batch_tokens": 768, "learning_rate": 1.0e-2,
                   "checkpoint_every_seconds": None},
         "eval": {"limit": 4, "max_new_tokens": 8, "bootstrap_samples": 100},
         "data": {"train_limit": 12}}
GPT2_METHODS = ["full", "full-dropped", "lora", "dora", "ia3", "prefix", "prompt", "ptuning", "adalora", "vera",
                "bitfit", "none", "lead"]
T5_METHODS = ["lora", "loha", "lokr"]


def _grid(doc: dict) -> list[Cell]:
    return parse_grid(yaml.safe_dump({"name": "loadable", "defaults": SMALL, **doc}, sort_keys=False)).cells


def _cells() -> list[Cell]:
    methods = {
        "lora": QUICKSTART_LORA,  # the quickstart's LoRA cells: they too must get a tokenizer and a card
        "full": {"type": "full", "train": {"keep_full_weights": True}},
        "full-dropped": {"type": "full"},  # weights not kept: a clear error
        "adalora": {"type": "adalora", "init_r": 4, "target_r": 2},
        "vera": {"type": "vera", "r": 8},
        "prefix": {"type": "prefix", "num_virtual_tokens": 4},
        "prompt": {"type": "prompt", "num_virtual_tokens": 4, "train": {"learning_rate": 0.3}},
        "ptuning": {"type": "ptuning", "num_virtual_tokens": 4, "encoder_hidden_size": 16},
        "lead": {"type": "lead", "k": 2},
    }
    gpt2 = _grid({"axes": {"model": ["tiny-gpt2"], "method": GPT2_METHODS, "dataset": ["synthetic-dialogsum"]},
                  "methods": methods})
    t5 = _grid({"axes": {"model": ["tiny-t5"], "method": T5_METHODS, "dataset": ["synthetic-dialogsum"]},
                "methods": {"lora": QUICKSTART_LORA}})
    return gpt2 + t5


def _label(cell: Cell) -> str:
    return f"{cell.model.name if cell.model else '-'}/{cell.method.name}"


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every cell run (in this process) into a store, then pulled with ``--adapters --predictions``."""
    from launcher.pull import pull

    root, dest = tmp_path_factory.mktemp("ran"), tmp_path_factory.mktemp("pulled")
    store = open_store(str(root))
    cells = {_label(c): c for c in _cells()}
    for cell in cells.values():
        layout.write_json(store, layout.cell_key("loadable", cell.cell_id, "spec.json"), cell.to_dict())
        assert run_cell(store, "loadable", cell) == 0, _label(cell)
    stats = pull(store, "loadable", [c.cell_id for c in cells.values()], dest, adapters=True, predictions=True,
                 report=False)
    assert not stats.failed and not stats.not_done
    return {"store": str(dest), "cells": cells}


def _rows(store: str, cell_id: str, grid: str = "loadable") -> tuple[dict, list[dict]]:
    s = open_store(store)
    manifest = layout.read_manifest(s, grid, cell_id)
    result = json.loads(s.read_bytes(layout.result_key(grid, cell_id, manifest)))
    lines = s.read_bytes(layout.result_key(grid, cell_id, manifest, "predictions.jsonl")).splitlines()
    return result, [json.loads(line) for line in lines]


def regenerate(model, tokenizer, cell: Cell, result: dict, rows: list[dict]) -> list[str]:
    """Greedy generation of the cell's scored examples with the cell's settings (budget and cache as it ran)."""
    enc = Encoder(tokenizer, cell.model.family, cell.dataset.kind, cell.model.context, cell.data.max_source_tokens,
                  cell.data.max_target_tokens, cell.eval.max_new_tokens)
    features = enc.eval([Example(r["id"], r["source"], r["reference"]) for r in rows])
    prov = result["provenance"]
    return generate(model, tokenizer, features.prompt_ids, causal=cell.model.family == "causal",
                    max_new_tokens=cell.eval.max_new_tokens, num_beams=cell.eval.num_beams,
                    device=torch.device("cpu"), autocast_dtype=None, budget_tokens=prov["generation_budget_tokens"],
                    batch_size=cell.eval.batch_size, cache=prov["generation_cache"]).predictions


LOADABLE = [f"tiny-gpt2/{m}" for m in GPT2_METHODS if m not in ("full-dropped", "lead")] + \
           [f"tiny-t5/{m}" for m in T5_METHODS]


@pytest.mark.parametrize("label", LOADABLE)
def test_every_method_loads_and_reproduces_its_predictions(pulled: dict, label: str) -> None:
    cell = pulled["cells"][label]
    model, tokenizer = load_trained(pulled["store"], "loadable", cell.cell_id)
    result, rows = _rows(pulled["store"], cell.cell_id)
    assert rows and regenerate(model, tokenizer, cell, result, rows) == [r["prediction"] for r in rows]
    folder, _ = artifact_folder(pulled["store"], "loadable", cell.cell_id)
    if cell.method.type == "none":
        assert folder is None
        return
    assert _moved(model, tokenizer, cell) > 1e-4  # the trained weights came with it, not the base or an init
    assert folder.name == ("model" if cell.method.type == "full" else "adapter")
    assert (folder / "tokenizer_config.json").is_file() and (folder / "tokenizer.json").is_file()
    config = folder / "adapter_config.json"
    if config.is_file():
        assert json.loads(config.read_text())["base_model_name_or_path"] == cell.model.hub_id
    peft = cell.method.type not in ("full", "bitfit")
    if peft:  # plain peft loads it too (the builtin: base through peftsum's resolver), to the same logits
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        from peftsum.models.load import resolve_path

        auto = AutoModelForCausalLM if cell.model.family == "causal" else AutoModelForSeq2SeqLM
        plain = PeftModel.from_pretrained(auto.from_pretrained(resolve_path(cell.model.hub_id)), str(folder))
        assert _logits(plain, tokenizer, cell).equal(_logits(model, tokenizer, cell))
    _check_card(folder / "README.md", cell, result, peft=peft)


def _logits(model, tokenizer, cell: Cell) -> torch.Tensor:
    """The model's next-token logits on one fixed input."""
    ids = torch.tensor([tokenizer("#Person1#: Hello there.", add_special_tokens=False)["input_ids"]])
    extra = {} if cell.model.family == "causal" else {"decoder_input_ids": torch.zeros((1, 1), dtype=torch.long)}
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits[0, -1]


def _moved(model, tokenizer, cell: Cell) -> float:
    """Largest difference between the loaded model's logits and its base model's."""
    from peftsum.models.load import load_model

    return float((_logits(model, tokenizer, cell) - _logits(load_model(cell.model)[0], tokenizer, cell)).abs().max())


def _check_card(card: Path, cell: Cell, result: dict, peft: bool) -> None:
    text = card.read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n", 2)[1])
    assert front["base_model"] == cell.model.hub_id
    assert front.get("library_name") == ("peft" if peft else "transformers" if cell.method.type == "full" else None)
    assert cell.method.type in front["tags"] and front["datasets"] == [cell.dataset.name]
    (index,) = front["model-index"]
    assert index["name"] == f"loadable/{cell.cell_id}"
    metrics = {m["type"]: m["value"] for m in index["results"][0]["metrics"]}
    assert metrics["rougeL"] == pytest.approx(result["metrics"]["rougeL"]["value"], abs=1e-6)
    assert set(metrics) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"}
    lo, hi = result["metrics"]["rougeL"]["ci95"]
    assert f"| ROUGE-L | {result['metrics']['rougeL']['value']:.4f} | [{lo:.4f}, {hi:.4f}] |" in text
    assert cell.cell_id in text and "loadable" in text and cell.dataset.name in text and cell.method.name in text
    assert ("Generate through `load_trained`" in text) == (cell.method.type in ("prefix", "prompt", "ptuning"))


def test_quickstart_lora_cells_get_a_tokenizer_and_a_card_with_their_metrics(pulled: dict) -> None:
    for label in ("tiny-gpt2/lora", "tiny-t5/lora"):
        cell = pulled["cells"][label]
        assert cell.method.params["target_modules"] == tuple(QUICKSTART_LORA["target_modules"])
        folder, result = artifact_folder(pulled["store"], "loadable", cell.cell_id)
        assert {"tokenizer.json", "tokenizer_config.json", "README.md", "adapter_config.json"} <= {
            p.name for p in folder.iterdir()}
        assert "peft" in (folder / "README.md").read_text().split("---\n", 2)[1]  # ours, not peft's template
        assert result["provenance"]["base_model"] == result["provenance"]["base_model_source"] == cell.model.hub_id


def test_models_without_weights_are_refused_with_the_reason(pulled: dict) -> None:
    dropped, lead = pulled["cells"]["tiny-gpt2/full-dropped"], pulled["cells"]["-/lead"]
    with pytest.raises(NotLoadable, match="keep_full_weights"):
        load_trained(pulled["store"], "loadable", dropped.cell_id)
    with pytest.raises(NotLoadable, match="model-free"):
        load_trained(pulled["store"], "loadable", lead.cell_id)
    with pytest.raises(NotLoadable, match="not done"):
        load_trained(pulled["store"], "loadable", "0" * 12)


def test_a_pull_without_adapters_says_so(pulled: dict, tmp_path: Path) -> None:
    from launcher.pull import pull

    cell = pulled["cells"]["tiny-gpt2/lora"]
    pull(open_store(pulled["store"]), "loadable", [cell.cell_id], tmp_path, adapters=False, predictions=False,
         report=False)
    with pytest.raises(NotLoadable, match="--adapters"):
        load_trained(str(tmp_path), "loadable", cell.cell_id)


def test_lora_from_a_staged_model_loads_with_plain_peft(s3, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from peftsum.models.load import resolve_path
    from peftsum.stage import stage_grid

    local = tmp_path / "my-gpt2"  # a local model folder, as a grid names one
    shutil.copytree(resolve_path("builtin:tiny-gpt2@v3"), local)
    doc = {"name": "staged", "defaults": SMALL, "models": {"my-gpt2": {"hub_id": str(local), "arch": "gpt2",
                                                                      "context": 512}},
           "axes": {"model": ["my-gpt2"], "method": ["lora"], "dataset": ["synthetic-dialogsum"]}}
    (plain,) = parse_grid(yaml.safe_dump(doc)).cells
    store = open_store(s3.uri)
    overrides = stage_grid(store, parse_grid(yaml.safe_dump(doc)), log=lambda msg: None)
    staged_uri = overrides["models"]["my-gpt2"]["hub_id"]
    assert staged_uri == f"{s3.uri}/_staged/models/my-gpt2"
    assert json.loads(store.read_bytes("_staged/models/my-gpt2/peftsum-staged-from.json"))["hub_id"] == str(local)
    doc["models"] = {"my-gpt2": {**doc["models"]["my-gpt2"], **overrides["models"]["my-gpt2"]}}
    (cell,) = parse_grid(yaml.safe_dump(doc)).cells
    assert cell.model.hub_id == staged_uri
    layout.write_json(store, layout.cell_key("staged", cell.cell_id, "spec.json"), cell.to_dict())
    assert run_cell(store, "staged", cell) == 0

    result, rows = _rows(s3.uri, cell.cell_id, "staged")
    assert result["provenance"]["base_model"] == plain.model.hub_id == str(local)
    assert result["provenance"]["base_model_source"] == staged_uri
    folder, _ = artifact_folder(s3.uri, "staged", cell.cell_id)  # downloaded from S3, checked against _SUCCESS
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(local) and "s3://" not in json.dumps(config)
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"], dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    expected = [r["prediction"] for r in rows]
    assert regenerate(model, tokenizer, cell, result, rows) == expected
    card = (folder / "README.md").read_text()
    assert f"base_model: {local}" in card and f"loaded from `{staged_uri}`" in card
    model2, tokenizer2 = load_trained(s3.uri, "staged", cell.cell_id)
    assert regenerate(model2, tokenizer2, cell, result, rows) == expected


def test_public_base_names_what_a_copy_was_staged_from(tmp_path: Path) -> None:
    from peftsum.artifacts import base_provenance, public_base
    from peftsum.spec.cell import ModelRef
    from peftsum.stage import SOURCE_FILE

    copy = tmp_path / "store" / "_staged" / "models" / "tiny-gpt2"  # a local store's staged copy
    copy.mkdir(parents=True)
    ref = ModelRef("tiny-gpt2", str(copy), None, "gpt2", 512)
    assert public_base(ref) == ("builtin:tiny-gpt2@v3", None)  # staged before the file existed: the catalog's id
    (copy / SOURCE_FILE).write_text(json.dumps({"hub_id": "openai-community/gpt2", "revision": "abc"}))
    assert public_base(ref) == ("openai-community/gpt2", "abc")
    assert base_provenance(ref) == {"base_model": "openai-community/gpt2", "base_model_revision": "abc",
                                    "base_model_source": str(copy)}
    assert public_base(ModelRef("x", "org/model", "v1", "gpt2", 512)) == ("org/model", "v1")
    unknown = ModelRef("mine", str(copy.parent / "mine"), None, "gpt2", 512)  # not staged by this peftsum, no entry
    assert public_base(unknown) == (unknown.hub_id, None)
    assert base_provenance(None)["base_model"] is None
