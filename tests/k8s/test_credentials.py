"""Secrets as files, never env: each credential variant renders schema-valid Jobs in which every credential is a
file mounted read-only from a Secret (a variable, where one is needed, names the file); with a service account and
``s3_secret: null`` there are no credentials at all. The pod side is checked for real: given the Secret's keys as
files where the Job mounts them, boto3 reaches an S3 server (moto) and huggingface_hub finds the token, with exactly
the Job's environment."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest

from launcher.k8s import render, schema
from launcher.k8s.pod import SECRETS_DIR, secret_files
from peftsum.spec import SpecError, load_grid, parse_grid

REPO = Path(__file__).resolve().parents[2]
CREDENTIAL_VARS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN",
                   "HUGGING_FACE_HUB_TOKEN"}


def _pod(job: dict) -> dict:
    return job["spec"]["template"]["spec"]


def _env(job: dict) -> dict[str, dict]:
    return {e["name"]: e for e in _pod(job)["containers"][0]["env"]}


def _variant(paper, **changes):
    cluster = dataclasses.replace(paper.cluster, **changes)
    return cluster, [render.cell_job(paper, paper.cells[0], cluster), render.aggregate_job(paper, cluster)]


VARIANTS = {
    "static keys (paper.yaml)": {},
    "keys + gated models": {"hf_token_secret": "hf-token"},
    "MinIO": {"s3_endpoint": "http://minio.minio:9000", "s3_region": "us-east-1", "s3_secret": "minio-creds"},
    "EKS IRSA": {"service_account": "peftsum-cells", "s3_secret": None, "s3_region": "eu-west-1"},
    "GKE workload identity + HF token": {"service_account": "peftsum-cells", "s3_secret": None,
                                         "s3_endpoint": "https://storage.googleapis.com", "hf_token_secret": "hf"},
    "Pushgateway basic auth": {"pushgateway": "https://pg.example:9091", "pushgateway_secret": "pg-auth"},
    "MLflow token": {"mlflow_secret": "mlflow-token"},
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_every_credential_is_a_file_from_a_secret(paper, variant: str) -> None:
    cluster, jobs = _variant(paper, **VARIANTS[variant])
    for job in jobs:
        assert kubernetes_validate.validate(job, "1.31", strict=True) == "1.31"
        assert schema.validate_all([job], "1.27") == []
        pod = _pod(job)
        text = json.dumps(job)
        assert "secretKeyRef" not in text and "secretRef" not in text  # no Secret reaches the env
        env = _env(job)
        assert not CREDENTIAL_VARS & env.keys()
        mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
        secrets = [v for v in pod["volumes"] if "secret" in v]
        files = secret_files(cluster)
        assert len(secrets) == len(files)
        for f in files:  # each credential: its Secret key as a read-only file, and the variable naming that file
            volume = next(v for v in secrets if v["name"] == f.volume)
            assert volume["secret"] == {"secretName": f.secret, "items": [{"key": f.key, "path": f.key}],
                                        "defaultMode": 0o440}
            assert mounts[f.volume] == {"name": f.volume, "mountPath": f.folder, "readOnly": True}
            assert env[f.env] == {"name": f.env, "value": f.path}
        assert pod.get("serviceAccountName") == cluster.service_account
        assert pod["automountServiceAccountToken"] is False
        assert env.get("AWS_ENDPOINT_URL", {}).get("value") == cluster.s3_endpoint
        assert env.get("AWS_DEFAULT_REGION", {}).get("value") == cluster.s3_region


def test_service_account_without_s3_secret_renders_no_credentials(tmp_path: Path) -> None:
    """The acceptance case: examples/paper.yaml with cluster.service_account set and s3_secret: null."""
    text = (REPO / "examples" / "paper.yaml").read_text()
    assert "\n  s3_secret: peftsum-s3\n" in text
    grid_file = tmp_path / "paper-irsa.yaml"
    grid_file.write_text(text.replace("\n  s3_secret: peftsum-s3\n",
                                      "\n  s3_secret: null\n  service_account: peftsum-cells\n"))
    grid = load_grid(grid_file)
    objects = [*render.cell_jobs(grid).values(), render.aggregate_job(grid, grid.cluster)]
    assert len(objects) == 37
    assert schema.validate_all(objects, "1.31") == []
    for obj in objects:
        pod = _pod(obj)
        assert pod["serviceAccountName"] == "peftsum-cells"
        assert not [v for v in pod["volumes"] if "secret" in v]
        dumped = json.dumps(obj)
        for word in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_ACCESS_KEY", "AWS_SECRET", "secretKeyRef", "/secrets/"):
            assert word not in dumped
    assert kubernetes_validate.validate(objects[0], "1.31", strict=True)


def test_pod_env_names_are_the_reserved_ones(paper) -> None:
    """cluster.pod.env refuses the names the launcher sets (peftsum.spec.cluster.RESERVED_ENV): the two lists agree."""
    from peftsum.spec.cluster import RESERVED_ENV
    from peftsum.spec.tracking import TrackingSettings

    tracked = dataclasses.replace(paper, tracking=TrackingSettings(mlflow="http://mlflow.mlflow:5000"))
    _, jobs = _variant(tracked, mlflow_secret="mlflow-token",  # noqa: S106 - a Secret's name
                       hf_token_secret="hf", s3_endpoint="http://m:9000",  # noqa: S106 - Secret names
                       s3_region="r", pushgateway="http://pg:9091", pushgateway_secret="pg-auth")  # noqa: S106
    names = {n for job in jobs for n in _env(job)}
    assert names == set(RESERVED_ENV)


def _mounted_as_the_kubelet_would(job: dict, secrets: dict[str, dict[str, str]], root: Path) -> dict[str, str]:
    """The container's environment, with each Secret volume's items written where the Job mounts them (under
    ``root`` instead of ``/``); fieldRef variables are left out."""
    pod = _pod(job)
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    for volume in pod["volumes"]:
        if "secret" in volume:
            folder = root / mounts[volume["name"]].lstrip("/")
            folder.mkdir(parents=True)
            for item in volume["secret"]["items"]:
                (folder / item["path"]).write_text(secrets[volume["secret"]["secretName"]][item["key"]])
                (folder / item["path"]).chmod(volume["secret"]["defaultMode"])
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    return {k: (str(root) + v if v.startswith(SECRETS_DIR) else v) for k, v in env.items()}


def test_the_pod_reaches_s3_and_the_hub_with_its_files_alone(s3, paper, tmp_path: Path) -> None:
    """A Secret in the documented format (``credentials``: AWS shared-credentials INI; ``token``), mounted as the
    Job says, is all the pod needs: no AWS_* key or HF_TOKEN variable anywhere in its environment."""
    cluster, _ = _variant(paper, s3_secret="peftsum-s3", hf_token_secret="hf-token",  # noqa: S106 - Secret names
                          s3_endpoint=s3.endpoint, s3_region="us-east-1")
    grid = dataclasses.replace(paper, store=s3.uri)
    job = render.cell_job(grid, grid.cells[0], cluster)
    secrets = {"peftsum-s3": {"credentials": "[default]\naws_access_key_id = testing\n"
                                             "aws_secret_access_key = testing\n"},
               "hf-token": {"token": "hf_from_a_file\n"}}
    env = _mounted_as_the_kubelet_would(job, secrets, tmp_path / "root")
    env.update({"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
                "HF_HOME": str(tmp_path / "hf"), "PEFTSUM_CACHE": str(tmp_path / "cache"),
                "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_EC2_METADATA_DISABLED": "true"})
    assert not CREDENTIAL_VARS & env.keys()
    code = (f"import boto3, huggingface_hub\n"
            f"from peftsum.store import open_store\n"
            f"store = open_store({s3.uri!r})\n"
            f"store.write_bytes('probe/x.txt', b'written by the pod')\n"
            f"print(store.read_bytes('probe/x.txt').decode())\n"
            f"print(boto3.Session().get_credentials().method)\n"
            f"print(huggingface_hub.get_token())\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[:3] == ["written by the pod", "shared-credentials-file", "hf_from_a_file"]
    # and without the file boto3 has no credentials: the file is what made it work
    env.pop("AWS_SHARED_CREDENTIALS_FILE")
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode != 0 and "Unable to locate credentials" in proc.stderr + proc.stdout


def test_a_grid_without_an_image_cannot_render_jobs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """cluster.image has no default: plain `launcher validate` of a local grid passes, rendering Jobs is exit 2
    naming the field."""
    from launcher.cli import main

    grid = tmp_path / "local.yaml"
    grid.write_text("name: local\nstore: s3://b/p\naxes: {model: [tiny-gpt2], method: [lora], "
                    "dataset: [synthetic-dialogsum]}\n")
    assert main(["validate", str(grid)]) == 0
    capsys.readouterr()
    for argv in (["validate", str(grid), "--k8s", "1.31"], ["render", str(grid), "-o", str(tmp_path / "out")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cluster.image" in err and "local.yaml" in err and "required" in err
    assert main(["validate", str(REPO / "examples" / "quickstart.yaml")]) == 0


def test_credentials_in_pod_env_are_refused() -> None:
    base = "name: g\naxes: {model: [gpt2], method: [lora], dataset: [samsum]}\ncluster: {pod: {env: [%s]}}\n"
    for name in ("AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "PUSHGATEWAY_PASSWORD", "MLFLOW_TRACKING_TOKEN", "my_api_key"):
        with pytest.raises(SpecError, match="credential") as err:
            parse_grid(base % f"{{name: {name}, value: x}}")
        assert err.value.path == "cluster.pod.env[0].name"
    with pytest.raises(SpecError, match="valueFrom"):
        parse_grid(base % "{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}")
    assert parse_grid(base % "{name: PUSHGATEWAY_PASSWORD_FILE, value: /etc/pg/password}").cluster.pod.env


def test_pushgateway_credentials_come_from_a_secret_never_the_url(paper, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """Reproduction: ``cluster.pushgateway: http://user:pass@pg:9091`` went verbatim into every Job's env
    (PEFTSUM_PUSHGATEWAY, plain text in the manifest and ``kubectl describe``). Now rendering refuses it (exit 2 from
    validate --k8s / render / submit, naming the field, never echoing the password); the credentials come from
    ``cluster.pushgateway_secret``, whose ``username`` and ``password`` keys the pod reads as files."""
    from launcher.cli import main
    from peftsum.telemetry import gateway

    bad = dataclasses.replace(paper.cluster, pushgateway="http://alice:hunter2@pg.monitoring:9091")
    for build in (lambda: render.cell_job(paper, paper.cells[0], bad), lambda: render.aggregate_job(paper, bad)):
        with pytest.raises(SpecError, match="must not carry credentials") as err:
            build()
        assert err.value.path == "cluster.pushgateway" and "hunter2" not in str(err.value)
    grid_file = tmp_path / "paper-pg.yaml"
    text = (REPO / "examples" / "paper.yaml").read_text()
    assert "\n  s3_secret: peftsum-s3\n" in text
    grid_file.write_text(text.replace("\n  s3_secret: peftsum-s3\n", "\n  s3_secret: peftsum-s3\n"
                                      "  pushgateway: http://alice:hunter2@pg.monitoring:9091\n"))
    assert main(["validate", str(grid_file), "--k8s", "1.31"]) == 2
    out = capsys.readouterr()
    assert "cluster.pushgateway" in out.err and "paper-pg.yaml" in out.err
    assert "hunter2" not in out.out + out.err

    _, (job, _) = _variant(paper, pushgateway="http://pg.monitoring:9091", pushgateway_secret="pg-auth")  # noqa: S106
    assert "hunter2" not in json.dumps(job) and _env(job)["PEFTSUM_PUSHGATEWAY"]["value"] == "http://pg.monitoring:9091"
    env = _mounted_as_the_kubelet_would(job, {"peftsum-s3": {"credentials": "x"},
                                              "pg-auth": {"username": "cells", "password": "hunter2\n"}},
                                        tmp_path / "root")
    gw = gateway(env["PEFTSUM_PUSHGATEWAY"], env)  # what the cell's Pusher resolves in the pod
    assert (gw.url, gw.username, gw.password) == ("http://pg.monitoring:9091", "cells", "hunter2")
    assert "hunter2" not in repr(gw) + str(gw)
