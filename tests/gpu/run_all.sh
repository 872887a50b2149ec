#!/usr/bin/env bash
# Every GPU check of this project in one go, for the lent GPU machine
# (nvcc, PyTorch, CuPy, pytest; no TensorFlow). From the repository root:
#
#     bash tests/gpu/run_all.sh [RESULTS_DIR]
#
# 1. tests/gpu: every CUDA kernel, built standalone by nvcc, against the
#    numpy references (float64 convolution, np.packbits, Philox), edge
#    sizes and empty batches included;
# 2. tests.gpu.time_winograd: Winograd F(2x2), F(4x4), F(6x6) vs cuDNN on
#    VGG-16's 3x3 layers at batch 1, 8 and 64;
# 3. tests.gpu.time_xnor: XNOR-popcount vs float32 cuBLAS and cuDNN;
# 4. tests.gpu.time_binary_ceiling: the GPU's popcount and binary
#    tensor-core rates against its float32 SGEMM.
#
# Results (default benchmarks/results): gpu_tests.log, gpu_winograd.json/.md,
# gpu_xnor.json/.md, gpu_binary_ceiling.json/.md. Each step has its own time limit, so one that hangs
# costs only its own; the exit status is 1 if any step failed.
set -u -o pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
status=0

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv
timeout 150 "$python" -m pytest tests/gpu -n 3 --dist loadfile \
  -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log" || status=1
timeout 200 "$python" -m tests.gpu.time_winograd --out "$out" || status=1
timeout 120 "$python" -m tests.gpu.time_xnor --out "$out" || status=1
timeout 60 "$python" -m tests.gpu.time_binary_ceiling --out "$out" || status=1
exit $status
