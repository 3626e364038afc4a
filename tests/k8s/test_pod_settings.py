"""``cluster.pod``: annotations, labels, affinity, plain env, volumes and mounts on every peftsum pod, validated in the
spec (exit 2 naming the field) and rendered whole through tojson into schema-valid Jobs."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest

from launcher.k8s import render, schema
from peftsum.spec import SpecError, parse_grid

FULL_POD = {
    "annotations": {"sidecar.istio.io/inject": "false", "example.com/note": "evil\nkind: Secret\n---\n{{ 7*7 }}"},
    "labels": {"team": "nlp", "cost-center": "ml-42"},
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1a"]}]}}]}},
    "env": [{"name": "HF_HUB_ENABLE_HF_TRANSFER", "value": "0"}, {"name": "NCCL_DEBUG", "value": "WARN"}],
    "volumes": [{"name": "ca-bundle", "configMap": {"name": "corp-ca"}},
                {"name": "aws-token", "projected": {"sources": [{"serviceAccountToken": {
                    "audience": "sts.amazonaws.com", "expirationSeconds": 3600, "path": "token"}}]}}],
    "volume_mounts": [{"name": "ca-bundle", "mountPath": "/etc/ssl/corp", "readOnly": True},
                      {"name": "aws-token", "mountPath": "/var/run/secrets/tokens", "readOnly": True}],
}
BASE = "name: g\nstore: s3://b/p\naxes: {model: [gpt2], method: [lora], dataset: [samsum]}\n"


def _grid(pod: dict, extra: str = ""):
    return parse_grid(BASE + f"cluster: {{image: registry.example/p:1, pod: {json.dumps(pod)}{extra}}}\n",
                      source="g.yaml")


def test_every_override_renders_into_a_valid_job() -> None:
    grid = _grid(FULL_POD)
    for job in (render.cell_job(grid, grid.cells[0], grid.cluster), render.aggregate_job(grid, grid.cluster)):
        assert kubernetes_validate.validate(job, "1.31", strict=True) == "1.31"
        assert schema.validate_all([job], "1.27") == []
        meta, pod = job["spec"]["template"]["metadata"], job["spec"]["template"]["spec"]
        assert FULL_POD["annotations"].items() <= meta["annotations"].items()  # the nasty value stays one value
        assert FULL_POD["labels"].items() <= meta["labels"].items()
        assert "team" not in job["metadata"]["labels"]  # pod settings: on the pods, not the Job
        assert meta["labels"]["peftsum.io/grid"] == "g"  # the launcher's own labels stay
        assert pod["affinity"] == FULL_POD["affinity"]
        container = pod["containers"][0]
        assert [e for e in container["env"] if e["name"] in ("HF_HUB_ENABLE_HF_TRANSFER", "NCCL_DEBUG")] == \
            FULL_POD["env"]
        assert all(v in pod["volumes"] for v in FULL_POD["volumes"])
        assert all(m in container["volumeMounts"] for m in FULL_POD["volume_mounts"])
        assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    # the grid's shared parse and a fresh render agree with overrides too
    assert render.cell_jobs(grid)[grid.cells[0].cell_id] == render.cell_job(grid, grid.cells[0], grid.cluster)


@pytest.mark.parametrize(("pod", "path"), [
    ({"labels": {"peftsum.io/grid": "x"}}, "cluster.pod.labels.peftsum.io/grid"),
    ({"labels": {"app.kubernetes.io/name": "x"}}, "cluster.pod.labels.app.kubernetes.io/name"),
    ({"labels": {"team": "has space"}}, "cluster.pod.labels.team"),
    ({"annotations": {"peftsum.io/job-hash": "x"}}, "cluster.pod.annotations.peftsum.io/job-hash"),
    ({"annotations": {"bad key!": "x"}}, "cluster.pod.annotations.bad key!"),
    ({"annotations": {"a": 1}}, "cluster.pod.annotations.a"),
    ({"affinity": {"nodeAfinity": {}}}, "cluster.pod.affinity.nodeAfinity"),
    ({"env": [{"name": "TMPDIR", "value": "/x"}]}, "cluster.pod.env[0].name"),
    ({"env": [{"name": "A", "value": 1}]}, "cluster.pod.env[0].value"),
    ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "cluster.pod.env[1].name"),
    ({"volumes": [{"name": "host", "hostPath": {"path": "/"}}]}, "cluster.pod.volumes[0]"),
    ({"volumes": [{"name": "cache", "emptyDir": {}}]}, "cluster.pod.volumes[0].name"),
    ({"volumes": [{"name": "peftsum-secret-s3", "emptyDir": {}}]}, "cluster.pod.volumes[0].name"),
    ({"volumes": [{"name": "a", "emptyDir": {}, "configMap": {"name": "x"}}]}, "cluster.pod.volumes[0]"),
    ({"volumes": [{"name": "a", "emptyDir": {}}], "volume_mounts": [{"name": "a", "mountPath": "/cache/x"}]},
     "cluster.pod.volume_mounts[0].mountPath"),
    ({"volumes": [{"name": "a", "emptyDir": {}}], "volume_mounts": [{"name": "a", "mountPath": "/"}]},
     "cluster.pod.volume_mounts[0].mountPath"),
    ({"volumes": [{"name": "a", "emptyDir": {}}], "volume_mounts": [{"name": "a", "mountPath": "rel"}]},
     "cluster.pod.volume_mounts[0].mountPath"),
    ({"volumes": [{"name": "a", "emptyDir": {}}],
      "volume_mounts": [{"name": "a", "mountPath": "/x", "mountPropagation": "Bidirectional"}]},
     "cluster.pod.volume_mounts[0].mountPropagation"),
    ({"volume_mounts": [{"name": "nope", "mountPath": "/x"}]}, "cluster.pod.volume_mounts[0].name"),
    ({"colour": "blue"}, "cluster.pod.colour"),
])
def test_bad_pod_settings_name_the_field(pod: dict, path: str) -> None:
    with pytest.raises(SpecError) as err:
        _grid(pod)
    assert err.value.path == path


def test_yaml_values_that_json_cannot_carry_are_refused() -> None:
    with pytest.raises(SpecError) as err:  # YAML reads an unquoted date as a datetime.date
        parse_grid(BASE + "cluster:\n  pod:\n    affinity: {nodeAffinity: {x: 2026-01-01}}\n")
    assert err.value.path == "cluster.pod.affinity.nodeAffinity.x"


def test_a_deep_affinity_error_fails_validate_k8s_and_submit_before_any_api_call(tmp_path: Path, cli_cluster,
                                                                                  capsys) -> None:
    from launcher.cli import main

    grid = tmp_path / "g.yaml"
    grid.write_text(BASE + "cluster:\n  image: registry.example/p:1\n  pod:\n    affinity:\n      nodeAffinity:\n"
                           "        requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: oops}\n")
    assert main(["validate", str(grid)]) == 0  # the spec checks the shape it knows; the schema the rest
    assert main(["validate", str(grid), "--k8s", "1.31"]) == 2
    assert "nodeSelectorTerms" in capsys.readouterr().err
    assert main(["submit", str(grid)]) == 2
    assert "nodeSelectorTerms" in capsys.readouterr().err and cli_cluster.calls == []
