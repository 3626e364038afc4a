"""The grid's ``cluster:`` section: how ``launcher submit`` runs each cell as a Kubernetes Job.

Only the launcher reads these settings, but they are validated with the rest of the grid, so a bad namespace,
image, toleration or quantity fails ``launcher validate`` (exit 2, naming the field) before any API call. Every
value that ends up in a manifest is checked against the Kubernetes rule for its field here (DNS-1123 names,
label values, quantities, int32/int64 ranges), so the rendered Job never carries text the API server would refuse.

Credentials never appear here or in a manifest: settings name Secrets, and the pods read each credential as a file
mounted from its Secret (``launcher.k8s.render.secret_files``). ``cluster.pod`` adds the pod settings clusters need
(annotations, labels, affinity, plain env, volumes); it refuses env values that would carry credentials, and names
and paths the launcher sets itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from peftsum.spec.errors import SpecError
from peftsum.spec.fields import build, setting

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label, ≤ 63
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # ≤ 253
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # ≤ 63
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")  # the part after an optional prefix/
IMAGE_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$|^[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
URL = re.compile(r"^https?://[A-Za-z0-9._~:@\[\]-]+(/[A-Za-z0-9._~/-]*)?$")

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # Kubernetes' rule for env var names
INT32_MAX = 2**31 - 1  # e.g. Job.spec.ttlSecondsAfterFinished, backoffLimit: the API server refuses larger values
INT64_MAX = 2**63 - 1  # e.g. activeDeadlineSeconds, terminationGracePeriodSeconds, tolerationSeconds

TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise SpecError(path, value, "must be a string")
    return value


def dns_label(value: Any, path: str) -> str:
    """A Kubernetes name that must be an RFC 1123 label (namespaces, LocalQueues)."""
    if not DNS_LABEL.fullmatch(_string(value, path)) or len(value) > 63:
        raise SpecError(path, value, "must be a DNS-1123 label: lowercase letters, digits and '-', at most 63")
    return value


def dns_subdomain(value: Any, path: str) -> str:
    """A Kubernetes object name (Secrets, PriorityClasses, PVCs)."""
    if not DNS_SUBDOMAIN.fullmatch(_string(value, path)) or len(value) > 253:
        raise SpecError(path, value, "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'")
    return value


def image_ref(value: Any, path: str) -> str:
    """A container image reference: registry/repository[:tag][@sha256:digest], lowercase, no spaces. A digest is
    recommended (every pod then runs the same bytes; ``launcher validate --k8s`` warns about a tag)."""
    if not IMAGE_REF.fullmatch(_string(value, path)) or len(value) > 512:
        raise SpecError(path, value, "must be an image reference like registry.example/peftsum@sha256:<64 hex> "
                                     "(or registry.example/peftsum:0.1.0)")
    return value


def pinned(image: str) -> bool:
    """The image is referenced by digest (immutable)."""
    return bool(IMAGE_DIGEST.search(image))


def quantity(value: Any, path: str) -> str:
    """A resource quantity (``8``, ``500m``, ``48Gi``); numbers are accepted and kept as their string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        try:
            value = f"{value:g}"
        except OverflowError:  # an integer beyond any float (1e400): no quantity either
            raise SpecError(path, value, "must be a positive Kubernetes quantity such as 8, 500m or 48Gi") from None
    if not QUANTITY.fullmatch(_string(value, path)) or float(re.sub(r"[A-Za-z]+$", "", value)) <= 0:
        raise SpecError(path, value, "must be a positive Kubernetes quantity such as 8, 500m or 48Gi")
    return value


def http_url(value: Any, path: str) -> str:
    """An http(s) URL without spaces, quotes or query strings (the Pushgateway)."""
    if not URL.fullmatch(_string(value, path)):
        raise SpecError(path, value, "must be an http(s) URL such as http://pushgateway.monitoring:9091")
    return value.rstrip("/")


def gateway_url(value: Any, path: str) -> str:
    """The Pushgateway URL of a grid: an http(s) URL that carries no credentials. A grid file is shared and
    rendered into Job env as plain text, so the basic-auth user and password come from
    ``cluster.pushgateway_secret`` (files in the pod), never from the URL; the message never repeats them."""
    if isinstance(value, str) and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
        from peftsum.telemetry import redact_url

        raise SpecError(path, redact_url(value), "must not carry credentials (user:password@): put them in the "
                                                 "Secret named by cluster.pushgateway_secret (docs/operations.md)")
    return http_url(value, path)


def label_key(value: Any, path: str) -> str:
    """A label key: optional DNS-subdomain prefix and '/', then a name of ≤ 63 characters."""
    prefix, _, name = _string(value, path).rpartition("/")
    if (prefix and (not DNS_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253)) or len(name) > 63 \
            or not LABEL_KEY_NAME.fullmatch(name):
        raise SpecError(path, value, "must be a label key such as nvidia.com/gpu.product")
    return value


def label_value(value: Any, path: str) -> str:
    """A label value: ≤ 63 characters of letters, digits, '-', '_' and '.', alphanumeric at both ends."""
    if not LABEL_VALUE.fullmatch(_string(value, path)) or len(value) > 63:
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
# Environment the pods get from the launcher (launcher.k8s.render.pod_env; a test keeps the two in step).
RESERVED_ENV = ("AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "HF_TOKEN_PATH", "HF_HOME",
                "PEFTSUM_CACHE", "PEFTSUM_IMAGE", "PEFTSUM_PUSHGATEWAY", "PEFTSUM_JOB_UID", "PEFTSUM_REPORT_WORKERS",
                "TMPDIR", "HOME", "PYTHONUNBUFFERED", "PEFTSUM_PUSHGATEWAY_USERNAME_FILE",
                "PEFTSUM_PUSHGATEWAY_PASSWORD_FILE", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME",
                "PEFTSUM_MLFLOW_TOKEN_FILE")
# Credentials never travel as env values (secrets as files: a Secret volume, and a variable naming the file).
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN",
                  "HUGGING_FACE_HUB_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
CREDENTIAL_SUFFIXES = ("_TOKEN", "_PASSWORD", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_API_KEY", "_CREDENTIALS")
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


def plain_data(value: Any, path: str) -> Any:
    """JSON-shaped data only (mappings with string keys, lists, strings, integers, finite numbers, booleans, null):
    YAML's dates, sets or non-string keys could not be rendered through tojson. Returns a copy (lists, dicts)."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SpecError(f"{path}.{k}", k, "keys must be strings")
            out[k] = plain_data(v, f"{path}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [plain_data(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) > INT64_MAX:
            raise SpecError(path, value, "is out of range for Kubernetes (int64)")
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return value
    raise SpecError(path, value, "must be plain data (a string, number, boolean, list or mapping)")


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
        out[k] = _string(v, f"{path}.{k}")
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


def pod_env(value: Any, path: str) -> tuple[dict[str, str], ...]:
    """Extra plain environment variables ``[{name, value}]``. Credentials are refused: they reach the pod as files
    (a Secret in ``volumes``, and a variable here naming the file)."""
    if not isinstance(value, list):
        raise SpecError(path, value, "must be a list of {name, value}")
    out, seen = [], set()
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"name", "value"}:
            raise SpecError(where, item, "must be {name: ..., value: ...} (plain values only: no valueFrom; "
                                         "credentials are files, see cluster.pod.volumes)")
        name = _string(item["name"], f"{where}.name")
        if not ENV_NAME.fullmatch(name) or name in seen:
            raise SpecError(f"{where}.name", name, "must be a unique variable name (letters, digits, '_', '-', '.')")
        seen.add(name)
        if name in RESERVED_ENV:
            raise SpecError(f"{where}.name", name, "is set by the launcher (see docs/operations.md)")
        if name.upper() in CREDENTIAL_ENV or name.upper().endswith(CREDENTIAL_SUFFIXES):
            raise SpecError(f"{where}.name", name,
                            "looks like a credential: credentials reach pods as files mounted from a Secret, never "
                            "as env values (cluster.s3_secret, cluster.hf_token_secret, or a Secret in "
                            "cluster.pod.volumes and a *_FILE variable naming the file)")
        out.append({"name": name, "value": _string(item["value"], f"{where}.value")})
    return tuple(out)


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
        target = _string(mount.get("mountPath"), f"{where}.mountPath")
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
        None, "annotations on the pods (e.g. sidecar.istio.io/inject: \"false\")", kind=dict, nullable=True,
        check=pod_annotations, type_doc="mapping key → string")
    labels: Mapping[str, str] | None = setting(
        None, "labels on the pods (peftsum.io/*, app.kubernetes.io/* and Kubernetes' own are refused)", kind=dict,
        nullable=True, check=pod_labels, type_doc="mapping label → value")
    affinity: Mapping[str, Any] | None = setting(
        None, "the pods' affinity (nodeAffinity, podAffinity, podAntiAffinity; checked against the Kubernetes "
              "schema by validate --k8s and submit)", kind=dict, nullable=True, check=affinity,
        type_doc="Kubernetes Affinity")
    env: tuple[dict[str, str], ...] | None = setting(
        None, "extra plain environment variables [{name, value}]; no credentials (those are files)", kind=list,
        nullable=True, check=pod_env, type_doc="list of {name, value}")
    volumes: tuple[dict[str, Any], ...] | None = setting(
        None, "extra volumes (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, "
              "secret)", kind=list, nullable=True, check=pod_volumes, type_doc="list of Kubernetes volumes")
    volume_mounts: tuple[dict[str, Any], ...] | None = setting(
        None, "mounts of those volumes in the container [{name, mountPath, readOnly, subPath}]", kind=list,
        nullable=True, check=pod_volume_mounts, type_doc="list of volume mounts")

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

    namespace: str = setting("peftsum", "namespace the Jobs run in", kind=str, check=dns_label,
                             type_doc="DNS-1123 label")
    image: str | None = setting(
        None, "the image that runs `peftsum cell` (images/Dockerfile.cuda); required to render Jobs; pin it by "
              "digest: registry/peftsum@sha256:…", kind=str, nullable=True, check=image_ref,
        type_doc="image reference")
    image_pull_policy: str = setting("IfNotPresent", "when the kubelet pulls the image", kind=str,
                                     choices=("IfNotPresent", "Always", "Never"))
    image_pull_secret: str | None = setting(None, "Secret for a private registry", kind=str, nullable=True,
                                            check=dns_subdomain, type_doc="Secret name")
    gpus: int = setting(1, "GPUs per cell (only 1 until multi-GPU training exists)", kind=int, lo=0, hi=1)
    cpu: str = setting("4", "CPU request and limit per cell", kind=str, check=quantity, type_doc="quantity")
    memory: str = setting("32Gi", "memory request and limit per cell", kind=str, check=quantity,
                          type_doc="quantity")
    node_selector: Mapping[str, str] | None = setting(None, "node labels a cell's pod must match", kind=dict,
                                                      nullable=True, check=node_selector,
                                                      type_doc="mapping label → value")
    tolerations: tuple[dict[str, Any], ...] | None = setting(
        None, "tolerations of the cell pods (key, operator, value, effect, tolerationSeconds)", kind=list,
        nullable=True, check=tolerations, type_doc="list of tolerations")
    priority_class: str | None = setting(None, "PriorityClass of the cell pods", kind=str, nullable=True,
                                         check=dns_subdomain, type_doc="PriorityClass name")
    queue: str | None = setting(None, "Kueue LocalQueue name (label kueue.x-k8s.io/queue-name)", kind=str,
                                nullable=True, check=dns_label, type_doc="DNS-1123 label")
    service_account: str | None = setting(
        None, "ServiceAccount of the pods (IRSA / EKS Pod Identity / GKE workload identity); with it, s3_secret: "
              "null renders no credentials at all", kind=str, nullable=True, check=dns_subdomain,
        type_doc="ServiceAccount name")
    s3_secret: str | None = setting(
        "peftsum-s3", "Secret with a `credentials` key in the AWS shared-credentials (INI) format, mounted as a file "
                      "(AWS_SHARED_CREDENTIALS_FILE); null: the pods' own identity (service_account)", kind=str,
        nullable=True, check=dns_subdomain, type_doc="Secret name")
    s3_endpoint: str | None = setting(None, "S3-compatible endpoint (AWS_ENDPOINT_URL), e.g. http://minio.minio:9000; "
                                            "null for AWS", kind=str, nullable=True, check=http_url,
                                      type_doc="http(s) URL")
    s3_region: str | None = setting(None, "S3 region (AWS_DEFAULT_REGION); null: the SDK's default or the "
                                          "identity's", kind=str, nullable=True, check=label_value,
                                    type_doc="region name")
    hf_token_secret: str | None = setting(
        None, "Secret with a `token` key for gated models, mounted as a file (HF_TOKEN_PATH)", kind=str,
        nullable=True, check=dns_subdomain, type_doc="Secret name")
    pushgateway: str | None = setting(None, "Pushgateway URL the cells push metrics to (no credentials in it: "
                                      "see pushgateway_secret)", kind=str, nullable=True, check=gateway_url,
                                      type_doc="http(s) URL")
    pushgateway_secret: str | None = setting(
        None, "Secret with `username` and `password` keys: the Pushgateway's basic auth, mounted as files "
              "(PEFTSUM_PUSHGATEWAY_USERNAME_FILE, PEFTSUM_PUSHGATEWAY_PASSWORD_FILE)", kind=str, nullable=True,
        check=dns_subdomain, type_doc="Secret name")
    mlflow_secret: str | None = setting(
        None, "Secret with a `token` key: the MLflow tracking server's bearer token (tracking.mlflow), mounted as a "
              "file (PEFTSUM_MLFLOW_TOKEN_FILE)", kind=str, nullable=True, check=dns_subdomain, type_doc="Secret name")
    cache_pvc: str | None = setting(None, "PersistentVolumeClaim shared as the HF cache (else an emptyDir)", kind=str,
                                    nullable=True, check=dns_subdomain, type_doc="PVC name")
    backoff_limit: int = setting(3, "failed pods before a Job fails (preemption does not count)", kind=int, lo=0,
                                 hi=100)
    active_deadline_seconds: int | None = setting(86400, "wall-clock limit of a cell's Job", kind=int, lo=60,
                                                  hi=INT64_MAX, nullable=True)
    ttl_seconds_after_finished: int | None = setting(
        604800, "finished Jobs are deleted after this long (status then comes from the store)", kind=int, lo=0,
        hi=INT32_MAX, nullable=True)
    termination_grace_period_seconds: int = setting(
        300, "time between SIGTERM and SIGKILL: the cell checkpoints and uploads in it", kind=int, lo=1, hi=86400)
    report_wait_seconds: int | None = setting(
        604800, "the aggregation Job `launcher submit` creates waits in the cluster this long for the cells, then "
                "builds the report with what is done; null: no such Job (`launcher report --k8s` builds it)",
        kind=int, lo=60, hi=31_536_000, nullable=True)
    pod: PodSettings | None = setting(  # noqa: RUF009 - setting() returns a field(); PodSettings is frozen
        None, "pod settings: annotations, labels, affinity, env, volumes, volume_mounts (the `cluster.pod` table "
              "below)", kind=dict, nullable=True, check=pod_settings, type_doc="mapping")


def require_image(cluster: ClusterSettings, file: str | None = None) -> str:
    """``cluster.image``, or a SpecError (exit 2) naming the field: it has no default, and rendering a Job needs it."""
    if not cluster.image:
        raise SpecError("cluster.image", cluster.image,
                        "is required to render Kubernetes Jobs: the image you built and pushed from "
                        "images/Dockerfile.cuda, pinned by digest (registry.example/peftsum@sha256:…); see "
                        "docs/operations.md", file)
    return cluster.image
