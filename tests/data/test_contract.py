"""The data contract (peftsum.data.contract) as a cell meets it: bad rows are dropped and counted or refused with
the file, line and column named, and a split with nothing usable, duplicate ids or an unreadable file never turns
into a done cell (issue 15 items 4 and 15)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftsum.cell import run_cell
from peftsum.data.load import Example, LoadedSplit, group_by_source, load_examples, load_split
from peftsum.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from peftsum.spec import SpecError, parse_grid
from peftsum.spec.cell import DatasetRef
from peftsum.spec.fields import build
from peftsum.spec.settings import DataSettings
from peftsum.store import layout, open_store

DataError = SpecError  # what a user must fix: peftsum.data.contract.DataError is one (exit 2)


def _ref(path: Path, id_column: str | None = "id") -> DatasetRef:
    return DatasetRef(name="mine", source="local", id=str(path), kind="news", source_column="text",
                      summary_column="summ", id_column=id_column)


def read_split(ref: DatasetRef, split: str, limit: int | None = None) -> LoadedSplit:
    """What a cell reads (no length filter, no grouping)."""
    return load_examples(ref, split, limit, build(DataSettings, {}, "data"))


def _jsonl(folder: Path, rows: list, split: str = "test") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


GOOD = [{"id": f"g{i}", "text": f"article {i}. more.", "summ": f"summary {i}"} for i in range(3)]


def test_null_nan_and_blank_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    """Reproduction: a test.jsonl with ``"summ": null``, ``"summ": NaN`` and ``"text": "  "`` rows loaded as
    examples with the reference ``""`` / ``"nan"`` and a blank source, trained on and scored silently."""
    rows = [GOOD[0], {"id": "n1", "text": "a", "summ": None}, {"id": "n2", "text": "b", "summ": float("nan")},
            {"id": "n3", "text": "  ", "summ": "x"}, {"id": "n4", "text": "c", "summ": " \n"}, *GOOD[1:]]
    checked = read_split(_ref(_jsonl(tmp_path, rows)), "test")
    assert [e.id for e in checked.examples] == ["g0", "g1", "g2"]
    assert all(e.summary.strip() and e.summary != "nan" for e in checked.examples)
    assert checked.dropped == {"source_empty": 1, "summary_null": 2, "summary_empty": 1}


@pytest.mark.parametrize(("row", "names"), [
    ({"id": "d", "text": "t", "summ": {"a": 1}}, ["line 2", "'summ'", "dict"]),
    ({"id": "d", "text": 5, "summ": "s"}, ["line 2", "'text'", "int"]),
    ({}, ["line 2", "'text'"]),
    ({"id": "d", "text": "only the source"}, ["line 2", "'summ'"]),
    ({"id": ["x"], "text": "t", "summ": "s"}, ["line 2", "'id'", "list"]),
    ([1, 2], ["line 2", "object"]),
])
def test_wrong_types_and_missing_columns_are_errors_naming_file_line_and_column(tmp_path: Path, row: object,
                                                                                names: list[str]) -> None:
    """Reproduction: ``{"summ": {"a": 1}}`` became the reference ``"{'a': 1}"``; ``{}`` and a row without the
    summary column were accepted (as empty texts), though docs/grid.md says a missing column fails the cell."""
    folder = _jsonl(tmp_path, [GOOD[0], row])
    with pytest.raises(SpecError) as err:
        load_split(_ref(folder), "test")
    for name in [str(folder / "test.jsonl"), *names]:
        assert name in str(err.value)


def test_missing_column_in_a_csv_header_lists_the_columns(tmp_path: Path) -> None:
    (tmp_path / "test.csv").write_text("id,text,summary\n1,a,b\n")
    with pytest.raises(KeyError) as err:  # a KeyError still, and a SpecError (exit 2)
        load_split(_ref(tmp_path), "test")
    assert isinstance(err.value, SpecError)
    assert "test.csv" in str(err.value) and "'summ'" in str(err.value) and "'summary'" in str(err.value)


def test_split_with_no_usable_row_is_refused_naming_file_and_column(tmp_path: Path) -> None:
    """Reproduction: a test.jsonl whose every summary is null or empty gave a *done* cell scored on nothing."""
    folder = _jsonl(tmp_path, [{"id": "a", "text": "x", "summ": ""}, {"id": "b", "text": "y", "summ": None}])
    with pytest.raises(DataError, match=r"test\.jsonl: no usable row.*summary column 'summ': 1 null, 1 empty"):
        load_split(_ref(folder), "test")


def test_duplicate_ids_are_refused_naming_file_and_id(tmp_path: Path) -> None:
    """Reproduction: four rows with ``"id": "same"`` were scored as four examples with one id; comparing two such
    cells paired every example with the last duplicate (a fake "+0.375 [+0.375, +0.375]")."""
    folder = _jsonl(tmp_path, [{"id": "same", "text": f"t{i}", "summ": f"s{i}"} for i in range(4)])
    with pytest.raises(DataError, match=r"test\.jsonl: line 2: duplicate id 'same' \(also at line 1\)"):
        load_split(_ref(folder), "test")
    assert [e.id for e in load_split(_ref(folder, id_column=None), "test")] == [f"test-{i}" for i in range(4)]


def test_csv_values_stay_as_written(tmp_path: Path) -> None:
    """Reproduction: through pandas an empty CSV field became NaN, then the reference ``"nan"``, and id 007 was 7."""
    (tmp_path / "test.csv").write_text('id,text,summ\n007,"two\nlines",s\n008,x,\n')
    checked = read_split(_ref(tmp_path), "test")
    assert checked.examples == [Example("007", "two\nlines", "s")] and checked.dropped == {"summary_empty": 1}


def test_limit_counts_usable_examples(tmp_path: Path) -> None:
    rows = [GOOD[0], *({"id": f"n{i}", "text": "t", "summ": None} for i in range(5)), *GOOD[1:]]
    checked = read_split(_ref(_jsonl(tmp_path, rows)), "test", limit=2)
    assert [e.id for e in checked.examples] == ["g0", "g1"] and checked.dropped == {"summary_null": 5}


def test_grouping_never_gives_two_examples_one_id() -> None:
    """Two different sources whose rows share the stem ``x`` (x_1, x_2 and x_3, x_4) would both be named ``x``."""
    exs = [Example("x_1", "A", "a"), Example("x_2", "A", "b"), Example("x_3", "B", "c"), Example("x_4", "B", "d"),
           Example("t_0_1", "C", "e"), Example("t_0_2", "C", "f")]
    assert [e.id for e in group_by_source(exs)] == ["x_1", "x_3", "t_0"]


@pytest.mark.parametrize(("name", "content", "names"), [
    ("test.jsonl", b"", ["empty"]),
    ("test.jsonl", b"\n\n  \n", ["blank lines"]),
    ("test.jsonl", b'{"id": "a", "text": "t", "summ": "s"}\n{not json\n', ["line 2", "not valid JSON"]),
    ("test.csv", b'id,text,summ\na,"t",s\nb,"unclosed,s\nc,t,s\n', ["line 3", "never closed"]),
    ("test.csv", b"id,text,summ\na,t,s\nb,t\n", ["line 3", "2 fields", "has 3"]),
    ("test.csv", b"id,text,summ\n", ["no rows"]),
    ("test.jsonl", '{"id": "a", "text": "t", "summ": "s"}\n{"id": "b", "text": "café", "summ": "s"}\n'
     .encode("latin-1"), ["line 2", "not UTF-8", "0xe9", "iconv"]),
])
def test_unreadable_files_name_the_file_and_line(tmp_path: Path, name: str, content: bytes,
                                                 names: list[str]) -> None:
    """Reproduction: an empty file gave "StopIteration:", blank lines 'Instruction "train" corresponds to no data!',
    a bad JSON or CSV line "DatasetGenerationError" and a Latin-1 file a UnicodeDecodeError, none naming the file."""
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as err:
        load_split(_ref(tmp_path), "test")
    for expected in [str(tmp_path / name), *names]:
        assert expected in str(err.value)


def test_a_json_array_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "test.json").write_text(json.dumps(GOOD))
    assert [e.id for e in load_split(_ref(tmp_path), "test")] == ["g0", "g1", "g2"]


def _cell(folder: Path):
    grid = parse_grid(f"""
name: contract
axes: {{model: [tiny-gpt2], method: [lead], dataset: [mine]}}
datasets:
  mine: {{source: local, id: "{folder}", kind: news, source_column: text, summary_column: summ, id_column: id}}
""")
    return grid.cells[0]


def test_cell_reports_dropped_rows_and_a_bad_file_exits_2(tmp_path: Path) -> None:
    """End to end (the model-free lead method): dropped rows are in result.json data.rows_dropped; a split with
    nothing usable fails the cell with exit 2 (bad input, never retried) and a reason naming the file."""
    store = open_store(str(tmp_path / "store"))
    ok = _jsonl(tmp_path / "ok", [*GOOD, {"id": "n", "text": "t", "summ": None}])
    cell = _cell(ok)
    assert run_cell(store, "contract", cell) == EXIT_OK
    manifest = layout.done_manifest(store, "contract", cell.cell_id)
    result = json.loads(store.read_bytes(layout.result_key("contract", cell.cell_id, manifest)))
    assert result["data"]["rows_dropped"] == {"test": {"summary_null": 1}} and result["metrics"]["n"] == 3

    bad = _jsonl(tmp_path / "bad", [{"id": "a", "text": "t", "summ": ""}])
    cell = _cell(bad)
    assert run_cell(store, "contract", cell) == EXIT_BAD_INPUT
    status = layout.read_status(store, "contract", cell.cell_id)
    assert status["state"] == "failed" and f"{bad}/test.jsonl: no usable row" in status["reason"]
    assert layout.done_manifest(store, "contract", cell.cell_id) is None


def test_load_examples_refuses_a_length_filter_that_keeps_nothing(tmp_path: Path, monkeypatch) -> None:
    from peftsum.data import lengths

    monkeypatch.setattr(lengths, "token_totals", lambda ref, split, examples, tok: [100] * len(examples))
    data = build(DataSettings, {"max_total_tokens": 10, "length_tokenizer": "tiny-gpt2"}, "data")
    with pytest.raises(DataError, match="keeps no row"):
        load_examples(_ref(_jsonl(tmp_path, GOOD)), "test", None, data)
