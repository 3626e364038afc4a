"""Files a cell attempt writes: the adapter (or tuned weights), predictions.jsonl, eda.json, result.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from peftsum.spec.cell import ModelRef


def public_base(ref: ModelRef) -> tuple[str, str | None]:
    """(id, revision) of the model ``ref`` was trained from, as anyone can load it: the grid's hub id, local path or
    ``builtin:`` id. A model staged with ``launcher stage`` (``hub_id`` an ``s3://…/_staged/models/<name>`` URI or a
    local store's ``_staged`` folder) is named by what it was staged from (``peftsum.stage.SOURCE_FILE`` beside the
    staged files); a copy staged before peftsum recorded that falls back to the catalog's entry of the same name,
    and only when neither is known to the staged URI itself.
    """
    from peftsum.stage import PREFIX, staged_from

    staged = ref.hub_id.startswith("s3://") or f"/{PREFIX}/models/" in ref.hub_id
    if not staged and not Path(ref.hub_id).is_dir():
        return ref.hub_id, ref.revision
    from peftsum.models.load import resolve_path

    source = staged_from(resolve_path(ref.hub_id))  # an s3:// copy is already in the cache: the cell loaded it
    if source is not None:
        return source["hub_id"], source.get("revision")
    if staged:
        from peftsum.spec.catalog import MODELS

        info = MODELS.get(ref.name)
        if info is not None and info.arch == ref.arch:
            return info.hub_id, info.revision
    return ref.hub_id, ref.revision


def base_provenance(ref: ModelRef | None) -> dict[str, Any]:
    """result.json ``provenance`` keys of the base model: its public id and revision (what the adapter records) and
    the spec's ``hub_id`` it was loaded from (a staged s3:// URI, a local path…); all None for model-free cells."""
    if ref is None:
        return {"base_model": None, "base_model_revision": None, "base_model_source": None}
    hub_id, revision = public_base(ref)
    return {"base_model": hub_id, "base_model_revision": revision, "base_model_source": ref.hub_id}


def save_adapter(model: Any, out: Path, base: ModelRef, method: str, keep_full_weights: bool,
                 tokenizer: Any = None) -> int | None:
    """Save what rebuilds the tuned model from the base, with the tokenizer beside it; returns its size in bytes.

    PEFT models: ``save_pretrained`` under ``adapter/`` (adapter_config.json naming the base's public id,
    ``public_base``, adapter_model.safetensors). Partial tuning outside peft (BitFit): the trained tensors under
    ``adapter/``. Full fine-tuning: the whole model under ``model/`` when ``keep_full_weights``, else nothing but
    the size its weights would take. The model card (README.md) is written later, with the scores:
    ``write_model_cards``.
    """
    from safetensors.torch import save_file

    hub_id, revision = public_base(base)
    if hasattr(model, "peft_config"):  # a PeftModel (checked without importing peft for full/bitfit cells)
        for cfg in model.peft_config.values():
            cfg.base_model_name_or_path = hub_id
            cfg.revision = revision
        model.save_pretrained(out / "adapter")
        _save_tokenizer(tokenizer, out / "adapter")
        return (out / "adapter" / "adapter_model.safetensors").stat().st_size
    trained = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
    n_total = sum(1 for _ in model.parameters())
    if len(trained) < n_total:
        (out / "adapter").mkdir(parents=True, exist_ok=True)
        save_file(trained, out / "adapter" / "adapter_model.safetensors",
                  metadata={"method": method, "base_model_name_or_path": hub_id})
        (out / "adapter" / "adapter_config.json").write_text(json.dumps(
            {"peft_type": None, "peftsum_method": method, "base_model_name_or_path": hub_id,
             "revision": revision, "tensors": sorted(trained)}, indent=2))
        _save_tokenizer(tokenizer, out / "adapter")
        return (out / "adapter" / "adapter_model.safetensors").stat().st_size
    if keep_full_weights:
        model.save_pretrained(out / "model")
        _save_tokenizer(tokenizer, out / "model")
        return sum(p.stat().st_size for p in (out / "model").glob("*.safetensors"))
    return sum(t.numel() * t.element_size() for t in trained.values())


def _save_tokenizer(tokenizer: Any, folder: Path) -> None:
    if tokenizer is not None:  # with the pad token peftsum set (GPT-2 ships without): generation needs the same
        tokenizer.save_pretrained(folder)


METRIC_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
                "bleu": "BLEU"}


def write_model_cards(out: Path, result: dict[str, Any]) -> list[Path]:
    """A Hub-format model card ``README.md`` in each artifact folder of the attempt (``adapter/``, ``model/``), from
    the finished ``result`` (scores with their CIs, dataset, grid, cell); replaces peft's template. Returns them."""
    written = []
    for kind in ("adapter", "model"):
        folder = out / kind
        if folder.is_dir():
            config = folder / "adapter_config.json"
            peft_type = json.loads(config.read_text()).get("peft_type") if config.is_file() else None
            (folder / "README.md").write_text(model_card(result, kind, peft_type), encoding="utf-8")
            written.append(folder / "README.md")
    return written


PROMPT_LEARNING = ("PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING")


def model_card(result: dict[str, Any], kind: str, peft_type: str | None = None) -> str:
    """The model card of one artifact folder: YAML front matter as the Hub reads it (base_model, library_name,
    pipeline_tag, tags, datasets, model-index with the scores) and a body with the method, data, scores with their
    95% CIs, training, provenance and how to load it. ``peft_type``: the adapter's (adapter_config.json), None
    outside peft."""
    import yaml

    from peftsum.spec.catalog import ARCH_FAMILY

    is_peft = bool(peft_type)
    spec, metrics, prov, train = result["spec"], result["metrics"], result["provenance"], result["train"]
    model, method, dataset, ev = spec["model"] or {}, spec["method"], spec["dataset"], spec["eval"]
    base = prov.get("base_model") or model.get("hub_id")
    causal = ARCH_FAMILY.get(model.get("arch", "")) == "causal"
    dataset_id = dataset["id"] if dataset["source"] == "hub" else dataset["name"]
    scores = [(k, metrics[k]) for k in METRIC_NAMES if isinstance(metrics.get(k), dict)]  # a value may be null
    library = "peft" if is_peft else "transformers" if kind == "model" else None
    front: dict[str, Any] = {
        "base_model": base,
        **({"library_name": library} if library else {}),
        "pipeline_tag": "text-generation" if causal else "summarization",
        "tags": list(dict.fromkeys(["peftsum", "summarization", method["type"], *(["peft"] if is_peft else [])])),
        "datasets": [dataset_id],
        "model-index": [{
            "name": f"{result['grid']}/{result['cell_id']}",
            "results": [{
                "task": {"type": "summarization", "name": "Summarization"},
                "dataset": {"name": dataset["name"], "type": dataset_id, "split": ev["split"],
                            **({"config": dataset["config"]} if dataset.get("config") else {})},
                "metrics": [{"type": k, "name": METRIC_NAMES[k], "value": round(float(v["value"]), 6),
                             "verified": False} for k, v in scores if v.get("value") is not None],
            }],
        }],
    }
    params = ", ".join(f"{k}={v}" for k, v in sorted(method["params"].items())) or "no parameters"
    what = {"adapter": "the PEFT adapter" if is_peft else f"the trained tensors of {method['type']}",
            "model": "the full fine-tuned weights"}[kind]
    rows = "\n".join(f"| {METRIC_NAMES[k]} | {_num(v.get('value'))} | [{', '.join(map(_num, v.get('ci95') or []))}] |"
                     for k, v in scores)
    staged = prov.get("base_model_source")
    decoding = "greedy" if ev["num_beams"] == 1 else f"beam search, {ev['num_beams']} beams"
    lines = [
        f"# {model.get('name', '-')} · {method['name']} · {dataset['name']}",
        "",
        f"This folder holds {what} of peftsum cell `{result['cell_id']}` of grid `{result['grid']}`: "
        f"`{model.get('name')}` (`{base}`) fine-tuned with **{method['name']}** (method `{method['type']}`: "
        f"{params}) on **{dataset['name']}** (`{dataset['source']}`: `{dataset['id']}`), seed {spec['seed']}.",
        "",
        "## Scores",
        "",
        f"On {metrics.get('n')} examples of the `{ev['split']}` split ({ev['max_new_tokens']} new tokens at most, "
        f"{decoding}; profile "
        f"`{(result.get('metric_profile') or {}).get('name', 'peftsum')}`), as fractions with 95% bootstrap "
        "confidence intervals:",
        "",
        "| metric | value | 95% CI |",
        "|---|---|---|",
        rows,
        "",
        "## Training",
        "",
        f"- steps: {train.get('steps')}, epochs: {train.get('epochs')}, examples: {train.get('examples')}, "
        f"learning rate: {spec['train'].get('learning_rate')}",
        f"- training loss: first {_num(train.get('first_train_loss'))}, final {_num(train.get('final_train_loss'))};"
        f" validation loss {_num(train.get('eval_loss'))}",
        f"- trainable parameters: {result['resources'].get('trainable_params')} of "
        f"{result['resources'].get('total_params')}",
        "",
        "## Provenance",
        "",
        f"- grid `{result['grid']}`, cell `{result['cell_id']}`, attempt `{prov.get('attempt')}`",
        f"- base model `{base}`" + (f" (revision `{prov['base_model_revision']}`)" if prov.get("base_model_revision")
                                    else "") + (f", loaded from `{staged}`" if staged and staged != base else ""),
        f"- peftsum {prov.get('packages', {}).get('peftsum')}, git `{prov.get('git_sha')}`, device "
        f"`{prov.get('device')}`, precision `{prov.get('precision')}`, finished {prov.get('finished_at')}",
        "",
        "## Loading",
        "",
        "```python",
        "from peftsum.trained import load_trained",
        "",
        f'model, tokenizer = load_trained("<store>", "{result["grid"]}", "{result["cell_id"]}")',
        "```",
    ]
    auto = "AutoModelForCausalLM" if causal else "AutoModelForSeq2SeqLM"
    builtin = str(base).startswith("builtin:")  # a shipped tiny model: its folder comes from peftsum
    resolver = ["from peftsum.models.load import resolve_path"] if builtin else []
    base_arg = f'resolve_path("{base}")' if builtin else f'"{base}"'
    if is_peft or kind == "adapter":
        how = "or with peft alone:" if is_peft else "or by hand (the trained tensors into the base):"
        attach = (["from peft import PeftModel"] if is_peft else ["from safetensors.torch import load_file"])
        load = ('model = PeftModel.from_pretrained(base, "<this folder>")' if is_peft else
                'base.load_state_dict(load_file("<this folder>/adapter_model.safetensors"), strict=False)')
        lines += ["", how, "", "```python", *attach, f"from transformers import AutoTokenizer, {auto}", *resolver, "",
                  f"base = {auto}.from_pretrained({base_arg})", load,
                  'tokenizer = AutoTokenizer.from_pretrained("<this folder>")', "```"]
        if peft_type in PROMPT_LEARNING:
            lines += ["", "Generate through `load_trained`: with peft 0.21 and transformers 5, peft's own `generate` "
                          "misses the KV cache of a prompt-learning adapter and does not reproduce the scores "
                          "(`peftsum.methods.wrap`)."]
    else:
        lines += ["", "or with transformers alone:", "", "```python",
                  f"from transformers import AutoTokenizer, {auto}", "",
                  f'model = {auto}.from_pretrained("<this folder>")',
                  'tokenizer = AutoTokenizer.from_pretrained("<this folder>")', "```"]
    front_matter = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return f"---\n{front_matter}---\n\n" + "\n".join(lines) + "\n"


def _num(x: Any) -> str:
    return "-" if x is None else f"{x:.4f}"


def length_stats(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    arr = np.asarray(values)
    pct = np.percentile(arr, [5, 25, 50, 75, 95, 99])
    hist, edges = np.histogram(arr, bins=30)
    return {"n": int(arr.size), "mean": float(arr.mean()), "min": int(arr.min()), "max": int(arr.max()),
            "p5": float(pct[0]), "p25": float(pct[1]), "p50": float(pct[2]), "p75": float(pct[3]),
            "p95": float(pct[4]), "p99": float(pct[5]),
            "histogram": {"counts": hist.tolist(), "edges": edges.tolist()}}


def eda(source_lens: list[int], summary_lens: list[int], kept: int, dropped: int, tokenizer_name: str,
        budget: int | None, split: str = "train") -> dict[str, Any]:
    """Token-length statistics of one split under the cell's tokenizer (the study's Figures 6-14); ``dropped`` is
    what the context-window filter removed (training split only)."""
    merged = [a + b for a, b in zip(source_lens, summary_lens)]
    return {"split": split, "tokenizer": tokenizer_name, "source_token_budget": budget,
            "source": length_stats(source_lens), "summary": length_stats(summary_lens),
            "merged": length_stats(merged), "kept": kept, "dropped": dropped,
            "dropped_share": dropped / max(1, kept + dropped)}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
