"""The data contract: what a dataset row must be for a cell to train on it or score it. This is the one place that
decides; :func:`peftsum.data.load.load_split` applies it to every split a cell reads (hub, local files, ``s3://``
copies, synthetic), before the length filter, the grouping and the limit.

A row is a mapping with the dataset's ``source_column`` and ``summary_column`` (``id_column`` is optional).

**Errors** (:class:`DataError`, a :class:`peftsum.spec.SpecError`: the cell exits 2 and is never retried; the
message names the file, the line or row, the column and the fix):

- the file cannot be read: not UTF-8, a line that is not JSON, a CSV record with the wrong number of fields, an
  unclosed quote, a value that is not an object (``readers``);
- the split has no row at all (an empty file, only blank lines, a CSV with only its header);
- a column is missing: not among the file's columns, or absent from a row (``MissingColumn``);
- a source or summary that is neither text nor null (a number, a list, a mapping: the wrong column is mapped);
- an id that is not a string or an integer;
- two rows with the same id. Ids pair the examples of two cells (``peftsum.compare``) and hash what a cell used,
  so they are never renamed: fix them, or set ``id_column: null`` to number the rows;
- no usable row left once the rows below are dropped (``load_examples`` also refuses a split that the shared
  length filter empties).

**Dropped** (counted per reason, reported in result.json ``data.rows_dropped`` and logged): a source or summary
that is null (JSON ``null``, NaN, a missing Parquet value) — ``source_null`` / ``summary_null`` — or a string that
is empty after ``strip()`` (an empty CSV field too) — ``source_empty`` / ``summary_empty``. A row with both faults
counts once, under its source. The text of a kept row is used as written (not stripped).

An id that is null or empty, or a row without ``id_column``, gets ``<split>-<row number>`` (the row's position in the
split, counted before any drop, so dropping a row renumbers no other).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from peftsum.spec import SpecError
from peftsum.spec.cell import DatasetRef

DROP_REASONS = ("source_null", "source_empty", "summary_null", "summary_empty")
_UNSET = object()


@dataclass(frozen=True)
class Example:
    """One usable row: an id unique in its split, and a source and a summary that are non-empty text."""

    id: str
    source: str
    summary: str  # the reference (grouped: the first of ``references``)
    references: tuple[str, ...] = ()  # every reference of a grouped example; () = just ``summary``

    @property
    def refs(self) -> tuple[str, ...]:
        return self.references or (self.summary,)


class DataError(SpecError):
    """A dataset the user must fix (exit 2, never retried). ``str``: ``<file>: <where>: <what and the fix>``."""

    def __init__(self, message: str, file: str | None = None, where: str | None = None, value: Any = _UNSET) -> None:
        self.where = where
        super().__init__(where or "", None if value is _UNSET else value, message, file)
        self.value = value

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.where) if p]
        got = "" if self.value is _UNSET else f" (got {_short(self.value)})"
        return ": ".join([*parts, self.message]) + got


class MissingColumn(DataError, KeyError):
    """A source or summary column the file or a row lacks (a KeyError too, as before the contract existed)."""

    __str__ = DataError.__str__


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Rows(list):
    """A loader's rows (mappings) and where they came from, so every error can name the place.

    ``origin``: the file as the grid names it (or ``hub dataset …``); ``lines``: each row's line in that file (None:
    rows are named by index); ``columns``: the file's columns when it declares them (CSV header, Parquet schema, hub
    features), None when each row brings its own keys (JSON Lines)."""

    def __init__(self, rows: Iterable[Any] = (), origin: str = "", lines: list[int] | None = None,
                 columns: list[str] | None = None) -> None:
        super().__init__(rows)
        self.origin = origin
        self.lines = lines
        self.columns = columns

    def where(self, i: int) -> str:
        return f"line {self.lines[i]}" if self.lines is not None else f"row index {i}"


@dataclass
class Checked:
    """What the contract kept of a split's rows, and why it dropped the others."""

    examples: list[Example]  # in row order
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    read: int = 0  # rows looked at (the limit stops early)
    origin: str = ""


def origin_of(rows: Any, ref: DatasetRef, split: str) -> str:
    return getattr(rows, "origin", "") or f"dataset {ref.name!r} split {split!r}"


def _where(rows: Any, i: int) -> str:
    return rows.where(i) if isinstance(rows, Rows) else f"row index {i}"


def _roles(ref: DatasetRef) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("source", ref.source_column), ("summary", ref.summary_column)


def check_columns(rows: Any, ref: DatasetRef, split: str) -> None:
    """The file declares the source and summary columns (when it declares columns) and every row is a mapping with
    both, else a DataError naming the file, the row and the column."""
    origin = origin_of(rows, ref, split)
    columns = getattr(rows, "columns", None)
    if columns is not None:
        for role, col in _roles(ref):
            if col not in columns:
                raise MissingColumn(f"no column {col!r} (the dataset's {role}_column); the file's columns are "
                                    f"{sorted(columns)}: fix the file or set {role}_column to one of them", origin)
    for i, row in enumerate(rows):
        _check_row(row, ref, origin, _where(rows, i))


def _check_row(row: Any, ref: DatasetRef, origin: str, where: str) -> None:
    if not isinstance(row, Mapping):
        raise DataError("a row must be an object with the source and summary columns, e.g. "
                        f'{{"{ref.source_column}": "...", "{ref.summary_column}": "..."}}', origin, where, row)
    for role, col in _roles(ref):
        if col not in row:
            raise MissingColumn(f"no column {col!r} (the dataset's {role}_column) in this row, which has "
                                f"{sorted(map(str, row))}; every row needs both the source and the summary column",
                                origin, where)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any, role: str, col: str, origin: str, where: str) -> str | None:
    """The text, or None when the row is to be dropped (null or blank); a DataError for any other type."""
    if isinstance(value, str):
        return value if value.strip() else None
    if _is_null(value):
        return None
    raise DataError(f"column {col!r} (the {role}_column) must hold text (a string), not {type(value).__name__}: is "
                    f"{role}_column the right column?", origin, where, value)


def _reason(value: Any, role: str) -> str:
    return f"{role}_null" if _is_null(value) else f"{role}_empty"


def example_id(row: Mapping[str, Any], ref: DatasetRef, split: str, i: int, origin: str, where: str) -> str:
    value = row.get(ref.id_column) if ref.id_column else None
    if _is_null(value) or value == "":
        return f"{split}-{i}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"id column {ref.id_column!r} must hold a string or an integer, not "
                        f"{type(value).__name__}", origin, where, value)
    return str(value)


def check_rows(rows: Any, ref: DatasetRef, split: str, limit: int | None = None) -> Checked:
    """Apply the contract to a split's rows: the first ``limit`` usable examples, the drops by reason, or a
    DataError."""
    origin = origin_of(rows, ref, split)
    if not rows:
        raise DataError(f"no rows in the {split!r} split: add rows, or point the dataset at another file", origin)
    out = Checked([], {}, 0, origin)
    dropped: Counter = Counter()
    seen: dict[str, int] = {}
    if getattr(rows, "columns", None) is not None:
        check_columns(Rows(columns=rows.columns, origin=origin), ref, split)
    for i, row in enumerate(rows):
        if limit is not None and len(out.examples) >= limit:
            break
        out.read = i + 1
        where = _where(rows, i)
        _check_row(row, ref, origin, where)
        ex_id = example_id(row, ref, split, i, origin, where)
        if ex_id in seen:
            raise DataError(f"duplicate id {ex_id!r} (also at {_where(rows, seen[ex_id])}): ids pair the examples of "
                            f"two cells, so each must be unique; fix the {ref.id_column!r} column, or set id_column: "
                            "null to number the rows", origin, where)
        seen[ex_id] = i
        source_value, summary_value = row[ref.source_column], row[ref.summary_column]
        source = _text(source_value, "source", ref.source_column, origin, where)
        summary = _text(summary_value, "summary", ref.summary_column, origin, where)
        if source is None:
            dropped[_reason(source_value, "source")] += 1
        elif summary is None:
            dropped[_reason(summary_value, "summary")] += 1
        else:
            out.examples.append(Example(ex_id, source, summary))
    out.dropped = {r: dropped[r] for r in DROP_REASONS if dropped[r]}
    if not out.examples:
        raise DataError(f"no usable row in the {split!r} split: all {out.read} rows read were dropped ("
                        f"{describe(out.dropped, ref)}); a source and a summary must be non-empty text: fix the file, "
                        "or set source_column / summary_column to the columns that hold them", origin)
    return out


def describe(dropped: Mapping[str, int], ref: DatasetRef) -> str:
    """``summary column 'summ': 2 null, 1 empty`` for the reasons counted."""
    parts = []
    for role, col in _roles(ref):
        kinds = [f"{dropped[f'{role}_{k}']} {k}" for k in ("null", "empty") if dropped.get(f"{role}_{k}")]
        if kinds:
            parts.append(f"{role} column {col!r}: {', '.join(kinds)}")
    return "; ".join(parts) or "none"
