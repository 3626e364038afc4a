#!/usr/bin/env bash
# Create .venv with peftsum and its pinned dependencies (CPU build of torch). Idempotent; safe to rerun.
# PEFTSUM_EXTRAS picks pyproject's extras (default dev: the launcher's and the GPU packages, the test tools), e.g.
# PEFTSUM_EXTRAS=launcher for a machine that only validates, submits and follows grids.
#
# Installs with uv (a pip-compatible installer from PyPI): about 25 s from nothing on 2 cores against about 2 min
# with pip, which is most of the quickstart's time budget. Falls back to pip if uv cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${PEFTSUM_EXTRAS:-dev}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# A stamp of what was installed: a rerun with the same lock and pyproject is a no-op (seconds).
stamp=".venv/.peftsum-setup-$(cat pyproject.toml requirements-lock.txt | sha256sum | cut -c1-16)-$EXTRAS"
if [ -f "$stamp" ]; then
  exit 0
fi
# torch==2.13.0 resolves to the CPU build from pip's find-links folder on these machines; an unpinned torch (or the
# PyPI index alone) would pull a multi-GB CUDA build. Take the local wheel directly when it is there.
links=${PIP_FIND_LINKS:-$(.venv/bin/python -m pip config get global.find-links 2>/dev/null || true)}
local_torch=""
for dir in $links; do
  if compgen -G "$dir/torch-2.13.0+cpu-*.whl" >/dev/null; then local_torch=$dir; fi
done
if .venv/bin/python -m pip install -q uv 2>/dev/null && [ -x .venv/bin/uv ]; then
  uv=(.venv/bin/uv pip install -q -p .venv/bin/python)
  if [ -n "$local_torch" ]; then
    "${uv[@]}" --find-links "$local_torch" "torch==2.13.0+cpu"  # the local version label: never the CUDA build
  else
    .venv/bin/python -m pip install -q torch==2.13.0
  fi
  "${uv[@]}" -c requirements-lock.txt -e ".[$EXTRAS]"
else
  .venv/bin/python -m pip install -q torch==2.13.0
  .venv/bin/python -m pip install -q -c requirements-lock.txt -e ".[$EXTRAS]"
fi
rm -f .venv/.peftsum-setup-*
touch "$stamp"
