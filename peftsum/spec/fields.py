"""Typed, range-checked settings fields and the one function that builds a frozen dataclass from user data.

Every settings section (train/eval/data) and every method's parameters are frozen dataclasses whose fields are
declared with :func:`setting`: the annotation says what a field holds (``bool``, ``int``, ``float``, ``str``,
``tuple[str, ...]``, ``| None`` when null is allowed, ``| Literal["auto"]`` when auto is), the :class:`Setting`
says how it is checked and documented. :func:`build` turns a user mapping into an instance, rejecting unknown keys,
wrong types and out-of-range values with a :class:`SpecError` that names the field path. The same declarations
render the grid.yaml reference (``docs/grid-reference.md``), so code and docs cannot drift.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from peftsum.spec.errors import SpecError

T = TypeVar("T")

SETTING = "peftsum.setting"  # the dataclass field metadata key that holds a field's Setting
AUTO = Literal["auto"]  # in a field's annotation: a device-dependent value resolved at run time, hashed as written
KINDS = {bool: "bool", int: "int", float: "float", str: "string", tuple: "list[str]"}  # as the reference names them
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number"}  # as error messages name them


@dataclass(frozen=True)
class Setting:
    """How one settings field is checked and documented, besides its default and its annotation.

    Attributes:
        doc: one line for the reference docs.
        lo, hi: bounds of a number, inclusive unless ``lo_open``/``hi_open``.
        choices: allowed values of a string.
        check: for structured values (mappings, lists of mappings, values of several types): ``check(value, path)``
            validates and returns the normalised value, raising SpecError. The default of such a field must be
            ``None`` or a value the check would return.
        type_doc: how the reference docs describe a ``check``-ed value's type.
    """

    doc: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any, str], Any] | None = None
    type_doc: str | None = None

    def __post_init__(self) -> None:
        if self.check is not None and self.type_doc is None:
            raise TypeError(f"setting {self.doc!r}: a check needs a type_doc for the reference")  # a programming error


@dataclass(frozen=True)
class SettingField:
    """One field of a settings dataclass as validation and the reference see it: its declaration and what its
    annotation admits."""

    name: str
    default: Any
    setting: Setting
    kind: type | None  # bool, int, float, str or tuple (of strings); None where setting.check validates the value
    nullable: bool  # the annotation admits None
    auto: bool  # the annotation admits Literal["auto"]


def setting(default: Any, doc: str, **options: Any) -> Any:
    """Declare one validated field: ``default`` (a list is stored as a tuple) is used when neither preset nor user
    sets it; ``doc`` and ``options`` (the other attributes of :class:`Setting`) say how it is checked and
    documented."""
    return dataclasses.field(default=tuple(default) if isinstance(default, list) else default,
                             metadata={SETTING: Setting(doc, **options)})


@functools.cache
def setting_fields(cls: type) -> Mapping[str, SettingField]:
    """The fields of the settings dataclass ``cls``, by name in declaration order (their types read from the
    annotations once per class)."""
    hints = typing.get_type_hints(cls)
    return types.MappingProxyType({f.name: _field(cls, f, hints[f.name]) for f in dataclasses.fields(cls)})


def _field(cls: type, field: dataclasses.Field, hint: Any) -> SettingField:
    decl = field.metadata[SETTING]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    members = typing.get_args(hint) if union else (hint,)
    rest = [m for m in members if m is not type(None) and m != AUTO]
    if decl.check is not None:
        kind = None
    elif rest == [tuple[str, ...]]:
        kind = tuple
    elif len(rest) == 1 and rest[0] in (bool, int, float, str):
        kind = rest[0]
    else:  # a programming error, not user input
        raise TypeError(f"{cls.__name__}.{field.name}: unsupported setting type {hint!r} (give it a check)")
    return SettingField(field.name, field.default, decl, kind, type(None) in members, AUTO in members)


def check_value(field: SettingField, value: Any, path: str) -> Any:
    """Return ``value`` normalised (int→float where a number is wanted, list→tuple) or raise SpecError."""
    decl, kind = field.setting, field.kind
    if value is None:
        if field.nullable:
            return None
        raise SpecError(path, value, "must not be null")
    if field.auto and value == "auto":
        return "auto"
    if decl.check is not None:
        return decl.check(value, path)
    if kind is bool:
        if not isinstance(value, bool):
            raise SpecError(path, value, f"must be {_TYPE_NAMES[bool]}")
        return value
    if kind in (int, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and isinstance(value, float):
            ok = math.isfinite(value) and (kind is float or value.is_integer())
        if not ok:
            extra = " or 'auto'" if field.auto else ""
            raise SpecError(path, value, f"must be {_TYPE_NAMES[kind]}{extra}")
        if kind is int:
            value = int(value)
        else:  # an integer literal beyond ~1.8e308 has no float: out of range, not a crash
            try:
                value = float(value)
            except OverflowError:
                _check_range(decl, value, path)  # a bounded field names its range
                raise SpecError(path, value, "is too large for a number (the largest is about 1.8e308)") from None
        _check_range(decl, value, path)
        return value
    if kind is str:
        if isinstance(value, bool) and decl.choices and "off" in decl.choices:
            value = "on" if value else "off"  # YAML 1.1 reads a bare on/off (and yes/no, true/false) as a boolean
        if not isinstance(value, str):
            raise SpecError(path, value, "must be a string")
        if decl.choices and value not in decl.choices:
            raise SpecError(path, value, f"must be one of {', '.join(map(str, decl.choices))}")
        return value
    # tuple: a non-empty list of strings
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise SpecError(path, value, "must be a non-empty list of strings")
    return tuple(value)


def _check_range(decl: Setting, value: float, path: str) -> None:
    lo, hi = decl.lo, decl.hi
    too_low = lo is not None and (value <= lo if decl.lo_open else value < lo)
    too_high = hi is not None and (value >= hi if decl.hi_open else value > hi)
    if too_low or too_high:
        raise SpecError(path, value, f"is out of range: must be in {describe_range(decl)}")


def describe_range(decl: Setting) -> str:
    """The bounds of a number as messages and the reference write them: ``[a, b]`` inclusive, ``(a, b)`` not."""
    lo, hi = decl.lo, decl.hi
    left = "(" if decl.lo_open or lo is None else "["
    right = ")" if decl.hi_open or hi is None else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def check_keys(cls: type, data: Any, path: str) -> dict[str, Any]:
    """Validate each key of a user mapping for ``cls`` on its own (known key, type, range); no cross-field checks.

    Returns the normalised values.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpecError(path, data, "must be a mapping")
    fields = setting_fields(cls)
    values = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise SpecError(sub, value, f"unknown key; known keys: {', '.join(sorted(fields))}")
        values[key] = check_value(fields[key], value, sub)
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
    for f in setting_fields(cls).values():
        decl = f.setting
        kind = decl.type_doc or KINDS[f.kind]  # a check always has a type_doc
        if decl.choices:
            kind = " \\| ".join(map(str, decl.choices))
        elif f.kind in (int, float) and (decl.lo is not None or decl.hi is not None):
            kind += " in " + describe_range(decl)
        if f.auto:
            kind += " \\| auto"
        if f.nullable:
            kind += " \\| null"
        default = f.default if not isinstance(f.default, tuple) else list(f.default)
        rows.append((f.name, kind, "null" if default is None else str(default), decl.doc))
    return rows
