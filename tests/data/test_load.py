"""Dataset loading: local files with a column mapping, the synthetic generators, and the context-window rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from peftsum.data.features import Encoder
from peftsum.data.load import Example, load_split, split_of
from peftsum.data.synthetic import generate
from peftsum.spec import parse_grid


def _grid_dataset(path: Path) -> object:
    grid = parse_grid(f"""
name: t
axes: {{model: [tiny-gpt2], method: [full], dataset: [mine]}}
datasets:
  mine: {{source: local, id: "{path}", kind: news, source_column: text, summary_column: abstract, id_column: doc}}
""")
    return grid.cells[0].dataset


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_local_folder_with_column_mapping(tmp_path: Path, fmt: str) -> None:
    rows = [{"doc": f"d{i}", "text": f"article number {i}", "abstract": f"summary {i}"} for i in range(5)]
    for split in ("train", "test"):
        path = tmp_path / f"{split}.{fmt}"
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(rows[0]))
                w.writeheader()
                w.writerows(rows)
    got = load_split(_grid_dataset(tmp_path), "test", limit=3)
    assert got == [Example(f"d{i}", f"article number {i}", f"summary {i}") for i in range(3)]


def test_missing_column_names_the_column(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(json.dumps({"doc": "a", "body": "x", "abstract": "y"}) + "\n")
    with pytest.raises(KeyError, match="'text'"):
        load_split(_grid_dataset(tmp_path), "train")


def test_synthetic_is_deterministic_abstractive_and_long_tailed() -> None:
    a, b = generate("dialogsum", "train", 400), generate("dialogsum", "train", 400)
    assert a == b
    assert generate("dialogsum", "test", 50) != a[:50]  # splits draw from their own streams
    first_lines = [ex["dialogue"].splitlines()[0].split(": ", 1)[1] for ex in a]
    assert all(ex["summary"] not in ex["dialogue"] for ex in a)
    assert sum(ex["summary"] == line for ex, line in zip(a, first_lines)) == 0
    lengths = sorted(len(ex["dialogue"].split()) for ex in a)
    assert lengths[-1] > 4 * lengths[len(lengths) // 2]  # a long tail, like real dialogues
    assert len({ex["scenario"] for ex in a}) >= 8
    news = generate("news", "train", 100)
    assert all("\n" in ex["highlights"] for ex in news)  # multi-sentence highlights, as CNN/DailyMail


class _WordTokenizer:
    """A whitespace tokenizer with the HF call signature, so the context rule is checked on exact counts."""

    eos_token_id = 1

    def __call__(self, texts, add_special_tokens=False):
        if isinstance(texts, str):
            return {"input_ids": [2] * len(texts.split())}
        return {"input_ids": [[2] * len(t.split()) for t in texts]}


def test_train_examples_that_do_not_fit_are_filtered_and_eval_sources_truncated() -> None:
    exs = [Example("short", "a b c", "s t"), Example("long", " ".join(["w"] * 100), "s t")]
    enc = Encoder(_WordTokenizer(), "causal", "dialogue", context=64, max_source_tokens="auto",
                  max_target_tokens=8)
    train = enc.train(exs)
    assert (train.kept, train.dropped) == (1, 1)
    assert len(train.input_ids[0]) <= 64
    ev = enc.eval(exs)
    assert ev.ids == ["short", "long"] and ev.truncated == 1  # same ids for every cell of a dataset
    assert all(len(p) + 8 <= 64 for p in ev.prompt_ids)


def test_single_file_is_cut_into_disjoint_splits_by_source_hash(tmp_path: Path) -> None:
    """One file never puts a row in both train and test; the cut is 90/5/5, independent of row order."""
    rows = [{"doc": f"d{i}", "text": f"article number {i} about topic {i % 7}", "abstract": f"summary {i}"}
            for i in range(2000)]
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ref = _grid_dataset(path)
    splits = {s: load_split(ref, s) for s in ("train", "validation", "test")}
    ids = {s: {ex.id for ex in exs} for s, exs in splits.items()}
    assert ids["train"].isdisjoint(ids["test"]) and ids["train"].isdisjoint(ids["validation"])
    assert ids["test"].isdisjoint(ids["validation"])
    assert set().union(*ids.values()) == {r["doc"] for r in rows}
    assert 1700 < len(ids["train"]) < 1900 and 60 < len(ids["test"]) < 140
    assert [ex.id for ex in load_split(ref, "test", limit=5)] == [ex.id for ex in splits["test"][:5]]
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    assert {ex.id for ex in load_split(_grid_dataset(shuffled), "test")} == ids["test"]


def test_single_file_too_small_for_a_split_says_so(tmp_path: Path) -> None:
    rows = [{"doc": f"d{i}", "text": f"article {i}", "abstract": f"summary {i}"} for i in range(3)]
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ref = _grid_dataset(path)
    empty = next(s for s in ("validation", "test")
                 if not any(split_of(r["text"]) == s for r in rows))  # 3 rows: a 5% split is almost surely empty
    with pytest.raises(ValueError, match=f"'{empty}' split"):
        load_split(ref, empty)
