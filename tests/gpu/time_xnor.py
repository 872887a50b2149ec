"""Times the XNOR-popcount CUDA kernels, through their standalone harness,
against float32 cuBLAS (matrix products) and cuDNN (convolutions) through
PyTorch on the same GPU.

    python -m tests.gpu.time_xnor [--batches 1 8 64] [--out DIR]

needs nvcc, PyTorch and a GPU (no TensorFlow); writes DIR/gpu_xnor.json and
.md (default benchmarks/results). Each 3x3 convolution is timed twice: as
the matrix product of its im2col form ([N*H*W, 9*C] x [9*C, K], XnorMatmul
on packed operands vs cuBLAS SGEMM of the same shape) and as a convolution
(XnorConv2D on the packed NHWC input vs cuDNN). The packing of the input
(Bitpack, which a layer runs every call) is timed apart; the filters are
packed beforehand, as a trained layer's are. The baselines run in float32
with TF32 off, cuDNN in the faster of NCHW and channels-last layouts with
cudnn.benchmark on. Every XNOR result is checked for exact equality with the
float32 product of the +-1 signs (integers, exact there).
"""

import ctypes
import sys
import tempfile

from tests.gpu import gpu_timing
from tests.gpu import test_xnor_gpu as xg

WORD_BITS = 64
# (height = width, in channels, out channels) of 3x3 convolutions, SAME.
CONVS = [(56, 64, 64), (28, 256, 256), (28, 512, 512), (14, 512, 512)]
# (in features, out features) of fully connected layers.
DENSE = [(4096, 4096), (1024, 1024)]


def signs(torch, t):
    """+1 where t >= 0, -1 elsewhere (the packed bit is 1 for negatives)."""
    return torch.where(t >= 0, 1.0, -1.0)


def packed(torch, library, t):
    """t [outer, depth] float32 as [outer, words] int64 words, and a
    callable that packs it again (for timing)."""
    outer, depth = t.shape
    words = -(-depth // WORD_BITS)
    out = torch.empty(outer, words, dtype=torch.int64, device="cuda")

    def pack(sync=1):
        status = library.bitpack(0, WORD_BITS, t.data_ptr(), out.data_ptr(),
                                 outer, depth, sync)
        assert status == 0, status

    pack()
    return out, lambda: pack(0)


def time_matmul(torch, library, m, depth, n):
    """cuBLAS vs XnorMatmul on [m, depth] x [depth, n]."""
    a = torch.randn(m, depth, device="cuda")
    b = torch.randn(depth, n, device="cuda")
    c = torch.empty(m, n, device="cuda")
    sgemm = gpu_timing.seconds(lambda: torch.mm(a, b, out=c))
    pa, pack_a = packed(torch, library, a)
    pb, _ = packed(torch, library, b.t().contiguous())
    out = torch.full((m, n), float("nan"), device="cuda")

    def xnor():
        status = library.xnor_matmul(WORD_BITS, pa.data_ptr(), pb.data_ptr(),
                                     out.data_ptr(), m, n, pa.shape[1], depth,
                                     0)
        assert status == 0, status

    seconds = gpu_timing.seconds(xnor)
    want = torch.mm(signs(torch, a), signs(torch, b)).round()
    return {"sgemm_s": sgemm, "xnor_s": seconds,
            "bitpack_s": gpu_timing.seconds(pack_a),
            "exact": bool(torch.equal(out, want))}


def time_conv(torch, library, batch, size, cin, cout):
    """cuDNN vs XnorConv2D, 3x3 SAME, stride 1."""
    x = torch.randn(batch, size, size, cin, device="cuda")
    f = torch.randn(cout, 3, 3, cin, device="cuda")
    oihw = f.permute(0, 3, 1, 2).contiguous()
    cudnn, _, nchw = gpu_timing.cudnn_seconds(torch, x, oihw)
    px, pack_x = packed(torch, library, x.reshape(-1, cin))
    pf, _ = packed(torch, library, f.reshape(-1, cin))
    geometry = (ctypes.c_int64 * 16)(batch, size, size, px.shape[1], cin, 3,
                                     3, cout, size, size, 1, 1, 1, 1, 1, 1)
    out = torch.full((batch, size, size, cout), float("nan"), device="cuda")

    def xnor():
        status = library.xnor_conv2d(WORD_BITS, px.data_ptr(), pf.data_ptr(),
                                     out.data_ptr(), geometry, 0)
        assert status == 0, status

    seconds = gpu_timing.seconds(xnor)
    # Padding taps add 0: the convolution of the signs with zero padding.
    want = torch.nn.functional.conv2d(
        signs(torch, nchw), signs(torch, oihw), padding=1)
    exact = torch.equal(out, want.round().permute(0, 2, 3, 1))
    return {"cudnn_s": cudnn, "xnor_s": seconds,
            "bitpack_s": gpu_timing.seconds(pack_x), "exact": bool(exact)}


def main():
    args = gpu_timing.arguments(__doc__.splitlines()[0], [1, 8, 64])
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    library = xg.load_library(tempfile.mkdtemp())
    columns = ["op", "case", "batch", "float32 ms", "xnor ms", "bitpack ms",
               "speedup (op)", "speedup (with bitpack)", "exact"]
    rows, records = [], []

    def add(op, case, batch, baseline, r):
        xnor = r["xnor_s"]
        rows.append([op, case, batch, f"{baseline * 1e3:.4f}",
                     f"{xnor * 1e3:.4f}", f"{r['bitpack_s'] * 1e3:.4f}",
                     f"{baseline / xnor:.2f}x",
                     f"{baseline / (xnor + r['bitpack_s']):.2f}x",
                     "yes" if r["exact"] else "**NO**"])
        records.append({"op": op, "case": case, "batch": batch, **r})
        print(rows[-1], flush=True)

    for batch in args.batches:
        for size, cin, cout in CONVS:
            case = f"{size}x{size}x{cin}->{cout} 3x3"
            m, depth = batch * size * size, 9 * cin
            add("im2col GEMM (cuBLAS)", f"{case}: {m}x{depth}x{cout}", batch,
                *_baseline(time_matmul(torch, library, m, depth, cout),
                           "sgemm_s"))
            add("conv2d (cuDNN)", case, batch,
                *_baseline(time_conv(torch, library, batch, size, cin, cout),
                           "cudnn_s"))
            torch.cuda.empty_cache()
        for features, units in DENSE:
            add("matmul (cuBLAS)", f"{features}->{units}", batch,
                *_baseline(time_matmul(torch, library, batch, features,
                                       units), "sgemm_s"))
    gpu_timing.write("gpu_xnor", {"word_bits": WORD_BITS, "results": records},
                     columns, rows, "XNOR-popcount CUDA kernels vs float32 "
                     "cuBLAS/cuDNN (64-bit words, CUDA events)", args.out)
    return 0


def _baseline(result, key):
    """(baseline seconds, result) for `add`."""
    return result[key], result


if __name__ == "__main__":
    sys.exit(main())
