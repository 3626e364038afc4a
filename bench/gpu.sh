#!/usr/bin/env bash
# The GPU measurement in one script (<= 8 minutes on one GPU): peftsum bench on random-init GPT-2 small and
# T5-small, through the project's own training and generation path, in three passes so that a slow model or a slow
# compile cannot cost the other numbers (each pass has its own time limit and writes its JSON after every case):
#   1. train-gpt2   naive (seed-paper) vs fast (bf16, fused AdamW, a 16-shape ladder, torch.compile: the preset's
#                   auto on CUDA) vs fast-eager (the same, compile off); full FT and LoRA
#   2. train-t5     the same for T5-small, in a fresh process
#   3. generate     GPT-2 small / T5-small naive (fp32, batch 20/30) vs fast (bf16, the memory-sized token budget;
#                   dynamic, and the static cache over the ladder's shapes)
# Each training row reports its steady state (after the warm-up steps and the last step that compiled) with the
# warm-up apart (warmup.seconds, warmup.compiled_at_steps), batch_shapes and compiled_graphs; one JSON per pass,
# and the last line of each pass is its summary (compile_speedup, batch_shapes per case, tokens/s).
#
# Usage, from the repository root of a GPU machine:   bash bench/gpu.sh [OUT_DIR]      (default runs/bench/gpu)
# Dry run on a CPU (tiny models; the compiled cases with the cheap aot_eager backend, about 3 minutes):
#   BENCH_SMOKE=1 bash bench/gpu.sh /tmp/gpu-smoke
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
  COMMON=(--models tiny --device cpu --threads 1 --examples 40 --gen-prompts 8 --warmup-steps 1 --extended
          --compile-backend aot_eager)
  M=tiny- T5=tiny-t5 PAIR=fast-compiled T1=150 T5S=150 T3=60  # CPU: compile is opt-in, the pair is compiled
else
  COMMON=(--examples 3000)
  M= T5=t5-small PAIR=fast-eager T1=${BENCH_T1:-200} T5S=${BENCH_T5:-170} T3=${BENCH_T3:-90}
fi
bench() { # seconds name args...
  local limit=$1 name=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout -k 5 "$limit" $PY -m peftsum.cli bench "${COMMON[@]}" --out "$OUT_DIR/$name.json" "$@" \
    2> >(grep -v -e "Loading weights" -e "warnings.warn" -e "FutureWarning" -e "UserWarning" >&2)
  echo "== $name: exit $?"
}
cases() { # model: its naive, fast (compiled on CUDA) and the other side of compile, full FT and LoRA
  echo --only "$1/full/naive" --only "$1/full/fast" --only "$1/full/$PAIR" --only "$1/lora/fast" --only "$1/lora/$PAIR"
}

# shellcheck disable=SC2046
bench "$T1" train-gpt2 --part train $(cases ${M}gpt2)
# shellcheck disable=SC2046
bench "$T5S" train-t5 --part train $(cases $T5)
bench "$T3" generate --part generate
ls -la "$OUT_DIR"
