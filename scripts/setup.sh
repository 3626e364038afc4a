#!/usr/bin/env bash
# Create .venv with peftsum and its pinned dependencies (CPU build of torch). Idempotent; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 resolves to the CPU build on these machines; an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c requirements-lock.txt -e ".[dev]"
