#!/usr/bin/env bash
# The GPU check: run on a machine with an NVIDIA GPU (H200 class), Python 3.12, PyTorch and
# nvidia-ml-py, and nothing else of the project (no Docker). Under 5 minutes. It never changes
# the GPU's settings (no MIG, clock or power changes); it only reads NVML and runs PyTorch.
#   tests/gpu/check.sh            (PYTHON=python3.12 to choose the interpreter)
# Prints: NVML's inventory through classhub's own inventory code; training samples/s of the
# CNN lab (courses/m2-ia-sante, TP 03) on CUDA against CPU; two processes under the shared-policy
# memory cap, each refused cleanly when it allocates past its share; what NVML then reports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export PYTHONPATH="$repo:$repo/images/lab:$repo/courses/m2-ia-sante/source/03-cnn-imagerie"
exec timeout 290 "${PYTHON:-python3}" "$here/check.py" "$@"
