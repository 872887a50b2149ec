"""Times the Winograd CUDA kernels, through their standalone harness,
against cuDNN's convolution through PyTorch on the same GPU, on the VGG-16
3x3 layers with 64 or more input channels (Simonyan & Zisserman 2015).

    python -m tests.gpu.time_winograd

needs nvcc, CuPy, PyTorch and a GPU (no TensorFlow). Prints a markdown
table of effective GFLOP/s (direct-convolution FLOPs 2*N*H*W*C*K*9 / time,
the measure of Lavin & Gray 2016). The Winograd times are of the
convolution with a transformed filter computed beforehand; cuDNN runs in
float32 with TF32 off, in the faster of NCHW and channels-last layouts,
with cudnn.benchmark on so it picks its fastest algorithm.
"""

import sys
import tempfile

import numpy as np

from tests.gpu import test_winograd_gpu as wg

# (height = width, in channels, out channels) of VGG-16's 3x3 layers.
LAYERS = [(224, 64, 64), (112, 64, 128), (112, 128, 128), (56, 128, 256),
          (56, 256, 256), (28, 256, 512), (28, 512, 512), (14, 512, 512)]
REPEATS = 20


def seconds(cupy, fn):
    """Mean seconds of fn() over REPEATS calls, by CUDA events."""
    fn()
    cupy.cuda.Device().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(REPEATS):
        fn()
    end.record()
    end.synchronize()
    return cupy.cuda.get_elapsed_time(start, end) / 1e3 / REPEATS


def main():
    import cupy
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    library = wg.load_library(tempfile.mkdtemp())
    print(f"GPU: {torch.cuda.get_device_name()}")
    print("| batch | layer | cuDNN | F(2x2) | F(4x4) | F(4x4) / cuDNN |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for batch in (1, 8):
        for size, cin, cout in LAYERS:
            x = rng.uniform(-1, 1, (batch, size, size, cin)).astype(np.float32)
            w = rng.uniform(-1, 1, (3, 3, cin, cout)).astype(np.float32)
            flops = 2 * batch * size * size * cin * cout * 9
            xt = torch.from_numpy(x).cuda().permute(0, 3, 1, 2)
            wt = torch.from_numpy(w).cuda().permute(3, 2, 0, 1).contiguous()
            layouts = (xt.contiguous(),
                       xt.contiguous(memory_format=torch.channels_last))
            cudnn = min(seconds(cupy, lambda a=a: torch.nn.functional.conv2d(
                a, wt, padding=1)) for a in layouts)
            row = [cudnn]
            for tile in (2, 4):
                g = wg.geometry(x.shape, cout, "SAME", tile)
                xd, wd = cupy.asarray(x), cupy.asarray(w)
                u = cupy.empty((tile + 2, tile + 2, cin, cout), cupy.float32)
                assert library.filter_transform(tile, wd.data.ptr, u.data.ptr,
                                                cin, cout) == 0
                work = cupy.empty(library.workspace_floats(g), cupy.float32)
                out = cupy.empty((batch, size, size, cout), cupy.float32)
                row.append(seconds(cupy, lambda: library.conv2d(
                    xd.data.ptr, u.data.ptr, out.data.ptr, work.data.ptr, g)))
                got = cupy.asnumpy(out)
                want = torch.nn.functional.conv2d(layouts[0], wt, padding=1)
                want = want.permute(0, 2, 3, 1).cpu().numpy()
                error = np.abs(got - want).max() / np.abs(want).max()
                assert error < wg.TOLERANCE[tile], (size, cin, cout, tile, error)
            gflops = [flops / t / 1e9 for t in row]
            print(f"| {batch} | {size}x{size}x{cin} -> {cout} | "
                  + " | ".join(f"{v:.0f}" for v in gflops)
                  + f" | {gflops[2] / gflops[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
