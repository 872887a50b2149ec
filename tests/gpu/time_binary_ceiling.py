"""The GPU's ceilings for binary products, to judge XnorMatmul by: 1-bit
multiply-accumulates per second of the popcount units (XOR + POPC + add, the
instructions the XNOR kernels use) and of the binary tensor cores
(`mma.sync ... m16n8k256 .b1 .and.popc`, the only 1-bit tensor-core product
sm_90 has: XNOR counts then need popcount(a) + popcount(b) - 2 *
popcount(a & b)), beside the float32 multiply-accumulates of a cuBLAS
SGEMM (TF32 off) on the same GPU.

    python -m tests.gpu.time_binary_ceiling [--out DIR]

needs CuPy, PyTorch and a GPU; writes DIR/gpu_binary_ceiling.json and .md.
Each ceiling kernel runs register-resident loops with independent
accumulators on every SM (no memory traffic); the sums are stored so the
compiler keeps the work.
"""

import sys

from tests.gpu import gpu_timing

SOURCE = r"""
extern "C" __global__ void popc_loop(unsigned long long* out, int steps) {
  unsigned long long a = threadIdx.x * 0x9E3779B97F4A7C15ull + blockIdx.x;
  unsigned long long b[4] = {a ^ 1ull, a ^ 2ull, a ^ 3ull, a ^ 4ull};
  int acc[4] = {0, 0, 0, 0};
  for (int s = 0; s < steps; ++s) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      acc[i] += __popcll(a ^ b[i]);
      b[i] += 0x5851F42D4C957F2Dull;
    }
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc[0] + acc[1] + acc[2] +
                                               acc[3];
}

extern "C" __global__ void bmma_loop(int* out, int steps) {
  unsigned a0 = threadIdx.x * 2654435761u + blockIdx.x, a1 = a0 ^ 0x1234u,
           a2 = a0 ^ 0x5678u, a3 = a0 ^ 0x9abcu;
  unsigned b0 = a0 * 3u, b1 = a1 * 5u;
  int c[4][4] = {};
  for (int s = 0; s < steps; ++s) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      asm volatile(
          "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
          "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
          "{%0, %1, %2, %3};\n"
          : "+r"(c[i][0]), "+r"(c[i][1]), "+r"(c[i][2]), "+r"(c[i][3])
          : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
  }
  int sum = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) sum += c[i][0] + c[i][1] + c[i][2] + c[i][3];
  out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
}
"""

STEPS = 4096
THREADS = 256


def main():
    args = gpu_timing.arguments(__doc__.splitlines()[0])
    import cupy
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    module = cupy.RawModule(code=SOURCE, options=("-arch=sm_90",))
    blocks = torch.cuda.get_device_properties(0).multi_processor_count * 8
    out = cupy.empty(blocks * THREADS, cupy.uint64)
    rows = []
    records = {}
    # Binary MACs per call: popc_loop does 4 x 64 per thread and step;
    # bmma_loop 4 m16n8k256 products (16 * 8 * 256 each) per warp and step.
    kernels = {
        "XOR + POPC (64-bit words)": ("popc_loop", 4 * 64 * THREADS),
        "binary tensor cores (mma .b1 and.popc)":
            ("bmma_loop", 4 * 16 * 8 * 256 * THREADS // 32),
    }
    for label, (name, per_block_step) in kernels.items():
        kernel = module.get_function(name)
        seconds = gpu_timing.seconds(lambda kernel=kernel: kernel(
            (blocks,), (THREADS,), (out, cupy.int32(STEPS))))
        rate = per_block_step * blocks * STEPS / seconds
        records[name] = rate
        rows.append([label, f"{rate / 1e12:.1f}"])
    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    c = torch.empty(n, n, device="cuda")
    seconds = gpu_timing.seconds(lambda: torch.mm(a, b, out=c))
    sgemm = n ** 3 / seconds
    records["sgemm"] = sgemm
    rows.append(["float32 cuBLAS SGEMM 8192^3 (TF32 off)",
                 f"{sgemm / 1e12:.1f}"])
    for row, name in zip(rows, ["popc_loop", "bmma_loop", "sgemm"]):
        row.append(f"{records[name] / sgemm:.1f}x")
    gpu_timing.write("gpu_binary_ceiling", {"macs_per_s": records},
                     ["units", "T multiply-accumulates/s", "vs SGEMM"], rows,
                     "Binary-product ceilings vs float32 SGEMM", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
