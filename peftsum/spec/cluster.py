"""The grid's ``cluster:`` section: how ``launcher submit`` runs each cell as a Kubernetes Job.

Only the launcher reads these settings, but they are validated with the rest of the grid, so a bad namespace,
image, toleration or quantity fails ``launcher validate`` (exit 2, naming the field) before any API call. Every
value that ends up in a manifest is checked against the Kubernetes rule for its field here (DNS-1123 names,
label values, quantities), so the rendered Job never carries text the API server would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from peftsum.spec.errors import SpecError
from peftsum.spec.fields import setting

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label, ≤ 63
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # ≤ 253
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # ≤ 63
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")  # the part after an optional prefix/
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$|^[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
URL = re.compile(r"^https?://[A-Za-z0-9._~:@\[\]-]+(/[A-Za-z0-9._~/-]*)?$")

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
    """A container image reference: registry/repository[:tag][@sha256:digest], lowercase, no spaces."""
    if not IMAGE_REF.fullmatch(_string(value, path)) or len(value) > 512:
        raise SpecError(path, value, "must be an image reference like registry.example/peftsum:0.1.0")
    return value


def quantity(value: Any, path: str) -> str:
    """A resource quantity (``8``, ``500m``, ``48Gi``); numbers are accepted and kept as their string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        value = f"{value:g}"
    if not QUANTITY.fullmatch(_string(value, path)) or float(re.sub(r"[A-Za-z]+$", "", value)) <= 0:
        raise SpecError(path, value, "must be a positive Kubernetes quantity such as 8, 500m or 48Gi")
    return value


def http_url(value: Any, path: str) -> str:
    """An http(s) URL without spaces, quotes or query strings (the Pushgateway)."""
    if not URL.fullmatch(_string(value, path)):
        raise SpecError(path, value, "must be an http(s) URL such as http://pushgateway.monitoring:9091")
    return value.rstrip("/")


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
            if isinstance(secs, bool) or not isinstance(secs, int) or secs < 0 or tol.get("effect") != "NoExecute":
                raise SpecError(f"{where}.tolerationSeconds", secs,
                                "must be a non-negative integer, and only with effect NoExecute")
            item["tolerationSeconds"] = secs
        out.append(item)
    return tuple(out)


@dataclass(frozen=True)
class ClusterSettings:
    """Read only by ``launcher submit``/``render``; validated here so a bad value fails before anything is created."""

    namespace: str = setting("peftsum", "namespace the Jobs run in", kind=str, check=dns_label,
                             type_doc="DNS-1123 label")
    image: str = setting("ghcr.io/peftsum/peftsum:0.1.0", "CUDA image that runs `peftsum cell` (ENTRYPOINT peftsum)",
                         kind=str, check=image_ref, type_doc="image reference")
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
    s3_secret: str = setting("peftsum-s3", "Secret holding AWS_* keys (referenced, never inlined)", kind=str,
                             check=dns_subdomain, type_doc="Secret name")
    hf_token_secret: str | None = setting(None, "Secret with an HF_TOKEN key for gated models (optional)", kind=str,
                                          nullable=True, check=dns_subdomain, type_doc="Secret name")
    pushgateway: str | None = setting(None, "Pushgateway URL the cells push metrics to", kind=str, nullable=True,
                                      check=http_url, type_doc="http(s) URL")
    cache_pvc: str | None = setting(None, "PersistentVolumeClaim shared as the HF cache (else an emptyDir)", kind=str,
                                    nullable=True, check=dns_subdomain, type_doc="PVC name")
    backoff_limit: int = setting(3, "failed pods before a Job fails (preemption does not count)", kind=int, lo=0,
                                 hi=100)
    active_deadline_seconds: int | None = setting(86400, "wall-clock limit of a cell's Job", kind=int, lo=60,
                                                  nullable=True)
    ttl_seconds_after_finished: int | None = setting(
        604800, "finished Jobs are deleted after this long (status then comes from the store)", kind=int, lo=0,
        nullable=True)
    termination_grace_period_seconds: int = setting(
        300, "time between SIGTERM and SIGKILL: the cell checkpoints and uploads in it", kind=int, lo=1, hi=86400)
