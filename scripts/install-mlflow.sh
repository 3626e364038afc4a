#!/usr/bin/env bash
# Create the virtual environment of the MLflow tracking *server* that tests/test_tracking.py starts on 127.0.0.1
# (SQLite backend). Its own environment: mlflow pins pyarrow < 26, which clashes with requirements-lock.txt. The
# cells only need the client, mlflow-skinny, which is in the project's venv (pyproject's [mlflow] extra, part of dev).
# Cached outside the checkout ($PEFTSUM_MLFLOW_VENV, default ~/.cache/peftsum/mlflow-server-<version>), so a fresh
# clone on the same machine (CI) reuses it. Idempotent: a rerun with the same version is a no-op; about 30-60 s
# from nothing with uv. Prints the server's python path last; `--check` prints it only if installed (else exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
MLFLOW_VERSION=${MLFLOW_VERSION:-3.17.2}  # the same version as the client pinned in requirements-lock.txt
venv=${PEFTSUM_MLFLOW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/peftsum/mlflow-server-$MLFLOW_VERSION}
stamp="$venv/.peftsum-mlflow-$MLFLOW_VERSION"
if [ -f "$stamp" ] && [ -x "$venv/bin/mlflow" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then  # only say where it is (tests/test_tracking.py): exit 1 when not installed
  exit 1
fi
. scripts/tool-venv.sh
tool_venv "$venv" "mlflow==$MLFLOW_VERSION"
"$venv/bin/python" -c "import mlflow, sqlalchemy; print('mlflow', mlflow.__version__)" >&2
touch "$stamp"
echo "$venv/bin/python"
