"""MLflow tracking of a cell: one run per cell, continued by a resumed attempt; optional, and never fatal.

On when ``MLFLOW_TRACKING_URI`` is set in the cell's environment (``launcher run`` and the Job set it from the grid's
``tracking.mlflow``; ``MLFLOW_EXPERIMENT_NAME`` names the experiment, default the grid's name). The run holds:

- params: the resolved cell (its spec.json, flattened to dotted keys), so runs can be filtered by any setting;
- tags: grid, cell id, attempt (and how many attempts the run has seen), the git sha, and links to the store;
- metrics per optimizer step (``train_loss``, ``train_tokens_per_s``) and per evaluation (``val_loss``, …);
- at the end the scores of result.json with their 95% CIs (``rougeL``, ``rougeL_ci95_low``, ``rougeL_ci95_high``,
  …) and its costs (``train_seconds``, ``ram_peak_bytes``, ``energy_joules``, ``adapter_bytes``, …).

A resumed attempt finds its run by the cell's tags (the newest run of the cell that is not FINISHED), marks it
running again and logs only steps beyond those already logged, so a SIGTERM-and-resume cell is one run. The store
stays the record: any tracker error (down, refusing, mlflow not installed) is one warning, after which this cell
stops tracking. MLflow's client would retry a failing request for minutes; unless the environment says otherwise, a
request here is retried once and times out after 10 s.

Credentials are never in the URI (``tracking.mlflow`` refuses them): on a cluster a bearer token is mounted from a
Secret and named by ``PEFTSUM_MLFLOW_TOKEN_FILE`` (``cluster.mlflow_secret``); MLflow's own ``MLFLOW_TRACKING_*``
variables work where they are set.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

TOKEN_FILE_ENV = "PEFTSUM_MLFLOW_TOKEN_FILE"  # noqa: S105 - a variable's name, not a token
TAG_GRID, TAG_CELL, TAG_ATTEMPT, TAG_ATTEMPTS = "peftsum.grid", "peftsum.cell_id", "peftsum.attempt", "peftsum.attempts"
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
FLUSH_SECONDS, FLUSH_POINTS = 10.0, 500  # step metrics are sent in batches: at most every 10 s or 500 points
PARAM_CHARS = 6000  # MLflow's limit on a param value
BATCH_PARAMS = 100  # MLflow's limit on params per log_batch call


class Tracker:
    """What a cell reports to a tracker. This base does nothing: the tracker of a cell that does not track."""

    def steps(self, report: Any) -> None:
        """After an optimizer step: ``report`` is the cell's TrainReport (loss history, evaluations so far)."""

    def finish(self, result: Mapping[str, Any], links: Mapping[str, str]) -> None:
        """The cell is done: its result.json, and the store URIs of its artifacts."""

    def end(self, status: str) -> None:
        """The attempt ended without a result: ``KILLED`` (preempted, will resume) or ``FAILED``."""


def flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Dotted keys and string values of a nested mapping (lists as JSON), as MLflow params."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from flatten(value, f"{prefix}{key}.")
    else:
        text = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True)
        yield prefix.rstrip("."), text[:PARAM_CHARS]


def final_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The scores of ``result`` with their CIs, and its costs, as flat MLflow metric names."""
    out: dict[str, float] = {}

    def score(name: str, s: Mapping[str, Any]) -> None:
        out[name] = s["value"]
        lo, hi = s.get("ci95") or (None, None)
        out[f"{name}_ci95_low"], out[f"{name}_ci95_high"] = lo, hi

    for name, value in result["metrics"].items():
        if isinstance(value, Mapping):
            score(name, value)
        elif isinstance(value, list):  # bleu_precisions: one Score per n-gram order
            for n, s in enumerate(value, 1):
                score(f"bleu_precision_{n}", s)
        else:
            out[name] = value
    for section, keys in {
        "train": ("seconds", "tokens_per_s", "padding_ratio", "steps", "final_train_loss", "eval_loss", "test_loss"),
        "generate": ("seconds", "new_tokens_per_s"),
        "resources": ("wall_seconds", "ram_peak_bytes", "gpu_peak_bytes", "energy_joules", "adapter_bytes",
                      "trainable_params", "total_params", "disk_peak_bytes"),
    }.items():
        for key in keys:
            out[f"{section}_{key}"] = (result.get(section) or {}).get(key)
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def warn(cell_id: str, what: str, err: BaseException) -> None:
    print(f"[cell {cell_id}] warning: MLflow tracking {what} failed, the cell goes on without it: "
          f"{type(err).__name__}: {str(err)[:300]}", file=sys.stderr, flush=True)


class MlflowTracker(Tracker):
    """One MLflow run for one cell (see the module docstring). Every call is guarded: the first error warns and
    turns the tracker off."""

    def __init__(self, client: Any, run_id: str, cell_id: str, logged_step: int) -> None:
        from mlflow.entities import Metric

        self.client, self.run_id, self.cell_id = client, run_id, cell_id
        self._metric = Metric
        self.logged_step = logged_step  # steps at or below this are already in the run (an earlier attempt's)
        self.logged_evals = logged_step
        self.buffer: list[Any] = []
        self.flushed = time.monotonic()
        self.on = True

    @classmethod
    def open(cls, uri: str, experiment: str, grid: str, spec: Mapping[str, Any], cell_id: str, attempt: str,
             tags: Mapping[str, str]) -> MlflowTracker:
        """Find the cell's unfinished run (a resumed attempt) or create it, logging the cell as params."""
        from mlflow import MlflowClient
        from mlflow.entities import Param, RunTag

        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            try:
                exp_id = client.create_experiment(experiment)
            except Exception:  # another cell created it first
                exp = client.get_experiment_by_name(experiment)
                if exp is None:
                    raise
                exp_id = exp.experiment_id
        else:
            exp_id = exp.experiment_id
        found = client.search_runs(
            [exp_id], filter_string=f"tags.`{TAG_GRID}` = '{grid}' and tags.`{TAG_CELL}` = '{cell_id}'",
            order_by=["attributes.start_time DESC"], max_results=1)
        run = found[0] if found and found[0].info.status != "FINISHED" else None
        logged = 0
        if run is None:
            labels = spec.get("model") or {}
            name = "/".join(str(x) for x in (spec["method"]["name"], labels.get("name", "-"), spec["dataset"]["name"],
                                             spec["seed"]))
            run = client.create_run(exp_id, run_name=name, tags={TAG_GRID: grid, TAG_CELL: cell_id, **tags})
            params = [Param(k, v) for k, v in flatten(spec)]
            for i in range(0, len(params), BATCH_PARAMS):
                client.log_batch(run.info.run_id, params=params[i:i + BATCH_PARAMS])
            attempts = 1
        else:
            client.update_run(run.info.run_id, status="RUNNING")
            history = client.get_metric_history(run.info.run_id, "train_loss")
            logged = max((m.step for m in history), default=0)
            attempts = int(run.data.tags.get(TAG_ATTEMPTS, "1")) + 1
        client.log_batch(run.info.run_id, tags=[RunTag(TAG_ATTEMPT, attempt), RunTag(TAG_ATTEMPTS, str(attempts)),
                                                *(RunTag(k, v) for k, v in tags.items())])
        return cls(client, run.info.run_id, cell_id, logged)

    def _guard(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        if not self.on:
            return
        try:
            fn(*args, **kwargs)
        except Exception as err:  # a tracker must never cost the cell
            self.on = False
            warn(self.cell_id, what, err)

    def _flush(self) -> None:
        while self.buffer:
            chunk, self.buffer = self.buffer[:1000], self.buffer[1000:]
            self.client.log_batch(self.run_id, metrics=chunk)
        self.flushed = time.monotonic()

    def steps(self, report: Any) -> None:
        now = int(time.time() * 1000)
        for step in range(self.logged_step + 1, report.steps + 1):
            self.buffer.append(self._metric("train_loss", report.loss_history[step - 1], now, step))
        if report.steps > self.logged_step and report.seconds:
            self.buffer.append(self._metric("train_tokens_per_s", report.tokens / report.seconds, now, report.steps))
        self.logged_step = max(self.logged_step, report.steps)
        for row in report.history:
            if row["step"] > self.logged_evals:
                self.buffer += [self._metric(k, v, now, row["step"]) for k, v in row.items()
                                if k.startswith("val_") and v is not None]
                self.logged_evals = row["step"]
        if len(self.buffer) >= FLUSH_POINTS or time.monotonic() - self.flushed >= FLUSH_SECONDS:
            self._guard("logging steps", self._flush)

    def finish(self, result: Mapping[str, Any], links: Mapping[str, str]) -> None:
        def done() -> None:
            from mlflow.entities import RunTag

            self._flush()
            now = int(time.time() * 1000)
            metrics = [self._metric(k, v, now, result["train"]["steps"] or 0) for k, v in final_metrics(result).items()]
            self.client.log_batch(self.run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in links.items()])
            self.client.set_terminated(self.run_id, status="FINISHED")

        self._guard("finishing the run", done)

    def end(self, status: str) -> None:
        def ended() -> None:
            self._flush()
            self.client.set_terminated(self.run_id, status=status)

        self._guard(f"ending the run ({status})", ended)


def open_tracker(grid: str, spec: Mapping[str, Any], cell_id: str, attempt: str, tags: Mapping[str, str],
                 env: Mapping[str, str] = os.environ) -> Tracker:
    """The cell's tracker: an MLflow run when ``MLFLOW_TRACKING_URI`` is set, else one that does nothing (and that,
    too, when MLflow is missing or unreachable: a warning, then the cell runs untracked)."""
    uri = env.get("MLFLOW_TRACKING_URI")
    if not uri:
        return Tracker()
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        token_file = env.get(TOKEN_FILE_ENV)
        if token_file and "MLFLOW_TRACKING_TOKEN" not in os.environ:
            with open(token_file, encoding="utf-8") as f:
                os.environ["MLFLOW_TRACKING_TOKEN"] = f.read().strip()
        return MlflowTracker.open(uri, env.get("MLFLOW_EXPERIMENT_NAME") or grid, grid, spec, cell_id, attempt, tags)
    except Exception as err:
        warn(cell_id, "setup", err)
        return Tracker()
