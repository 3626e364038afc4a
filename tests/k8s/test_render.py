"""Rendering: the paper grid's Jobs pass Kubernetes 1.31's strict schema, render byte-identically, match the golden
files, and carry the batch-operator settings of the issue; user text cannot inject YAML.

Regenerate the golden files after an intended change with ``PEFTSUM_REGEN_GOLDEN=1 pytest tests/k8s``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from launcher.k8s import names, render, schema, templates
from peftsum.spec import SpecError, parse_grid

GOLDEN = Path(__file__).with_name("golden")
REGEN = os.environ.get("PEFTSUM_REGEN_GOLDEN") == "1"


def _container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_paper_renders_36_jobs_valid_for_kubernetes_1_31(paper) -> None:
    jobs = render.cell_jobs(paper)
    objects = [*jobs.values(), render.aggregate_job(paper, paper.cluster)]
    assert len(jobs) == 36
    for obj in objects:  # kubernetes-validate's own entry point, strict (unknown fields are errors)
        assert kubernetes_validate.validate(obj, "1.31", strict=True) == "1.31"
        # the hash annotation is job_hash's definition over the dict
        assert obj["metadata"]["annotations"][names.ANNOTATION_HASH] == render.job_hash(obj)
    assert len({o["metadata"]["annotations"][names.ANNOTATION_HASH] for o in objects}) == 37


@pytest.mark.parametrize("version", ["1.27", "1.29", "1.33", "1.37"])
def test_jobs_are_valid_for_other_kubernetes_versions(paper, version: str) -> None:
    objects = [*render.cell_jobs(paper).values(), render.aggregate_job(paper, paper.cluster)]
    assert schema.validate_all(objects, version) == []
    assert kubernetes_validate.validate(objects[0], version, strict=True)


def test_render_command_output_is_byte_identical(paper, tmp_path: Path) -> None:
    first = render.write_manifests(paper, paper.cluster, tmp_path / "a")
    second = render.write_manifests(paper, paper.cluster, tmp_path / "b")
    assert len(first) == 37
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
    for path in first:  # each file is one appliable document
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1 and docs[0]["kind"] == "Job"


def _stable(text: str, cell_id: str | None = None) -> str:
    """The manifest with its cell id, job hash and cells digest replaced by placeholders: the golden files pin the
    Job's structure and values, not the ids, which change with every new Cell setting (the ids and hashes are
    checked by the tests above)."""
    if cell_id:
        text = text.replace(cell_id, "<cell_id>")
    text = re.sub(rf"({re.escape(names.GROUP)}/cells-digest: )[0-9a-f]{{16}}", r"\1<cells_digest>", text)
    return re.sub(rf"({re.escape(names.ANNOTATION_HASH)}: )[0-9a-f]{{16}}", r"\1<job_hash>", text)


@pytest.mark.parametrize(("model", "method", "dataset"), [("gpt2", "full", "dialogsum-test"),
                                                         ("t5-base", "lora", "cnn_dailymail")])
def test_golden(paper, model: str, method: str, dataset: str) -> None:
    cell = next(c for c in paper.cells if c.labels["model"] == model and c.labels["method"] == method
                and c.labels["dataset"] == dataset)
    text = _stable(render.to_yaml(render.cell_job(paper, cell, paper.cluster)), cell.cell_id)
    path = GOLDEN / f"paper-{model}-{method}-{dataset}.yaml"
    if REGEN:
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with PEFTSUM_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{path} differs; if intended, regenerate with PEFTSUM_REGEN_GOLDEN=1"


def test_aggregate_golden(paper) -> None:
    text = _stable(render.to_yaml(render.aggregate_job(paper, paper.cluster)))
    path = GOLDEN / "paper-aggregate.yaml"
    if REGEN:
        path.write_text(text)
    assert text == path.read_text()


def test_job_has_the_batch_operator_settings(paper) -> None:
    cell = paper.cells[0]
    job = render.cell_job(paper, cell, paper.cluster)
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert job["metadata"]["name"] == f"paper-{cell.cell_id}" and len(job["metadata"]["name"]) <= 63
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1] == {"action": "FailJob", "onExitCodes": {"containerName": "cell", "operator": "In", "values": [2]},
                        "onPodConditions": []}
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (3, 86400, 604800)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 300
    c = _container(job)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" == c["resources"]["requests"]["nvidia.com/gpu"]
    # Pod Security "restricted"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", "/cache"} <= mounts
    env = {e["name"]: e for e in c["env"]}
    assert env["HF_HOME"]["value"] == "/cache/hf" and env["PEFTSUM_CACHE"]["value"] == "/cache/peftsum"
    assert env["PEFTSUM_IMAGE"]["value"] == paper.cluster.image and env["TMPDIR"]["value"] == "/tmp"
    # labels and verbatim annotations
    labels, ann = job["metadata"]["labels"], job["metadata"]["annotations"]
    assert labels[names.LABEL_GRID] == "paper" and labels[names.LABEL_CELL] == cell.cell_id
    assert labels["app.kubernetes.io/name"] == "peftsum"
    assert ann["peftsum.io/model"] == "gpt2" and ann[names.ANNOTATION_HASH] == render.job_hash(job)


def test_placement_and_queue(paper) -> None:
    cluster = dataclasses.replace(
        paper.cluster, node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, queue="team-a",
        tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
        priority_class="batch-low", cache_pvc="hf-cache", image_pull_secret="regcred",  # noqa: S106 - a name
        gpus=0,
        active_deadline_seconds=None, ttl_seconds_after_finished=None)
    job = render.cell_job(paper, paper.cells[0], cluster)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "batch-low" and pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert {"name": "cache", "persistentVolumeClaim": {"claimName": "hf-cache"}} in pod["volumes"]
    assert job["metadata"]["labels"][names.KUEUE_QUEUE] == "team-a" and job["spec"]["suspend"] is True
    assert "nvidia.com/gpu" not in _container(job)["resources"]["limits"]
    assert "activeDeadlineSeconds" not in job["spec"] and "ttlSecondsAfterFinished" not in job["spec"]
    assert kubernetes_validate.validate(job, "1.31", strict=True)


def test_shared_parse_equals_a_fresh_render(paper) -> None:
    """cell_jobs (one parse of the template for the grid) gives exactly what cell_job (a fresh render, parsed by
    YAML) gives, for every cell, and so does a skeleton of other shared values with other own values."""
    jobs = render.cell_jobs(paper)
    assert all(jobs[cell.cell_id] == render.cell_job(paper, cell, paper.cluster) for cell in paper.cells)
    own = {"name": "x", "labels": {"a": "b", "empty": ""}, "annotations": {"c": "d\ne"}, "args": ["x", "y: z", ""],
           "pod_labels": {"a": "b"}, "pod_annotations": {"c": "d\ne", "e": "f"}}
    for image in ("registry.example/a:1", "registry.example/b:2"):
        shared = render.cell_shared(paper, dataclasses.replace(paper.cluster, image=image))
        filled = templates.Skeleton(templates.CELL_TEMPLATE, shared, render.OWN_VALUES).fill(**own)
        assert filled == templates.render_text(templates.CELL_TEMPLATE, **shared, **own)
        assert _container(filled)["image"] == image


@pytest.mark.parametrize(("source", "message"), [
    ("name: {{ (name ~ '-x') | tojson }}\n", "combined with other text"),  # edited
    ("{{ name | tojson }}: 1\n", "combined with other text"),  # a key
    ("name: {{ 'x' | tojson }}\n", "never placed whole")])  # not placed at all
def test_a_template_that_does_not_place_a_value_whole_is_refused(source: str, message: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import jinja2

    env = jinja2.Environment(loader=jinja2.DictLoader({"t": source}))  # noqa: S701
    env.filters["tojson"] = templates.yaml_json
    monkeypatch.setattr(templates, "_env", lambda: env)
    with pytest.raises(ValueError, match=message):
        templates.Skeleton("t", {}, ("name",))


NASTY = ['evil\nkind: Secret\n---\napiVersion: v1', 'quote " and \' here', 'colon: value # comment',
         '{{ 7*7 }} {% if x %}', '- [a, b]\n  c: &anchor d', 'emoji 😀 and \x85 next \u2028 line', 'trailing\\']


@pytest.mark.parametrize("text", NASTY)
def test_injection_is_rendered_as_one_value(text: str) -> None:
    grid = parse_grid(f"""
name: inject
store: s3://b/p
cluster: {{image: registry.example/peftsum:1}}
axes: {{model: [mymodel], method: [lora], dataset: [mydata]}}
models:
  mymodel: {{family: causal, context: 1024, hub_id: {yaml_str(text)}}}
datasets:
  mydata: {{source: hub, id: {yaml_str(text)}, kind: news, source_column: a, summary_column: b}}
""")
    job = render.cell_job(grid, grid.cells[0], grid.cluster)
    assert job["kind"] == "Job"
    ann = job["metadata"]["annotations"]
    assert ann["peftsum.io/model-id"] == text and ann["peftsum.io/dataset-id"] == text
    text_out = render.to_yaml(job)
    docs = list(yaml.safe_load_all(text_out))
    assert len(docs) == 1 and docs[0] == job
    assert kubernetes_validate.validate(job, "1.31", strict=True)
    # the grid's shared parse (values put in as JSON) agrees with the fresh render parsed by YAML
    assert render.cell_jobs(grid)[grid.cells[0].cell_id] == job


def yaml_str(text: str) -> str:
    """A YAML scalar for any text (JSON's ``\\ud83d`` surrogate escapes would not survive PyYAML)."""
    return templates.yaml_json(text)


@pytest.mark.parametrize("name", ['bad\nname', 'a"b', 'x: y', '{{ x }}'])
def test_injection_through_axis_names_is_rejected(name: str) -> None:
    import json

    with pytest.raises(SpecError) as err:
        parse_grid(f"name: g\naxes: {{model: [{json.dumps(name)}], method: [lora], dataset: [samsum]}}\n")
    assert err.value.path == "axes.model[0]" and err.value.value == name


@pytest.mark.parametrize(("key", "value", "path"), [
    ("namespace", '"Bad_NS"', "cluster.namespace"),
    ("image", '"img:1\\nkind: Secret"', "cluster.image"),
    ("memory", '"lots"', "cluster.memory"),
    ("pushgateway", '"http://x:1/\\"q"', "cluster.pushgateway"),
    ("node_selector", '{"a b": "c"}', "cluster.node_selector.a b"),
    ("tolerations", '[{"key": "k", "operator": "Sometimes"}]', "cluster.tolerations[0].operator"),
    ("tolerations", '[{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]',
     "cluster.tolerations[0].tolerationSeconds"),
    ("gpus", "2", "cluster.gpus"),
    ("s3_secret", '"my secret"', "cluster.s3_secret"),
    # Kubernetes stores these as int32 (ttlSecondsAfterFinished, backoffLimit) or int64: range-checked here, so
    # `validate` names the field instead of the API server refusing the Job (issue 15 item 12)
    ("ttl_seconds_after_finished", "1.0e+300", "cluster.ttl_seconds_after_finished"),
    ("ttl_seconds_after_finished", "2147483648", "cluster.ttl_seconds_after_finished"),
    ("active_deadline_seconds", "1.0e+300", "cluster.active_deadline_seconds"),
    ("active_deadline_seconds", "9223372036854775808", "cluster.active_deadline_seconds"),
    ("backoff_limit", "1.0e+10", "cluster.backoff_limit"),
    ("termination_grace_period_seconds", "1.0e+300", "cluster.termination_grace_period_seconds"),
    ("report_wait_seconds", "1.0e+300", "cluster.report_wait_seconds"),
    ("tolerations", '[{"key": "k", "effect": "NoExecute", "tolerationSeconds": 1.0e+300}]',
     "cluster.tolerations[0].tolerationSeconds"),
    ("service_account", '"Bad SA"', "cluster.service_account"),
    ("s3_endpoint", '"minio:9000"', "cluster.s3_endpoint"),
])
def test_cluster_values_are_validated(key: str, value: str, path: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_grid(f"name: g\naxes: {{model: [gpt2], method: [lora], dataset: [samsum]}}\n"
                   f"cluster: {{{key}: {value}}}\n")
    assert err.value.path == path


def test_int32_limits_pass_and_the_schema_refuses_beyond_them(paper) -> None:
    """The largest values the spec accepts render valid Jobs; one past int32 is refused by the schema check too
    (format int32 enforced), so no path lets an out-of-range integer reach the API server."""
    edge = dataclasses.replace(paper.cluster, ttl_seconds_after_finished=2**31 - 1, active_deadline_seconds=2**63 - 1)
    assert schema.validate_all([render.cell_job(paper, paper.cells[0], edge)]) == []
    beyond = dataclasses.replace(paper.cluster, ttl_seconds_after_finished=2**31)
    problems = schema.validate_all([render.cell_job(paper, paper.cells[0], beyond)])
    assert [p.message for p in problems] == ["spec.ttlSecondsAfterFinished: 2147483648 is out of range for int32"]


def test_cpu_number_becomes_a_quantity_string() -> None:
    g = parse_grid("name: g\naxes: {model: [gpt2], method: [lora], dataset: [samsum]}\ncluster: {cpu: 8}\n")
    assert g.cluster.cpu == "8"
