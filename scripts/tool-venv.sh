# Sourced by scripts/install-checkov.sh and scripts/install-mlflow.sh: `tool_venv VENV REQUIREMENT` creates the
# virtual environment VENV of a tool whose pins clash with requirements-lock.txt and installs REQUIREMENT into it
# with uv (a few times faster than pip's resolver on ~100 dependencies; as scripts/setup.sh). No constraints file:
# the tool's own pins. The caller stamps it when done.
tool_venv() {
  local venv=$1 requirement=$2 uv
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "${PYTHON:-python3}" -m venv "$venv"
  if [ -x .venv/bin/uv ]; then
    uv=.venv/bin/uv
  else
    "$venv/bin/python" -m pip install -q uv
    uv="$venv/bin/uv"
  fi
  "$uv" pip install -q -p "$venv/bin/python" "$requirement" >&2
}
