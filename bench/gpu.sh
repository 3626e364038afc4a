#!/usr/bin/env bash
# The GPU measurement of issue 6 in one script (<= 8 minutes): peftsum bench on random-init GPT-2 small and
# T5-small, through the project's own training and generation path, in four passes so that a slow model or a slow
# torch.compile cannot cost the other numbers (each pass has its own time limit and writes its JSON after every
# case):
#   1. train-gpt2        naive (seed-paper) vs fast (bf16, fused AdamW, length buckets), the fast case twice
#                        (first contact with each batch shape, then warm); LoRA (+ without dropout), IA3, BitFit
#   2. train-t5          T5-small naive / fast (twice) / LoRA / IA3, in a fresh process (no valid number yet)
#   3. generate          GPT-2 small / T5-small naive (fp32, batch 20/30) vs fast (bf16, memory-sized token budget;
#                        dynamic and static cache)
#   4. train-compiled    the opt-in torch.compile for GPT-2 full FT and LoRA
# Every training row has first_step_seconds (the first 40 steps) and batch_shapes, and env.txt the TunableOp /
# module-loading settings: the evidence for the first-contact slowdown in docs/performance.md.
#
# Usage, from the repository root of a GPU machine:   bash bench/gpu.sh [OUT_DIR]      (default runs/bench/gpu)
# Dry run on a CPU (tiny models, about 3 minutes):   BENCH_SMOKE=1 bash bench/gpu.sh /tmp/gpu-smoke
# Wheels in .whl/ (transformers/peft of this checkout's lock, when the machine's differ) are installed first.
set -uo pipefail
OUT_DIR=${1:-runs/bench/gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error

if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true
  $PY -c "import torch, transformers, peft; print(torch.__version__, torch.version.cuda, transformers.__version__, peft.__version__)"
  $PY -c "import torch; print('tunableop enabled:', torch.cuda.is_available() and torch.cuda.tunable.is_enabled())"
  env | grep -E '^(PYTORCH_|CUDA_|TORCH_|NVIDIA_TF32|CUBLAS)' | sort || true
} | tee "$OUT_DIR/env.txt"

if [ -n "${BENCH_SMOKE:-}" ]; then   # CPU: the same passes on tiny models with a handful of examples
  COMMON=(--models tiny --device cpu --threads 1 --examples 40 --gen-prompts 8 --warmup-steps 1)
  M=tiny- T5=tiny-t5 T1=150 T5S=100 T2=60 T3=60 COMPILED=(--only nothing)  # inductor on a 2-core CPU: minutes
else
  COMMON=(--examples 3000)
  M= T5=t5-small T1=${BENCH_T1:-140} T5S=${BENCH_T5:-110} T2=${BENCH_T2:-80} T3=${BENCH_T3:-130}
  COMPILED=(--extended --only gpt2/full/fast-compiled --only gpt2/lora/fast-compiled)
fi
bench() { # seconds name args...
  local limit=$1 name=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout -k 5 "$limit" $PY -m peftsum.cli bench "${COMMON[@]}" --out "$OUT_DIR/$name.json" "$@" \
    2> >(grep -v -e "Loading weights" -e "warnings.warn" -e "FutureWarning" -e "UserWarning" >&2)
  echo "== $name: exit $?"
}

bench "$T1" train-gpt2 --part train --only ${M}gpt2/full/naive --only ${M}gpt2/full/fast --only ${M}gpt2/lora/fast \
  --only ${M}gpt2/ia3/fast --only ${M}gpt2/bitfit/fast --only ${M}gpt2/lora/fast-nodrop
bench "$T5S" train-t5 --part train --only $T5
bench "$T3" generate --part generate
bench "$T2" train-compiled --part train "${COMPILED[@]}"
ls -la "$OUT_DIR"
