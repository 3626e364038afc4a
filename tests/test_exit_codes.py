"""The exit-code table of docs/architecture.md agrees with the code: its columns are ``peftsum.exit_codes``, each
command's row has an entry exactly for the codes its module imports from there, and the classes the table sorts
into 2 (a person must fix it) and 3 (retry) are the ones ``peftsum.cell.exit_code`` sorts there."""

from __future__ import annotations

import errno
from pathlib import Path

from launcher import cli as launcher_cli
from launcher import local, store_commands
from peftsum import cell, exit_codes
from peftsum.preempt import Preempted
from peftsum.spec import SpecError
from peftsum.store import CorruptObject, StoreDenied, StoreError, StoreUnavailable, UnsafeKeyError
from peftsum.store.local import classify

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _table() -> dict[str, dict[int, str]]:
    text = DOC.read_text().split("## Exit codes", 1)[1]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        table[cells[0]] = {code: cells[1 + code] for code in range(4) if cells[1 + code] != "–"}
    return table


CODES = {
    "`peftsum cell`": {cell.EXIT_OK, cell.EXIT_FAILED, cell.EXIT_BAD_INPUT, cell.EXIT_RETRY},
    "`launcher run`": {launcher_cli.EXIT_OK, launcher_cli.EXIT_FAILED, launcher_cli.EXIT_BAD_INPUT,
                       local.EXIT_RETRY},
    "`launcher pull`": {store_commands.EXIT_OK, store_commands.EXIT_FAILED, store_commands.EXIT_BAD_INPUT},
    "`launcher verify`": {store_commands.EXIT_OK, store_commands.EXIT_FAILED, store_commands.EXIT_BAD_INPUT},
}


def test_the_columns_are_the_shared_codes() -> None:
    header = DOC.read_text().split("## Exit codes", 1)[1].split("| command | ", 1)[1].split("\n", 1)[0]
    shared = sorted(v for k, v in vars(exit_codes).items() if k.startswith("EXIT_"))
    assert [int(c) for c in header.strip(" |").split(" | ")] == shared == [0, 1, 2, 3]


def test_each_documented_row_has_exactly_the_codes_the_command_defines() -> None:
    table = _table()
    for command, codes in CODES.items():
        assert set(table[command]) == codes, command


def test_the_table_sorts_errors_as_exit_code_does() -> None:
    """2: never runnable as configured; 3: retrying can help. Each class the table names lands where it says."""
    row = _table()["`peftsum cell`"]
    never = [SpecError("f", 1, "x"), StoreDenied("bucket"), UnsafeKeyError("k"),
             classify("x", OSError(errno.EROFS, "Read-only file system"))]
    retry = [Preempted("SIGTERM"), StoreUnavailable("down"), StoreError("io"), CorruptObject("bad bytes"),
             classify("x", OSError(errno.ENOSPC, "No space left on device"))]
    assert all(cell.exit_code(e) == cell.EXIT_BAD_INPUT for e in never)
    assert all(cell.exit_code(e) == cell.EXIT_RETRY for e in retry)
    assert cell.exit_code(ValueError("bug")) == cell.EXIT_FAILED
    for words in ("missing bucket", "access denied", "read-only"):
        assert words in row[2]
    for words in ("SIGTERM", "unreachable", "full disk"):
        assert words in row[3]
