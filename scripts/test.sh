#!/usr/bin/env bash
# The test command: set up (if needed), then lint, check the import layers and duplicated code, and run the tests.
#   scripts/test.sh           everything (what CI runs)
#   scripts/test.sh --fast    the inner loop: every test not marked slow (minutes on 2 cores; see README.md)
# Any other argument goes to pytest, e.g. scripts/test.sh --fast tests/spec -x
set -euo pipefail
cd "$(dirname "$0")/.."
selection=()
if [ "${1:-}" = "--fast" ]; then
  selection=(-m "not slow")
  shift
fi
bash scripts/setup.sh
.venv/bin/ruff check peftsum launcher tests bench
.venv/bin/lint-imports
"$(bash scripts/install-pylint.sh)" --disable=all --enable=duplicate-code --score=n peftsum launcher
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "${selection[@]}" "$@"
