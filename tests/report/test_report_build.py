"""How the report is built: batched paired bootstraps equal to peftsum.compare's, the worker pool changing
nothing in the output, results.json one JSON document, per-phase timings, and the benchmark script running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from peftsum.compare import paired_bootstrap
from peftsum.report import aggregate, analysis, collect, worker_pool
from peftsum.report.collect import read_attempt_json
from peftsum.store import open_store

REPO = Path(__file__).resolve().parents[2]


def _reference(store, c, pairs, metrics=("rougeL", "bleu")) -> list[dict]:
    out = []
    for _, a, b in pairs:
        pa = read_attempt_json(store, c, a["cell_id"], "predictions.jsonl")
        pb = read_attempt_json(store, c, b["cell_id"], "predictions.jsonl")
        out += [paired_bootstrap(pa, pb, m) for m in metrics]
    return out


def _same(fast: dict, slow: dict) -> None:
    assert (fast["metric"], fast["n"]) == (slow["metric"], slow["n"])
    assert fast["diff"] == pytest.approx(slow["diff"], abs=1e-12)
    assert fast["ci95"] == pytest.approx(slow["ci95"], abs=1e-12)
    assert fast["p_a_better"] == pytest.approx(slow["p_a_better"], abs=1e-12)


def test_batched_comparisons_equal_paired_bootstrap(tmp_path: Path, fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "g", 40, with_failures=True)
    store = open_store(str(tmp_path))
    c = collect(store, "g")
    pairs = analysis.default_pairs(c)
    fast = analysis.comparisons(store, c)
    assert len(fast) == 2 * len(pairs) and len(pairs) > 10
    for f, s in zip(fast, _reference(store, c, pairs), strict=True):
        _same(f, s)
    with worker_pool(2) as pool:  # predictions read in workers: same numbers
        assert analysis.comparisons(store, c, pool=pool) == fast


def test_cells_with_other_example_order_fall_back_to_paired_bootstrap(tmp_path: Path,
                                                                      fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "g", 12)
    store = open_store(str(tmp_path))
    c = collect(store, "g")
    pairs = analysis.default_pairs(c)
    scores = {}
    for _, a, b in pairs:
        for r in (a, b):
            rows = read_attempt_json(store, c, r["cell_id"], "predictions.jsonl")
            scores[r["cell_id"]] = analysis.Scores(rows)
    _, a, b = pairs[0]
    rows_b = read_attempt_json(store, c, b["cell_id"], "predictions.jsonl")
    scores[b["cell_id"]] = analysis.Scores(rows_b[::-1][:-3])  # reordered and three examples fewer
    out = analysis.paired_comparisons(pairs[:1], scores, ("rougeL", "bleu"))
    rows_a = read_attempt_json(store, c, a["cell_id"], "predictions.jsonl")
    for x, m in zip(out, ("rougeL", "bleu"), strict=True):
        _same(x, paired_bootstrap(rows_a, rows_b[::-1][:-3], m))
        assert x["n"] == len(rows_a) - 3


@pytest.mark.slow
def test_worker_pool_changes_nothing_in_the_report(tmp_path: Path, fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "g", 80, with_failures=True)  # above collect.PARALLEL_FROM
    store = open_store(str(tmp_path))
    report = tmp_path / "g" / "report"
    outputs = []
    for workers in (1, 2):
        timings: dict = {}
        aggregate(store, "g", workers=workers, timings=timings)
        assert {"collect", "tables", "figures: wait", "write report"} <= set(timings)
        assert all(v["wall_s"] >= 0 and v["cpu_s"] >= 0 for v in timings.values())
        outputs.append({p.relative_to(report): p.read_bytes() for p in report.rglob("*") if p.is_file()})
    assert outputs[0].keys() == outputs[1].keys()
    assert [k for k in outputs[0] if outputs[0][k] != outputs[1][k]] == []
    doc = json.loads(outputs[0][Path("results.json")])
    c = collect(store, "g")
    assert doc["grid"] == "g" and doc["results"] == c.results and doc["not_done"] == c.not_done
    assert {x["kind"] for x in doc["comparisons"]} == {"PEFT vs full", "best vs runner-up"}


def _warm() -> bool:
    from peftsum.report import figures

    return figures._WARM


def test_report_pool_workers_inherit_the_figures_preload(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool imports nothing of the report itself (no cycle): peftsum.report.worker_pool hands it
    figures.preload, which runs once before the fork, so every worker starts with matplotlib warmed up."""
    from peftsum.report import figures

    monkeypatch.setattr(figures, "_WARM", False)
    with worker_pool(2) as pool:
        if pool is None:
            pytest.skip("no fork start method here")
        assert figures._WARM
        assert pool.apply(_warm) is True


@pytest.mark.slow
def test_benchmark_reports_phases_and_sizes(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "aggregate_bench.py"), "--sizes", "16,32",
                          "--repeat", "1", "--datasets", "2", "--examples", "8", "--keep", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [ln["cells"] for ln in lines] == [16, 32]
    for ln in lines:
        assert ln["report_s"] > 0 and ln["significance_s"] > 0 and "collect" in ln["phases"]
    assert "per cell" in out.stderr and "phase" in out.stderr


def test_tick_labels_carry_the_decimals_their_step_needs() -> None:
    from peftsum.report.figures import _label

    assert [_label(v, 0.15) for v in (0.0, 0.15, 0.3)] == ["0.00", "0.15", "0.30"]
    assert [_label(v, 0.2) for v in (1.2, 1.4)] == ["1.2", "1.4"]
    assert [_label(v, 250.0) for v in (0.0, 250.0)] == ["0", "250"]


@pytest.mark.slow
def test_report_from_s3_reads_in_threads_not_processes(s3, fake_cells: ModuleType, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    """An S3 store's boto3 client neither pickles nor survives a fork: its reads run in threads, figures still in
    the pool, and the report equals the one built from a local copy."""
    fake_cells.write_fake_grid(tmp_path / "local", "g", 70, with_failures=True, n_examples=8)  # >= PARALLEL_FROM
    fake_cells.write_fake_grid(s3.uri, "g", 70, with_failures=True, n_examples=8)
    remote, local = open_store(s3.uri), open_store(str(tmp_path / "local"))
    aggregate(remote, "g", workers=2)
    aggregate(local, "g", workers=2)
    assert "worker pool failed" not in capfd.readouterr().err
    for name in ("results.csv", "report.md"):
        assert remote.read_bytes(f"g/report/{name}") == local.read_bytes(f"g/report/{name}")
    assert json.loads(remote.read_bytes("g/report/results.json"))["comparisons"] == \
        json.loads(local.read_bytes("g/report/results.json"))["comparisons"]
