#!/usr/bin/env bash
# Create .venv-checkov with checkov (a Kubernetes/Helm security scanner from PyPI) for tests/k8s/test_checkov.py.
# Its own virtual environment: checkov pins versions of boto3, jsonschema, rich, … that clash with
# requirements-lock.txt. Idempotent: a rerun with the same version is a no-op. The test runs it offline.
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION=${CHECKOV_VERSION:-3.3.30}
venv=.venv-checkov
stamp="$venv/.checkov-$CHECKOV_VERSION"
if [ -f "$stamp" ] && [ -x "$venv/bin/checkov" ]; then
  exit 0
fi
. scripts/tool-venv.sh
tool_venv "$venv" "checkov==$CHECKOV_VERSION"
"$venv/bin/checkov" --version
touch "$stamp"
