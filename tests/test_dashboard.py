"""The Grafana dashboard (charts/peftsum/dashboards/peftsum.json) against Debian's real Prometheus scraping the real
Pushgateway, fed by a tiny grid of real cells: one trains and succeeds, one model-free cell succeeds, one fails, one
is SIGKILLed after its first push (a dead pod: stale). Every panel's query, template variables substituted, goes
through Prometheus's HTTP API: each non-GPU query returns data, the cells-by-state counts are right, and the DCGM
panels join a DCGM-exporter-format exposition (scraped as Prometheus Operator would: its ``pod`` label renamed
``exported_pod``) to the cell by the pod name the cell pushes. The NVML panels (``peftsum_gpu_*``: absent without a
GPU) are checked for parse errors only. Every query also passes ``promtool check rules``; bar, stat and table
panels query instantly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from peftsum.spec import parse_grid
from peftsum.store import layout, open_store
from peftsum.telemetry import METRICS, POD_ENV, CellMetrics, Pusher, grid_groups, pod_name

pytestmark = pytest.mark.slow  # runs cells or trains tiny models: scripts/test.sh --fast skips it

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "charts" / "peftsum" / "dashboards" / "peftsum.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

GRID = """
name: dash
axes: {model: [tiny-gpt2], method: [full, lead], dataset: [synthetic-dialogsum]}
methods: {lead: {type: lead, k: 2}}
defaults:
  train: {epochs: 6, batch_tokens: 256}
  eval: {limit: 4, max_new_tokens: 8, bootstrap_samples: 100}
  data: {train_limit: 80}
"""
STALE_MINUTES = 0.1  # 6 s: the killed cell turns stale within the test, the live ones (pushing every 1 s) never do
# What Grafana would substitute (All = .*); $__rate_interval is 4 scrape intervals
VARIABLES = {"datasource": "prometheus", "grid": "dash", "model": ".*", "method": ".*", "dataset": ".*",
             "metric": ".*", "stale_minutes": str(STALE_MINUTES), "dcgm_pod_label": "exported_pod",
             "__rate_interval": "4s"}
INSTANT_PANELS = {"stat", "barchart", "table", "bargauge", "gauge", "piechart"}
EXPORTER_POD = "nvidia-dcgm-exporter-x7k2p"  # the target label Prometheus Operator gives the exporter's series
PUSHGATEWAY_POD = "peftsum-pushgateway-5d8f9c-abcde"  # …and the chart's PodMonitor gives the gateway's series


def _get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (local test servers)
        return resp.read().decode()


def _wait_ready(url: str, proc: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _get(url, timeout=2)
            return
        except OSError:
            assert proc.poll() is None, f"{what} exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.1)


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _targets(dashboard: dict) -> list[tuple[dict, dict]]:
    return [(p, t) for p in dashboard["panels"] for t in p.get("targets", [])]


def substitute(expr: str, variables: dict[str, str] = VARIABLES) -> str:
    """``expr`` with Grafana's ``$name`` / ``${name}`` replaced; ``$1`` (label_replace's group) stays."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        assert name in variables, f"unknown template variable ${name} in {expr}"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$([A-Za-z_]\w*)", one, expr)


def _is_gpu(expr: str) -> bool:
    """Queries with data only where there is a GPU: the DCGM exporter's, and the NVML metrics a cell pushes."""
    return "DCGM_" in expr or "peftsum_gpu_" in expr


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: object) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = _get(url)
        except urllib.error.HTTPError as err:  # 400/422: a bad query; the body says why
            body = err.read().decode()
        return json.loads(body)

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        out = self.api("query", query=expr, **({"time": at} if at is not None else {}))
        assert out["status"] == "success", f"{out.get('error')}: {expr}"
        return out["data"]["result"]

    def query_range(self, expr: str, start: float, end: float) -> list[dict]:
        out = self.api("query_range", query=expr, start=start, end=end, step=1)
        assert out["status"] == "success", f"{out.get('error')}: {expr}"
        return out["data"]["result"]


def _dcgm_exposition(pod: str) -> str:
    """What the DCGM exporter serves with Kubernetes pod mapping on: two GPUs of one node, the first in ``pod``,
    the second idle (empty workload labels). Names, units and labels as in its default-counters.csv."""
    lines = []
    for name, kind, helptext, busy, idle in (
            ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", 87, 0),
            ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", 2048, 0),
            ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", 250.5, 61.2)):
        lines += [f"# HELP {name} {helptext}", f"# TYPE {name} {kind}"]
        for gpu, value, workload in ((0, busy, pod), (1, idle, "")):
            labels = (f'gpu="{gpu}",UUID="GPU-0000000{gpu}-1111-2222-3333-444444444444",'
                      f'pci_bus_id="00000000:0{gpu}:00.0",device="nvidia{gpu}",modelName="NVIDIA H100 80GB HBM3",'
                      f'Hostname="gpu-node-1",'
                      f'DCGM_FI_DRIVER_VERSION="550.54.15",container="{"cell" if workload else ""}",'
                      f'namespace="{"peftsum" if workload else ""}",pod="{workload}"')
            lines.append(f"{name}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


def _serve(text: str) -> ThreadingHTTPServer:
    body = text.encode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory):
    """Pushgateway + Prometheus (1 s scrapes) + a DCGM exposition, fed by the tiny grid's four cells."""
    for binary in (PROMETHEUS, PUSHGATEWAY):
        if not os.access(binary, os.X_OK):
            pytest.skip(f"{binary} not installed: run scripts/install-system.sh")
    from tests.s3server import free_port, stop

    tmp = tmp_path_factory.mktemp("dashboard")
    grid = parse_grid(GRID)
    full, lead = grid.cells
    failing = full.to_dict()
    failing["dataset"].update(source="local", id=str(tmp / "missing.jsonl"))  # fails while loading
    killed = full.to_dict()
    killed["train"]["learning_rate"] = 1e-4  # another cell id
    pods = {full.cell_id: f"dash-{full.cell_id}-x7k2p"}
    dcgm = _serve(_dcgm_exposition(pods[full.cell_id]))
    procs: list[subprocess.Popen] = []
    pg_port, prom_port = free_port(), free_port()
    procs.append(subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{pg_port}", "--persistence.file="],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    gateway = f"http://127.0.0.1:{pg_port}"
    # as the chart's PodMonitor (honorLabels, and the gateway pod's own target labels) and a ServiceMonitor of the
    # DCGM exporter with honorLabels false (the exporter's pod label clashes with the target's: exported_pod)
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "scrape_configs": [
                  {"job_name": "pushgateway", "honor_labels": True, "static_configs": [
                      {"targets": [f"127.0.0.1:{pg_port}"],
                       "labels": {"namespace": "peftsum", "pod": PUSHGATEWAY_POD}}]},
                  {"job_name": "dcgm-exporter", "static_configs": [
                      {"targets": [f"127.0.0.1:{dcgm.server_address[1]}"],
                       "labels": {"namespace": "gpu-operator", "pod": EXPORTER_POD}}]}]}
    (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    procs.append(subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--web.enable-lifecycle"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    prom = Prometheus(f"http://127.0.0.1:{prom_port}")
    try:
        _wait_ready(gateway + "/-/ready", procs[0], "pushgateway")
        _wait_ready(prom.url + "/-/ready", procs[1], "prometheus")
        t0 = time.time()
        store = open_store(str(tmp / "store"))
        for cell in (full, lead):
            layout.write_json(store, layout.cell_key("dash", cell.cell_id, "spec.json"), cell.to_dict())
        base = {k: v for k, v in os.environ.items() if k not in (POD_ENV, "KUBERNETES_SERVICE_HOST")}
        command = [sys.executable, "-m", "peftsum.cli", "cell", "--store", str(tmp / "store"), "--grid", "dash",
                   "--pushgateway", gateway, "--push-interval", "1"]
        for spec_name, spec in (("killed", killed), ("failing", failing)):
            (tmp / f"{spec_name}.json").write_text(json.dumps(spec))
        runs = {}
        for name, where, env in (
                ("full", ["--cell", full.cell_id], {POD_ENV: pods[full.cell_id]}),
                ("killed", ["--spec", str(tmp / "killed.json")],
                 {POD_ENV: "dash-killed-q9w3z", "OMP_NUM_THREADS": "1"}),
                ("lead", ["--cell", lead.cell_id], {"OMP_NUM_THREADS": "1"}),  # no pod: as on a laptop
                ("failing", ["--spec", str(tmp / "failing.json")], {"OMP_NUM_THREADS": "1"})):
            with open(tmp / f"{name}.log", "w") as log:  # a file, not a pipe: nothing blocks on a full buffer
                runs[name] = subprocess.Popen(command + where, env={**base, **env}, stdout=log,
                                              stderr=subprocess.STDOUT)
        procs += runs.values()
        # the killed cell: SIGKILL once it has pushed (an OOM kill, a lost node): no final push
        deadline = time.monotonic() + 60
        known = {full.cell_id, lead.cell_id}
        while not {g["cell"] for g in grid_groups(gateway, "dash")} - known - {_cell_id(failing)}:
            assert time.monotonic() < deadline and runs["killed"].poll() is None, "the killed cell never pushed"
            time.sleep(0.2)
        runs["killed"].send_signal(signal.SIGKILL)
        for name in ("full", "lead", "failing"):
            code = runs[name].wait(timeout=240)
            assert (code == 0) == (name != "failing"), f"{name}: {(tmp / f'{name}.log').read_text()[-3000:]}"
        runs["killed"].wait(timeout=10)
        # until Prometheus has scraped the end state: three cells ended, the killed one's last push old enough
        ended = 'count(peftsum_cell_end_timestamp_seconds{grid="dash"})'
        dead = f'count(time() - push_time_seconds{{cell="{_cell_id(killed)}"}} > {STALE_MINUTES * 60})'
        deadline = time.monotonic() + 30
        while not (_scalar(prom, ended) == 3 and _scalar(prom, dead) == 1):
            assert time.monotonic() < deadline, "Prometheus never saw the grid's end state"
            time.sleep(0.5)
        time.sleep(1.5)  # one more scrape of everything
        yield {"prom": prom, "t0": t0, "t1": time.time(), "full": full.cell_id, "lead": lead.cell_id,
               "failing": _cell_id(failing), "killed": _cell_id(killed), "pod": pods[full.cell_id]}
    finally:
        for proc in reversed(procs):
            stop(proc)
        dcgm.shutdown()


def _cell_id(spec: dict) -> str:
    from peftsum.spec import Cell

    return Cell.from_dict(spec).cell_id


def _scalar(prom: Prometheus, expr: str, at: float | None = None) -> float:
    result = prom.query(expr, at)
    return float(result[0]["value"][1]) if result else 0.0


# --- against the running grid -----------------------------------------------------------------------------------------


def test_every_non_gpu_panel_returns_data(fed: dict) -> None:
    prom, t0, t1 = fed["prom"], fed["t0"], fed["t1"]
    empty, checked = [], 0
    for panel, target in _targets(_dashboard()):
        expr = substitute(target["expr"])
        series = prom.query_range(expr, t0, t1)  # also the instant panels' queries: data at some point of the run
        if target.get("instant"):
            prom.query(expr, t1)  # and they evaluate as an instant query
        if not _is_gpu(expr):
            checked += 1
            if not series:
                empty.append(f"{panel['title']} / {target['refId']}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    assert checked >= 15


def test_the_query_check_can_fail(fed: dict) -> None:
    """A query the API refuses fails the check; a well-formed one about nothing is merely empty."""
    with pytest.raises(AssertionError, match="parse error"):
        fed["prom"].query("sum by (cell (peftsum_train_loss)")
    assert fed["prom"].query_range('peftsum_train_loss{grid="no-such-grid"}', fed["t0"], fed["t1"]) == []


def test_cells_by_state(fed: dict) -> None:
    """At the end: the trained and the model-free cell done, one failed, the SIGKILLed one stale, none running;
    while the trained cell trained, it was running."""
    prom, t0, t1 = fed["prom"], fed["t0"], fed["t1"]
    (panel,) = [p for p in _dashboard()["panels"] if p["title"] == "Cells by state"]
    exprs = {t["legendFormat"]: substitute(t["expr"]) for t in panel["targets"]}
    assert {state: _scalar(prom, expr, t1) for state, expr in exprs.items()} == {
        "running": 0, "done": 2, "failed": 1, "stale": 1}
    running = prom.query_range(exprs["running"], t0, t1)
    assert max(float(v) for _, v in running[0]["values"]) >= 1

    (table,) = [p for p in _dashboard()["panels"] if p["title"] == "Cells"]
    state = {r["metric"]["cell"]: float(r["value"][1]) for r in prom.query(substitute(table["targets"][0]["expr"]), t1)}
    assert state == {fed["full"]: 1, fed["lead"]: 1, fed["failing"]: 2, fed["killed"]: 3}  # done/failed/stale


def test_training_eta_and_progress(fed: dict) -> None:
    """While the trained cell trained, its ETA was a positive number of seconds, and went away when training
    ended (progress 1)."""
    prom, t0, t1 = fed["prom"], fed["t0"], fed["t1"]
    (panel,) = [p for p in _dashboard()["panels"] if p["title"] == "Training time left"]
    (series,) = prom.query_range(substitute(panel["targets"][0]["expr"]), t0, t1)
    assert series["metric"]["cell"] == fed["full"]
    etas = [float(v) for _, v in series["values"]]
    assert all(0 <= e < 3600 for e in etas) and max(etas) > 0
    assert prom.query(substitute(panel["targets"][0]["expr"]), t1) == []  # done training: no ETA
    assert _scalar(prom, f'peftsum_train_progress_ratio{{cell="{fed["full"]}"}}', t1) == 1


def test_gpu_panels_join_dcgm_by_pod(fed: dict) -> None:
    """The DCGM panels parse, and join the exporter's series to the cell that pushed the GPU's pod name: only
    that cell, with its labels; the idle GPU and the cells without a pod of their own (the gateway's pod
    attached to both by the scrape) join nothing, and do not make the join many-to-many. With the wrong pod
    label (``pod`` where Prometheus renamed it ``exported_pod``) nothing joins."""
    prom, t1 = fed["prom"], fed["t1"]
    dcgm = [(p, t) for p, t in _targets(_dashboard()) if "DCGM_" in t["expr"]]
    assert {p["title"] for p, _ in dcgm} >= {"GPU utilisation", "GPU memory used", "GPU power"}
    expected = {"GPU utilisation": 0.87, "GPU utilisation, mean": 0.87, "GPU memory used": 2048 * 2**20,
                "GPU power": 250.5}
    for panel, target in dcgm:
        result = prom.query(substitute(target["expr"]), t1)
        assert len(result) == 1, panel["title"]
        if panel["type"] != "stat":  # per cell (the stat: the mean over them)
            assert result[0]["metric"]["cell"] == fed["full"] and result[0]["metric"]["method"] == "full"
        if panel["title"] in expected:
            assert float(result[0]["value"][1]) == pytest.approx(expected[panel["title"]]), panel["title"]
        wrong = substitute(target["expr"], {**VARIABLES, "dcgm_pod_label": "pod"})
        assert prom.query(wrong, t1) == [], panel["title"]
    pods = prom.query('group by (cell, pod) (peftsum_cell_start_timestamp_seconds{grid="dash"})', t1)
    assert sorted(r["metric"].get("pod", "") for r in pods).count(PUSHGATEWAY_POD) == 2  # the guard was needed
    for _panel, target in _targets(_dashboard()):  # the NVML ones: absent without a GPU, parse only
        if "peftsum_gpu_" in target["expr"]:
            prom.query_range(substitute(target["expr"]), fed["t0"], t1)


def test_template_variables_list_the_grid(fed: dict) -> None:
    """Each query variable's label_values(selector, label), as Grafana asks it (/api/v1/label/…/values)."""
    prom = fed["prom"]
    want = {"grid": {"dash"}, "model": {"tiny-gpt2", "-"}, "method": {"full", "lead"},
            "dataset": {"synthetic-dialogsum"}, "metric": {"rougeL", "bleu"}}
    for var in _dashboard()["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
        assert m, var["query"]["query"]
        out = prom.api(f"label/{m.group(2)}/values", **{"match[]": substitute(m.group(1))})
        assert out["status"] == "success"
        assert want[var["name"]] <= set(out["data"]), var["name"]


# --- static checks ----------------------------------------------------------------------------------------------------


def test_bar_stat_and_table_panels_query_instantly() -> None:
    """Bar charts, stats and tables show one value per series: instant queries (a range query would draw each
    point of the range); time series panels query ranges."""
    for panel, target in _targets(_dashboard()):
        if panel["type"] in INSTANT_PANELS:
            assert target.get("instant") is True and target.get("range") is False, panel["title"]
        else:
            assert panel["type"] == "timeseries" and not target.get("instant"), panel["title"]


def test_every_query_passes_promtool(tmp_path: Path) -> None:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.skip("promtool not installed: run scripts/install-system.sh")
    targets = _targets(_dashboard())
    rules = [{"record": f"dashboard:panel{p['id']}_{t['refId']}", "expr": substitute(t["expr"])} for p, t in targets]
    (tmp_path / "rules.yml").write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run([PROMTOOL, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(rules)} rules found" in check.stdout


def test_dashboard_names_only_known_metrics_and_variables() -> None:
    """peftsum_* names are METRICS (the Pushgateway's push_time_seconds and DCGM_FI_DEV_* come from elsewhere);
    every $variable is defined; every panel is described (docs/metrics.md describes them too)."""
    dashboard = _dashboard()
    variables = {v["name"] for v in dashboard["templating"]["list"]} | {"__rate_interval"}
    docs = (REPO / "docs" / "metrics.md").read_text()
    for panel, target in _targets(dashboard):
        used = set(re.findall(r"\bpeftsum_[a-z0-9_]+", target["expr"]))
        assert used <= set(METRICS), used - set(METRICS)
        assert set(re.findall(r"\$\{?([A-Za-z_]\w*)", target["expr"])) <= variables, panel["title"]
        assert set(re.findall(r"\b(?:DCGM_FI_\w+|push_\w+)", target["expr"])) <= {
            "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE", "push_time_seconds"}
        assert panel["description"], panel["title"]
        assert f"**{panel['title']}**" in docs, f"docs/metrics.md does not describe {panel['title']!r}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# --- what the panels need from the cells ------------------------------------------------------------------------------


def test_pod_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """$PEFTSUM_POD_NAME, else $HOSTNAME inside a pod (a pod's hostname is its name), else no pod label."""
    assert pod_name({POD_ENV: "g-0123456789ab-x7k2p", "HOSTNAME": "other"}) == "g-0123456789ab-x7k2p"
    assert pod_name({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "HOSTNAME": "g-0123456789ab-x7k2p"}) == \
        "g-0123456789ab-x7k2p"
    assert pod_name({"HOSTNAME": "laptop"}) is None  # outside Kubernetes a hostname names no pod
    monkeypatch.delenv(POD_ENV, raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert "pod" not in CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum").labels
    monkeypatch.setenv(POD_ENV, "g-0123456789ab-x7k2p")
    assert CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum").labels["pod"] == "g-0123456789ab-x7k2p"


def test_start_and_end_timestamps() -> None:
    """Every push carries the start time; only the final one (Pusher.close) the end time."""
    from prometheus_client.exposition import generate_latest

    t0 = time.time()
    m = CellMetrics("g", "0123456789ab", "gpt2", "lora", "dialogsum", pod="p-1")
    text = generate_latest(m.registry).decode()
    start = float(re.search(r'^peftsum_cell_start_timestamp_seconds\{.*pod="p-1".*\} (\S+)$', text, re.M).group(1))
    assert t0 - 1 <= start <= time.time()
    assert "peftsum_cell_end_timestamp_seconds" not in text
    Pusher(m, "http://127.0.0.1:1", 60, warn=lambda msg: None).start().close()  # gateway down: a warning only
    assert "peftsum_cell_end_timestamp_seconds{" in generate_latest(m.registry).decode()
