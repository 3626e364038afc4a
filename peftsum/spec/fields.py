"""Typed, range-checked settings fields and the one function that builds a frozen dataclass from user data.

Every settings section (train/eval/data) and every method's parameters are frozen dataclasses whose fields are
declared with :func:`setting`. :func:`build` turns a user mapping into an instance, rejecting unknown keys, wrong
types and out-of-range values with a :class:`SpecError` that names the field path. The same metadata renders the
grid.yaml reference (``docs/grid.md``), so code and docs cannot drift.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from peftsum.spec.errors import SpecError

T = TypeVar("T")

_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list of strings"}


def setting(
    default: Any,
    doc: str,
    *,
    kind: type,
    lo: float | None = None,
    hi: float | None = None,
    hi_open: bool = False,
    lo_open: bool = False,
    choices: tuple[Any, ...] | None = None,
    nullable: bool = False,
    auto: bool = False,
    check: Any = None,
    type_doc: str | None = None,
) -> Any:
    """Declare one validated field.

    Args:
        default: value used when neither preset nor user sets it.
        doc: one line for the reference docs.
        kind: bool, int, float, str or list (of strings; stored as a tuple).
        lo, hi: inclusive bounds unless ``lo_open``/``hi_open``.
        choices: allowed values for strings.
        nullable: ``null`` is allowed.
        auto: the string ``"auto"`` is allowed (a device-dependent value resolved at run time, hashed as written).
        check: for structured values (``kind`` dict, or a list of mappings): ``check(value, path)`` validates and
            returns the normalised value, raising SpecError. The default of such a field must be ``None`` or a value
            the check would return.
        type_doc: how the reference docs describe a ``check``-ed value's type.
    """
    meta = dict(
        doc=doc,
        kind=kind,
        lo=lo,
        hi=hi,
        lo_open=lo_open,
        hi_open=hi_open,
        choices=choices,
        nullable=nullable,
        auto=auto,
        check=check,
        type_doc=type_doc,
    )
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default, metadata=meta)


def check_value(meta: Mapping[str, Any], value: Any, path: str) -> Any:
    """Return ``value`` normalised (int→float where a number is wanted, list→tuple) or raise SpecError."""
    if value is None:
        if meta["nullable"]:
            return None
        raise SpecError(path, value, "must not be null")
    if meta["auto"] and value == "auto":
        return "auto"
    if meta.get("check"):
        return meta["check"](value, path)
    kind = meta["kind"]
    if kind is bool:
        if not isinstance(value, bool):
            raise SpecError(path, value, f"must be {_TYPE_NAMES[bool]}")
        return value
    if kind in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, float):
            ok = math.isfinite(value) and (kind is float or value.is_integer())
        if not ok:
            extra = " or 'auto'" if meta["auto"] else ""
            raise SpecError(path, value, f"must be {_TYPE_NAMES[kind]}{extra}")
        if kind is int:
            value = int(value)
        else:  # an integer literal beyond ~1.8e308 has no float: out of range, not a crash
            try:
                value = float(value)
            except OverflowError:
                _check_range(meta, value, path)  # a bounded field names its range
                raise SpecError(path, value, "is too large for a number (the largest is about 1.8e308)") from None
        _check_range(meta, value, path)
        return value
    if kind is str:
        if isinstance(value, bool) and meta["choices"] and "off" in meta["choices"]:
            value = "on" if value else "off"  # YAML 1.1 reads a bare on/off (and yes/no, true/false) as a boolean
        if not isinstance(value, str):
            raise SpecError(path, value, "must be a string")
        if meta["choices"] and value not in meta["choices"]:
            raise SpecError(path, value, f"must be one of {', '.join(map(str, meta['choices']))}")
        return value
    if kind is list:
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
            raise SpecError(path, value, "must be a non-empty list of strings")
        return tuple(value)
    raise TypeError(f"unsupported setting kind {kind!r}")  # a programming error, not user input


def _check_range(meta: Mapping[str, Any], value: float, path: str) -> None:
    lo, hi = meta["lo"], meta["hi"]
    too_low = lo is not None and (value <= lo if meta["lo_open"] else value < lo)
    too_high = hi is not None and (value >= hi if meta["hi_open"] else value > hi)
    if too_low or too_high:
        raise SpecError(path, value, f"is out of range: must be in {describe_range(meta)}")


def describe_range(meta: Mapping[str, Any]) -> str:
    lo, hi = meta["lo"], meta["hi"]
    left = "(" if meta["lo_open"] or lo is None else "["
    right = ")" if meta["hi_open"] or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def check_keys(cls: type, data: Any, path: str) -> dict[str, Any]:
    """Validate each key of a user mapping for ``cls`` on its own (known key, type, range); no cross-field checks.

    Returns the normalised values.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpecError(path, data, "must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise SpecError(sub, value, f"unknown key; known keys: {', '.join(sorted(fields))}")
        values[key] = check_value(fields[key].metadata, value, sub)
    return values


def build(cls: type[T], data: Any, path: str) -> T:
    """Instantiate the settings dataclass ``cls`` from a user mapping, validating every key."""
    values = check_keys(cls, data, path)
    try:
        return cls(**values)
    except SpecError as err:  # cross-field checks in __post_init__ report relative paths
        if path and not err.path.startswith(path):
            err.path = f"{path}.{err.path}" if err.path else path
        raise


def merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Shallow merge of settings mappings, later layers win (preset < defaults < dataset < model < method < include)."""
    out: dict[str, Any] = {}
    for layer in layers:
        if layer:
            out.update(layer)
    return out


def reference_rows(cls: type) -> list[tuple[str, str, str, str]]:
    """(key, type/range, default, doc) rows for the generated reference docs."""
    rows = []
    for f in dataclasses.fields(cls):
        m = f.metadata
        names = {bool: "bool", int: "int", float: "float", str: "string", list: "list[str]"}
        kind = m.get("type_doc") or names[m["kind"]]
        if m["choices"]:
            kind = " \\| ".join(map(str, m["choices"]))
        elif m["kind"] in (int, float) and (m["lo"] is not None or m["hi"] is not None):
            kind += " in " + describe_range(m)
        if m["auto"]:
            kind += " \\| auto"
        if m["nullable"]:
            kind += " \\| null"
        default = f.default if not isinstance(f.default, tuple) else list(f.default)
        rows.append((f.name, kind, "null" if default is None else str(default), m["doc"]))
    return rows
