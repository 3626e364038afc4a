"""What keeps credentials out of grid files and Job manifests: the values rendered as plain text into the pods'
environment (``cluster.pod.env``, the Pushgateway URL) refuse anything that would carry one.

Credentials reach a pod only as files mounted from a Secret that a setting names (``cluster.s3_secret``,
``cluster.hf_token_secret``, ``cluster.pushgateway_secret``, ``cluster.mlflow_secret``, or a Secret in
``cluster.pod.volumes`` and a ``*_FILE`` variable naming the file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from peftsum.spec.errors import SpecError
from peftsum.spec.k8s_values import http_url, string_value

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")  # Kubernetes' rule for env var names
# Environment the pods get from the launcher (launcher.k8s.pod.pod_env; a test keeps the two in step).
RESERVED_ENV = ("AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "HF_TOKEN_PATH", "HF_HOME",
                "PEFTSUM_CACHE", "PEFTSUM_IMAGE", "PEFTSUM_PUSHGATEWAY", "PEFTSUM_JOB_UID", "PEFTSUM_REPORT_WORKERS",
                "TMPDIR", "HOME", "PYTHONUNBUFFERED", "PEFTSUM_PUSHGATEWAY_USERNAME_FILE",
                "PEFTSUM_PUSHGATEWAY_PASSWORD_FILE", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME",
                "PEFTSUM_MLFLOW_TOKEN_FILE")
# Credentials never travel as env values (secrets as files: a Secret volume, and a variable naming the file).
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN",
                  "HUGGING_FACE_HUB_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
CREDENTIAL_SUFFIXES = ("_TOKEN", "_PASSWORD", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_API_KEY", "_CREDENTIALS")


def gateway_url(value: Any, path: str) -> str:
    """The Pushgateway URL of a grid: an http(s) URL that carries no credentials. A grid file is shared and
    rendered into Job env as plain text, so the basic-auth user and password come from
    ``cluster.pushgateway_secret`` (files in the pod), never from the URL; the message never repeats them."""
    if isinstance(value, str) and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
        from peftsum.telemetry import redact_url

        raise SpecError(path, redact_url(value), "must not carry credentials (user:password@): put them in the "
                                                 "Secret named by cluster.pushgateway_secret (docs/operations.md)")
    return http_url(value, path)


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
        name = string_value(item["name"], f"{where}.name")
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
        out.append({"name": name, "value": string_value(item["value"], f"{where}.value")})
    return tuple(out)
