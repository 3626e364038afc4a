"""Validate rendered objects against a Kubernetes version's real OpenAPI schema, offline, with ``jsonschema``.

The schemas are the ones ``kubernetes-validate`` ships (``v<version>-local-strict``: unknown fields are errors);
custom resources (PodMonitor, ServiceMonitor, Kueue LocalQueue) are checked against the CRD schemas kept in
``launcher/crds/``. The validator is the one ``kubernetes_validate.validate()`` uses: ``jsonschema``'s Draft 2020-12
validator, ``$ref`` resolved through a ``referencing.Registry`` holding the version's definitions. That function
re-reads the 1.3 MB definitions and rebuilds the validator on every call (~14 ms per object); here each version's
registry is built once and each (version, kind) validator once.

Two keywords behave differently from the library's, both small wrappers:

* ``format``: ``int32`` and ``int64`` are enforced as ranges (JSON Schema treats ``format`` as an annotation, but
  the API server refuses an out-of-range integer, e.g. ``ttlSecondsAfterFinished: 1e300``); every other format
  stays an annotation, as in kubernetes-validate, which passes no format checker.
* ``$ref``: a referenced schema's verdict on a value (an object or array) is remembered when it passes, keyed by
  the referring schema and the SHA-256 of the value's canonical JSON, so the parts a grid's Jobs share (env,
  resources, volumes, security contexts: about half the schema's work on each Job) are checked once. Verdicts are a
  function of the value alone (these schemas use no ``unevaluated*`` or ``$dynamicRef``); failures are never
  remembered, so every error is found and reported as ``jsonschema`` reports it. Validating the 1,000 cell Jobs of
  ``bench/validate_k8s_bench.py``'s grid took 2.1 s of CPU with plain ``jsonschema``, 0.9-1.3 s with this
  (2026-12-06, 2 shared cores): the difference between ``launcher validate --k8s`` fitting its 3 s or not.

``tests/k8s/test_schema.py`` checks the verdicts against ``kubernetes_validate.validate()`` itself on valid and
broken objects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

CRD_DIR = Path(__file__).resolve().parents[1] / "crds"
DEFAULT_VERSION = "1.31"
DEFINITIONS = "https://kubernetes.io/api/_definitions.json"  # the $id of every version's _definitions.json
OBJECT_META = f"{DEFINITIONS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
PASSED_MAX = 2**16  # remembered passing (schema, value) pairs per version; cleared when full
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


class SchemaError(Exception):
    """No schema for an object, or no schemas for a Kubernetes version."""


@dataclass(frozen=True)
class Problem:
    """One object that does not validate: which object, and what is wrong where in it."""

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.message}"


def int_format(validator: Any, fmt: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The ``format`` keyword: a number outside ``int32``/``int64``'s range is an error; other formats annotate."""
    bounds = INT_RANGES.get(fmt)
    if bounds and validator.is_type(instance, "number") and not bounds[0] <= instance <= bounds[1]:
        yield ValidationError(f"{instance!r} is out of range for {fmt}")


def remembering_ref(ref_keyword: Callable[..., Any], passed: set[tuple[int, bytes]]) -> Callable[..., Any]:
    """``ref_keyword`` (the library's ``$ref``) that skips an object or array already known to pass ``ref``."""

    def ref(validator: Any, ref: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
        if type(instance) is not dict and type(instance) is not list:
            yield from ref_keyword(validator, ref, instance, schema)
            return
        key = (id(schema), hashlib.sha256(_canonical(instance).encode()).digest())  # schema: kept alive, id stable
        if key in passed:
            return
        errors = list(ref_keyword(validator, ref, instance, schema))
        if not errors:
            if len(passed) >= PASSED_MAX:
                passed.clear()
            passed.add(key)
        yield from errors
    return ref


def _schema_dir(version: str) -> Any:
    version = version.removeprefix("v")
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?", version)
    if not m:
        raise SchemaError(f"not a Kubernetes version: {version!r} (expected e.g. 1.31)")
    root = files("kubernetes_validate") / "kubernetes-json-schema"
    folder = root / f"v{m.group(1)}.{m.group(2)}.0-local-strict"
    if not folder.is_dir():
        known = sorted(p.name.split("-")[0].removeprefix("v").removesuffix(".0") for p in root.iterdir()
                       if p.name.endswith("-local-strict"))
        raise SchemaError(f"no schemas for Kubernetes {version}; kubernetes-validate knows {', '.join(known)}")
    return folder


def error_path(error: ValidationError) -> str:
    """Where in the object: ``spec.template.spec.containers[0]`` (``<root>`` for the object itself)."""
    out = ""
    for step in error.absolute_path:
        out += f"[{step}]" if isinstance(step, int) else f".{step}" if out else str(step)
    return out or "<root>"


def error_message(error: ValidationError) -> str:
    """``path: reason``; for a value that fits none of ``anyOf``/``oneOf``, each alternative's reason too."""
    reasons = sorted({sub.message for sub in error.context or ()})
    return f"{error_path(error)}: {error.message}" + (f" ({'; '.join(reasons)})" if reasons else "")


class Validators:
    """Every validator of one Kubernetes version, built on first use and reused (one instance per version)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.folder = _schema_dir(version)
        definitions = json.loads((self.folder / "_definitions.json").read_text())
        self.registry: Registry = Resource.from_contents(definitions) @ Registry()
        self.passed: set[tuple[int, bytes]] = set()
        self.kinds: dict[tuple[str, str], Any] = {}

    def for_object(self, obj: dict[str, Any]) -> Any:
        """The ``jsonschema`` validator of ``obj``'s apiVersion and kind (SchemaError when there is none)."""
        api, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api, str) or not isinstance(kind, str):
            raise SchemaError(f"object without apiVersion/kind: {str(obj)[:80]}")
        key = (api, kind)
        if key not in self.kinds:
            self.kinds[key] = self._build(self._schema(api, kind))
        return self.kinds[key]

    def _schema(self, api: str, kind: str) -> dict[str, Any]:
        crd = crd_schemas().get((api, kind))
        if crd is not None:
            return crd
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api)  # rbac.authorization.k8s.io/v1 → rbac-v1
        path = self.folder / f"{kind.lower()}-{group_version}.json"
        if not path.is_file():
            raise SchemaError(f"no schema for {kind} ({api}) in Kubernetes {self.version} and no CRD in {CRD_DIR}")
        return json.loads(path.read_text())

    def _build(self, schema: dict[str, Any]) -> Any:
        base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        keywords = {"format": int_format, "$ref": remembering_ref(base.VALIDATORS["$ref"], self.passed)}
        return jsonschema.validators.extend(base, keywords)(schema, registry=self.registry)

    def problems(self, obj: dict[str, Any]) -> list[Problem]:
        """Every schema violation of ``obj`` (empty when it is valid)."""
        name = str((obj.get("metadata") or {}).get("name", "?"))
        try:
            validator = self.for_object(obj)
        except SchemaError as err:
            return [Problem(str(obj.get("kind")), name, str(err))]
        return [Problem(obj["kind"], name, error_message(e)) for e in validator.iter_errors(obj)]


@cache
def validators(version: str = DEFAULT_VERSION) -> Validators:
    """The shared validators of ``version`` (built once per process)."""
    return Validators(version)


@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → JSON Schema of every served version of the CRDs in ``launcher/crds/``.

    A CRD's ``openAPIV3Schema`` describes spec/status; the object's ``metadata`` is Kubernetes' ObjectMeta, and
    ``apiVersion``/``kind`` must name the CRD. Unknown fields are errors (as kubectl's strict field validation).
    """
    out = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            api = f"{group}/{version['name']}"
            schema = _strict(dict(version["schema"]["openAPIV3Schema"]))
            props = dict(schema.get("properties", {}))
            props["apiVersion"] = {"type": "string", "enum": [api]}
            props["kind"] = {"type": "string", "enum": [kind]}
            props["metadata"] = {"$ref": OBJECT_META}
            out[(api, kind)] = {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema",
                                "properties": props,
                                "required": ["apiVersion", "kind", "metadata", *schema.get("required", [])]}
    return out


def _strict(schema: Any) -> Any:
    """Add ``additionalProperties: false`` wherever an object lists its properties and says nothing else."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (_strict(v) if k not in ("properties",) else {n: _strict(s) for n, s in v.items()})
           for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out \
            and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def validate_all(objects: list[dict[str, Any]], version: str = DEFAULT_VERSION) -> list[Problem]:
    """Problems of every object against ``version`` (raises SchemaError for an unknown version)."""
    vals = validators(version)
    return [problem for obj in objects for problem in vals.problems(obj)]
