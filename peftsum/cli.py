"""``peftsum``: the in-pod entry point (``cell``) and the report builder (``aggregate``)."""

from __future__ import annotations

import argparse
import json
import sys

from peftsum.spec import Cell, SpecError
from peftsum.store import StoreError, open_store

CELL_EPILOG = """examples:
  peftsum cell --store ./runs --grid quickstart --cell 398fb048ea27   # as launcher run and the pods do
  peftsum cell --store ./runs --grid mygrid --spec cell.json           # a spec file ('-' = stdin)

exit codes: 0 done (or already done), 2 bad spec (never retried), 3 retryable (preempted, transient I/O),
1 any other failure (reason in cells/<id>/status.json)."""

AGGREGATE_EPILOG = """examples:
  peftsum aggregate --grid quickstart --store ./runs
  → ./runs/quickstart/report/report.md and results.csv (missing/failed/running cells listed, never fatal)"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peftsum", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cell", help="run one cell end to end", epilog=CELL_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, help="store URI: a local path (s3:// later)")
    p.add_argument("--grid", required=True, help="grid name (the store folder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cell", help="cell id: read cells/<ID>/spec.json from the store")
    src.add_argument("--spec", help="cell spec JSON file, '-' for stdin")
    a = sub.add_parser("aggregate", help="build the report from every done cell", epilog=AGGREGATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--grid", required=True)
    a.add_argument("--store", required=True)
    args = parser.parse_args(argv)

    if args.command == "aggregate":
        from peftsum.report import aggregate

        try:
            out = aggregate(open_store(args.store), args.grid)
        except StoreError as err:
            print(f"peftsum aggregate: {err}", file=sys.stderr)
            return 1
        print(out)
        return 0

    from peftsum.cell import EXIT_BAD_SPEC, load_spec, run_cell
    from peftsum.store import cells as layout

    try:
        store = open_store(args.store)
        if args.cell:
            cell = load_spec(store, args.grid, args.cell)
        else:
            text = sys.stdin.read() if args.spec == "-" else open(args.spec, encoding="utf-8").read()
            cell = Cell.from_dict(json.loads(text))
            layout.write_json(store, layout.cell_key(args.grid, cell.cell_id, "spec.json"), cell.to_dict())
    except (SpecError, ValueError, KeyError, TypeError, OSError) as err:
        print(f"peftsum cell: bad spec: {err}", file=sys.stderr)
        return EXIT_BAD_SPEC
    return run_cell(store, args.grid, cell)


if __name__ == "__main__":
    sys.exit(main())
