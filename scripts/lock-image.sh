#!/usr/bin/env bash
# Resolve what the CUDA image installs (peftsum's core dependencies + the [gpu] extra, the CUDA build of torch) into
# images/requirements-cuda.txt: every package pinned with its hashes, the versions of requirements-lock.txt where
# it has them. The image installs exactly that file (--require-hashes --no-deps), so a build never resolves anew.
# Needs PyPI (metadata only, no wheels downloaded). Rerun after changing pyproject.toml's dependencies, the lock or
# TORCH_VERSION; tests/k8s/test_images.py checks the result (CUDA torch, nvidia-ml-py, no launcher packages).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=${TORCH_VERSION:-2.13.0}  # the version the CPU tests run (scripts/setup.sh), here its CUDA build
PYTHON_VERSION=3.11                     # images/Dockerfile.cuda's base: python:3.11-slim
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
{ grep -v '^torch==' requirements-lock.txt; echo "torch==$TORCH_VERSION"; } > "$constraints"
# PyPI's Linux x86_64 torch wheel is the CUDA build: it depends on NVIDIA's CUDA runtime, cuBLAS, cuDNN, NCCL… wheels.
UV_CONSTRAINT= .venv/bin/uv pip compile pyproject.toml --extra gpu --python-version "$PYTHON_VERSION" \
  --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple -c "$constraints" \
  --generate-hashes --no-annotate --custom-compile-command "bash scripts/lock-image.sh" \
  -o images/requirements-cuda.txt -q
echo "images/requirements-cuda.txt: $(grep -c '==' images/requirements-cuda.txt) packages"
