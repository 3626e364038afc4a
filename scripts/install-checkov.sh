#!/usr/bin/env bash
# Create .venv-checkov with checkov (a Kubernetes/Helm security scanner from PyPI) for tests/k8s/test_k8s_checkov.py.
# Its own virtual environment: checkov pins versions of boto3, jsonschema, rich, … that clash with
# requirements-lock.txt. Idempotent: a rerun with the same version is a no-op. The test runs it offline.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
PYTHON=${PYTHON:-python3}
venv=.venv-checkov
stamp="$venv/.checkov-$CHECKOV_VERSION"
if [ -f "$stamp" ] && [ -x "$venv/bin/checkov" ]; then
  exit 0
fi
rm -rf "$venv"
"$PYTHON" -m venv "$venv"
# uv when the main setup installed it (about 4x faster than pip), else pip. No constraints file: checkov's own pins.
uv=$(command -v .venv/bin/uv || true)
if [ -n "$uv" ]; then
  "$uv" pip install -q -p "$venv/bin/python" "checkov==$CHECKOV_VERSION"
else
  PIP_CONSTRAINT= "$venv/bin/python" -m pip install -q "checkov==$CHECKOV_VERSION"
fi
"$venv/bin/checkov" --version
touch "$stamp"
