"""Validate rendered objects against a Kubernetes version's real OpenAPI schema, offline.

The schemas are the ones ``kubernetes-validate`` ships (``v<version>-local-strict``: unknown fields are errors);
custom resources (PodMonitor, ServiceMonitor, Kueue LocalQueue) are checked against the CRD schemas kept in
``launcher/crds/``. ``kubernetes_validate.validate()`` re-reads and re-compiles the 1.3 MB definitions on every
call (about 14 ms per object, 14 s for a 1,000-cell grid), so this module loads each version's definitions once and
compiles each kind's schema once into a tree of small Python checks. The compiler handles exactly the JSON Schema
keywords these schemas use (type, properties, additionalProperties, items, required, enum, oneOf/anyOf/allOf,
$ref, string and number bounds) and refuses any other assertion keyword, so a schema it does not understand fails
loudly instead of passing silently. One deliberate difference from plain JSON Schema: ``format: int32`` and
``format: int64`` are enforced as ranges (JSON Schema treats ``format`` as an annotation, but the API server refuses
an out-of-range integer, e.g. ``ttlSecondsAfterFinished: 1e300``). ``tests/k8s/test_schema.py`` checks its
verdicts against ``jsonschema`` running kubernetes-validate's own code on valid and broken objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).resolve().parents[1] / "crds"
DEFAULT_VERSION = "1.31"

# Keywords that annotate but never reject (JSON Schema 2020-12 treats "format" as an annotation by default, and so
# does kubernetes-validate); anything else unknown is a compile error.
_ANNOTATIONS = {"description", "format", "$schema", "$id", "title", "default", "example", "examples", "discriminator",
                "fields-to-discriminateBy", "nullable"}

Check = Callable[[Any, str, list], None]  # check(value, path, errors): appends a message per violation


class SchemaError(Exception):
    """No schema for an object, or a schema this module cannot compile."""


@dataclass(frozen=True)
class Problem:
    """One object that does not validate: which object, and what is wrong where in it."""

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.message}"


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


def _same(a: Any, b: Any) -> bool:
    """JSON equality (``True`` is not ``1``)."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _accept(v: Any, p: str, errors: list) -> None:
    return None


def _at(p: str) -> str:
    return p or "<root>"


class Compiler:
    """Compiles JSON Schemas whose ``$ref``s point into one ``$defs`` table; each definition compiled once."""

    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.compiled: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        name = ref.rsplit("/", 1)[-1]
        if name not in self.defs:
            raise SchemaError(f"unresolvable $ref {ref!r}")
        if name not in self.compiled:
            table = self.compiled
            table[name] = lambda v, p, e: table[name](v, p, e)  # resolved late: definitions may be recursive
            table[name] = self.compile(self.defs[name])
        return self.compiled[name]

    def compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return _accept
        if schema is False:
            return lambda v, p, e: e.append(f"{_at(p)}: not allowed")
        checks: list[Check] = []
        for key, arg in schema.items():
            if key == "format" and arg in _INT_FORMATS:
                checks.append(_int_format(arg))
                continue
            if key in _ANNOTATIONS or key.startswith("x-"):
                continue
            if key == "$ref":
                checks.append(self.ref(arg))
            elif key == "type":
                checks.append(_type_check(arg))
            elif key == "enum":
                checks.append(_enum_check(arg))
            elif key == "required":
                checks.append(_required_check(arg))
            elif key == "properties":
                checks.append(self._properties(arg, schema.get("additionalProperties", True)))
            elif key == "additionalProperties":
                if "properties" not in schema:
                    checks.append(self._properties({}, arg))
            elif key == "items":
                checks.append(self._items(self.compile(arg)))
            elif key in ("oneOf", "anyOf", "allOf"):
                checks.append(self._combine(key, [self.compile(s) for s in arg]))
            elif key in ("minLength", "maxLength", "pattern", "minimum", "maximum", "minItems", "maxItems"):
                checks.append(_bound(key, arg))
            else:
                raise SchemaError(f"unsupported JSON Schema keyword {key!r}")
        checks = [c for c in checks if c is not _accept]
        if not checks:
            return _accept
        if len(checks) == 1:
            return checks[0]

        def every(v: Any, p: str, e: list) -> None:
            for check in checks:
                check(v, p, e)
        return every

    def _properties(self, props: dict[str, Any], extra: Any) -> Check:
        compiled = {k: self.compile(s) for k, s in props.items()}
        rest = None if extra is True or extra is None else self.compile(extra)
        closed = extra is False

        def check(v: Any, p: str, e: list) -> None:
            if type(v) is not dict:
                return
            for k, item in v.items():
                sub = compiled.get(k)
                if sub is not None:
                    if sub is not _accept:
                        sub(item, f"{p}.{k}" if p else k, e)
                elif closed:
                    e.append(f"{_at(p)}: additional property {k!r} is not allowed")
                elif rest is not None:
                    rest(item, f"{p}.{k}" if p else k, e)
        return check

    @staticmethod
    def _items(sub: Check) -> Check:
        def check(v: Any, p: str, e: list) -> None:
            if type(v) is list:
                for i, item in enumerate(v):
                    sub(item, f"{p}[{i}]", e)
        return check

    @staticmethod
    def _combine(key: str, subs: list[Check]) -> Check:
        def check(v: Any, p: str, e: list) -> None:
            results = []
            for sub in subs:
                errs: list[str] = []
                sub(v, p, errs)
                results.append(errs)
            if key == "allOf":
                for errs in results:
                    e.extend(errs)
                return
            passed = sum(not errs for errs in results)
            if (key == "oneOf" and passed != 1) or (key == "anyOf" and passed == 0):
                detail = "; ".join(errs[0] for errs in results if errs)
                e.append(f"{_at(p)}: must match {'exactly one' if key == 'oneOf' else 'at least one'} schema of "
                         f"{key} ({detail or 'matches several'})")
        return check


_EXACT = {"object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
          "number": (int, float), "integer": (int,)}


def _type_check(arg: str | list[str]) -> Check:
    names = [arg] if isinstance(arg, str) else list(arg)
    exact = frozenset(t for n in names for t in _EXACT[n])  # JSON values have exactly these types (bool is not int)
    preds = [_TYPES[n] for n in names]

    def check(v: Any, p: str, e: list) -> None:
        if type(v) in exact:
            return
        for pred in preds:  # the rare cases: an integral float as integer, a dict/list subclass
            if pred(v):
                return
        e.append(f"{_at(p)}: {v!r} is not of type {' or '.join(names)}")
    return check


_INT_FORMATS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _int_format(fmt: str) -> Check:
    lo, hi = _INT_FORMATS[fmt]

    def check(v: Any, p: str, e: list) -> None:
        if _TYPES["number"](v) and not lo <= v <= hi:
            e.append(f"{_at(p)}: {v!r} is out of range for {fmt}")
    return check


def _enum_check(allowed: list[Any]) -> Check:
    def check(v: Any, p: str, e: list) -> None:
        if not any(_same(v, a) for a in allowed):
            e.append(f"{_at(p)}: {v!r} is not one of {allowed}")
    return check


def _required_check(required: list[str]) -> Check:
    def check(v: Any, p: str, e: list) -> None:
        if type(v) is dict:
            for k in required:
                if k not in v:
                    e.append(f"{_at(p)}: {k!r} is a required property")
    return check


def _bound(key: str, arg: Any) -> Check:
    rx = re.compile(arg) if key == "pattern" else None
    test: Callable[[Any], bool] = {
        "pattern": lambda v: isinstance(v, str) and rx is not None and not rx.search(v),
        "minLength": lambda v: isinstance(v, str) and len(v) < arg,
        "maxLength": lambda v: isinstance(v, str) and len(v) > arg,
        "minItems": lambda v: isinstance(v, list) and len(v) < arg,
        "maxItems": lambda v: isinstance(v, list) and len(v) > arg,
        "minimum": lambda v: _TYPES["number"](v) and v < arg,
        "maximum": lambda v: _TYPES["number"](v) and v > arg,
    }[key]

    def check(v: Any, p: str, e: list) -> None:
        if test(v):
            e.append(f"{_at(p)}: {v!r} violates {key} {arg!r}")
    return check


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


class Validators:
    """Every validator of one Kubernetes version, built on first use and reused (one instance per version)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.folder = _schema_dir(version)
        defs = json.loads((self.folder / "_definitions.json").read_text())["$defs"]
        self.compiler = Compiler(defs)
        self.kinds: dict[tuple[str, str], Check] = {}

    def for_object(self, obj: dict[str, Any]) -> Check:
        api, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api, str) or not isinstance(kind, str):
            raise SchemaError(f"object without apiVersion/kind: {str(obj)[:80]}")
        key = (api, kind)
        if key not in self.kinds:
            self.kinds[key] = self._build(api, kind)
        return self.kinds[key]

    def _build(self, api: str, kind: str) -> Check:
        crd = crd_schemas().get((api, kind))
        if crd is not None:
            return self.compiler.compile(crd)
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api)  # rbac.authorization.k8s.io/v1 → rbac-v1
        path = self.folder / f"{kind.lower()}-{group_version}.json"
        if not path.is_file():
            raise SchemaError(f"no schema for {kind} ({api}) in Kubernetes {self.version} and no CRD in {CRD_DIR}")
        return self.compiler.compile(json.loads(path.read_text()))

    def problems(self, obj: dict[str, Any]) -> list[Problem]:
        """Every schema violation of ``obj`` (empty when it is valid)."""
        name = str((obj.get("metadata") or {}).get("name", "?"))
        try:
            check = self.for_object(obj)
        except SchemaError as err:
            return [Problem(str(obj.get("kind")), name, str(err))]
        errors: list[str] = []
        check(obj, "", errors)
        return [Problem(obj["kind"], name, msg) for msg in errors]


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
            props["metadata"] = {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
            out[(api, kind)] = {**schema, "properties": props, "required": ["apiVersion", "kind", "metadata",
                                                                               *schema.get("required", [])]}
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
