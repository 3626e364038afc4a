"""Formats of the Kubernetes values a grid may carry: DNS-1123 names, image references, resource
quantities, http(s) URLs, int32/int64 ranges and plain JSON-shaped data.

Each check returns the normalised value or raises :class:`SpecError` naming the field, so a manifest never carries
text the API server would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from peftsum.spec.errors import SpecError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label (with a length ≤ 63: is_dns_label)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # ≤ 253
IMAGE_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
IMAGE_REF = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$|^[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
URL = re.compile(r"^https?://[A-Za-z0-9._~:@\[\]-]+(/[A-Za-z0-9._~/-]*)?$")

INT32_MAX = 2**31 - 1  # e.g. Job.spec.ttlSecondsAfterFinished, backoffLimit: the API server refuses larger values
INT64_MAX = 2**63 - 1  # e.g. activeDeadlineSeconds, terminationGracePeriodSeconds, tolerationSeconds


def is_dns_label(name: str) -> bool:
    """Whether ``name`` is a DNS-1123 label of at most 63 characters: what Kubernetes asks of a namespace, a Job's
    name and so a grid's name (a prefix of its Jobs' names)."""
    return len(name) <= 63 and DNS_LABEL.fullmatch(name) is not None


def string_value(value: Any, path: str) -> str:
    """``value`` when it is a string (every textual Kubernetes value is checked for that first)."""
    if not isinstance(value, str):
        raise SpecError(path, value, "must be a string")
    return value


def image_ref(value: Any, path: str) -> str:
    """A container image reference: registry/repository[:tag][@sha256:digest], lowercase, no spaces. A digest is
    recommended (every pod then runs the same bytes; ``launcher validate --k8s`` warns about a tag)."""
    if not IMAGE_REF.fullmatch(string_value(value, path)) or len(value) > 512:
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
    if not QUANTITY.fullmatch(string_value(value, path)) or float(re.sub(r"[A-Za-z]+$", "", value)) <= 0:
        raise SpecError(path, value, "must be a positive Kubernetes quantity such as 8, 500m or 48Gi")
    return value


def http_url(value: Any, path: str) -> str:
    """An http(s) URL without spaces, quotes or query strings (the Pushgateway)."""
    if not URL.fullmatch(string_value(value, path)):
        raise SpecError(path, value, "must be an http(s) URL such as http://pushgateway.monitoring:9091")
    return value.rstrip("/")


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
