"""Times the Winograd CUDA kernels, through their standalone harness,
against cuDNN's convolution through PyTorch on the same GPU, on the VGG-16
3x3 layers with 64 or more input channels (Simonyan & Zisserman 2015), the
shapes of Lavin & Gray's Table 5.

    python -m tests.gpu.time_winograd [--batches 1 8 64] [--out DIR]

needs nvcc, PyTorch and a GPU (no TensorFlow); writes DIR/gpu_winograd.json
and .md (default benchmarks/results). Speedups are cuDNN's time over ours;
effective TFLOP/s count direct-convolution FLOPs 2*N*H*W*C*K*9 (Lavin &
Gray's measure). The Winograd times are of the convolution with a filter
transformed beforehand (a layer transforms its filter once per weight
update; its time is reported apart). cuDNN runs in float32 with TF32 off,
in the faster of NCHW and channels-last layouts, with cudnn.benchmark on so
it picks its fastest algorithm. Each result's largest error against the
float64 convolution, relative to the largest sum of |products| (the
measure of test_winograd_gpu), is reported beside the tile's tolerance.
"""

import sys
import tempfile

from tests.gpu import gpu_timing
from tests.gpu import test_winograd_gpu as wg

# (height = width, in channels, out channels) of VGG-16's 3x3 layers.
LAYERS = [(224, 64, 64), (112, 64, 128), (112, 128, 128), (56, 128, 256),
          (56, 256, 256), (28, 256, 512), (28, 512, 512), (14, 512, 512)]
TILES = sorted(wg.TOLERANCE)


def time_layer(torch, library, batch, size, cin, cout):
    """{"cudnn": s, tile: (s, error), "filter_transform": s} of one layer."""
    x = torch.empty(batch, size, size, cin, device="cuda").uniform_(-1, 1)
    w = torch.empty(3, 3, cin, cout, device="cuda").uniform_(-1, 1)
    oihw = w.permute(3, 2, 0, 1).contiguous()
    cudnn, layout, nchw = gpu_timing.cudnn_seconds(torch, x, oihw)
    result = {"cudnn": cudnn, "cudnn_layout": layout}
    # The exact result in float64, and the scale of the errors as in
    # test_winograd_gpu.relative_error.
    x64, oihw64 = nchw.double(), oihw.double()
    want = torch.nn.functional.conv2d(x64, oihw64, padding=1)
    want = want.permute(0, 2, 3, 1)
    scale = torch.nn.functional.conv2d(x64.abs(), oihw64.abs(), padding=1)
    scale = scale.max().item()
    del x64, oihw64
    out = torch.empty(batch, size, size, cout, device="cuda")
    for tile in TILES:
        g = wg.geometry((batch, size, size, cin), cout, "SAME", tile)
        u = torch.empty((tile + 2) ** 2 * cin * cout, device="cuda")

        def transform(tile=tile, u=u):
            assert library.filter_transform(tile, w.data_ptr(), u.data_ptr(),
                                            cin, cout) == 0

        transform()
        if tile == 4:
            result["filter_transform"] = gpu_timing.seconds(transform)
        work = torch.empty(library.workspace_floats(g), device="cuda")
        out.fill_(float("nan"))

        def conv(g=g, u=u, work=work):
            status = library.conv2d(x.data_ptr(), u.data_ptr(),
                                    out.data_ptr(), work.data_ptr(), g, 0)
            assert status == 0, status

        seconds = gpu_timing.seconds(conv)
        error = (out.double() - want).abs().max().item() / scale
        result[tile] = (seconds, error)
        del u, work
    return result


def main():
    args = gpu_timing.arguments(__doc__.splitlines()[0], [1, 8, 64])
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    library = wg.load_library(tempfile.mkdtemp())
    columns = (["batch", "layer", "cuDNN ms"]
               + [f"F({t}x{t}) ms" for t in TILES]
               + [f"F({t}x{t}) / cuDNN" for t in TILES]
               + ["cuDNN TFLOP/s", "best F TFLOP/s", "F(4x4) filter "
                  "transform ms", "max error (tolerance)"])
    rows, records = [], []
    for batch in args.batches:
        totals = {"cudnn": 0.0, **{t: 0.0 for t in TILES}}
        for size, cin, cout in LAYERS:
            r = time_layer(torch, library, batch, size, cin, cout)
            flops = 2 * batch * size * size * cin * cout * 9
            totals["cudnn"] += r["cudnn"]
            for t in TILES:
                totals[t] += r[t][0]
            best = min(r[t][0] for t in TILES)
            errors = ", ".join(
                f"F{t} {r[t][1]:.1e}{'' if r[t][1] < wg.TOLERANCE[t] else ' OVER'}"
                f" ({wg.TOLERANCE[t]:.0e})" for t in TILES)
            rows.append([batch, f"{size}x{size}x{cin} -> {cout}",
                         f"{r['cudnn'] * 1e3:.3f}"]
                        + [f"{r[t][0] * 1e3:.3f}" for t in TILES]
                        + [f"{r['cudnn'] / r[t][0]:.2f}x" for t in TILES]
                        + [f"{flops / r['cudnn'] / 1e12:.1f}",
                           f"{flops / best / 1e12:.1f}",
                           f"{r['filter_transform'] * 1e3:.3f}", errors])
            records.append({"batch": batch, "size": size, "in_channels": cin,
                            "out_channels": cout, "flops": flops,
                            "cudnn_s": r["cudnn"],
                            "cudnn_layout": r["cudnn_layout"],
                            "filter_transform_f4_s": r["filter_transform"],
                            **{f"f{t}_s": r[t][0] for t in TILES},
                            **{f"f{t}_error": r[t][1] for t in TILES}})
            print(rows[-1], flush=True)
            torch.cuda.empty_cache()
        rows.append([batch, "**total**", f"{totals['cudnn'] * 1e3:.3f}"]
                    + [f"{totals[t] * 1e3:.3f}" for t in TILES]
                    + [f"{totals['cudnn'] / totals[t]:.2f}x" for t in TILES]
                    + ["", "", "", ""])
    gpu_timing.write(
        "gpu_winograd", {"layers": records, "tiles": TILES,
                         "tolerance": {str(t): v for t, v in
                                       wg.TOLERANCE.items()}},
        columns, rows, "Winograd CUDA kernels vs cuDNN, VGG-16 3x3 layers "
        "(float32, CUDA events)", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
