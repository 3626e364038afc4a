#!/usr/bin/env bash
# Rebuild the shipped tiny models (peftsum/models/weights/) from nothing: tokenizer, init, pretraining. About
# 9 minutes, both models at once (one thread each). Prints each digest; exits 1 if one differs from DIGESTS in
# peftsum/models/tiny.py (a recipe change: bump TINY_VERSION in peftsum/spec/catalog.py and commit the new digests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=${1:-peftsum/models/weights}
mkdir -p "$out"
pids=()
for model in tiny-gpt2 tiny-t5; do
  .venv/bin/python -m peftsum.models.tiny --model "$model" --out "$out/$model" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit $rc
