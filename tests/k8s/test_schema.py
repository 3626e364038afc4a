"""The validators of launcher.k8s.schema (jsonschema with two keyword wrappers) agree with kubernetes-validate's own
validate() on valid and broken objects, remember passes only, enforce int32/int64 ranges and know the CRDs kept in
the repo."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from launcher.k8s import render, schema


def _reference_ok(obj: dict) -> bool:
    try:
        kubernetes_validate.validate(obj, "1.31", strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.utils.SchemaNotFoundError):
        return False
    return True


def _mutations(job: dict) -> list[tuple[str, dict]]:
    def mutate(fn):
        obj = copy.deepcopy(job)
        fn(obj)
        return obj

    c = lambda o: o["spec"]["template"]["spec"]["containers"][0]  # noqa: E731
    return [
        ("unknown field", mutate(lambda o: c(o).__setitem__("gpu", 1))),
        ("unknown top-level field", mutate(lambda o: o.__setitem__("extra", {}))),
        ("wrong type", mutate(lambda o: o["spec"].__setitem__("backoffLimit", "3"))),
        ("bool as integer", mutate(lambda o: o["spec"].__setitem__("backoffLimit", True))),
        ("missing required", mutate(lambda o: c(o).pop("name"))),
        ("missing rule action", mutate(lambda o: o["spec"]["podFailurePolicy"]["rules"][0].pop("action"))),
        ("bad apiVersion enum", mutate(lambda o: o.__setitem__("apiVersion", "batch/v2"))),
        ("label value not a string", mutate(lambda o: o["metadata"]["labels"].__setitem__("x", 1))),
        ("quantity as list (oneOf)", mutate(lambda o: c(o)["resources"]["limits"].__setitem__("cpu", [1]))),
        ("int-or-string ok", mutate(lambda o: c(o)["resources"]["limits"].__setitem__("cpu", 2))),
        ("null allowed", mutate(lambda o: o["spec"].__setitem__("activeDeadlineSeconds", None))),
        ("env var without name", mutate(lambda o: c(o)["env"].append({"value": "x"}))),
    ]


def test_agrees_with_jsonschema_on_valid_and_broken_jobs(paper) -> None:
    job = render.cell_job(paper, paper.cells[0], paper.cluster)
    vals = schema.validators("1.31")
    assert vals.problems(job) == [] and _reference_ok(job)
    for label, obj in _mutations(job):
        ours = vals.problems(obj)
        assert (not ours) == _reference_ok(obj), f"{label}: ours={ours}"


def test_problems_name_the_path(paper) -> None:
    job = render.cell_job(paper, paper.cells[0], paper.cluster)
    job["spec"]["template"]["spec"]["containers"][0]["gpu"] = 1
    [problem] = schema.validate_all([job])
    assert "spec.template.spec.containers[0]" in str(problem) and "'gpu'" in str(problem)
    assert str(problem).startswith(f"Job/{job['metadata']['name']}:")


def test_validators_are_built_once() -> None:
    assert schema.validators("1.31") is schema.validators("1.31")


@pytest.mark.parametrize("version", ["1.19", "banana", "9.99"])
def test_unknown_version_is_a_clear_error(version: str) -> None:
    with pytest.raises(schema.SchemaError, match="Kubernetes"):
        schema.validators(version)


def test_unknown_kind_is_a_problem_not_a_pass() -> None:
    [problem] = schema.validate_all([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])
    assert "no schema for Widget" in problem.message


def test_a_remembered_pass_never_hides_an_error(paper) -> None:
    """A value that passed is skipped next time; a broken copy of it is a new value and is checked in full, in
    whichever order the two come."""
    job = render.cell_job(paper, paper.cells[0], paper.cluster)
    broken = copy.deepcopy(job)
    broken["spec"]["template"]["spec"]["containers"][0]["env"][0]["valeu"] = "typo"
    for order in ([job, broken], [broken, job]):
        schema.validators("1.31").passed.clear()
        problems = schema.validate_all(order)
        assert [p.message for p in problems] == [
            "spec.template.spec.containers[0].env[0]: Additional properties are not allowed ('valeu' was unexpected)"]
    assert schema.validators("1.31").passed  # the shared parts were remembered


@pytest.mark.parametrize(("field", "value", "fmt"), [
    ("backoffLimit", 2**31, "int32"), ("backoffLimit", -(2**31) - 1, "int32"), ("backoffLimit", 1e300, "int32"),
    ("activeDeadlineSeconds", 2**63, "int64")])
def test_integer_formats_are_ranges(paper, field: str, value: float, fmt: str) -> None:
    job = render.cell_job(paper, paper.cells[0], paper.cluster)
    job["spec"][field] = value
    assert [p.message for p in schema.validate_all([job])] == [f"spec.{field}: {value!r} is out of range for {fmt}"]


def test_crds_are_strict() -> None:
    vals = schema.validators("1.31")
    pm = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "m"},
          "spec": {"selector": {"matchLabels": {"app": "x"}}, "podMetricsEndpoints": [{"port": "http"}]}}
    assert vals.problems(pm) == []
    pm["spec"]["podMetricsEndpoints"][0]["prot"] = "typo"
    assert "'prot' was unexpected" in vals.problems(pm)[0].message
    sm = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "s"},
          "spec": {"endpoints": [{"port": "http", "interval": "30 seconds"}], "selector": {}}}
    assert "interval" in vals.problems(sm)[0].message
    lq = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue", "metadata": {"name": "q"},
          "spec": {"clusterQueue": "cluster-queue"}}
    assert vals.problems(lq) == []
    lq["metadata"]["nam"] = "typo"  # ObjectMeta comes from the Kubernetes schema, strict too
    assert vals.problems(lq)
