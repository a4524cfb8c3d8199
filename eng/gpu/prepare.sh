#!/usr/bin/env bash
# Publishes eng/gpu/GpuCheck self-contained for linux-x64 (the GPU machine has the NVIDIA driver, CUDA and PyTorch, but
# no .NET SDK) into artifacts/gpu-check.tar.xz, small enough to carry there. Then, on that machine: bash eng/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf artifacts/gpu
dotnet publish eng/gpu/GpuCheck -c Release -r linux-x64 --self-contained -o artifacts/gpu/GpuCheck -v quiet -nologo
# Debugger support, symbols and XML docs are not needed there.
tar -C artifacts/gpu --exclude='*.pdb' --exclude='*.xml' --exclude=libmscordaccore.so --exclude=libmscordbi.so \
  --exclude=createdump -cf - GpuCheck | xz -T2 -9 > artifacts/gpu-check.tar.xz
ls -l artifacts/gpu-check.tar.xz
