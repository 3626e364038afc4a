#!/usr/bin/env bash
# Create the virtual environment of pylint, which scripts/test.sh runs for one check only: duplicate-code over
# peftsum/ and launcher/ (settings in pyproject.toml's [tool.pylint]). Its own environment on purpose: in one that
# holds torch and transformers, astroid follows their imports and the check takes about 2 minutes instead of about
# 10 s (docs/performance.md). Cached outside the checkout ($PEFTSUM_PYLINT_VENV, default
# ~/.cache/peftsum/pylint-<version>), so a fresh clone on the same machine (CI) reuses it. Idempotent; about 10 s
# from nothing with uv. Prints the pylint executable's path last.
set -euo pipefail
cd "$(dirname "$0")/.."
PYLINT_VERSION=${PYLINT_VERSION:-4.1.5}
venv=${PEFTSUM_PYLINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/peftsum/pylint-$PYLINT_VERSION}
stamp="$venv/.peftsum-pylint-$PYLINT_VERSION"
if [ -f "$stamp" ] && [ -x "$venv/bin/pylint" ]; then
  echo "$venv/bin/pylint"
  exit 0
fi
. scripts/tool-venv.sh
tool_venv "$venv" "pylint==$PYLINT_VERSION"
touch "$stamp"
echo "$venv/bin/pylint"
