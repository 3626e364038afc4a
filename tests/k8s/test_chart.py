"""charts/peftsum rendered by Helm's real engine (helm-python-sdk) with default and all-options values: every
built-in object passes Kubernetes 1.31's strict schema (kubernetes-validate), every custom resource its CRD schema
in launcher/crds/; the RBAC is least privilege; the dashboard queries only metric names the code defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from launcher.k8s import schema
from peftsum.telemetry import METRICS

CHART = Path(__file__).resolve().parents[2] / "charts" / "peftsum"
ALL_OPTIONS = {
    "namespace": {"create": True},
    "launcher": {"serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "x@y.iam"}},
                 "rbac": {"extraSubjects": [{"kind": "Group", "name": "ml-team",
                                             "apiGroup": "rbac.authorization.k8s.io"}]}},
    "pushgateway": {"enabled": True, "image": {"digest": "sha256:" + "a" * 64}},
    "monitoring": {"podMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                   "serviceMonitor": {"enabled": True}},
    "dashboard": {"annotations": {"grafana_folder": "peftsum"}},
    "cache": {"pvc": {"enabled": True, "storageClassName": "nfs-client"}},
    "kueue": {"localQueue": {"enabled": True, "clusterQueue": "gpu-queue"}},
}
CUSTOM = {"monitoring.coreos.com/v1", "kueue.x-k8s.io/v1beta1"}


def render(values: dict | None) -> list[dict]:
    with helm.Chart.load(CHART) as chart:
        out = chart.render(values, name="peftsum", namespace="peftsum")
    return [doc for text in out.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module", params=["default", "all-options"])
def objects(request: pytest.FixtureRequest) -> list[dict]:
    return render(None if request.param == "default" else ALL_OPTIONS)


def test_every_object_passes_its_schema(objects: list[dict]) -> None:
    assert objects
    for obj in objects:
        if obj["apiVersion"] in CUSTOM:
            assert schema.validators("1.31").problems(obj) == [], obj["kind"]
        else:
            assert kubernetes_validate.validate(obj, "1.31", strict=True) == "1.31", obj["kind"]
            assert schema.validators("1.31").problems(obj) == []


def test_default_and_all_options_render_the_expected_kinds() -> None:
    kinds = lambda objs: sorted(o["kind"] for o in objs)  # noqa: E731
    assert kinds(render(None)) == ["ConfigMap", "NetworkPolicy", "Role", "RoleBinding", "ServiceAccount"]
    assert kinds(render(ALL_OPTIONS)) == ["ConfigMap", "Deployment", "LocalQueue", "Namespace", "NetworkPolicy",
                                          "NetworkPolicy", "PersistentVolumeClaim", "PodMonitor", "Role",
                                          "RoleBinding", "Service", "ServiceAccount", "ServiceMonitor"]


def test_network_policy_denies_ingress_to_every_peftsum_pod(paper) -> None:
    """Default-deny ingress selects the cells, the aggregation Job and the Pushgateway (all part-of=peftsum); the
    Pushgateway's own policy opens only its port."""
    from launcher.k8s import render as render_jobs

    objects = render(ALL_OPTIONS)
    deny, gateway = (o for o in objects if o["kind"] == "NetworkPolicy")
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    selector = deny["spec"]["podSelector"]["matchLabels"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pods = [render_jobs.cell_job(paper, paper.cells[0], paper.cluster), render_jobs.aggregate_job(paper, paper.cluster),
            deployment]
    for obj in pods:
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), obj["metadata"]["name"]
    assert gateway["spec"]["podSelector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    assert gateway["spec"]["ingress"][0]["ports"] == [{"port": 9091, "protocol": "TCP"}]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "quay.io/prometheus/pushgateway@sha256:" + "a" * 64
    off = render({"networkPolicy": {"enabled": False}})
    assert "NetworkPolicy" not in {o["kind"] for o in off}


def test_rbac_is_least_privilege() -> None:
    role = next(o for o in render(None) if o["kind"] == "Role")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert rules == {(("batch",), ("jobs",)): {"create", "get", "list", "watch", "delete"},
                     (("",), ("pods", "pods/log")): {"get", "list", "watch"}}
    text = json.dumps(role["rules"])
    assert "*" not in text and "secrets" not in text


def test_namespace_carries_pod_security_labels() -> None:
    ns = next(o for o in render(ALL_OPTIONS) if o["kind"] == "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_chart_lints_clean() -> None:
    report = helm.lint(str(CHART), strict=True, kube_version="v1.31.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def undocumented_keys(text: str) -> list[str]:
    """Leaf keys of a values file without a `# --` comment right above them that do not belong to a documented
    value (e.g. the `requests` inside a documented `resources`); keys that only group others need none."""
    lines = text.splitlines()
    keys = []  # (index, indent, key, documented)
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][\w]*):", line)
        if m:
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --"):
                j -= 1
            keys.append((i, len(m.group(1)), m.group(2), j >= 0 and lines[j].strip().startswith("# --")))
    undocumented = []
    for n, (_, indent, key, documented) in enumerate(keys):
        is_parent = n + 1 < len(keys) and keys[n + 1][1] > indent
        ancestors = [k for k in keys[:n] if k[1] < indent]
        chain, level = [], indent
        for k in reversed(ancestors):
            if k[1] < level:
                chain.append(k)
                level = k[1]
        if not (documented or is_parent or any(k[3] for k in chain)):
            undocumented.append(key)
    return undocumented


def test_every_value_is_documented() -> None:
    assert undocumented_keys((CHART / "values.yaml").read_text()) == []
    assert undocumented_keys("a:\n  # -- doc\n  b: 1\n  c: 2\n# -- doc\nd:\n  e: 1\n") == ["c"]


def _queried_metrics(dashboard: dict) -> set[str]:
    texts = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    texts += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return {name for text in texts for name in re.findall(r"\bpeftsum_[a-z0-9_]+", text)}


def test_dashboard_queries_only_defined_metrics() -> None:
    cm = next(o for o in render(None) if o["kind"] == "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["peftsum.json"])
    used = _queried_metrics(dashboard)
    assert used, "the dashboard queries no metric"
    assert used <= set(METRICS), f"not in peftsum.telemetry.METRICS: {used - set(METRICS)}"
    # the panels the issue asks for are there
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Training progress", "Training tokens/s", "Training loss", "GPU memory peak", "GPU energy",
            "Phase durations", "Eval scores by method"} <= titles


def test_the_metric_check_can_fail() -> None:
    fake = {"panels": [{"targets": [{"expr": "rate(peftsum_not_a_metric_total[1m])"}]}], "templating": {"list": []}}
    assert not _queried_metrics(fake) <= set(METRICS)
