"""``peftsum``: the in-pod entry point (``cell``) and the report builder (``aggregate``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from peftsum.cell import exit_code
from peftsum.exit_codes import EXIT_BAD_INPUT
from peftsum.spec import Cell, SpecError, parse_grid
from peftsum.store import StoreError, open_store

CELL_EPILOG = """examples:
  peftsum cell --store ./runs --grid quickstart --cell 398fb048ea27   # as launcher run and the pods do
  peftsum cell --store ./runs --grid mygrid --spec cell.json           # a spec file ('-' = stdin)

telemetry: --pushgateway URL (or $PEFTSUM_PUSHGATEWAY) pushes every --push-interval s, grouping key grid+cell;
--metrics-port N serves /metrics instead. Metric names: docs/metrics.md.

exit codes: 0 done (or already done), 2 bad spec (never retried), 3 retryable (preempted, transient I/O),
1 any other failure (reason in cells/<id>/status.json)."""

AGGREGATE_EPILOG = """examples:
  peftsum aggregate --grid quickstart --store ./runs
  → ./runs/quickstart/report/index.html, report.md, results.csv, results.json, figures/*.png
    (missing/failed/running cells listed with their reason, never fatal)
  peftsum aggregate --grid paper --store s3://b/p --wait 604800 --max-attempts 4 --job-deadline 86400
  → what the aggregation Job of `launcher submit` runs: poll the store (backing off from 30 s to 10 min) until
    every cell is done or cannot get further, at most --wait seconds, then build the report; report/wait.json
    says why the wait ended for each cell not done

exit codes: 0 report written, 2 no such grid in the store (the message lists the grids there), 1 store errors."""


EDA_EPILOG = """examples:
  peftsum eda synthetic-dialogsum --model tiny-gpt2      # tokens under tiny-gpt2's tokenizer
  peftsum eda dialogsum --model t5-base --split test      # needs the hub (or a local copy)
  peftsum eda synthetic-news                              # whitespace words

writes <out>/eda.json (percentiles, histograms, share dropped by the context-window filter) and <out>/lengths.png."""


STAGE_EPILOG = """examples:
  peftsum stage examples/paper.yaml --store s3://bucket/peftsum     # once, from a machine with internet
  peftsum stage grid.yaml --out staged.yaml                          # also write the overrides to a file

Copies each model (hub snapshot / local folder) to <store>/_staged/models/<name>/ and each dataset's splits to
<store>/_staged/datasets/<name>/<split>.jsonl, then prints the models:/datasets: overrides that point the grid at
them. Pods download a staged model or dataset once into their cache ($PEFTSUM_CACHE/store/)."""


def _eda(args: argparse.Namespace) -> int:
    from pathlib import Path

    from peftsum.artifacts import eda
    from peftsum.data.load import load_split
    from peftsum.report.figures import histograms

    try:
        # A one-cell grid resolves the dataset (and model) names exactly as a grid file would.
        grid = parse_grid(f"name: eda\naxes: {{model: [{args.model or 'tiny-gpt2'}], method: [full], "
                          f"dataset: [{args.dataset}]}}\n")
    except SpecError as err:
        print(f"peftsum eda: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    cell = grid.cells[0]
    try:
        examples = load_split(cell.dataset, args.split, args.limit)
    except SpecError as err:  # the data contract: the file, line and fix are in the message
        print(f"peftsum eda: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.model:
        from peftsum.data.features import Encoder
        from peftsum.models.load import load_model

        _, tokenizer = load_model(cell.model)
        enc = Encoder(tokenizer, cell.model.family, cell.dataset.kind, cell.model.context, "auto",
                      cell.data.max_target_tokens)
        feats = enc.train(examples)
        stats = eda(feats.source_lens, feats.summary_lens, feats.kept, feats.dropped, cell.model.hub_id, enc.budget,
                    split=args.split)
    else:
        stats = eda([len(x.source.split()) for x in examples], [len(x.summary.split()) for x in examples],
                    len(examples), 0, "whitespace", None, split=args.split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eda.json").write_text(json.dumps(stats, indent=2))
    (out / "lengths.png").write_bytes(histograms(args.dataset, [stats]))
    s, m = stats["source"], stats["summary"]
    print(f"{args.dataset} ({args.split}, {stats['tokenizer']}): {s['n']} examples; source mean {s['mean']:.1f} "
          f"p95 {s['p95']:.0f} max {s['max']}; summary mean {m['mean']:.1f}; dropped by the context filter "
          f"{100 * stats['dropped_share']:.1f}% → {out}/eda.json, {out}/lengths.png")
    return 0


def _stage(args: argparse.Namespace) -> int:
    import yaml

    from peftsum.spec import load_grid
    from peftsum.stage import stage_grid

    try:
        grid = load_grid(args.grid, store=args.store)
        store = open_store(grid.store)
    except (SpecError, StoreError) as err:
        print(f"peftsum stage: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        overrides = stage_grid(store, grid, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except (OSError, ValueError) as err:
        print(f"peftsum stage: {err}", file=sys.stderr)
        return 1
    text = ("# staged copies: merge into the grid's models: / datasets: sections\n"
            + yaml.safe_dump(overrides, sort_keys=True, allow_unicode=True))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    print(text, end="")
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from peftsum.report import aggregate
    from peftsum.report.collect import GridNotFound, grid_cells

    try:
        store = open_store(args.store)
        grid_cells(store, args.grid)  # a grid name the store does not hold: exit 2 before waiting or writing
        notes = None
        if args.wait is not None:
            from peftsum.report.wait import wait_for_cells
            from peftsum.store import layout

            waited = wait_for_cells(store, args.grid, deadline_s=args.wait, max_attempts=max(1, args.max_attempts),
                                    job_deadline_s=args.job_deadline, log=lambda m: print(m, flush=True))
            notes = waited.notes()
            layout.write_json(store, layout.grid_key(args.grid, "report", "wait.json"), waited.as_dict())
            for cid, why in sorted(notes.items()):
                print(f"  {cid}: {why}", flush=True)
        out = aggregate(store, args.grid, notes=notes)
    except GridNotFound as err:
        print(f"peftsum aggregate: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreError as err:
        print(f"peftsum aggregate: {err}", file=sys.stderr)
        return 1
    print(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peftsum", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cell", help="run one cell end to end", epilog=CELL_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, help="store URI: a local path or s3://bucket/prefix")
    p.add_argument("--grid", required=True, help="grid name (the store folder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cell", help="cell id: read cells/<ID>/spec.json from the store")
    src.add_argument("--spec", help="cell spec JSON file, '-' for stdin")
    p.add_argument("--pushgateway", default=os.environ.get("PEFTSUM_PUSHGATEWAY") or None,
                   help="push metrics to this Prometheus Pushgateway URL (default: $PEFTSUM_PUSHGATEWAY)")
    p.add_argument("--push-interval", type=float, default=15.0, help="seconds between pushes (default 15)")
    p.add_argument("--metrics-port", type=int, help="serve /metrics on this port for scraping instead of pushing")
    a = sub.add_parser("aggregate", help="build the report from every done cell", epilog=AGGREGATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--grid", required=True)
    a.add_argument("--store", required=True)
    a.add_argument("--wait", type=float, metavar="SECONDS",
                   help="first wait (polling the store) until every cell is done or cannot get further, at most "
                        "this long")
    a.add_argument("--max-attempts", type=int, default=1, help="--wait: the cell Jobs' backoffLimit + 1 (default 1)")
    a.add_argument("--job-deadline", type=float, metavar="SECONDS",
                   help="--wait: the cell Jobs' activeDeadlineSeconds (a cell whose last attempt began longer ago "
                        "cannot finish)")
    e = sub.add_parser("eda", help="token-length statistics of a dataset under a model's tokenizer",
                       epilog=EDA_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("dataset", help="dataset name (dialogsum, samsum, cnn_dailymail, synthetic-dialogsum, …)")
    e.add_argument("--model", help="model whose tokenizer counts tokens (default: whitespace words)")
    e.add_argument("--split", default="train", choices=("train", "validation", "test"))
    e.add_argument("--limit", type=int, help="first N examples only")
    e.add_argument("--out", default="eda", help="folder for eda.json and lengths.png (default ./eda)")
    from peftsum import bench

    b = sub.add_parser("bench", help="training and generation throughput, fast path vs the study's configuration",
                       epilog=bench.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(b)
    st = sub.add_parser("stage", help="copy a grid's models and datasets into the store (clusters w/o internet)",
                        epilog=STAGE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("grid", help="grid.yaml")
    st.add_argument("--store", help="store URI (default: the grid's store)")
    st.add_argument("--out", help="also write the overrides (YAML) to this file")
    args = parser.parse_args(argv)

    if args.command == "stage":
        return _stage(args)

    if args.command == "bench":
        return bench.main(args)
    if args.command == "eda":
        return _eda(args)
    if args.command == "aggregate":
        return _aggregate(args)

    from peftsum.cell import load_spec, run_cell
    from peftsum.store import layout

    try:
        store = open_store(args.store)
        if args.cell:
            cell = load_spec(store, args.grid, args.cell)
        else:
            text = sys.stdin.read() if args.spec == "-" else open(args.spec, encoding="utf-8").read()
            cell = Cell.from_dict(json.loads(text))
            layout.write_json(store, layout.cell_key(args.grid, cell.cell_id, "spec.json"), cell.to_dict())
    except StoreError as err:  # unreachable (3, retried) or denied / misconfigured (2, needs a person)
        code = exit_code(err)
        print(f"peftsum cell: store {args.store}: {err} ({'retryable' if code == 3 else 'not retryable'})",
              file=sys.stderr)
        return code
    except (SpecError, ValueError, KeyError, TypeError, OSError) as err:  # OSError here: the --spec file
        print(f"peftsum cell: bad spec: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    metrics, pusher = _telemetry(args, cell)
    try:
        return run_cell(store, args.grid, cell, metrics)
    finally:
        if pusher is not None:
            pusher.close()  # the final push: end state, scores and (on success only) the success timestamp


def _telemetry(args: argparse.Namespace, cell: Cell) -> tuple[Any, Any]:
    """The cell's metrics and, with a Pushgateway, the thread pushing them; (None, None) without telemetry."""
    if not args.pushgateway and args.metrics_port is None:
        return None, None
    from peftsum.telemetry import CellMetrics, Pusher

    lab = cell.labels
    metrics = CellMetrics(args.grid, cell.cell_id, lab["model"], lab["method"], lab["dataset"])
    if args.metrics_port is not None:
        metrics.serve(args.metrics_port)
        return metrics, None
    warn = lambda msg: print(f"[cell {cell.cell_id}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    return metrics, Pusher(metrics, args.pushgateway, args.push_interval, warn).start()


if __name__ == "__main__":
    sys.exit(main())
