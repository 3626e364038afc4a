"""The report's content: tables per dataset and profile, seeds as mean ± sd, the floor, significance, cells not
done with their reason — built from fake done cells (JSON only, no ML stack)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from peftsum.report import aggregate, build, collect
from peftsum.store import layout, open_store


def test_report_lists_every_part_and_never_fails_on_bad_cells(tmp_path: Path, fake_cells: ModuleType) -> None:
    ids = fake_cells.write_fake_grid(tmp_path, "g", 14, with_failures=True)
    store = open_store(str(tmp_path))
    path = aggregate(store, "g")
    html = Path(path).read_text()
    c = collect(store, "g")
    assert len(c.results) + len(c.not_done) == len(ids)
    failed = [o for o in c.not_done if o["state"] == "failed"]
    assert failed and all(o["reason"] for o in failed)
    for o in c.not_done:
        assert o["cell_id"] in html
    for r in failed:
        assert r["reason"].split(":")[0] in html
    datasets = {r["spec"]["dataset"]["name"] for r in c.results}
    for d in datasets:
        assert f'data-table="quality-{d}"' in html
    for name in ("cost-disk", "cost-train", "significance", "not-done"):
        assert f'data-table="{name}"' in html
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    md = (tmp_path / "g" / "report" / "report.md").read_text()
    assert md.count("![") == len(list((tmp_path / "g" / "report" / "figures").glob("*.png")))
    rows = (tmp_path / "g" / "report" / "results.csv").read_text().splitlines()
    assert len(rows) == len(c.results) + 1


def test_different_metric_profiles_never_share_a_table(tmp_path: Path, fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "g", 6)
    store = open_store(str(tmp_path))
    c = collect(store, "g")
    c.results[0]["metric_profile"] = {**c.results[0]["metric_profile"], "rouge": {"version": "9.9"}}
    dataset = c.results[0]["spec"]["dataset"]["name"]
    tables = [t for heading, items in build(store, c, significance=False)["sections"] if heading == "Quality"
              for t in items if hasattr(t, "rows") and t.title == f"Quality on {dataset}"]
    assert len(tables) == 2
    assert "must not be compared" in tables[1].note
    assert sum(len(t.rows) for t in tables) == sum(1 for r in c.results if r["spec"]["dataset"]["name"] == dataset)


def test_seed_axis_gives_mean_and_sd(tmp_path: Path, fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "g", 12, seeds=3)
    store = open_store(str(tmp_path))
    c = collect(store, "g")
    quality = [t for heading, items in build(store, c, significance=False)["sections"] if heading == "Quality"
               for t in items if hasattr(t, "rows")]
    assert any("seeds" in t.columns for t in quality)
    row = next(r for t in quality for r in t.rows if "±" in r[-1])
    model, method = row[0], row[1]
    values = [r["metrics"]["rougeLsum"]["value"] for r in c.results
              if (r["spec"]["model"] or {}).get("name", "-") == model and r["spec"]["method"]["name"] == method
              and r["spec"]["dataset"]["name"] == next(t for t in quality if row in t.rows).title.split()[-1]]
    import statistics

    assert row[-1] == f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"
    assert row[2] == str(len(values)) and len(values) > 1


def test_significance_covers_the_default_comparisons(tmp_path: Path, fake_cells: ModuleType) -> None:
    fake_cells.write_fake_grid(tmp_path, "g", 14)
    store = open_store(str(tmp_path))
    aggregate(store, "g")
    report = json.loads((tmp_path / "g" / "report" / "results.json").read_text())
    comps = report["comparisons"]
    kinds = {x["kind"] for x in comps}
    assert kinds == {"PEFT vs full", "best vs runner-up"}
    for x in comps:
        assert x["ci95"][0] <= x["diff"] <= x["ci95"][1] and 0 <= x["p_a_better"] <= 1


def test_launcher_report_reads_json_only(tmp_path: Path, fake_cells: ModuleType) -> None:
    """`launcher report` builds the report without importing the ML stack."""
    fake_cells.write_fake_grid(tmp_path / "store", "g", 6)
    grid = tmp_path / "g.yaml"
    spec = layout.read_json(open_store(str(tmp_path / "store")), "g/grid.json")
    assert spec["cells"]
    grid.write_text("name: g\naxes: {model: [tiny-gpt2], method: [full], dataset: [synthetic-dialogsum]}\n")
    code = ("import sys; from launcher.cli import main; rc = main(['report', sys.argv[1], '--store', sys.argv[2]]); "
            "assert not {'torch', 'transformers', 'peft'} & set(sys.modules), 'ML stack imported'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(grid), str(tmp_path / "store")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("g/report/index.html")


def test_peft_is_compared_with_the_variant_named_full() -> None:
    """A grid with two full fine-tuning variants: PEFT cells are paired with `full` (not whichever came last), and
    the other full variant is not mistaken for a PEFT method."""
    from peftsum.report.analysis import default_pairs, full_reference
    from peftsum.report.collect import Collected
    from peftsum.spec import parse_grid

    grid = parse_grid("name: g\naxes: {model: [gpt2], method: [lora, full, full-slow], dataset: [dialogsum]}\n"
                      "methods: {full-slow: {type: full, train: {learning_rate: 1.0e-5}}}\n")
    results = [{"spec": c.to_dict(), "metrics": {"rougeL": {"value": v}}}
               for c, v in zip(grid.cells, (0.30, 0.31, 0.29))]
    for order in (results, results[::-1]):
        peft = [(a["spec"]["method"]["name"], b["spec"]["method"]["name"])
                for kind, a, b in default_pairs(Collected("g", order, [])) if kind == "PEFT vs full"]
        assert peft == [("lora", "full")]
        # the % columns of the cost tables use the same reference
        (ref,) = full_reference(Collected("g", order, [])).values()
        assert ref["spec"]["method"]["name"] == "full"
