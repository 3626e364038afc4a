"""Prometheus telemetry of a running cell, with exactly the metric names of docs/metrics.md.

A cell is short-lived, so by default it pushes to a Pushgateway (grouping key grid + cell) every ``interval``
seconds and once at the end; ``--metrics-port`` serves /metrics for a scraper instead. Values come from one
snapshot the cell updates, exposed by a custom collector: the token counter survives a resume (it continues from
the checkpoint's count instead of restarting at zero), and GPU energy/memory are simply absent without NVML.
Pure of ML: prometheus-client and the standard library only.

A Pushgateway behind basic auth: the credentials come from two files named by ``PEFTSUM_PUSHGATEWAY_USERNAME_FILE``
and ``PEFTSUM_PUSHGATEWAY_PASSWORD_FILE`` (on a cluster: keys of the Secret ``cluster.pushgateway_secret``, mounted
by the Job), or, on a laptop, from the URL's ``user:password@``. Either way they only ever travel in the
Authorization header: every URL this module logs or puts in an error goes through :func:`redact_url`.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import basic_auth_handler, default_handler, delete_from_gateway

JOB = "peftsum"
LABELS = ("grid", "cell", "model", "method", "dataset")  # and ``pod`` inside Kubernetes: see pod_name()
POD_ENV = "PEFTSUM_POD_NAME"  # the pod's name, e.g. from the downward API (metadata.name); else $HOSTNAME in a pod

# name as exposed → (type, help, extra label). Counters are exposed with their ``_total`` suffix.
METRICS: dict[str, tuple[str, str, str | None]] = {
    "peftsum_train_tokens_total": ("counter", "Real (non-padding) training tokens processed.", None),
    "peftsum_train_loss": ("gauge", "Mean training loss of the last optimizer step.", None),
    "peftsum_train_progress_ratio": ("gauge", "Optimizer steps done / planned (0-1).", None),
    "peftsum_phase_duration_seconds": ("gauge", "Wall seconds spent per phase of the cell.", "phase"),
    "peftsum_gpu_memory_peak_bytes": ("gauge", "Peak GPU memory: allocated by torch, and used on the device per NVML "
                                      "(absent without a GPU).", "source"),
    "peftsum_gpu_energy_joules_total": ("counter", "GPU energy since the cell started, from NVML's counter.",
                                        None),
    "peftsum_eval_score": ("gauge", "Evaluation score (0-1) of the finished cell.", "metric"),
    "peftsum_cell_last_success_timestamp_seconds": ("gauge", "Unix time the cell last finished successfully.",
                                                    None),
    "peftsum_cell_start_timestamp_seconds": ("gauge", "Unix time this attempt of the cell started (in every push).",
                                             None),
    "peftsum_cell_end_timestamp_seconds": ("gauge", "Unix time the cell's process ended, success or not (its final "
                                           "push); absent while it runs.", None),
}


# The variables naming the files of the gateway's basic-auth user name and password (launcher.k8s.render mounts both).
USERNAME_FILE_ENV = "PEFTSUM_PUSHGATEWAY_USERNAME_FILE"
PASSWORD_FILE_ENV = "PEFTSUM_PUSHGATEWAY_PASSWORD_FILE"  # noqa: S105 - a variable's name, not a password


def pod_name(env: Mapping[str, str] | None = None) -> str | None:
    """The Kubernetes pod this cell runs in, for the ``pod`` label that joins its series to the DCGM exporter's:
    ``$PEFTSUM_POD_NAME`` when set, else, inside a pod (``$KUBERNETES_SERVICE_HOST`` is always set there),
    ``$HOSTNAME``: a pod's hostname is its name unless the pod sets ``hostname``. None outside Kubernetes."""
    env = os.environ if env is None else env
    if env.get(POD_ENV):
        return env[POD_ENV]
    if env.get("KUBERNETES_SERVICE_HOST") and env.get("HOSTNAME"):
        return env["HOSTNAME"]
    return None


def redact_url(url: str) -> str:
    """``url`` with the user information before its host replaced by ``***`` (``http://***@pg:9091``): the one form
    in which a gateway URL is logged or shown. Everything up to the last ``@`` before the path counts, so a password
    holding ``/``, ``:`` or ``@`` is hidden whole."""
    scheme, sep, rest = str(url).partition("://")
    if not sep:
        scheme, rest = "", str(url)
    if "@" not in rest:
        return str(url)
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


@dataclass(frozen=True)
class Gateway:
    """A Pushgateway: its URL without credentials, and the basic-auth credentials to send (never logged:
    ``str()`` and ``repr()`` show the URL only)."""

    url: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.url

    def handler(self) -> Callable[..., Callable[[], None]]:
        """prometheus_client's push/delete ``handler``: basic auth when there are credentials."""
        if self.username is None:
            return default_handler
        user, password = self.username, self.password

        def handle(url: str, method: str, timeout: float | None, headers: list, data: bytes) -> Callable[[], None]:
            return basic_auth_handler(url, method, timeout, headers, data, user, password)

        return handle

    def headers(self) -> dict[str, str]:
        """The Authorization header for plain urllib requests (the gateway's /api/v1/metrics)."""
        if self.username is None:
            return {}
        token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


def gateway(url: str | Gateway, env: Mapping[str, str] | None = None) -> Gateway:
    """``url`` split into a :class:`Gateway`: credentials from its ``user:password@`` (percent-decoded) if it has
    any, else from the files ``$PEFTSUM_PUSHGATEWAY_USERNAME_FILE`` and ``$PEFTSUM_PUSHGATEWAY_PASSWORD_FILE`` name
    (trailing newline stripped), else none. ValueError (naming the variable and the file, never its content) when
    only one of the two is set or a file cannot be read."""
    if isinstance(url, Gateway):
        return url
    env = os.environ if env is None else env
    scheme, sep, rest = str(url).partition("://")
    if not sep:
        scheme, sep, rest = "http", "://", str(url)  # prometheus_client's default scheme
    if "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user, _, password = userinfo.partition(":")
        return Gateway(f"{scheme}{sep}{host}", urllib.parse.unquote(user), urllib.parse.unquote(password))
    files = {name: env.get(name) for name in (USERNAME_FILE_ENV, PASSWORD_FILE_ENV)}
    if not any(files.values()):
        return Gateway(str(url))
    if not all(files.values()):
        missing = next(name for name, path in files.items() if not path)
        raise ValueError(f"Pushgateway basic auth: {missing} is not set (set both {USERNAME_FILE_ENV} and "
                         f"{PASSWORD_FILE_ENV}, or neither)")
    values = []
    for name, path in files.items():
        try:
            with open(path, encoding="utf-8") as f:  # type: ignore[arg-type]
                values.append(f.read().rstrip("\r\n"))
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"Pushgateway basic auth: cannot read {name}={path}: "
                             f"{getattr(err, 'strerror', None) or type(err).__name__}") from None
    return Gateway(str(url), values[0], values[1])


class CellMetrics:
    """The metric snapshot of one cell; ``set``/``phase``/``score`` update it, the collector reads it."""

    def __init__(self, grid: str, cell_id: str, model: str, method: str, dataset: str,
                 pod: str | None = None) -> None:
        self.labels = {"grid": grid, "cell": cell_id, "model": model, "method": method, "dataset": dataset}
        pod = pod or pod_name()
        if pod:  # not in the grouping key: a retried cell's new pod replaces the old one's group
            self.labels["pod"] = pod
        self._lock = threading.Lock()
        self._values: dict[str, float] = {"peftsum_cell_start_timestamp_seconds": time.time()}
        self._series: dict[str, dict[str, float]] = {}  # labelled metrics: name → {extra label value: value}
        self.sample: Callable[[CellMetrics], None] | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    def set(self, name: str, value: float | None) -> None:
        """Set a label-less metric (None removes it: unknown values are absent, never zero)."""
        if name not in METRICS or METRICS[name][2] is not None:
            raise KeyError(f"{name} is not a plain metric of peftsum")
        with self._lock:
            if value is None:
                self._values.pop(name, None)
            else:
                self._values[name] = float(value)

    def series(self, name: str, values: dict[str, float | None]) -> None:
        """Replace a labelled metric's series (phase → seconds, metric → score, source → bytes); None drops one."""
        if name not in METRICS or METRICS[name][2] is None:
            raise KeyError(f"{name} is not a labelled metric of peftsum")
        with self._lock:
            self._series[name] = {k: float(v) for k, v in values.items() if v is not None}

    def succeeded(self, scores: dict[str, float]) -> None:
        """The cell is done: its scores, and the success timestamp (set only here, never on failure)."""
        self.series("peftsum_eval_score", scores)
        self.set("peftsum_cell_last_success_timestamp_seconds", time.time())

    def collect(self) -> Iterator[Metric]:
        if self.sample is not None:
            self.sample(self)  # refresh the values read at push/scrape time (energy, GPU memory, phases)
        with self._lock:
            values, all_series = dict(self._values), {k: dict(v) for k, v in self._series.items()}
        names, label_values = list(self.labels), list(self.labels.values())
        for name, (kind, doc, extra) in METRICS.items():
            if kind == "counter":
                family: Metric = CounterMetricFamily(name.removesuffix("_total"), doc, labels=names)
            else:
                family = GaugeMetricFamily(name, doc, labels=names + ([extra] if extra else []))
            if extra is None:
                if name not in values:
                    continue
                family.add_metric(label_values, values[name])
            else:
                series = all_series.get(name)
                if not series:
                    continue
                for key, value in sorted(series.items()):
                    family.add_metric(label_values + [key], value)
            yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())  # families vary with the snapshot; nothing to pre-declare

    def push(self, to: str | Gateway) -> None:
        """Push the snapshot to a gateway (a URL, with credentials resolved by :func:`gateway`)."""
        gw = gateway(to)
        push_to_gateway(gw.url, job=JOB, registry=self.registry, timeout=10, handler=gw.handler(),
                        grouping_key={"grid": self.labels["grid"], "cell": self.labels["cell"]})

    def serve(self, port: int) -> None:
        from prometheus_client import start_http_server

        start_http_server(port, registry=self.registry)


class Pusher:
    """Pushes ``metrics`` every ``interval`` seconds from a daemon thread, and once more on ``close``.

    A gateway that is down costs a warning, never the cell: telemetry must not fail training.
    """

    def __init__(self, metrics: CellMetrics, url: str, interval: float = 15.0, warn: Any = print) -> None:
        self.metrics, self.interval, self.warn = metrics, interval, warn
        try:
            self.gateway = gateway(url)
        except ValueError as err:  # credentials files missing or unreadable: say so, push without them
            warn(f"telemetry: {err}; pushing to {redact_url(url)} without credentials")
            self.gateway = Gateway(url)  # no user information in it: only files fail to resolve
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peftsum-pusher", daemon=True)
        self._failed = False

    def start(self) -> Pusher:
        self._thread.start()
        return self

    def _push(self) -> None:
        try:
            self.metrics.push(self.gateway)
            self._failed = False
        except (OSError, ValueError) as err:  # ValueError: http.client's InvalidURL (a URL it cannot connect to)
            if not self._failed:  # once per outage, not every 15 s
                self.warn(f"telemetry: cannot push to {redact_url(self.gateway.url)}: {err}")
            self._failed = True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._push()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.metrics.set("peftsum_cell_end_timestamp_seconds", time.time())  # ended: neither running nor stale
        self._push()


def grid_groups(url: str | Gateway, grid: str) -> list[dict[str, str]]:
    """Grouping keys ({grid, cell}) of every group of ``grid`` on the Pushgateway (its /api/v1/metrics)."""
    gw = gateway(url)
    api = gw.url.rstrip("/") + "/api/v1/metrics"
    if urllib.parse.urlparse(api).scheme not in ("http", "https"):
        raise ValueError(f"pushgateway URL must be http(s): {redact_url(gw.url)!r}")
    request = urllib.request.Request(api, headers=gw.headers())  # noqa: S310 (scheme checked above)
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        data = json.load(resp).get("data") or []
    groups = []
    for group in data:
        labels = group.get("labels", {})
        if labels.get("job") == JOB and labels.get("grid") == grid and "cell" in labels:
            groups.append({"grid": grid, "cell": labels["cell"]})
    return sorted(groups, key=lambda g: g["cell"])


def delete_grid_groups(url: str | Gateway, grid: str, cell_id: str | None = None) -> list[str]:
    """Delete the grid's groups (or one cell's) from the Pushgateway; returns the cell ids deleted."""
    gw = gateway(url)
    deleted = []
    for key in grid_groups(gw, grid):
        if cell_id is None or key["cell"] == cell_id:
            delete_from_gateway(gw.url, job=JOB, grouping_key=key, timeout=10, handler=gw.handler())
            deleted.append(key["cell"])
    return deleted

