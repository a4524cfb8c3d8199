#!/usr/bin/env bash
# On the GPU machine: the GPU conformance suite on CUDA device 0, then our networks beside PyTorch's on the same GPU.
# Needs artifacts/gpu-check.tar.xz from eng/gpu/prepare.sh. Writes what it prints under $OUT (or ./gpu-results).
# Usage: bash eng/gpu/run.sh [tests|bench|all] [FILTER]
set -uo pipefail
cd "$(dirname "$0")/../.."
what=${1:-all}
filter=${2:-}
out=${OUT:-gpu-results}
mkdir -p "$out" /tmp/ml-cnn-gpu
tar -C /tmp/ml-cnn-gpu -xJf artifacts/gpu-check.tar.xz
check=/tmp/ml-cnn-gpu/GpuCheck/GpuCheck
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
status=0
if [[ $what == tests || $what == all ]]; then
  timeout 420 "$check" tests 0 "$filter" 2>&1 | tee "$out/tests.txt" | grep -v '^PASS'
  status=${PIPESTATUS[0]}
fi
if [[ $what == bench || $what == all ]]; then
  export ML_CNN_PYTHON=${ML_CNN_PYTHON:-python3}
  for size in 64 224; do
    timeout 150 "$check" bench networks "$size" 32 --cuda 0 2>&1 | tee "$out/networks-$size.txt"
  done
fi
exit "$status"
