"""The pod of every peftsum Job: its environment, credentials, resources and settings, as template values.

Credentials follow one rule: each reaches the process as a file mounted from a Secret, never as an env value or
manifest text (:func:`secret_files`); where a tool needs a variable, it names the file. ``cluster.pod`` (labels,
annotations, affinity, env, volumes) applies to every pod. Pure functions of the grid and cluster settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftsum.spec import Grid, SpecError
from peftsum.spec.cluster import ClusterSettings, require_image
from peftsum.telemetry import PASSWORD_FILE_ENV, USERNAME_FILE_ENV, redact_url
from peftsum.tracking import TOKEN_FILE_ENV as MLFLOW_TOKEN_FILE_ENV

CACHE = "/cache"
SECRETS_DIR = "/var/run/secrets/peftsum"  # one read-only folder per credential: <SECRETS_DIR>/<name>/<key>
UID = 10001  # runAsUser = runAsGroup = fsGroup; the image's USER (images/Dockerfile.*): >= 10000, off the host's range
AGGREGATE_CPU = "2"  # the aggregation pod's CPU limit, and its report worker processes


@dataclass(frozen=True)
class SecretFile:
    """One credential as a file: key ``key`` of Secret ``secret``, mounted read-only at ``<SECRETS_DIR>/<name>/<key>``
    (volume ``peftsum-secret-<name>``, mode 0440: the pod's fsGroup reads it); ``env`` names the variable that tells
    the reading tool where the file is (None if the tool looks in a fixed place).

    The template renders every SecretFile the same way (``job_templates/_pod.yaml.j2``), so a new credential (the
    Pushgateway's basic auth, MLflow's token) is one more entry in :func:`secret_files`, nothing else.
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
