"""The cluster data path on a real S3 server (moto), without a cluster: the quickstart run into s3://, every cell
verified; ``launcher pull`` restores the files bit-identical and resumes; pulled adapters load with peft;
``launcher verify`` finds tampering; ``launcher stage`` puts a model and a dataset in the store and a cell trains
from the staged copies. About 3 minutes on 2 cores (the quickstart again, through S3)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from peftsum.spec import load_grid, parse_grid
from peftsum.store import layout, open_store

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "examples" / "quickstart.yaml"


def _launcher(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "launcher.cli", *args], capture_output=True, text=True,
                          timeout=900, cwd=cwd)


@pytest.fixture(scope="module")
def on_s3(s3_server, tmp_path_factory: pytest.TempPathFactory):
    import boto3

    bucket = "quickstart-e2e"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": s3_server["proxy"]}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        client = boto3.client("s3", endpoint_url=s3_server["moto"], region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        uri = f"s3://{bucket}/runs"
        work = tmp_path_factory.mktemp("qs-s3")
        run = _launcher("run", str(GRID), "--store", uri, "--jobs", "2", cwd=work)
        assert run.returncode == 0, run.stderr[-3000:]
        yield {"uri": uri, "client": client, "bucket": bucket, "grid": load_grid(GRID, store=uri), "work": work}


def test_every_cell_has_a_verified_success(on_s3) -> None:
    store = open_store(on_s3["uri"])
    grid = on_s3["grid"]
    assert len(grid.cells) == 7
    for cell in grid.cells:
        assert layout.done_manifest(store, grid.name, cell.cell_id, rehash=True) is not None, cell.labels
        assert store.size(layout.cell_key(grid.name, cell.cell_id, "cell.log"))  # the log went with the cell
    assert store.size(layout.grid_key(grid.name, "report", "index.html"))
    assert (on_s3["work"] / "logs" / grid.name).is_dir()  # and stayed on the machine that ran it
    out = _launcher("verify", str(GRID), "--store", on_s3["uri"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "7 verified, 0 not done, 0 corrupt" in out.stdout


def test_pull_restores_files_bit_identical_and_resumes(on_s3, tmp_path: Path) -> None:
    grid, client = on_s3["grid"], on_s3["client"]
    out = _launcher("pull", str(GRID), "--store", on_s3["uri"], "--to", str(tmp_path), "--adapters",
                    "--predictions", "--report")
    assert out.returncode == 0, out.stdout + out.stderr
    store = open_store(on_s3["uri"])
    n_files = 0
    for cell in grid.cells:
        manifest = layout.read_manifest(store, grid.name, cell.cell_id)
        for rel, meta in manifest["files"].items():
            local = tmp_path / layout.cell_key(grid.name, cell.cell_id, rel)
            data = local.read_bytes()
            remote = client.get_object(Bucket=on_s3["bucket"],
                                       Key=f"runs/{layout.cell_key(grid.name, cell.cell_id, rel)}")["Body"].read()
            assert data == remote  # bit-identical to the object in S3
            assert hashlib.sha256(data).hexdigest() == meta["sha256"]
            n_files += 1
    assert (tmp_path / grid.name / "report" / "index.html").is_file()
    # The pulled folder is a store of its own: verify and report work on it.
    assert "7 verified" in _launcher("verify", str(GRID), "--store", str(tmp_path)).stdout
    # Resumable: a second pull finds everything in place and downloads only the unmanifested files.
    again = _launcher("pull", str(GRID), "--store", on_s3["uri"], "--to", str(tmp_path), "--adapters",
                      "--predictions")
    assert again.returncode == 0
    assert f"{n_files} already there and verified" in again.stdout


def test_pulled_adapter_loads_with_peft(on_s3, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from peftsum.models.load import resolve_path

    grid = on_s3["grid"]
    (cell,) = [c for c in grid.cells if c.labels["method"] == "lora" and c.labels["model"] == "tiny-gpt2"]
    assert _launcher("pull", str(GRID), "--store", on_s3["uri"], "--to", str(tmp_path), "--adapters").returncode == 0
    manifest = layout.read_manifest(open_store(str(tmp_path)), grid.name, cell.cell_id)
    adapter = tmp_path / layout.cell_key(grid.name, cell.cell_id, "attempts", manifest["attempt_id"], "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == cell.model.hub_id  # the hub id, not a pod path
    base = AutoModelForCausalLM.from_pretrained(resolve_path(cell.model.hub_id))
    model = PeftModel.from_pretrained(base, str(adapter))
    saved = load_file(adapter / "adapter_model.safetensors")
    loaded = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert saved and len(loaded) == len(saved)
    for name, tensor in saved.items():
        match = [p for n, p in loaded.items() if n.replace(".default", "").endswith(name.split("base_model.", 1)[-1])]
        assert match and torch.equal(match[0], tensor), name
    assert any(t.abs().sum() > 0 for n, t in saved.items() if "lora_B" in n)  # it was trained, not the init


def test_verify_finds_a_tampered_cell(on_s3) -> None:
    grid, client = on_s3["grid"], on_s3["client"]
    cell = grid.cells[0]
    store = open_store(on_s3["uri"])
    manifest = layout.read_manifest(store, grid.name, cell.cell_id)
    rel = next(r for r in manifest["files"] if r.endswith("eda.json"))
    key = f"runs/{layout.cell_key(grid.name, cell.cell_id, rel)}"
    original = client.get_object(Bucket=on_s3["bucket"], Key=key)
    body = original["Body"].read()
    try:
        client.put_object(Bucket=on_s3["bucket"], Key=key, Body=body.replace(b"1", b"2", 1),
                          Metadata=original["Metadata"])  # same size, even the stored checksum kept
        out = _launcher("verify", str(GRID), "--store", on_s3["uri"])
        assert out.returncode == 1
        assert f"{cell.cell_id}  corrupt" in out.stdout and "eda.json" in out.stdout
    finally:
        client.put_object(Bucket=on_s3["bucket"], Key=key, Body=body, Metadata=original["Metadata"])


STAGE_GRID = """
name: staged
store: {uri}
axes: {{model: [tiny-gpt2], method: [full], dataset: [synthetic-dialogsum]}}
defaults:
  train: {{epochs: 1, max_steps: 3, batch_tokens: 768}}
  eval: {{limit: 8, max_new_tokens: 8, bootstrap_samples: 100}}
  data: {{train_limit: 32, max_total_tokens: 400, length_tokenizer: tiny-t5}}
"""


def test_stage_then_train_from_the_staged_copies(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(STAGE_GRID.format(uri=s3.uri))
    out = _launcher("stage", str(grid_file), "--out", str(tmp_path / "staged.yaml"))
    assert out.returncode == 0, out.stderr[-2000:]
    import yaml

    overrides = yaml.safe_load((tmp_path / "staged.yaml").read_text())
    again = _launcher("stage", str(grid_file))  # staging is done once: a rerun re-uploads no model file
    assert again.returncode == 0 and "already staged" in again.stderr
    assert yaml.safe_load(again.stdout) == overrides
    model_uri = overrides["models"]["tiny-gpt2"]["hub_id"]
    data_uri = overrides["datasets"]["synthetic-dialogsum"]["id"]
    assert model_uri == f"{s3.uri}/_staged/models/tiny-gpt2" and data_uri.startswith(s3.uri)
    assert overrides["models"]["tiny-t5"]["hub_id"] == f"{s3.uri}/_staged/models/tiny-t5"  # the length tokenizer
    store = open_store(s3.uri)
    assert store.size("_staged/models/tiny-gpt2/config.json")
    assert store.size("_staged/models/tiny-t5/tokenizer.json") and not store.stat("_staged/models/tiny-t5/config.json")
    assert {"train.jsonl", "validation.jsonl", "test.jsonl"} <= {
        k.rsplit("/", 1)[-1] for k in store.list("_staged/datasets/synthetic-dialogsum")}

    staged = yaml.safe_load(STAGE_GRID.format(uri=s3.uri))
    staged.update(overrides)
    staged_file = tmp_path / "staged-grid.yaml"
    staged_file.write_text(yaml.safe_dump(staged))
    grid = parse_grid(staged_file.read_text())
    assert grid.cells[0].model.hub_id == model_uri
    assert grid.cells[0].data.length_tokenizer == overrides["models"]["tiny-t5"]["hub_id"]
    cache = tmp_path / "pod-cache"
    monkeypatch.setenv("PEFTSUM_CACHE", str(cache))  # a fresh pod: nothing cached, no builtin models
    run = _launcher("run", str(staged_file), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert layout.done_manifest(store, "staged", grid.cells[0].cell_id, rehash=True) is not None
    fetched = {p.name for p in (cache / "store").iterdir()}
    assert any(n.startswith("tiny-gpt2-") for n in fetched)
    assert any(n.startswith("synthetic-dialogsum-") for n in fetched)
    assert any(n.startswith("tiny-t5-") for n in fetched)  # the length tokenizer came from the store too
    assert not (cache / "models").exists()  # the model came from the store, not the built-in generator
