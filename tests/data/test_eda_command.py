"""`peftsum eda DATASET [--model M]`: the study's length statistics on their own, with a histogram."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftsum.cli import main


@pytest.mark.slow
def test_eda_whitespace_and_model_tokenizer(tmp_path: Path, capsys) -> None:
    assert main(["eda", "synthetic-news", "--limit", "300", "--out", str(tmp_path / "w")]) == 0
    stats = json.loads((tmp_path / "w" / "eda.json").read_text())
    assert stats["tokenizer"] == "whitespace" and stats["source"]["n"] == 300
    assert stats["source"]["p50"] <= stats["source"]["p95"] <= stats["source"]["max"]
    assert sum(stats["merged"]["histogram"]["counts"]) == 300
    assert (tmp_path / "w" / "lengths.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        main(["eda", "synthetic-dialogsum", "--model", "tiny-gpt2", "--limit", "300", "--out", str(tmp_path / "m")])
        == 0
    )
    tok = json.loads((tmp_path / "m" / "eda.json").read_text())
    assert tok["tokenizer"] == "builtin:tiny-gpt2@v3" and tok["source_token_budget"] < 512
    assert tok["kept"] + tok["dropped"] == 300
    assert "dropped by the context filter" in capsys.readouterr().out


def test_eda_unknown_dataset_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["eda", "no-such-data", "--out", str(tmp_path)]) == 2
    assert "no-such-data" in capsys.readouterr().err
