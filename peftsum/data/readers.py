"""Local dataset files → rows, with every fault named by file and line (what the data contract calls "cannot be
read"; see ``peftsum.data.contract``).

JSON Lines and CSV are read here rather than through ``datasets.load_dataset``: that loader reports a bad line as
``DatasetGenerationError`` with no file or line, an empty file as ``StopIteration``, blank lines as ``Instruction
"train" corresponds to no data!``, and its CSV path (pandas) turns an empty field into NaN (then the text ``"nan"``)
and ``007`` into ``7``. Here values stay as written: JSON types as JSON has them, CSV fields as strings.

- ``.jsonl`` / ``.json``: one JSON object per line (blank lines are skipped), or a ``.json`` file holding one JSON
  array of objects. UTF-8, a leading byte-order mark allowed.
- ``.csv``: a header line, then one record per row; commas separate, double quotes quote (a quoted field may span
  lines); every record has as many fields as the header. UTF-8, a leading byte-order mark allowed.
- ``.parquet``: read with pyarrow.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from peftsum.data.contract import DataError, Rows

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_UTF8_FIX = ("save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {name} > fixed{suffix}` (latin1 if it came from "
             "Excel or an older Windows tool)")
csv.field_size_limit(2**31 - 1)  # the default (128 KiB) is shorter than a long article


def read_rows(path: Path, shown: str, limit: int | None = None) -> Rows:
    """The first ``limit`` rows of ``path`` (all when None); ``shown`` is how errors name the file."""
    kind = FORMATS[path.suffix]
    if kind == "json":
        return _json(path, shown, limit)
    if kind == "csv":
        return _csv(path, shown, limit)
    return _parquet(path, shown, limit)


def _decode(raw: bytes, shown: str, path: Path, lineno: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8: byte 0x{raw[err.start]:02x} at column {err.start + 1} cannot be decoded; "
                        + _UTF8_FIX.format(name=path.name, suffix=path.suffix), shown, f"line {lineno}") from None
    return text.lstrip("\ufeff") if lineno == 1 else text


def _empty(path: Path, shown: str, what: str) -> DataError:
    size = path.stat().st_size
    state = "the file is empty (0 bytes)" if size == 0 else f"the file has {what}"
    return DataError(f"no rows: {state}; add rows, or remove the file if the split is not meant to exist", shown)


def _json(path: Path, shown: str, limit: int | None) -> Rows:
    rows, lines = [], []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            text = _decode(raw, shown, path, lineno)
            if not text.strip():
                continue
            if not rows and text.lstrip().startswith("[") and path.suffix == ".json":
                return _json_array(path, shown, limit)
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                raise DataError(f"not valid JSON ({err.msg} at column {err.colno}); each line must be one JSON "
                                f"object, e.g. {{\"dialogue\": \"...\", \"summary\": \"...\"}} (JSON Lines)", shown,
                                f"line {lineno}", text.strip()) from None
            rows.append(row)
            lines.append(lineno)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise _empty(path, shown, "only blank lines")
    return Rows(rows, shown, lines)


def _json_array(path: Path, shown: str, limit: int | None) -> Rows:
    """A ``.json`` file that is one array of objects (rows are named by index, as the file has no row lines)."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"not UTF-8: byte 0x{raw[err.start]:02x} cannot be decoded; "
                        + _UTF8_FIX.format(name=path.name, suffix=path.suffix), shown, f"line {line}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON ({err.msg} at column {err.colno}); a .json file is JSON Lines or one "
                        "array of objects", shown, f"line {err.lineno}") from None
    if not isinstance(data, list):
        raise DataError("a .json file must be JSON Lines or one array of objects", shown)
    if not data:
        raise DataError("no rows: the JSON array is empty", shown)
    return Rows(data if limit is None else data[:limit], shown)


def _lines(f: Any, shown: str, path: Path) -> Iterator[str]:
    for lineno, raw in enumerate(f, 1):
        yield _decode(raw, shown, path, lineno)


def _csv(path: Path, shown: str, limit: int | None) -> Rows:
    rows, lines, start = [], [], 1
    with path.open("rb") as f:
        reader = csv.reader(_lines(f, shown, path), strict=True)
        try:
            header = next(reader, None)
            while header == []:  # blank lines before the header
                header = next(reader, None)
            if header is None:
                raise _empty(path, shown, "only blank lines")
            header_line = reader.line_num
            duplicated = sorted({c for c in header if header.count(c) > 1})
            if duplicated:
                raise DataError(f"the header names column {duplicated[0]!r} twice; column names must be unique",
                                shown, f"line {header_line}")
            while limit is None or len(rows) < limit:
                start = reader.line_num + 1
                record = next(reader, None)
                if record is None:
                    break
                if not record:  # a blank line
                    continue
                if len(record) != len(header):
                    raise DataError(f"{len(record)} fields, but the header (line {header_line}) has {len(header)}: "
                                    "quote a field that contains a comma or a line break with double quotes",
                                    shown, f"line {start}", record[:4])
                rows.append(dict(zip(header, record)))
                lines.append(start)
        except csv.Error as err:
            unclosed = " (a quote opened in this record is never closed)" if "end of data" in str(err) else ""
            raise DataError(f"not valid CSV: {err}{unclosed}; a field that contains a quote, comma or line break "
                            "must be quoted, with quotes inside doubled (\"\")", shown, f"line {start}") from None
    if not rows:
        raise _empty(path, shown, "a header line but no rows")
    return Rows(rows, shown, lines, columns=header)


def _parquet(path: Path, shown: str, limit: int | None) -> Rows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except pa.ArrowInvalid as err:
        raise DataError(f"not a readable Parquet file ({err})", shown) from None
    if limit is not None:
        table = table.slice(0, limit)
    if table.num_rows == 0:
        raise DataError("no rows: the Parquet file has none", shown)
    return Rows(table.to_pylist(), shown, columns=table.column_names)
