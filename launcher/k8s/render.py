"""Build the grid's Kubernetes objects: pure functions from (grid, cell, cluster settings) to dicts.

Each Job comes from a Jinja template in ``job_templates/`` and is parsed with ``yaml.safe_load`` at once, so what
the launcher validates, hashes, compares and creates is data, never text. Every value reaches the template
through :func:`yaml_json` (installed as the ``tojson`` filter): a JSON string is a YAML double-quoted scalar, so a
name with newlines, quotes, colons or ``{{ }}`` stays one scalar of one document. No I/O happens here besides
reading the templates once.

The Job's hash (``peftsum.io/job-hash``) is the SHA-256 of the canonical JSON of the rendered Job without that
annotation: ``launcher submit`` compares it with the Job already in the cluster to tell "same Job, nothing to do"
from "the grid changed under an existing Job".
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from launcher.k8s import names
from peftsum.spec import Cell, Grid
from peftsum.spec.cluster import ClusterSettings

TEMPLATES = Path(os.environ.get("PEFTSUM_JOB_TEMPLATES") or Path(__file__).resolve().parents[2] / "job_templates")
CELL_TEMPLATE = "cell-job.yaml.j2"
AGGREGATE_TEMPLATE = "aggregate-job.yaml.j2"
CACHE = "/cache"
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def yaml_json(value: Any) -> str:
    """``value`` as JSON that YAML reads back unchanged.

    Non-ASCII text is kept as is (``\\uXXXX`` surrogate pairs for emoji are not valid YAML), except characters YAML
    cannot hold literally or would fold as line breaks (DEL, C1 controls, U+2028/2029, lone surrogates): those are
    escaped. JSON already escapes quotes, backslashes and control characters.
    """
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True)  # noqa: S701 - YAML, not HTML
    env.filters["tojson"] = yaml_json
    return env


def render_text(template: str, **values: Any) -> dict[str, Any]:
    """Render one template and ``yaml.safe_load`` it at once into exactly one object."""
    text = _env().get_template(template).render(**values)
    docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ValueError(f"{template} rendered {len(docs)} documents, expected one object")
    return docs[0]


_SLOT_JSON = re.compile(r'"\\u0000slot([0-9]+)\\u0000"')
_skeletons: dict[tuple[str, str], str] = {}
_quote = json.encoder.encode_basestring_ascii  # a str as a JSON string literal (C, no dumps() overhead)


def render_template(template: str, **values: Any) -> dict[str, Any]:
    """:func:`render_text`, with the parse shared by objects of the same shape (the grid's Jobs).

    Parsing YAML costs ~3 ms per Job, 3 s for a 1,000-cell grid, yet the Jobs of a grid differ only in string
    values (names, labels, args). So every non-empty string value is first replaced by a slot token, the template
    is rendered and parsed once per shape and kept as JSON, and each slot's JSON string is replaced by the real
    value's JSON before ``json.loads``. The result equals :func:`render_text`'s (tested) because templates only
    place values through ``tojson`` and branch on their presence, never compute with them; a slot token left
    anywhere (a template that concatenated a value with other text) is an error, not a silent change.
    """
    slots: list[str] = []

    def mask(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            if not value:
                return value
            slots.append(value)
            return f"\x00slot{len(slots) - 1}\x00"
        if kind is dict:
            return {k: mask(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [mask(v) for v in value]
        return value

    masked = mask(values)
    key = (template, json.dumps(masked, sort_keys=True))
    skeleton = _skeletons.get(key)
    if skeleton is None:
        skeleton = _skeletons[key] = json.dumps(render_text(template, **masked), sort_keys=True)
    quoted = [_quote(v) for v in slots]
    text = _SLOT_JSON.sub(lambda m: quoted[int(m.group(1))], skeleton)
    if "\\u0000slot" in text:
        raise ValueError(f"{template}: a value was combined with other text; place values whole, through tojson")
    return json.loads(text)


def job_hash(obj: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the object's canonical JSON, ignoring its own hash annotation."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != names.ANNOTATION_HASH}
    body = {**obj, "metadata": meta}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def with_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with its ``peftsum.io/job-hash`` annotation set."""
    obj["metadata"].setdefault("annotations", {})[names.ANNOTATION_HASH] = job_hash(obj)
    return obj


def pod_env(grid: Grid, cluster: ClusterSettings) -> list[dict[str, Any]]:
    """Environment of every peftsum pod. Credentials only by ``secretKeyRef``; endpoint and region are optional."""

    def secret(var: str, name: str, optional: bool = False) -> dict[str, Any]:
        ref: dict[str, Any] = {"name": name, "key": var}
        if optional:
            ref["optional"] = True
        return {"name": var, "valueFrom": {"secretKeyRef": ref}}

    env = [secret("AWS_ACCESS_KEY_ID", cluster.s3_secret), secret("AWS_SECRET_ACCESS_KEY", cluster.s3_secret),
           secret("AWS_ENDPOINT_URL", cluster.s3_secret, optional=True),
           secret("AWS_DEFAULT_REGION", cluster.s3_secret, optional=True)]
    if cluster.hf_token_secret:
        env.append(secret("HF_TOKEN", cluster.hf_token_secret))
    if cluster.pushgateway:
        env.append({"name": "PEFTSUM_PUSHGATEWAY", "value": cluster.pushgateway})
    env += [{"name": "HF_HOME", "value": f"{CACHE}/hf"}, {"name": "PEFTSUM_CACHE", "value": f"{CACHE}/peftsum"},
            {"name": "PEFTSUM_IMAGE", "value": cluster.image}, {"name": "TMPDIR", "value": "/tmp"},  # noqa: S108
            {"name": "HOME", "value": "/tmp"},  # noqa: S108 - the root filesystem is read-only
            {"name": "PYTHONUNBUFFERED", "value": "1"}]
    return env


def resources(cpu: str, memory: str, gpus: int) -> dict[str, dict[str, Any]]:
    """Requests equal to limits (Guaranteed QoS: the scheduler's promise is what the cell gets)."""
    amounts: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)  # a quantity: the client (pydantic) refuses an int
    return {"requests": dict(amounts), "limits": dict(amounts)}


def pod_values(grid: Grid, cluster: ClusterSettings, *, container: str, args: list[str], labels: dict[str, str],
               annotations: dict[str, str], res: dict[str, Any], placement: bool) -> dict[str, Any]:
    """The values of ``_pod.yaml.j2``; ``placement`` adds node selector, tolerations and priority class."""
    return {"labels": labels, "annotations": annotations, "container": container, "image": cluster.image,
            "pull_policy": cluster.image_pull_policy, "pull_secret": cluster.image_pull_secret, "args": args,
            "env": pod_env(grid, cluster), "resources": res,
            "node_selector": cluster.node_selector if placement else None,
            "tolerations": list(cluster.tolerations or ()) if placement else None,
            "priority_class": cluster.priority_class if placement else None,
            "grace": cluster.termination_grace_period_seconds, "cache_pvc": cluster.cache_pvc}


def _job_values(name: str, cluster: ClusterSettings, labels: dict[str, str], annotations: dict[str, str],
                pod: dict[str, Any], backoff_limit: int) -> dict[str, Any]:
    if cluster.queue:
        labels = {**labels, names.KUEUE_QUEUE: cluster.queue}
    return {"name": name, "namespace": cluster.namespace, "labels": labels, "annotations": annotations,
            "suspend": bool(cluster.queue), "backoff_limit": backoff_limit,
            "active_deadline_seconds": cluster.active_deadline_seconds,
            "ttl_seconds_after_finished": cluster.ttl_seconds_after_finished, "pod": pod}


def cell_job(grid: Grid, cell: Cell, cluster: ClusterSettings) -> dict[str, Any]:
    """The Job that runs ``cell``: ``peftsum cell --store <grid.store> --grid <name> --cell <id>``."""
    cell_id = cell.cell_id  # computed once: hashing a cell costs ~0.3 ms
    labels = names.cell_labels(grid, cell, cell_id)
    annotations = names.cell_annotations(cell)
    args = ["cell", "--store", grid.store, "--grid", grid.name, "--cell", cell_id]
    pod = pod_values(grid, cluster, container="cell", args=args, labels=labels, annotations=annotations,
                     res=resources(cluster.cpu, cluster.memory, cluster.gpus), placement=True)
    values = _job_values(names.cell_job_name(grid.name, cell_id), cluster, labels, annotations, pod,
                         cluster.backoff_limit)
    return with_hash(render_template(CELL_TEMPLATE, **values))


def aggregate_job(grid: Grid, cluster: ClusterSettings) -> dict[str, Any]:
    """The Job that builds the report: ``peftsum aggregate --grid <name> --store <grid.store>`` (no GPU)."""
    labels = names.common_labels(grid, "aggregate")
    annotations = {f"{names.GROUP}/cells": str(len(grid.cells))}
    args = ["aggregate", "--grid", grid.name, "--store", grid.store]
    pod = pod_values(grid, cluster, container="aggregate", args=args, labels=labels, annotations=annotations,
                     res=resources("1", "4Gi", 0), placement=False)
    values = _job_values(names.aggregate_job_name(grid.name), cluster, labels, annotations, pod, 2)
    return with_hash(render_template(AGGREGATE_TEMPLATE, **values))


def cell_jobs(grid: Grid, cluster: ClusterSettings | None = None) -> dict[str, dict[str, Any]]:
    """cell id → its Job, in grid order."""
    cluster = cluster or grid.cluster
    jobs = (cell_job(grid, cell, cluster) for cell in grid.cells)
    return {job["metadata"]["labels"][names.LABEL_CELL]: job for job in jobs}


def to_yaml(obj: dict[str, Any]) -> str:
    """Stable, kubectl-appliable YAML of one object (block style, keys sorted, Unicode kept)."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=120)


def write_manifests(grid: Grid, cluster: ClusterSettings, out: Path) -> list[Path]:
    """Write one file per object: ``<out>/<job>.yaml`` for every cell, ``<out>/aggregate/<grid>-aggregate.yaml``.

    The aggregation Job sits in a subfolder so ``kubectl apply -f <out>`` starts the cells only; apply it after
    they finish (``launcher report --k8s`` does that for you).
    """
    paths = []
    objects = [*cell_jobs(grid, cluster).values()]
    (out / "aggregate").mkdir(parents=True, exist_ok=True)
    for obj in objects:
        path = out / f"{obj['metadata']['name']}.yaml"
        path.write_text(to_yaml(obj), encoding="utf-8")
        paths.append(path)
    agg = aggregate_job(grid, cluster)
    path = out / "aggregate" / f"{agg['metadata']['name']}.yaml"
    path.write_text(to_yaml(agg), encoding="utf-8")
    paths.append(path)
    return paths
