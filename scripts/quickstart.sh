#!/usr/bin/env bash
# Set up (if needed) and run the quickstart grid on this machine: 7 cells, then the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/launcher run examples/quickstart.yaml --jobs 2 "$@"
echo "report: runs/quickstart/report/report.md"
