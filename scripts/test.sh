#!/usr/bin/env bash
# The test command: set up (if needed), then lint, check the import layers, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check peftsum launcher tests
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
