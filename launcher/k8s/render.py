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

import copy
import hashlib
import json
import os
import re
import site
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from launcher.k8s import names
from peftsum.spec import Cell, Grid
from peftsum.spec.cluster import ClusterSettings


def _templates_dir() -> Path:
    """``$PEFTSUM_JOB_TEMPLATES``, else the checkout's ``job_templates/``, else the copy a wheel installs under
    ``<prefix>/share/peftsum/job_templates`` (pyproject's data-files; the user base for ``pip install --user``)."""
    if os.environ.get("PEFTSUM_JOB_TEMPLATES"):
        return Path(os.environ["PEFTSUM_JOB_TEMPLATES"])
    checkout = Path(__file__).resolve().parents[2] / "job_templates"
    installed = [Path(base) / "share" / "peftsum" / "job_templates"
                 for base in (sysconfig.get_path("data"), site.getuserbase())]
    return next((p for p in [checkout, *installed] if p.is_dir()), checkout)


TEMPLATES = _templates_dir()
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
_STRING = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")(:?)')  # every JSON string literal in order; group 2: a key's ':'
_shared_masks: list[tuple[dict[str, Any], str, list[str]]] = []  # (shared values, masked JSON, their literals)
_skeletons: dict[tuple[str, int, str], tuple[list[str], list[int]]] = {}  # → (JSON text pieces, slot numbers)
_CACHE_MAX = 64  # distinct shared value sets kept (a process renders one or a few grids)


def _mask(values: dict[str, Any], slots: list[str]) -> str:
    """``values`` as JSON with every non-empty string value replaced by a slot token (its literal goes to ``slots``).

    Keys are kept (they are part of the shape), and so are empty strings (templates may test a value's presence).
    """
    pieces = _STRING.split(json.dumps(values, separators=(",", ":"), allow_nan=False))
    for i in range(1, len(pieces), 3):  # pieces: text, literal, colon, text, literal, colon, …, text
        literal = pieces[i]
        if not pieces[i + 1] and literal != '""':
            slots.append(literal)
            pieces[i] = f'"\\u0000slot{len(slots) - 1}\\u0000"'
    return "".join(pieces)


def _shared_entry(shared: dict[str, Any]) -> int:
    """Index of ``shared`` among the shared value sets seen (compared by value), masking it on first sight."""
    for i, (seen, _, _) in enumerate(_shared_masks):
        if seen == shared:
            return i
    if len(_shared_masks) >= _CACHE_MAX:  # bounded: start over rather than grow in a long-lived process
        _shared_masks.clear()
        _skeletons.clear()
    slots: list[str] = []
    _shared_masks.append((copy.deepcopy(shared), _mask(shared, slots), slots))
    return len(_shared_masks) - 1


def render_json(template: str, shared: dict[str, Any] | None = None, **values: Any) -> str:
    """:func:`render_text` of ``shared`` and ``values`` together, with the YAML parse shared by objects of one shape.

    Parsing YAML costs ~3 ms per Job, 3 s for a 1,000-cell grid, yet a grid's Jobs differ only in a few string
    values (name, labels, annotations, args); everything in ``shared`` (image, env, resources, placement) is the
    same for all of them. So every non-empty string in the values is replaced by a slot token; the template is
    rendered and parsed once per (shared values, shape of the others) and kept as JSON with the shared strings
    filled in; each object then only needs its own strings put back, and ``json.loads``. The result equals
    :func:`render_text`'s (tested) because templates only place values through ``tojson`` and branch on their
    presence, never compute with them; a slot token left anywhere (a template that combined a value with other
    text) is an error, not a silent change.

    Returns the object as canonical JSON (sorted keys, no spaces): the text :func:`job_hash` hashes.
    """
    shared = shared or {}
    if shared.keys() & values.keys():
        raise ValueError(f"{template}: keys both shared and per object: {sorted(shared.keys() & values.keys())}")
    entry = _shared_entry(shared)
    _, shared_masked, shared_slots = _shared_masks[entry]
    slots = list(shared_slots)
    masked = _mask(values, slots)
    key = (template, entry, masked)
    skeleton = _skeletons.get(key)
    if skeleton is None:
        parsed = render_text(template, **json.loads(shared_masked), **json.loads(masked))
        own = len(shared_slots)
        text = _SLOT_JSON.sub(lambda m: shared_slots[int(m.group(1))] if int(m.group(1)) < own else m.group(),
                              canonical(parsed))
        if "\\u0000slot" in _SLOT_JSON.sub("", text):
            raise ValueError(f"{template}: a value was combined with other text; place values whole, through tojson")
        pieces = _SLOT_JSON.split(text)  # text, slot number, text, …: filled by a join, not a regex, per object
        skeleton = _skeletons[key] = (pieces, [int(n) for n in pieces[1::2]])
    pieces, numbers = skeleton
    out = list(pieces)
    out[1::2] = [slots[n] for n in numbers]
    return "".join(out)


def render_template(template: str, shared: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
    """:func:`render_json`, parsed."""
    return json.loads(render_json(template, shared, **values))


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, ASCII (what :func:`job_hash` hashes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def job_hash(obj: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of the object's canonical JSON, ignoring its own hash annotation."""
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k != names.ANNOTATION_HASH}
    return _digest(canonical({**obj, "metadata": meta}))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def from_json_with_hash(text: str) -> dict[str, Any]:
    """Parse a :func:`render_json` result and set its ``peftsum.io/job-hash`` annotation.

    ``text`` is already the canonical JSON of the object without the annotation, so it is hashed as is (the same
    value :func:`job_hash` computes from the dict; tested).
    """
    obj = json.loads(text)
    obj["metadata"].setdefault("annotations", {})[names.ANNOTATION_HASH] = _digest(text)
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


def pod_values(grid: Grid, cluster: ClusterSettings, *, container: str, res: dict[str, Any],
               placement: bool) -> dict[str, Any]:
    """The ``pod`` values of ``_pod.yaml.j2`` (the same for every Job of a kind); ``placement`` adds node selector,
    tolerations and priority class."""
    return {"container": container, "image": cluster.image, "pull_policy": cluster.image_pull_policy,
            "pull_secret": cluster.image_pull_secret, "env": pod_env(grid, cluster), "resources": res,
            "node_selector": cluster.node_selector if placement else None,
            "tolerations": list(cluster.tolerations or ()) if placement else None,
            "priority_class": cluster.priority_class if placement else None,
            "grace": cluster.termination_grace_period_seconds, "cache_pvc": cluster.cache_pvc}


def job_values(cluster: ClusterSettings, pod: dict[str, Any], backoff_limit: int) -> dict[str, Any]:
    """The values every Job of a kind shares: namespace, queue, retry and time limits, the pod."""
    return {"namespace": cluster.namespace, "queue": cluster.queue, "suspend": bool(cluster.queue),
            "backoff_limit": backoff_limit, "active_deadline_seconds": cluster.active_deadline_seconds,
            "ttl_seconds_after_finished": cluster.ttl_seconds_after_finished, "pod": pod}


def _queued(labels: dict[str, str], cluster: ClusterSettings) -> dict[str, str]:
    """Labels plus Kueue's queue label when the grid names a queue."""
    return {**labels, names.KUEUE_QUEUE: cluster.queue} if cluster.queue else labels


def cell_shared(grid: Grid, cluster: ClusterSettings) -> dict[str, Any]:
    """What all cell Jobs of ``grid`` share (computed once by :func:`cell_jobs`)."""
    pod = pod_values(grid, cluster, container="cell", res=resources(cluster.cpu, cluster.memory, cluster.gpus),
                     placement=True)
    return job_values(cluster, pod, cluster.backoff_limit)


def cell_job(grid: Grid, cell: Cell, cluster: ClusterSettings, shared: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Job that runs ``cell``: ``peftsum cell --store <grid.store> --grid <name> --cell <id>``.

    ``shared`` is :func:`cell_shared` of the same grid and cluster, passed in when rendering many cells.
    """
    cell_id = cell.cell_id
    return from_json_with_hash(render_json(
        CELL_TEMPLATE, shared if shared is not None else cell_shared(grid, cluster),
        name=names.cell_job_name(grid.name, cell_id), labels=_queued(names.cell_labels(grid, cell, cell_id), cluster),
        annotations=names.cell_annotations(cell),
        args=["cell", "--store", grid.store, "--grid", grid.name, "--cell", cell_id]))


def aggregate_job(grid: Grid, cluster: ClusterSettings) -> dict[str, Any]:
    """The Job that builds the report: ``peftsum aggregate --grid <name> --store <grid.store>`` (no GPU)."""
    pod = pod_values(grid, cluster, container="aggregate", res=resources("1", "4Gi", 0), placement=False)
    return from_json_with_hash(render_json(
        AGGREGATE_TEMPLATE, job_values(cluster, pod, 2), name=names.aggregate_job_name(grid.name),
        labels=_queued(names.common_labels(grid, "aggregate"), cluster),
        annotations={f"{names.GROUP}/cells": str(len(grid.cells))},
        args=["aggregate", "--grid", grid.name, "--store", grid.store]))


def cell_jobs(grid: Grid, cluster: ClusterSettings | None = None) -> dict[str, dict[str, Any]]:
    """cell id → its Job, in grid order."""
    cluster = cluster or grid.cluster
    shared = cell_shared(grid, cluster)
    jobs = (cell_job(grid, cell, cluster, shared) for cell in grid.cells)
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
