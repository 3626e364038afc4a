"""MLflow tracking against a real ``mlflow server`` on 127.0.0.1 (SQLite backend), started and stopped here: one run
per cell with params, a loss curve and final metrics equal to result.json; a SIGTERM-and-resume cell is one run; a
tracker that is down costs a warning, never the cell.

The server lives in its own virtual environment (``scripts/install-mlflow.sh``: mlflow's pins clash with the lock);
the cells use the client from the project's venv (the ``[mlflow]`` extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from peftsum.spec import SpecError, parse_grid
from peftsum.store import layout, open_store
from tests.s3server import free_port, stop

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

REPO = Path(__file__).resolve().parents[1]
GRID = """
name: tracked
axes: {model: [tiny-gpt2], method: [full, lora], dataset: [synthetic-dialogsum]}
defaults:
  train: {epochs: 1, learning_rate: 3.0e-3, batch_tokens: 512, checkpoint_every_seconds: null}
  eval: {limit: 6, max_new_tokens: 8, bootstrap_samples: 100}
  data: {train_limit: 64}
tracking: {mlflow: URI}
"""


def _server_python() -> str | None:
    out = subprocess.run(["bash", str(REPO / "scripts" / "install-mlflow.sh"), "--check"], capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else None


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory):
    python = _server_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail("the MLflow server environment is missing: .ci/run runs scripts/install-mlflow.sh")
        pytest.skip("no MLflow server environment (bash scripts/install-mlflow.sh)")
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen(
        [python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db",
         "--default-artifact-root", str(tmp / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):  # noqa: S310 (the local test server)
                break
        except OSError:
            assert proc.poll() is None, (tmp / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 90 s"
            time.sleep(0.2)
    yield uri
    stop(proc, timeout=20)
    log.close()


def _result(store: str, grid: str, cell_id: str) -> dict:
    s = open_store(store)
    manifest = layout.done_manifest(s, grid, cell_id)
    assert manifest is not None
    return json.loads(s.read_bytes(layout.result_key(grid, cell_id, manifest)))


def _runs(uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    return client.search_runs([exp.experiment_id], max_results=100)


def test_two_cells_give_two_runs_with_params_loss_curve_and_final_metrics(mlflow_uri: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(GRID.replace("URI", mlflow_uri))
    store = str(tmp_path / "runs")
    proc = subprocess.run([sys.executable, "-m", "launcher.cli", "run", str(grid_file), "--store", store],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: MLflow" not in proc.stderr
    grid = parse_grid(grid_file.read_text())
    runs = {r.data.tags["peftsum.cell_id"]: r for r in _runs(mlflow_uri, "tracked")}
    assert set(runs) == {c.cell_id for c in grid.cells}
    client = MlflowClient(tracking_uri=mlflow_uri)
    for cell in grid.cells:
        run, result = runs[cell.cell_id], _result(store, "tracked", cell.cell_id)
        assert run.info.status == "FINISHED"
        tags = run.data.tags
        assert tags["peftsum.grid"] == "tracked" and tags["peftsum.attempts"] == "1"
        assert tags["peftsum.result"].endswith("/result.json") and tags["mlflow.source.git.commit"]
        assert run.data.params["method.name"] == cell.method.name
        assert run.data.params["train.learning_rate"] == "0.003"
        curve = client.get_metric_history(run.info.run_id, "train_loss")
        assert sorted(m.step for m in curve) == list(range(1, result["train"]["steps"] + 1))
        assert result["train"]["steps"] >= 2
        assert run.data.metrics["rougeL"] == pytest.approx(result["metrics"]["rougeL"]["value"], rel=1e-9)
        assert run.data.metrics["rougeL_ci95_low"] == pytest.approx(result["metrics"]["rougeL"]["ci95"][0])
        assert run.data.metrics["bleu"] == pytest.approx(result["metrics"]["bleu"]["value"], rel=1e-9)
        assert run.data.metrics["train_seconds"] == pytest.approx(result["train"]["seconds"])
        assert run.data.metrics["resources_adapter_bytes"] == result["resources"]["adapter_bytes"]


def test_sigterm_and_resume_continue_one_run(mlflow_uri: str, tmp_path: Path) -> None:
    cell = parse_grid(GRID.replace("URI", mlflow_uri).replace("[full, lora]", "[lora]")).cells[0]
    store = str(tmp_path / "runs")
    layout.write_json(open_store(store), layout.cell_key("resumed", cell.cell_id, "spec.json"), cell.to_dict())
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "MLFLOW_EXPERIMENT_NAME": "resumed"}
    cmd = [sys.executable, "-m", "peftsum.cli", "cell", "--store", store, "--grid", "resumed", "--cell", cell.cell_id]
    first = subprocess.run(cmd, env={**env, "PEFTSUM_FAULT_SIGTERM": "step:2"}, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 3, first.stderr[-3000:]
    (run,) = _runs(mlflow_uri, "resumed")
    assert run.info.status == "KILLED"
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    result = _result(store, "resumed", cell.cell_id)
    assert result["train"]["resumed_from_step"] == 2
    (run,) = _runs(mlflow_uri, "resumed")  # one run, not two
    assert run.info.status == "FINISHED" and run.data.tags["peftsum.attempts"] == "2"
    from mlflow import MlflowClient

    curve = MlflowClient(tracking_uri=mlflow_uri).get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in curve) == list(range(1, result["train"]["steps"] + 1))  # each step once
    assert run.data.metrics["rougeL"] == pytest.approx(result["metrics"]["rougeL"]["value"], rel=1e-9)


def test_a_tracker_that_is_down_costs_a_warning_not_the_cell(tmp_path: Path) -> None:
    grid = parse_grid(GRID.replace("URI", "http://127.0.0.1:9").replace("[full, lora]", "[lead]")
                      + "methods: {lead: {type: lead, k: 2}}\n")
    cell = grid.cells[0]
    store = str(tmp_path / "runs")
    layout.write_json(open_store(store), layout.cell_key("down", cell.cell_id, "spec.json"), cell.to_dict())
    env = {**os.environ, **grid.tracking.environment("down")}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "peftsum.cli", "cell", "--store", store, "--grid", "down",
                           "--cell", cell.cell_id], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: MLflow tracking setup failed, the cell goes on without it" in proc.stderr
    assert _result(store, "down", cell.cell_id)["metrics"]["rougeL"]["value"] >= 0
    assert time.monotonic() - t0 < 120


@pytest.mark.parametrize("uri", ["http://alice:s3cret@mlflow:5000", "https://tok@mlflow.example.com"])
def test_tracking_uri_refuses_credentials_without_echoing_them(uri: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_grid(GRID.replace("URI", uri))
    assert "tracking.mlflow" in str(err.value) and "credentials" in str(err.value)
    assert "s3cret" not in str(err.value) and "tok@" not in str(err.value)


@pytest.mark.parametrize("uri", ["file:///tmp/mlruns", "sqlite:///mlflow.db", "mlflow:5000"])
def test_tracking_uri_must_be_a_server(uri: str) -> None:
    with pytest.raises(SpecError, match=r"tracking\.mlflow"):
        parse_grid(GRID.replace("URI", uri))
