"""Hostile and broken store content (issue 15, items 6, 14, 16): a malformed file of one cell never crashes the report
of the grid (the cell is listed as not done with the reason), text from the store reaches report.md as inert text,
and a grid name the store does not hold is an error naming the grids it does hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from peftsum.cli import main
from peftsum.report import aggregate, collect
from peftsum.report.collect import GridNotFound
from peftsum.report.render import md_escape
from peftsum.store import layout, open_store


def _replace(store, grid: str, cid: str, name: str, data: bytes) -> None:
    """Replace a file of the cell's attempt and re-commit _SUCCESS with its new size and hash: the cell stays done
    as far as the manifest goes (what a writer with the store's credentials can do)."""
    manifest = layout.read_manifest(store, grid, cid)
    rel = f"attempts/{manifest['attempt_id']}/{name}"
    store.write_bytes(layout.cell_key(grid, cid, rel), data)
    manifest["files"][rel] = {"bytes": len(data), "sha256": layout.sha256_bytes(data)}
    store.write_bytes(layout.cell_key(grid, cid, "_SUCCESS"), json.dumps(manifest).encode())


def _result(store, grid: str, cid: str) -> dict[str, Any]:
    return json.loads(store.read_bytes(layout.result_key(grid, cid, layout.read_manifest(store, grid, cid))))


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def _mutated(r: dict, path: str, value: Any) -> bytes:
    *parents, last = path.split(".")
    node = r
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return json.dumps(r).encode()


def test_malformed_cell_files_are_cells_not_done_with_the_reason(tmp_path: Path, fake_cells: ModuleType) -> None:
    """Reproduction: in a store with done cells, replace one cell's result.json by ``[1, 2]`` (or drop its
    ``metrics``, make ``train.seconds`` the string "fast", put NaN in ``metrics.rougeL.value``, write bytes that are
    not JSON, …) and re-commit its _SUCCESS; ``peftsum aggregate`` crashed with a TypeError/KeyError for the whole
    grid (NaN even went through, into a results.json that is not valid JSON). Now each such cell is listed as not
    done, with the file and field that is wrong; the other cells are reported as before."""
    root = tmp_path / "store"
    ids = fake_cells.write_fake_grid(root, "g", 14, seed=3)
    store = open_store(str(root))
    done = [cid for cid in ids if layout.read_manifest(store, "g", cid)]
    trained = [cid for cid in done if _result(store, "g", cid)["train"]["history"]]
    assert len(done) == len(ids) and trained
    r = lambda cid: _result(store, "g", cid)  # noqa: E731
    deep = b"[" * 100_000 + b"]" * 100_000  # parsing exhausts the stack: RecursionError, not ValueError
    cases = {  # cell → (file, new bytes, what the reason must name)
        done[0]: ("result.json", b"[1, 2]", "malformed result.json: top level: a list is not an object"),
        done[1]: ("result.json", _mutated(r(done[1]), "metrics", KeyError), "malformed result.json: metrics: missing"),
        done[2]: ("result.json", _mutated(r(done[2]), "train.seconds", "fast"), "train.seconds: 'fast' is not a"),
        done[3]: ("result.json", _mutated(r(done[3]), "metrics.rougeL.value", float("nan")),
                  "metrics.rougeL.value: nan is not a finite number"),
        done[4]: ("result.json", b'{"cell_id": \xff', "unreadable result.json: not JSON"),
        done[5]: ("result.json", _mutated(r(done[5]), "provenance.hostname", float("inf")),
                  "provenance.hostname: inf is not a finite number"),
        done[6]: ("result.json", _mutated(r(done[6]), "cell_id", "0" * 12), "cell_id: '000000000000' is not this"),
        done[7]: ("result.json", _mutated(r(done[7]), "resources.adapter_bytes", -5), "adapter_bytes: -5 is below 0"),
        done[8]: ("result.json", _mutated(r(done[8]), "spec.seed", None), "spec.seed: None is not an integer"),
        done[9]: ("eda.json", b"[]", "malformed eda.json: top level: a list is not an object"),
        done[10]: ("eda.json", deep, "unreadable eda.json: not JSON"),
        trained[0]: ("result.json", _mutated(r(trained[0]), "train.best_epoch", 123.5),
                     "train.best_epoch: 123.5 is the epoch of no train.history row"),
    }
    for cid, (name, data, _) in cases.items():
        _replace(store, "g", cid, name, data)

    index = aggregate(store, "g", workers=0, significance=False)

    report = root / "g" / "report"
    results = _strict((report / "results.json").read_text())
    reasons = {o["cell_id"]: o["reason"] for o in results["not_done"]}
    assert set(reasons) == set(cases)
    for cid, (_, _, why) in cases.items():
        assert why in reasons[cid], (cid, reasons[cid])
    assert {x["cell_id"] for x in results["results"]} == set(done) - set(cases)
    html, md = Path(index).read_text(), (report / "report.md").read_text()
    for cid in cases:
        assert cid in html and cid in md
    assert "nan" not in (report / "results.csv").read_text().lower()


def test_unusable_predictions_status_and_specs_never_crash_collect(tmp_path: Path, fake_cells: ModuleType) -> None:
    """Reproduction: predictions.jsonl rows that are lists or lack ``prediction``, a status.json that is a list or
    has a text ``progress``, a grid.json whose spec lacks ``method``: the report crashed (TypeError/KeyError in the
    examples, the not-done table or the labels). Now the predictions are left out with the reason in the report,
    and the other two are cells not done that say what is wrong."""
    root = tmp_path / "store"
    ids = fake_cells.write_fake_grid(root, "g", 8, seed=1)
    store = open_store(str(root))
    a, b, c_, d, e = ids[:5]
    _replace(store, "g", a, "predictions.jsonl", b'[1]\n{"id": 3}\n')
    _replace(store, "g", b, "predictions.jsonl", b'{"id": "x", "source": "s", "reference": "r"}\n')
    for cid in (c_, d, e):  # not done: no _SUCCESS, and a status or spec that is not what writers write
        (root / "g" / "cells" / cid / "_SUCCESS").unlink()
    (root / "g" / "cells" / c_ / "status.json").write_text("[1]")
    (root / "g" / "cells" / d / "status.json").write_text('{"state": "running", "progress": "half"}')
    grid = json.loads((root / "g" / "grid.json").read_text())
    del grid["cells"][e]["method"]
    (root / "g" / "grid.json").write_text(json.dumps(grid))

    aggregate(store, "g", workers=0)

    results = _strict((root / "g" / "report" / "results.json").read_text())
    not_done = {o["cell_id"]: o for o in results["not_done"]}
    assert set(not_done) == {c_, d, e}
    assert "malformed status.json: top level: a list is not an object" in not_done[c_]["reason"]
    assert "progress: 'half' is not a finite number" in not_done[d]["reason"]
    assert not_done[e]["method"] == "?" and "lacks method/dataset/seed" in not_done[e]["reason"]
    md = (root / "g" / "report" / "report.md").read_text()
    assert f"{a} (malformed predictions.jsonl: line 1: a list is not an object)" in md
    assert f"{b} (malformed predictions.jsonl: line 1.prediction: missing)" in md


HOSTILE = ['<script>alert(1)</script>', '<iframe src="https://evil.example/"></iframe>',
           '[click me](javascript:alert(2))', '![x](javascript:alert(3))', '<javascript:alert(4)>',
           '<img src=x onerror=alert(5)>', 'a | b | c', 'one\n<script>alert(6)</script>\n\n# heading\r\n| x |',
           '`code` **bold** _it_ ~~del~~', '*{: onclick="alert(7)"}*', '&lt;script&gt;', 'back\\slash \\<b>',
           '\u2028<script>alert(8)</script>', '[log in again](https://evil.example/phish)', '<https://evil.example/>']


def _render_md(text: str) -> tuple[str, list]:
    markdown_it = pytest.importorskip("markdown_it")
    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table")  # raw HTML on: the worst viewer
    return md.render(text), md.parse(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_md_escape_renders_as_the_text_itself(text: str) -> None:
    """Escaped text renders (CommonMark with raw HTML enabled) as one paragraph of exactly that text, and in a
    table cell as exactly one cell."""
    escaped = md_escape(text)
    assert not re.search(r"(?<!\\)[\[\]<>`]", escaped)  # for laxer renderers than markdown-it: nothing unescaped
    _, tokens = _render_md(escaped)
    inline = [t for t in tokens if t.type == "inline"]
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    assert [c.type for c in inline[0].children] == ["text"]  # no tag, link, image, emphasis or code
    flat = text.replace("\r\n", "\n")
    for sep in "\r\n\u2028":
        flat = flat.replace(sep, " ")
    assert inline[0].children[0].content == flat.strip()  # a paragraph drops its outer spaces
    table = f"| h |\n|---|\n| {md_escape(text, cell=True)} |\n"
    _, tokens = _render_md(table)
    assert sum(t.type == "td_open" for t in tokens) == 1
    assert not any(c.type.startswith(("html", "link", "image", "code", "em", "strong", "s_"))
                   for t in tokens if t.type == "inline" for c in t.children if c.content != "<br>")  # ours


def test_report_md_embeds_dataset_text_inert(tmp_path: Path, fake_cells: ModuleType) -> None:
    """Reproduction: a dataset whose sources, references and predictions hold ``<script>``, ``<iframe>`` and
    ``[x](javascript:…)`` (and a cell whose failure reason does): index.html escaped them, report.md embedded them
    as live HTML and links. Now report.md renders, even in a viewer that allows raw HTML, to no tag, link or image
    of the data (only the report's own figures), and every table row keeps its number of cells."""
    root = tmp_path / "store"
    ids = fake_cells.write_fake_grid(root, "g", 6, seed=2)
    store = open_store(str(root))
    for cid in ids[:-1]:
        manifest = layout.read_manifest(store, "g", cid)
        rows = [json.loads(x) for x in store.read_bytes(layout.result_key("g", cid, manifest, "predictions.jsonl"))
                .splitlines()]
        for i, row in enumerate(rows):
            row.update(source=HOSTILE[i % len(HOSTILE)], reference=HOSTILE[(i + 1) % len(HOSTILE)],
                       prediction=HOSTILE[(i + 2) % len(HOSTILE)])
        _replace(store, "g", cid, "predictions.jsonl", "".join(json.dumps(x) + "\n" for x in rows).encode())
    (root / "g" / "cells" / ids[-1] / "_SUCCESS").unlink()
    layout.write_status(store, "g", ids[-1], "failed", reason=HOSTILE[0] + HOSTILE[2])

    aggregate(store, "g", workers=0, significance=False)

    text = (root / "g" / "report" / "report.md").read_text()
    html, tokens = _render_md(text)
    for bad in ("<script", "<iframe", "<img src=x", "javascript:alert(2)\"", "href="):
        assert bad not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text
    images = [c for t in tokens if t.type == "inline" for c in t.children if c.type == "image"]
    assert images and all(i.attrs["src"].startswith("figures/") for i in images)
    assert not [c for t in tokens if t.type == "inline" for c in t.children
                if c.type == "link_open" or (c.type == "html_inline" and c.content != "<br>")]
    assert not [t for t in tokens if t.type == "html_block"]
    widths, cells = [], 0
    for t in tokens:  # every body row has as many cells as its header
        if t.type == "tr_open":
            cells = 0
        elif t.type in ("td_open", "th_open"):
            cells += 1
        elif t.type == "tr_close":
            widths.append(cells)
        elif t.type == "table_close":
            assert len(set(widths)) == 1, widths
            widths = []


def test_aggregate_of_a_grid_the_store_does_not_hold(tmp_path: Path, fake_cells: ModuleType,
                                                     capsys: pytest.CaptureFixture) -> None:
    """Reproduction: ``peftsum aggregate --grid typo --store S`` wrote an empty report under S/typo/ and exited 0
    (with ``--wait``, after writing typo/report/wait.json). Now it exits 2 before writing anything, naming the grid
    and the store and listing the grids the store holds."""
    root = tmp_path / "store"
    fake_cells.write_fake_grid(root, "fake", 2)
    fake_cells.write_fake_grid(root, "other", 2)
    (root / "_staged").mkdir()
    for extra in ([], ["--wait", "5"]):
        assert main(["aggregate", "--grid", "typo", "--store", str(root), *extra]) == 2
        err = capsys.readouterr().err
        assert "'typo'" in err and str(root) in err and "grids there: fake, other" in err
        assert "Traceback" not in err
    assert sorted(p.name for p in root.iterdir()) == ["_staged", "fake", "other"]
    assert main(["aggregate", "--grid", "typo", "--store", str(tmp_path / "empty")]) == 2
    assert "it holds no grid" in capsys.readouterr().err
    with pytest.raises(GridNotFound):  # launcher report (in-process) gets it as a StoreError: exit 1, the message
        collect(open_store(str(root)), "typo")


def test_unknown_grid_on_s3_lists_the_grids_there(s3, fake_cells: ModuleType) -> None:
    """The same on S3: one delimited listing of the store's top level, then a probe per name."""
    fake_cells.write_fake_grid(s3.uri, "fake", 2, n_examples=4)
    store = open_store(s3.uri)
    store.write_bytes("_staged/datasets/x/test.jsonl", b"{}\n")
    store.write_bytes("notagrid/readme.txt", b"hello")
    with pytest.raises(GridNotFound, match=r"no grid 'typo' in store s3://.*: grids there: fake$"):
        collect(store, "typo")
