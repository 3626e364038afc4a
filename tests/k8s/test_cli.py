"""The launcher's cluster commands end to end through ``launcher.cli.main``, wired to the fake cluster
(``access.connect``) and a local store standing in for S3 (``access.open_store``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from launcher.cli import main
from launcher.k8s import access, names
from launcher.k8s.client import KubeUnreachable
from peftsum.store import layout

REPO = Path(__file__).resolve().parents[2]
PAPER = str(REPO / "examples" / "paper.yaml")


@pytest.fixture
def small_file(tmp_path: Path, small_text: str) -> str:
    path = tmp_path / "small.yaml"
    path.write_text(small_text)
    return str(path)


@pytest.mark.parametrize("command", ["validate", "render", "submit", "status", "watch", "logs", "cancel", "report"])
def test_every_command_has_help_examples(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_render_writes_36_jobs_and_the_aggregation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["render", PAPER, "-o", str(tmp_path / "out")]) == 0
    files = sorted((tmp_path / "out").glob("*.yaml"))
    assert len(files) == 36 and all(f.name.startswith("paper-") for f in files)
    assert (tmp_path / "out" / "aggregate" / "paper-aggregate.yaml").exists()
    assert "36 cell Jobs" in capsys.readouterr().out


def test_validate_k8s(capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", PAPER, "--k8s", "1.31", "--json"]) == 0
    assert "37 objects valid against the Kubernetes 1.31 schema" in capsys.readouterr().out
    assert main(["validate", PAPER, "--k8s", "0.9"]) == 2
    assert "no schemas for Kubernetes 0.9" in capsys.readouterr().err


def test_validate_k8s_recommends_a_digest(small_file: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", small_file, "--k8s", "1.31"]) == 0  # a tag is accepted...
    assert "cluster.image 'registry.example/peftsum:0.1.0' is a tag: pin it by digest" in capsys.readouterr().err
    assert main(["validate", PAPER, "--k8s", "1.31"]) == 0  # ...a digest is what paper.yaml shows
    assert "pin it by digest" not in capsys.readouterr().err


def test_bad_grid_is_exit_2_before_any_api_call(tmp_path: Path, cli_cluster, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: g\nstore: s3://b/p\naxes: {model: [gpt2], method: [lora], dataset: [samsum]}\n"
                   "cluster: {gpus: 2}\n")
    assert main(["submit", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "cluster.gpus" in err and "2" in err
    assert cli_cluster.calls == []


def test_submit_refuses_a_local_store(tmp_path: Path, cli_cluster, capsys) -> None:
    assert main(["submit", PAPER, "--store", str(tmp_path / "runs")]) == 2
    assert "pods need a shared store: an s3:// URI" in capsys.readouterr().err
    assert cli_cluster.calls == []


def test_submit_bad_namespace_is_exit_2(cli_cluster, capsys) -> None:
    assert main(["submit", PAPER, "--namespace", "Not_Valid"]) == 2
    assert "--namespace" in capsys.readouterr().err


@pytest.fixture
def gateway():
    gw = _Gateway([])
    yield gw
    gw.httpd.shutdown()


def test_submit_status_logs_cancel(small_file: str, cli_cluster, store, capsys, gateway) -> None:
    assert main(["submit", small_file, "--dry-run"]) == 0
    assert cli_cluster.jobs == {}
    assert main(["submit", small_file, "--concurrency", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 created" in out and len(cli_cluster.jobs) == 5  # the cells and the waiting aggregation Job
    assert "aggregation Job small-aggregate: created" in out
    assert main(["submit", small_file]) == 0
    out = capsys.readouterr().out
    assert "4 unchanged" in out and "aggregation Job small-aggregate: unchanged" in out
    assert main(["submit", small_file, "--namespace", "peftsum"]) == 0  # the same namespace, spelled out
    capsys.readouterr()
    # status: one cell running in the store, with a pod
    job_name = next(n for n in cli_cluster.jobs if n != "small-aggregate")
    cell_id = cli_cluster.jobs[job_name]["metadata"]["labels"][names.LABEL_CELL]
    layout.write_status(store, "small", cell_id, "running", attempt="a1", progress=0.5)
    cli_cluster.add_pod({"metadata": {"name": "p1", "creationTimestamp": "2026-01-01T00:00:00Z",
                                      "labels": {names.LABEL_GRID: "small", names.LABEL_CELL: cell_id,
                                                 names.LABEL_ROLE: "cell"}},
                         "status": {"phase": "Running",
                                    "containerStatuses": [{"name": "cell", "state": {"running": {}}}]}})
    cli_cluster.logs["p1"] = ["step 1 loss 3.2", "step 2 loss 2.9"]
    assert main(["status", small_file, "--json"]) == 0
    states = {s["cell_id"]: s for s in json.loads(capsys.readouterr().out)}
    assert states[cell_id]["state"] == "running" and states[cell_id]["progress"] == 0.5
    assert main(["logs", small_file, cell_id[:6], "--tail", "1"]) == 0
    assert capsys.readouterr().out.strip() == "step 2 loss 2.9"
    assert main(["logs", small_file, "zzzz"]) == 2
    assert main(["cancel", small_file]) == 2  # neither a cell nor --all
    assert main(["cancel", small_file, cell_id, "--pushgateway", gateway.url]) == 0
    assert job_name not in cli_cluster.jobs and len(cli_cluster.jobs) == 4
    assert main(["cancel", small_file, "--all", "--pushgateway", gateway.url]) == 0
    assert cli_cluster.jobs == {}
    assert store.list(f"small/cells/{cell_id}")  # the store is never touched


def test_conflict_is_exit_1_and_names_the_cells(small_file: str, cli_cluster, capsys, tmp_path) -> None:
    assert main(["submit", small_file]) == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(Path(small_file).read_text().replace("pushgateway: ", "memory: 64Gi\n  pushgateway: "))
    capsys.readouterr()
    assert main(["submit", str(changed)]) == 1
    err = capsys.readouterr().err
    assert err.count("conflict: cell") == 4 and "--force" in err
    assert main(["submit", str(changed), "--force"]) == 0


def test_partial_submit_failure_is_exit_1_naming_the_cells(small_file: str, cli_cluster, capsys) -> None:
    from peftsum.spec import load_grid

    cell_id = load_grid(small_file).cells[2].cell_id
    cli_cluster.fail_create.add(f"small-{cell_id}")
    assert main(["submit", small_file]) == 1
    captured = capsys.readouterr()
    assert f"failed: cell {cell_id}" in captured.err and "3 created, 1 failed" in captured.out


def test_watch_ends_when_every_cell_is_terminal(small_file: str, cli_cluster, store, capsys) -> None:
    from peftsum.spec import load_grid

    grid = load_grid(small_file)
    for cell in grid.cells:
        layout.write_status(store, "small", cell.cell_id, "failed", reason="boom", exit_code=1)
    assert main(["watch", small_file, "--interval", "0", "--timeout", "5"]) == 1
    out = capsys.readouterr().out
    assert out.count("failed: boom (exit code 1)") == 4 and "4 failed" in out


def test_submit_wait_then_aggregates(small_file: str, cli_cluster, store, capsys, monkeypatch) -> None:
    """--wait: watch until terminal, then create the aggregation Job."""
    from launcher.k8s import watch as watch_module

    real = watch_module.grid_states

    def finishing(store_, grid, api):  # every cell's Job fails while we watch
        for name in cli_cluster.jobs:
            cli_cluster.set_job_status(name, {"conditions": [{"type": "Failed", "status": "True",
                                                              "reason": "BackoffLimitExceeded"}]})
        return real(store_, grid, api)

    monkeypatch.setattr(watch_module, "grid_states", finishing)
    assert main(["submit", small_file, "--wait", "--interval", "0"]) == 1  # cells failed
    assert "small-aggregate" in cli_cluster.jobs


def test_status_without_a_cluster_uses_the_store(small_file: str, store, monkeypatch, capsys) -> None:
    def unreachable(namespace, context):
        raise KubeUnreachable("no kubeconfig")

    monkeypatch.setattr(access, "connect", unreachable)
    monkeypatch.setattr(access, "open_store", lambda uri: store)
    assert main(["status", small_file]) == 0
    captured = capsys.readouterr()
    assert "showing the store's view only" in captured.err and "4 pending" in captured.out


def test_report_k8s_submits_the_aggregation_job(small_file: str, cli_cluster, capsys) -> None:
    assert main(["report", small_file, "--k8s"]) == 0
    assert "small-aggregate" in cli_cluster.jobs and "created" in capsys.readouterr().out


class _Gateway:
    """A minimal Pushgateway over real HTTP: lists groups, records deletions."""

    def __init__(self, groups: list[dict]) -> None:
        self.deleted: list[str] = []
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                data = json.dumps({"status": "success", "data": [{"labels": g} for g in groups]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_DELETE(self) -> None:
                gw.deleted.append(self.path)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_cancel_deletes_gateway_groups_even_when_the_cluster_is_unreachable(small_file: str, monkeypatch,
                                                                            capsys) -> None:
    def unreachable(namespace, context):
        raise KubeUnreachable("cannot load kube context 'gpu'")

    monkeypatch.setattr(access, "connect", unreachable)
    gw = _Gateway([{"job": "peftsum", "grid": "small", "cell": "aaaaaaaaaaaa"},
                   {"job": "peftsum", "grid": "other", "cell": "bbbbbbbbbbbb"}])
    try:
        assert main(["cancel", small_file, "--all", "--pushgateway", gw.url]) == 1
    finally:
        gw.httpd.shutdown()
    captured = capsys.readouterr()
    assert gw.deleted == ["/metrics/job/peftsum/cell/aaaaaaaaaaaa/grid/small"]  # only this grid's group
    assert "deleted 1 Pushgateway group" in captured.out
    assert "the cluster is unreachable: cannot load kube context 'gpu'" in captured.err


def test_validate_k8s_imports_neither_ml_stack_nor_the_kube_client() -> None:
    """`launcher validate --k8s` stays light: no torch/transformers (layer rule), and no kubernetes client."""
    import subprocess
    import sys

    code = ("import sys, io, contextlib\nfrom launcher.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['validate', {PAPER!r}, '--k8s', '1.31'])\n"
            "assert rc == 0, rc\n"
            "loaded = [m for m in ('torch', 'transformers', 'peft', 'kubernetes') if m in sys.modules]\n"
            "print(','.join(loaded))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
