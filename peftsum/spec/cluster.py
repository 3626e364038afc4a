"""The grid's ``cluster:`` section: how ``launcher submit`` runs each cell as a Kubernetes Job.

Only the launcher reads these settings, but they are validated with the rest of the grid, so a bad namespace,
image, toleration or quantity fails ``launcher validate`` (exit 2, naming the field) before any API call. Every
value that ends up in a manifest is checked against the Kubernetes rule for its field here (DNS-1123 names,
label values, quantities, int32/int64 ranges), so the rendered Job never carries text the API server would refuse.

Credentials never appear here or in a manifest: settings name Secrets, and the pods read each credential as a file
mounted from its Secret (``launcher.k8s.pod.secret_files``; what refuses credentials in plain values:
:mod:`peftsum.spec.credentials`). ``cluster.pod`` adds the pod settings clusters need (annotations, labels,
affinity, plain env, volumes); it refuses names and paths the launcher sets itself. Formats other than names and
labels (images, quantities, URLs, plain data) are checked by :mod:`peftsum.spec.k8s_values`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from peftsum.spec.credentials import RESERVED_ENV as RESERVED_ENV  # re-exported: read here by the launcher's tests
from peftsum.spec.credentials import gateway_url, pod_env
from peftsum.spec.errors import SpecError
from peftsum.spec.fields import build, setting
from peftsum.spec.k8s_values import (
    DNS_SUBDOMAIN,
    INT32_MAX,
    INT64_MAX,
    http_url,
    image_ref,
    is_dns_label,
    plain_data,
    quantity,
    string_value,
)
from peftsum.spec.k8s_values import pinned as pinned  # re-exported: read here by launcher.k8s

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # ≤ 63
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")  # the part after an optional prefix/

TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def dns_label(value: Any, path: str) -> str:
    """A Kubernetes name that must be an RFC 1123 label (namespaces, LocalQueues)."""
    if not is_dns_label(string_value(value, path)):
        raise SpecError(path, value, "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63")
    return value


def dns_subdomain(value: Any, path: str) -> str:
    """A Kubernetes object name (Secrets, PriorityClasses, PVCs)."""
    if not DNS_SUBDOMAIN.fullmatch(string_value(value, path)) or len(value) > 253:
        raise SpecError(path, value, "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'")
    return value


def label_key(value: Any, path: str) -> str:
    """A label key: optional DNS-subdomain prefix and '/', then a name of ≤ 63 characters."""
    prefix, _, name = string_value(value, path).rpartition("/")
    if (prefix and (not DNS_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253)) or len(name) > 63 \
            or not LABEL_KEY_NAME.fullmatch(name):
        raise SpecError(path, value, "must be a label key such as nvidia.com/gpu.product")
    return value


def label_value(value: Any, path: str) -> str:
    """A label value: ≤ 63 characters of letters, digits, '-', '_' and '.', alphanumeric at both ends."""
    if not LABEL_VALUE.fullmatch(string_value(value, path)) or len(value) > 63:
        raise SpecError(path, value, "must be a label value: ≤ 63 letters, digits, '-', '_' or '.'")
    return value


def node_selector(value: Any, path: str) -> dict[str, str]:
    """``{label key: label value}`` that a node must carry."""
    if not isinstance(value, Mapping):
        raise SpecError(path, value, "must be a mapping of node label keys to values")
    return {label_key(k, f"{path}.{k}"): label_value(v, f"{path}.{k}") for k, v in value.items()}


def tolerations(value: Any, path: str) -> tuple[dict[str, Any], ...]:
    """A list of Kubernetes tolerations ({key, operator, value, effect, tolerationSeconds})."""
    if not isinstance(value, list):
        raise SpecError(path, value, "must be a list of tolerations")
    out = []
    for i, tol in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(tol, Mapping) or not tol:
            raise SpecError(where, tol, "must be a mapping with key, operator, value, effect")
        for key in tol:
            if key not in TOLERATION_KEYS:
                raise SpecError(f"{where}.{key}", tol[key],
                                f"unknown key; known keys: {', '.join(sorted(TOLERATION_KEYS))}")
        item: dict[str, Any] = {}
        if "key" in tol:
            item["key"] = label_key(tol["key"], f"{where}.key")
        op = tol.get("operator", "Equal")
        if op not in TOLERATION_OPERATORS:
            raise SpecError(f"{where}.operator", op, f"must be one of {', '.join(TOLERATION_OPERATORS)}")
        item["operator"] = op
        if "value" in tol:
            if op == "Exists":
                raise SpecError(f"{where}.value", tol["value"], "must be absent when operator is Exists")
            item["value"] = label_value(tol["value"], f"{where}.value")
        if "effect" in tol:
            if tol["effect"] not in TOLERATION_EFFECTS:
                raise SpecError(f"{where}.effect", tol["effect"], f"must be one of {', '.join(TOLERATION_EFFECTS)}")
            item["effect"] = tol["effect"]
        if "tolerationSeconds" in tol:
            secs = tol["tolerationSeconds"]
            if isinstance(secs, bool) or not isinstance(secs, int) or not 0 <= secs <= INT64_MAX \
                    or tol.get("effect") != "NoExecute":
                raise SpecError(f"{where}.tolerationSeconds", secs,
                                "must be a non-negative integer (int64), and only with effect NoExecute")
            item["tolerationSeconds"] = secs
        out.append(item)
    return tuple(out)

# --- cluster.pod: what clusters need on the pods, each value checked, rendered whole through tojson ---

# Label/annotation prefixes and names the launcher and Kubernetes set: selectors and status rely on them.
RESERVED_LABEL_PREFIXES = ("peftsum.io/", "app.kubernetes.io/", "batch.kubernetes.io/", "kueue.x-k8s.io/")
RESERVED_LABELS = ("job-name", "controller-uid")
# Volume names and mount paths the launcher uses (tmp, cache, dshm, and one peftsum-secret-<name> per credential).
RESERVED_VOLUMES = ("tmp", "cache", "dshm")
RESERVED_VOLUME_PREFIX = "peftsum-"
RESERVED_MOUNTS = ("/tmp", "/cache", "/dev/shm", "/var/run/secrets/peftsum")  # noqa: S108 - mount points, not temp files
# Volume sources the Pod Security "restricted" profile allows (hostPath and the like are refused there anyway).
VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                  "secret")
MOUNT_KEYS = ("name", "mountPath", "readOnly", "subPath", "subPathExpr")
AFFINITY_KEYS = ("nodeAffinity", "podAffinity", "podAntiAffinity")
ANNOTATIONS_MAX_BYTES = 256 * 1024  # the API server's limit on all annotations of an object


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, value, f"must be a mapping of {what}")
    return value


def _not_reserved_key(key: str, path: str) -> None:
    if key.startswith(RESERVED_LABEL_PREFIXES) or key in RESERVED_LABELS:
        raise SpecError(path, key, f"is set by peftsum or Kubernetes (reserved: {', '.join(RESERVED_LABEL_PREFIXES)}, "
                                   f"{', '.join(RESERVED_LABELS)})")


def pod_labels(value: Any, path: str) -> dict[str, str]:
    """Extra labels on every pod (``{label key: label value}``); the launcher's own keys are refused."""
    out = {}
    for k, v in _mapping(value, path, "label keys to values").items():
        label_key(k, f"{path}.{k}")
        _not_reserved_key(k, f"{path}.{k}")
        out[k] = label_value(v, f"{path}.{k}")
    return out


def pod_annotations(value: Any, path: str) -> dict[str, str]:
    """Extra annotations on every pod (``{key: text}``, e.g. a service mesh's opt-out); ≤ 256 KiB in all."""
    out = {}
    for k, v in _mapping(value, path, "annotation keys to strings").items():
        label_key(k, f"{path}.{k}")  # annotation keys follow the label-key rule
        _not_reserved_key(k, f"{path}.{k}")
        out[k] = string_value(v, f"{path}.{k}")
    if sum(len(k.encode()) + len(v.encode()) for k, v in out.items()) > ANNOTATIONS_MAX_BYTES:
        raise SpecError(path, f"<{len(out)} annotations>", "exceed the 256 KiB Kubernetes allows")
    return out


def affinity(value: Any, path: str) -> dict[str, Any]:
    """A Kubernetes Affinity (nodeAffinity / podAffinity / podAntiAffinity). Its shape inside is checked against
    the Kubernetes schema with the rendered Job (``launcher validate --k8s``, and ``launcher submit`` before any API
    call)."""
    data = _mapping(value, path, "nodeAffinity / podAffinity / podAntiAffinity")
    for k in data:
        if k not in AFFINITY_KEYS:
            raise SpecError(f"{path}.{k}", data[k], f"unknown key; known keys: {', '.join(AFFINITY_KEYS)}")
        _mapping(data[k], f"{path}.{k}", "its Kubernetes fields")
    return plain_data(data, path)


def pod_volumes(value: Any, path: str) -> tuple[dict[str, Any], ...]:
    """Extra pod volumes (Kubernetes Volume objects) of a source the "restricted" Pod Security profile allows."""
    if not isinstance(value, list):
        raise SpecError(path, value, "must be a list of Kubernetes volumes")
    out, seen = [], set()
    for i, vol in enumerate(value):
        where = f"{path}[{i}]"
        vol = _mapping(vol, where, "name and one volume source")
        name = dns_label(vol.get("name"), f"{where}.name")
        if name in seen or name in RESERVED_VOLUMES or name.startswith(RESERVED_VOLUME_PREFIX):
            raise SpecError(f"{where}.name", name, f"must be unique and not one of the launcher's ("
                                                   f"{', '.join(RESERVED_VOLUMES)}, {RESERVED_VOLUME_PREFIX}*)")
        seen.add(name)
        sources = [k for k in vol if k != "name"]
        if len(sources) != 1 or sources[0] not in VOLUME_SOURCES:
            raise SpecError(where, vol, f"must have a name and exactly one source of: {', '.join(VOLUME_SOURCES)}")
        _mapping(vol[sources[0]], f"{where}.{sources[0]}", "its Kubernetes fields")
        out.append(plain_data(vol, where))
    return tuple(out)


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/") or "/", b.rstrip("/") or "/"
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def pod_volume_mounts(value: Any, path: str) -> tuple[dict[str, Any], ...]:
    """Mounts of the extra volumes into the container (``{name, mountPath, readOnly, subPath, subPathExpr}``)."""
    if not isinstance(value, list):
        raise SpecError(path, value, "must be a list of {name, mountPath, readOnly}")
    out, paths = [], []
    for i, mount in enumerate(value):
        where = f"{path}[{i}]"
        mount = _mapping(mount, where, "name, mountPath, readOnly")
        for k in mount:
            if k not in MOUNT_KEYS:
                raise SpecError(f"{where}.{k}", mount[k], f"unknown key; known keys: {', '.join(MOUNT_KEYS)}")
        dns_label(mount.get("name"), f"{where}.name")
        target = string_value(mount.get("mountPath"), f"{where}.mountPath")
        if not target.startswith("/") or ".." in target.split("/") or ":" in target:
            raise SpecError(f"{where}.mountPath", target, "must be an absolute path without '..' or ':'")
        for taken in [*RESERVED_MOUNTS, *paths]:
            if _overlaps(target, taken):
                raise SpecError(f"{where}.mountPath", target, f"overlaps {taken} (the launcher's mounts: "
                                                              f"{', '.join(RESERVED_MOUNTS)}; or another mount)")
        paths.append(target)
        if "readOnly" in mount and not isinstance(mount["readOnly"], bool):
            raise SpecError(f"{where}.readOnly", mount["readOnly"], "must be a boolean")
        for k in ("subPath", "subPathExpr"):
            if k in mount and (not isinstance(mount[k], str) or mount[k].startswith("/")
                               or ".." in mount[k].split("/")):
                raise SpecError(f"{where}.{k}", mount[k], "must be a relative path without '..'")
        out.append(plain_data(mount, where))
    return tuple(out)


@dataclass(frozen=True)
class PodSettings:
    """On every peftsum pod (the cells and the aggregation Job); each value checked, rendered through tojson."""

    annotations: Mapping[str, str] | None = setting(
        None, "annotations on the pods (e.g. sidecar.istio.io/inject: \"false\")", check=pod_annotations,
        type_doc="mapping key → string")
    labels: Mapping[str, str] | None = setting(
        None, "labels on the pods (peftsum.io/*, app.kubernetes.io/* and Kubernetes' own are refused)",
        check=pod_labels, type_doc="mapping label → value")
    affinity: Mapping[str, Any] | None = setting(
        None, "the pods' affinity (nodeAffinity, podAffinity, podAntiAffinity; checked against the Kubernetes "
              "schema by validate --k8s and submit)", check=affinity, type_doc="Kubernetes Affinity")
    env: tuple[dict[str, str], ...] | None = setting(
        None, "extra plain environment variables [{name, value}]; no credentials (those are files)", check=pod_env,
        type_doc="list of {name, value}")
    volumes: tuple[dict[str, Any], ...] | None = setting(
        None, "extra volumes (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, "
              "secret)", check=pod_volumes, type_doc="list of Kubernetes volumes")
    volume_mounts: tuple[dict[str, Any], ...] | None = setting(
        None, "mounts of those volumes in the container [{name, mountPath, readOnly, subPath}]",
        check=pod_volume_mounts, type_doc="list of volume mounts")

    def __post_init__(self) -> None:
        names = {v["name"] for v in self.volumes or ()}
        for i, mount in enumerate(self.volume_mounts or ()):
            if mount["name"] not in names:
                raise SpecError(f"volume_mounts[{i}].name", mount["name"],
                                f"names no volume of cluster.pod.volumes ({', '.join(sorted(names)) or 'none'})")


def pod_settings(value: Any, path: str) -> PodSettings:
    """``cluster.pod`` as :class:`PodSettings` (unknown keys refused, every value checked)."""
    return build(PodSettings, value, path)


@dataclass(frozen=True)
class ClusterSettings:
    """Read only by ``launcher submit``/``render``; validated here so a bad value fails before anything is created."""

    namespace: str = setting("peftsum", "namespace the Jobs run in", check=dns_label, type_doc="DNS-1123 label")
    image: str | None = setting(
        None, "the image that runs `peftsum cell` (images/Dockerfile.cuda); required to render Jobs; pin it by "
              "digest: registry/peftsum@sha256:…", check=image_ref, type_doc="image reference")
    image_pull_policy: str = setting("IfNotPresent", "when the kubelet pulls the image",
                                     choices=("IfNotPresent", "Always", "Never"))
    image_pull_secret: str | None = setting(None, "Secret for a private registry", check=dns_subdomain,
                                            type_doc="Secret name")
    gpus: int = setting(1, "GPUs per cell (only 1 until multi-GPU training exists)", lo=0, hi=1)
    cpu: str = setting("4", "CPU request and limit per cell", check=quantity, type_doc="quantity")
    memory: str = setting("32Gi", "memory request and limit per cell", check=quantity, type_doc="quantity")
    node_selector: Mapping[str, str] | None = setting(None, "node labels a cell's pod must match", check=node_selector,
                                                      type_doc="mapping label → value")
    tolerations: tuple[dict[str, Any], ...] | None = setting(
        None, "tolerations of the cell pods (key, operator, value, effect, tolerationSeconds)", check=tolerations,
        type_doc="list of tolerations")
    priority_class: str | None = setting(None, "PriorityClass of the cell pods", check=dns_subdomain,
                                         type_doc="PriorityClass name")
    queue: str | None = setting(None, "Kueue LocalQueue name (label kueue.x-k8s.io/queue-name)", check=dns_label,
                                type_doc="DNS-1123 label")
    service_account: str | None = setting(
        None, "ServiceAccount of the pods (IRSA / EKS Pod Identity / GKE workload identity); with it, s3_secret: "
              "null renders no credentials at all", check=dns_subdomain, type_doc="ServiceAccount name")
    s3_secret: str | None = setting(
        "peftsum-s3", "Secret with a `credentials` key in the AWS shared-credentials (INI) format, mounted as a file "
                      "(AWS_SHARED_CREDENTIALS_FILE); null: the pods' own identity (service_account)",
        check=dns_subdomain, type_doc="Secret name")
    s3_endpoint: str | None = setting(None, "S3-compatible endpoint (AWS_ENDPOINT_URL), e.g. http://minio.minio:9000; "
                                            "null for AWS", check=http_url, type_doc="http(s) URL")
    s3_region: str | None = setting(None, "S3 region (AWS_DEFAULT_REGION); null: the SDK's default or the "
                                          "identity's", check=label_value, type_doc="region name")
    hf_token_secret: str | None = setting(
        None, "Secret with a `token` key for gated models, mounted as a file (HF_TOKEN_PATH)", check=dns_subdomain,
        type_doc="Secret name")
    pushgateway: str | None = setting(None, "Pushgateway URL the cells push metrics to (no credentials in it: "
                                      "see pushgateway_secret)", check=gateway_url, type_doc="http(s) URL")
    pushgateway_secret: str | None = setting(
        None, "Secret with `username` and `password` keys: the Pushgateway's basic auth, mounted as files "
              "(PEFTSUM_PUSHGATEWAY_USERNAME_FILE, PEFTSUM_PUSHGATEWAY_PASSWORD_FILE)", check=dns_subdomain,
        type_doc="Secret name")
    mlflow_secret: str | None = setting(
        None, "Secret with a `token` key: the MLflow tracking server's bearer token (tracking.mlflow), mounted as a "
              "file (PEFTSUM_MLFLOW_TOKEN_FILE)", check=dns_subdomain, type_doc="Secret name")
    cache_pvc: str | None = setting(None, "PersistentVolumeClaim shared as the HF cache (else an emptyDir)",
                                    check=dns_subdomain, type_doc="PVC name")
    backoff_limit: int = setting(3, "failed pods before a Job fails (preemption does not count)", lo=0, hi=100)
    active_deadline_seconds: int | None = setting(86400, "wall-clock limit of a cell's Job", lo=60, hi=INT64_MAX)
    ttl_seconds_after_finished: int | None = setting(
        604800, "finished Jobs are deleted after this long (status then comes from the store)", lo=0, hi=INT32_MAX)
    termination_grace_period_seconds: int = setting(
        300, "time between SIGTERM and SIGKILL: the cell checkpoints and uploads in it", lo=1, hi=86400)
    report_wait_seconds: int | None = setting(
        604800, "the aggregation Job `launcher submit` creates waits in the cluster this long for the cells, then "
                "builds the report with what is done; null: no such Job (`launcher report --k8s` builds it)",
        lo=60, hi=31_536_000)
    pod: PodSettings | None = setting(  # noqa: RUF009 - setting() returns a field(); PodSettings is frozen
        None, "pod settings: annotations, labels, affinity, env, volumes, volume_mounts (the `cluster.pod` table "
              "below)", check=pod_settings, type_doc="mapping")


def require_image(cluster: ClusterSettings, file: str | None = None) -> str:
    """``cluster.image``, or a SpecError (exit 2) naming the field: it has no default, and rendering a Job needs it."""
    if not cluster.image:
        raise SpecError("cluster.image", cluster.image,
                        "is required to render Kubernetes Jobs: the image you built and pushed from "
                        "images/Dockerfile.cuda, pinned by digest (registry.example/peftsum@sha256:…); see "
                        "docs/operations.md", file)
    return cluster.image
