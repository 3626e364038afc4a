"""Build the grid's Kubernetes objects: pure functions from (grid, cell, cluster settings) to dicts.

Each Job comes from a Jinja template in ``job_templates/`` and is parsed with ``yaml.safe_load`` at once, so what
the launcher validates, hashes, compares and creates is data, never text. Every value reaches the template
through :func:`yaml_json` (installed as the ``tojson`` filter): a JSON string is a YAML double-quoted scalar, so a
name with newlines, quotes, colons or ``{{ }}`` stays one scalar of one document. No I/O happens here besides
reading the templates once.

The Job's hash (``peftsum.io/job-hash``) is the SHA-256 of the canonical JSON of the rendered Job without that
annotation: ``launcher submit`` compares it with the Job already in the cluster to tell "same Job, nothing to do"
from "the grid changed under an existing Job".

Credentials follow one rule: each reaches the process as a file mounted from a Secret, never as an env value or
manifest text (:func:`secret_files`); where a tool needs a variable, it names the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import site
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from launcher.k8s import names
from peftsum.spec import Cell, Grid, SpecError
from peftsum.spec.cluster import ClusterSettings, require_image
from peftsum.telemetry import PASSWORD_FILE_ENV, USERNAME_FILE_ENV, redact_url
from peftsum.tracking import TOKEN_FILE_ENV as MLFLOW_TOKEN_FILE_ENV


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
SECRETS_DIR = "/var/run/secrets/peftsum"  # one read-only folder per credential: <SECRETS_DIR>/<name>/<key>
UID = 10001  # runAsUser = runAsGroup = fsGroup; the image's USER (images/Dockerfile.*): >= 10000, off the host's range
REPORT_BUILD_SECONDS = 7200  # the aggregation Job's time to build the report once its wait is over
AGGREGATE_CPU = "2"  # the aggregation pod's CPU limit, and its report worker processes
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


@dataclass(frozen=True)
class SecretFile:
    """One credential as a file: key ``key`` of Secret ``secret``, mounted read-only at ``<SECRETS_DIR>/<name>/<key>``
    (volume ``peftsum-secret-<name>``, mode 0440: the pod's fsGroup reads it); ``env`` names the variable that tells
    the reading tool where the file is (None if the tool looks in a fixed place).

    The template renders every SecretFile the same way (``_pod.yaml.j2``), so a new credential (the Pushgateway's
    basic auth, MLflow's token) is one more entry in :func:`secret_files`, nothing else.
    """

    name: str
    secret: str
    key: str
    env: str | None

    @property
    def volume(self) -> str:
        return f"peftsum-secret-{self.name}"

    @property
    def folder(self) -> str:
        return f"{SECRETS_DIR}/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.key}"

    def values(self) -> dict[str, str]:
        """What the template places (through tojson)."""
        return {"volume": self.volume, "secret": self.secret, "key": self.key, "folder": self.folder}


def secret_files(cluster: ClusterSettings) -> list[SecretFile]:
    """Every credential of the pods. None at all with ``s3_secret: null`` and no ``hf_token_secret`` or
    ``pushgateway_secret`` (the pods then use their service account's identity: IRSA, EKS Pod Identity, GKE workload
    identity)."""
    out = []
    if cluster.s3_secret:  # AWS shared-credentials INI, read by boto3 (and every AWS SDK) from this variable
        out.append(SecretFile("s3", cluster.s3_secret, "credentials", "AWS_SHARED_CREDENTIALS_FILE"))
    if cluster.hf_token_secret:  # huggingface_hub reads the token from the file HF_TOKEN_PATH names
        out.append(SecretFile("hf", cluster.hf_token_secret, "token", "HF_TOKEN_PATH"))
    if cluster.pushgateway_secret:  # peftsum.telemetry reads the gateway's basic auth from these two files
        out.append(SecretFile("pushgateway-username", cluster.pushgateway_secret, "username", USERNAME_FILE_ENV))
        out.append(SecretFile("pushgateway-password", cluster.pushgateway_secret, "password", PASSWORD_FILE_ENV))
    if cluster.mlflow_secret:  # peftsum.tracking sets MLFLOW_TRACKING_TOKEN from this file
        out.append(SecretFile("mlflow-token", cluster.mlflow_secret, "token", MLFLOW_TOKEN_FILE_ENV))
    return out


def plain_pushgateway(cluster: ClusterSettings, file: str | None = None) -> str | None:
    """``cluster.pushgateway``, refused (SpecError, exit 2 naming the field) when it carries ``user:password@``: the
    URL is plain text in every Job's environment, so the gateway's credentials come from ``pushgateway_secret``."""
    url = cluster.pushgateway
    if url and "@" in url.partition("://")[2]:
        raise SpecError("cluster.pushgateway", redact_url(url),
                        "must not carry credentials (user:password@): it is plain text in every Job; put them in a "
                        "Secret with `username` and `password` keys and name it in cluster.pushgateway_secret (see "
                        "docs/operations.md)", file)
    return url


def pod_env(grid: Grid, cluster: ClusterSettings) -> list[dict[str, Any]]:
    """Environment of every peftsum pod: plain settings, and for each credential the path of its file (never its
    value). ``PEFTSUM_JOB_UID`` (the Job's uid, from the downward API) lets a cell count its attempts per Job."""
    env: list[dict[str, Any]] = [{"name": f.env, "value": f.path} for f in secret_files(cluster) if f.env]
    if cluster.s3_endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": cluster.s3_endpoint})
    if cluster.s3_region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": cluster.s3_region})
    if plain_pushgateway(cluster, grid.source):
        env.append({"name": "PEFTSUM_PUSHGATEWAY", "value": cluster.pushgateway})
    env += [{"name": k, "value": v} for k, v in grid.tracking.environment(grid.name).items()]
    env += [{"name": "HF_HOME", "value": f"{CACHE}/hf"}, {"name": "PEFTSUM_CACHE", "value": f"{CACHE}/peftsum"},
            {"name": "PEFTSUM_IMAGE", "value": require_image(cluster, grid.source)},
            {"name": "PEFTSUM_JOB_UID", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.labels['batch.kubernetes.io/controller-uid']"}}},
            {"name": "TMPDIR", "value": "/tmp"},  # noqa: S108
            {"name": "HOME", "value": "/tmp"},  # noqa: S108 - the root filesystem is read-only
            {"name": "PYTHONUNBUFFERED", "value": "1"}]
    return env + list((cluster.pod.env if cluster.pod else None) or ())


def resources(cpu: str, memory: str, gpus: int) -> dict[str, dict[str, Any]]:
    """Requests equal to limits (Guaranteed QoS: the scheduler's promise is what the cell gets)."""
    amounts: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)  # a quantity: the client (pydantic) refuses an int
    return {"requests": dict(amounts), "limits": dict(amounts)}


# The aggregation pod mostly waits (a store poll every few minutes, for days): it reserves little, and may burst to
# its limits to build the report.
AGGREGATE_RESOURCES = {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": AGGREGATE_CPU, "memory": "4Gi"}}


def pod_values(grid: Grid, cluster: ClusterSettings, *, container: str, res: dict[str, Any],
               placement: bool, env: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``pod`` values of ``_pod.yaml.j2`` (the same for every Job of a kind); ``placement`` adds node selector,
    tolerations and priority class (the cells' GPU placement); ``cluster.pod`` applies to every pod."""
    extra = cluster.pod
    return {"container": container, "image": require_image(cluster, grid.source),
            "pull_policy": cluster.image_pull_policy, "pull_secret": cluster.image_pull_secret,
            "service_account": cluster.service_account, "uid": UID,
            "env": pod_env(grid, cluster) + (env or []), "resources": res,
            "node_selector": cluster.node_selector if placement else None,
            "tolerations": list(cluster.tolerations or ()) if placement else None,
            "priority_class": cluster.priority_class if placement else None,
            "affinity": extra.affinity if extra else None,
            "grace": cluster.termination_grace_period_seconds, "cache_pvc": cluster.cache_pvc,
            "secret_files": [f.values() for f in secret_files(cluster)],
            "volumes": list((extra.volumes if extra else None) or ()),
            "volume_mounts": list((extra.volume_mounts if extra else None) or ())}


def pod_metadata(cluster: ClusterSettings, labels: dict[str, str],
                 annotations: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The pod's labels and annotations: ``cluster.pod``'s plus the Job's own (validation keeps them disjoint)."""
    extra = cluster.pod
    return ({**((extra.labels if extra else None) or {}), **labels},
            {**((extra.annotations if extra else None) or {}), **annotations})


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
    labels, annotations = _queued(names.cell_labels(grid, cell, cell_id), cluster), names.cell_annotations(cell)
    pod_labels, pod_annotations = pod_metadata(cluster, labels, annotations)
    return from_json_with_hash(render_json(
        CELL_TEMPLATE, shared if shared is not None else cell_shared(grid, cluster),
        name=names.cell_job_name(grid.name, cell_id), labels=labels, annotations=annotations,
        pod_labels=pod_labels, pod_annotations=pod_annotations,
        args=["cell", "--store", grid.store, "--grid", grid.name, "--cell", cell_id]))


def cells_digest(grid: Grid) -> str:
    """A digest of the grid's cell ids (the aggregation Job's annotation: a submit that adds cells changes it)."""
    return _digest(",".join(sorted(c.cell_id for c in grid.cells)))


def aggregate_job(grid: Grid, cluster: ClusterSettings, wait: bool | None = None) -> dict[str, Any]:
    """The Job that builds the report: ``peftsum aggregate --grid <name> --store <grid.store>`` (no GPU).

    With ``wait`` (default: when ``cluster.report_wait_seconds`` is set) it is the Job ``launcher submit`` creates
    with the cells: ``--wait`` polls the store until every cell is done or cannot get further (``--max-attempts``:
    the cells' backoffLimit + 1; ``--job-deadline``: their activeDeadlineSeconds), at most
    ``report_wait_seconds``, then builds the report. Its own deadline leaves :data:`REPORT_BUILD_SECONDS` to build.
    Without it, the report is built at once (``launcher report --k8s``).
    """
    wait = cluster.report_wait_seconds is not None if wait is None else wait
    if wait and cluster.report_wait_seconds is None:
        raise ValueError("aggregate_job(wait=True) needs cluster.report_wait_seconds")
    args = ["aggregate", "--grid", grid.name, "--store", grid.store]
    values = job_values(cluster, pod_values(grid, cluster, container="aggregate", res=AGGREGATE_RESOURCES,
                                            placement=False,
                                            env=[{"name": "PEFTSUM_REPORT_WORKERS", "value": AGGREGATE_CPU}]), 2)
    if wait:
        args += ["--wait", str(cluster.report_wait_seconds), "--max-attempts", str(cluster.backoff_limit + 1)]
        if cluster.active_deadline_seconds is not None:
            args += ["--job-deadline", str(cluster.active_deadline_seconds)]
        values["active_deadline_seconds"] = cluster.report_wait_seconds + REPORT_BUILD_SECONDS
    labels = _queued(names.common_labels(grid, "aggregate"), cluster)
    annotations = {f"{names.GROUP}/cells": str(len(grid.cells)), f"{names.GROUP}/cells-digest": cells_digest(grid)}
    pod_labels, pod_annotations = pod_metadata(cluster, labels, annotations)
    return from_json_with_hash(render_json(
        AGGREGATE_TEMPLATE, values, name=names.aggregate_job_name(grid.name), labels=labels,
        annotations=annotations, pod_labels=pod_labels, pod_annotations=pod_annotations, args=args))


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

    The aggregation Job (the waiting one ``launcher submit`` creates, when ``cluster.report_wait_seconds`` is set)
    sits in a subfolder so ``kubectl apply -f <out>`` starts the cells only; ``kubectl apply -f <out>/aggregate``
    adds the report.
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
