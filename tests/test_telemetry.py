"""Telemetry against Debian's real Prometheus Pushgateway and promtool: a tiny cell pushes the documented metric
names with the right labels and values; what a cell exposes passes ``promtool check metrics``; deleting a grid's
groups empties the gateway of that grid only. Energy accounting is tested with an injected counter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from peftsum.resources import EnergyMeter, NvmlMemory
from peftsum.spec import parse_grid
from peftsum.store import layout, open_store
from peftsum.telemetry import METRICS, CellMetrics, delete_grid_groups, grid_groups

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
LABELS = {"grid", "cell", "model", "method", "dataset"}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (a local test server)
        return resp.read().decode()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory):
    if not os.access(PUSHGATEWAY, os.X_OK):
        pytest.skip("prometheus-pushgateway not installed: run scripts/install-system.sh")
    from tests.s3server import free_port

    port = free_port()
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: groups would outlive the test.
    proc = subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            _get(url + "/-/ready")
            break
        except OSError:
            assert time.monotonic() < deadline, "pushgateway did not start"
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _peftsum_samples(text: str, grid: str) -> dict[str, list]:
    """peftsum's samples of one grid (the gateway holds other tests' groups too)."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("peftsum_") and sample.labels.get("grid") == grid:
                out.setdefault(sample.name, []).append(sample)
    return out


GRID = """
name: telemetry
axes: {model: [tiny-gpt2], method: [full], dataset: [synthetic-dialogsum]}
defaults:
  train: {epochs: 1, max_steps: 6, batch_tokens: 768}
  eval: {limit: 12, max_new_tokens: 12, bootstrap_samples: 100}
  data: {train_limit: 48}
"""


def test_a_cell_pushes_the_design_metrics(gateway: str, tmp_path: Path) -> None:
    cell = parse_grid(GRID).cells[0]
    store = open_store(str(tmp_path))
    layout.write_json(store, layout.cell_key("telemetry", cell.cell_id, "spec.json"), cell.to_dict())
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "peftsum.cli", "cell", "--store", str(tmp_path), "--grid", "telemetry",
                    "--cell", cell.cell_id, "--pushgateway", gateway, "--push-interval", "1"],
                   check=True, capture_output=True, timeout=300)
    manifest = layout.done_manifest(store, "telemetry", cell.cell_id)
    result = json.loads(store.read_bytes(layout.result_key("telemetry", cell.cell_id, manifest)))

    samples = _peftsum_samples(_get(gateway + "/metrics"), "telemetry")
    for name in ("peftsum_train_tokens_total", "peftsum_train_loss", "peftsum_train_progress_ratio",
                 "peftsum_phase_duration_seconds", "peftsum_eval_score",
                 "peftsum_cell_last_success_timestamp_seconds"):
        assert name in samples, name
    assert set(samples) <= set(METRICS)  # nothing outside the documented list (docs/metrics.md)
    assert "peftsum_gpu_energy_joules_total" not in samples  # no NVML here: absent, never a fake zero
    for series in samples.values():
        for s in series:
            assert LABELS <= set(s.labels)
            assert s.labels["cell"] == cell.cell_id
            assert (s.labels["model"], s.labels["method"], s.labels["dataset"]) == (
                "tiny-gpt2", "full", "synthetic-dialogsum")
            assert s.labels["job"] == "peftsum"
    (tokens,) = samples["peftsum_train_tokens_total"]
    assert tokens.value == result["train"]["tokens"] > 0
    assert samples["peftsum_train_progress_ratio"][0].value == 1.0
    assert 0 < samples["peftsum_train_loss"][0].value < 20  # a cross-entropy of a 6-step tiny model
    scores = {s.labels["metric"]: s.value for s in samples["peftsum_eval_score"]}
    assert scores["rougeL"] == pytest.approx(result["metrics"]["rougeL"]["value"])
    assert scores["bleu"] == pytest.approx(result["metrics"]["bleu"]["value"])
    phases = {s.labels["phase"] for s in samples["peftsum_phase_duration_seconds"]}
    assert {"load", "train", "generate", "score", "upload"} <= phases
    (stamp,) = samples["peftsum_cell_last_success_timestamp_seconds"]
    assert t0 <= stamp.value <= time.time()
    assert grid_groups(gateway, "telemetry") == [{"grid": "telemetry", "cell": cell.cell_id}]


def test_a_failed_cell_never_sets_the_success_timestamp(gateway: str, tmp_path: Path) -> None:
    bad = parse_grid(GRID.replace("name: telemetry", "name: telemetry-fail")).cells[0].to_dict()
    bad["dataset"].update(source="local", id=str(tmp_path / "missing.jsonl"))  # fails while loading
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(bad))
    proc = subprocess.run([sys.executable, "-m", "peftsum.cli", "cell", "--store", str(tmp_path / "s"), "--grid",
                           "telemetry-fail", "--spec", str(spec), "--pushgateway", gateway],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    text = _get(gateway + "/metrics")
    assert 'grid="telemetry-fail"' in text  # it did push (phase durations)...
    assert not [line for line in text.splitlines() if line.startswith("peftsum_cell_last_success")
                and 'grid="telemetry-fail"' in line]  # ...but no success


def test_exposition_passes_promtool(tmp_path: Path) -> None:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("promtool not installed: run scripts/install-system.sh")
    from tests.s3server import free_port

    m = CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum")
    m.set("peftsum_train_tokens_total", 12345)
    m.set("peftsum_train_loss", 2.5)
    m.set("peftsum_train_progress_ratio", 0.5)
    m.series("peftsum_gpu_memory_peak_bytes", {"torch": 1 << 30, "nvml": 3 << 29})
    m.set("peftsum_gpu_energy_joules_total", 321.5)
    m.series("peftsum_phase_duration_seconds", {"load": 1.0, "train": 20.0})
    m.succeeded({"rougeL": 0.3, "bleu": 0.1})
    port = free_port()
    m.serve(port)  # what --metrics-port serves to a scraper
    text = _get(f"http://127.0.0.1:{port}/metrics")
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"peftsum_train_tokens", "peftsum_gpu_energy_joules", "peftsum_eval_score"} <= families
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == ""  # no lint findings either


def test_delete_grid_groups_removes_only_that_grid(gateway: str) -> None:
    for grid, cell in (("drop-me", "aaaaaaaaaaaa"), ("drop-me", "bbbbbbbbbbbb"), ("keep-me", "cccccccccccc")):
        m = CellMetrics(grid, cell, "gpt2", "lora", "dialogsum")
        m.set("peftsum_train_loss", 1.0)
        m.push(gateway)
    assert [g["cell"] for g in grid_groups(gateway, "drop-me")] == ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    assert delete_grid_groups(gateway, "drop-me", "aaaaaaaaaaaa") == ["aaaaaaaaaaaa"]
    assert [g["cell"] for g in grid_groups(gateway, "drop-me")] == ["bbbbbbbbbbbb"]
    assert delete_grid_groups(gateway, "drop-me") == ["bbbbbbbbbbbb"]
    assert grid_groups(gateway, "drop-me") == []
    assert [g["cell"] for g in grid_groups(gateway, "keep-me")] == ["cccccccccccc"]


def test_unknown_metric_names_are_refused() -> None:
    m = CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum")
    with pytest.raises(KeyError):
        m.set("peftsum_made_up", 1.0)
    with pytest.raises(KeyError):
        m.set("peftsum_eval_score", 1.0)  # needs its metric label: series()
    with pytest.raises(KeyError):
        m.series("peftsum_train_loss", {"x": 1.0})  # has none


def test_energy_meter_delta_and_counter_reset() -> None:
    readings = iter([1_000_000, 1_250_000, 1_250_000, 400_000, 500_000])  # mJ; the driver resets at the 4th
    meter = EnergyMeter(counter=lambda: next(readings))
    assert meter.read() == pytest.approx(250.0)
    assert meter.read() == pytest.approx(250.0)  # idle: a non-negative, non-decreasing total
    assert meter.read() == pytest.approx(650.0)  # reset: the 250 J before it kept, + 400 J since
    assert meter.read() == pytest.approx(750.0)


def test_nvml_memory_keeps_the_peak() -> None:
    readings = iter([100, 300, 200, None, 250])
    mem = NvmlMemory(reader=lambda: next(readings))
    assert [mem.sample() for _ in range(5)] == [100, 300, 300, 300, 300]
    assert NvmlMemory(reader=lambda: None).sample() is None


def test_energy_meter_without_nvml_is_none() -> None:
    assert EnergyMeter(counter=lambda: None).read() is None
    meter = EnergyMeter(counter=None)  # no pynvml / no GPU on this machine
    assert meter.read() is None


def test_launcher_cancel_deletes_the_grids_groups(gateway: str, tmp_path: Path) -> None:
    """`launcher cancel --all` empties the gateway of the grid's groups even where no cluster is reachable (it
    says so and exits 1 for the Jobs it could not delete); other grids' groups stay."""
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(GRID.replace("name: telemetry", "name: cancel-me"))
    cell_id = parse_grid(grid_file.read_text()).cells[0].cell_id
    for grid, cell in (("cancel-me", cell_id), ("cancel-me", "dddddddddddd"), ("other", "eeeeeeeeeeee")):
        m = CellMetrics(grid, cell, "tiny-gpt2", "full", "synthetic-dialogsum")
        m.set("peftsum_train_progress_ratio", 0.5)
        m.push(gateway)
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    out = subprocess.run([sys.executable, "-m", "launcher.cli", "cancel", str(grid_file), "--all", "--pushgateway",
                          gateway], capture_output=True, text=True, timeout=120, env=env)
    assert "deleted 2 Pushgateway group(s)" in out.stdout, out.stdout + out.stderr
    assert grid_groups(gateway, "cancel-me") == []
    assert [g["cell"] for g in grid_groups(gateway, "other")] == ["eeeeeeeeeeee"]
    assert out.returncode == 1 and "unreachable" in out.stderr  # Jobs could not be deleted: said, not hidden


# --- credentials: never in a log, only in the Authorization header ---------------------------------------------------

PASSWORD = "s3cr/et:p@ss"  # noqa: S105 - '/', ':' and '@' too: a password that naive URL parsing would split


class _AuthGateway:
    """A Pushgateway stand-in over real HTTP that records each request's method, path and Authorization header."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, str | None]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, body: bytes = b"") -> None:
                seen.append((self.command, self.path, self.headers.get("Authorization")))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                self._answer()

            def do_DELETE(self) -> None:
                self._answer()

            def do_GET(self) -> None:
                labels = {"job": "peftsum", "grid": "g", "cell": "0123456789ab"}
                self._answer(json.dumps({"status": "success", "data": [{"labels": labels}]}).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def auth_gateway():
    gw = _AuthGateway()
    yield gw
    gw.httpd.shutdown()


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_url_credentials_never_reach_a_log(auth_gateway, tmp_path: Path) -> None:
    """Reproduction: ``peftsum cell --pushgateway http://alice:<password>@host:port`` with the gateway down printed
    ``telemetry: cannot push to http://alice:<password>@…`` in the cell's log (and a URL without a port raised
    InvalidURL, with the password, out of the pusher); the credentials did not even reach the gateway. Now every
    logged URL is redacted, and the credentials travel as basic auth only."""
    from peftsum.telemetry import Pusher, redact_url

    quoted = urllib.parse.quote(PASSWORD, safe="")
    assert redact_url(f"http://alice:{PASSWORD}@pg:9091/x") == "http://***@pg:9091/x"
    assert redact_url("http://pg:9091") == "http://pg:9091" and redact_url("alice:pw@pg") == "***@pg"
    warnings: list[str] = []
    m = CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum")
    m.set("peftsum_train_loss", 1.0)
    for down in (f"http://alice:{PASSWORD}@127.0.0.1:1", f"http://alice:{PASSWORD}@127.0.0.1"):  # refused; no port
        Pusher(m, down, 60, warnings.append).start().close()
    assert len(warnings) == 2 and all("cannot push to http://127.0.0.1" in w for w in warnings)
    Pusher(m, f"http://alice:{quoted}@127.0.0.1:{auth_gateway.port}", 60, warnings.append).start().close()
    push = ("PUT", "/metrics/job/peftsum/cell/0123456789ab/grid/g", _basic("alice", PASSWORD))
    assert auth_gateway.requests == [push]
    assert len(warnings) == 2 and not any("alice" in w or "s3cr" in w for w in warnings)

    # the same through the real command line: a model-free cell, the gateway refusing connections
    cell = parse_grid("name: t\naxes: {model: [tiny-gpt2], method: [lead], dataset: [synthetic-dialogsum]}\n"
                      "methods: {lead: {type: lead, k: 2}}\ndefaults: {eval: {limit: 4}}\n").cells[0]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(cell.to_dict()))
    proc = subprocess.run([sys.executable, "-m", "peftsum.cli", "cell", "--store", str(tmp_path / "s"), "--grid", "t",
                           "--spec", str(spec), "--pushgateway", f"http://alice:{PASSWORD}@127.0.0.1:1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "telemetry: cannot push to http://127.0.0.1:1" in proc.stderr
    assert "s3cr" not in proc.stdout + proc.stderr and "alice" not in proc.stdout + proc.stderr


def test_credentials_from_files_authenticate_push_list_and_delete(auth_gateway, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pod does with cluster.pushgateway_secret: the two files the Job mounts, named by
    $PEFTSUM_PUSHGATEWAY_USERNAME_FILE / _PASSWORD_FILE, give basic auth to every request (push, and launcher
    cancel's listing and deletion); a missing file costs a warning naming the variable, never the cell."""
    from peftsum.telemetry import PASSWORD_FILE_ENV, USERNAME_FILE_ENV, Pusher

    (tmp_path / "username").write_text("cells\n")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    monkeypatch.setenv(USERNAME_FILE_ENV, str(tmp_path / "username"))
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "password"))
    url = f"http://127.0.0.1:{auth_gateway.port}"
    m = CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum")
    m.set("peftsum_train_loss", 1.0)
    warnings: list[str] = []
    Pusher(m, url, 60, warnings.append).start().close()
    assert grid_groups(url, "g") == [{"grid": "g", "cell": "0123456789ab"}]
    assert delete_grid_groups(url, "g") == ["0123456789ab"]
    assert [r[0] for r in auth_gateway.requests] == ["PUT", "GET", "GET", "DELETE"]  # delete lists first
    assert {r[2] for r in auth_gateway.requests} == {_basic("cells", PASSWORD)}
    assert warnings == []
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "missing"))
    Pusher(m, url, 60, warnings.append).start().close()
    assert len(warnings) == 1 and PASSWORD_FILE_ENV in warnings[0] and "without credentials" in warnings[0]
    assert auth_gateway.requests[-1][2] is None  # pushed anyway, unauthenticated: the gateway decides
