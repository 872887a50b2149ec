"""The XNOR-popcount inference ops (`keras_cnnpractice.custom_ops.xnor`)
against float32, in one run, on the CPU:

  * 3x3, stride-1, SAME convolutions (56x56x64->64, 28x28x256->256,
    14x14x512->512, at batch 1 and 8): float32 `tf.nn.conv2d` on the float
    input and kernel; `xnor_conv2d` on a pre-packed input and filter (the op
    alone); and `bitpack(input)` + `xnor_conv2d`, what an inference layer
    pays per call, since its activations arrive as floats and must be packed;
  * matmuls ((batch 1 and 64) x 4096->4096 and 1024->1024): float32
    `tf.matmul` against `xnor_matmul` on packed operands, and `bitpack` +
    `xnor_matmul`.

Every method runs inside a `tf.function`; the median over --repeats calls is
kept. Beside them, `call`: a `tf.function` holding only `tf.identity` of
the packed input, the fixed cost of a call that every method's time
includes (0.15-0.2 ms on a 2-core Zen 4 class EPYC, 40-50 % of what a 10x
speedup leaves a 14x14x512 layer at batch 1). Before a case is timed, each
XNOR method's output is checked to equal exactly the float computation on the signs (`np.where(x >= 0, 1, -1)` of the
input and of the kernel, computed with numpy), and the run stops if it does
not: a benchmark must not time wrong code. Reported per case: median ms per
method, speedup = float32 ms / XNOR ms (op alone and with bitpack), and the
weight memory, float32 kernel bytes against packed kernel bytes (~32x).

Anchor: Larq Compute Engine reports binary convolutions 8.5-18.5x faster than
full precision on a Pixel 1 (Bannink et al., "Larq Compute Engine", 2021).
The goal here is >= 10x over float32 on the 256- and 512-channel layers
where the CPU has AVX-512 VPOPCNTDQ (the op library's avx512 level), >= 6x
on the AVX2 path (`KCP_ISA=avx2`: per-byte popcounts through a shuffle
table, Mula et al., 2016); the JSON records the CPU flags and the op
library's level.

    python benchmarks/binary.py [--conv_shapes 56x56x64x64,28x28x256x256,14x14x512x512]
        [--conv_batches 1,8] [--matmul_shapes 4096x4096,1024x1024]
        [--matmul_batches 1,64] [--word_bits 64] [--repeats 15]

Writes benchmarks/results/binary.{json,md} (or NAME.* with --name).
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

KERNEL_SIZE = 3  # 3x3, stride 1, SAME
GOAL_SPEEDUP = 10.0
GOAL_CHANNELS = (256, 512)

flags.DEFINE_list("conv_shapes", ["56x56x64x64", "28x28x256x256",
                                  "14x14x512x512"],
                  "Convolutions as HxWxIN_CHANNELSxOUT_CHANNELS (3x3 kernel, "
                  "stride 1, SAME padding).")
flags.DEFINE_list("conv_batches", ["1", "8"], "Batch sizes per convolution.")
flags.DEFINE_list("matmul_shapes", ["4096x4096", "1024x1024"],
                  "Matmuls as DEPTHxUNITS (a Dense layer's kernel shape).")
flags.DEFINE_list("matmul_batches", ["1", "64"], "Rows per matmul.")
flags.DEFINE_enum("word_bits", "64", ["32", "64"], "Bits per packed word.")
flags.DEFINE_integer("repeats", 15, "Timed calls per method (median kept).")
flags.DEFINE_integer("warmup", 3, "Untimed calls per method before timing "
                     "(after the first call, which traces and is checked).")
flags.DEFINE_integer("seed", 0, "Seed of the random inputs and kernels.")
flags.DEFINE_string("name", "binary", "Results file name (results/NAME.*).")
FLAGS = flags.FLAGS


def _ints(text, parts, flag):
    values = [int(v) for v in text.lower().split("x")]
    if len(values) != parts or min(values) < 1:
        raise app.UsageError(f"--{flag}: expected {parts} positive ints "
                             f"joined by 'x', got {text!r}")
    return values


def _signs(x):
    """+-1 float32, with 0 -> +1 as in `bitpack` (bit set only if x < 0)."""
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def _conv_signs_numpy(x, kernel):
    """`conv2d(sign(x), sign(kernel))`, stride 1, SAME, by im2col + matmul.

    Every partial sum is an integer below 2**24 in magnitude, so the float32
    matmul is exact whatever its summation order.
    """
    kh, kw, cin, cout = kernel.shape
    batch, height, width, _ = x.shape
    pad_h, pad_w = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(_signs(x), [(0, 0), (pad_h, kh - 1 - pad_h),
                                (pad_w, kw - 1 - pad_w), (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(
        padded, (kh, kw), axis=(1, 2))  # [b, h, w, cin, kh, kw]
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(
        batch * height * width, kh * kw * cin)
    out = cols @ _signs(kernel).reshape(kh * kw * cin, cout)
    return out.reshape(batch, height, width, cout)


def _check_exact(label, got, expected):
    """Stops the run unless `got` equals `expected` exactly."""
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise RuntimeError(f"{label}: XNOR output shape {got.shape} != "
                           f"expected {expected.shape}; not timing wrong code")
    wrong = got != expected
    if wrong.any():
        index = tuple(int(i) for i in np.argwhere(wrong)[0])
        raise RuntimeError(
            f"{label}: XNOR output differs from the float computation on the "
            f"signs at {int(wrong.sum())} of {wrong.size} entries (first at "
            f"{index}: {got[index]} != {expected[index]}; max |diff| "
            f"{float(np.abs(got - expected).max())}); not timing wrong code")


def _cpu_flags():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return {f: f in have for f in ("popcnt", "avx2", "avx512f",
                                               "avx512_vpopcntdq")}
    except OSError:
        pass
    return {}


def _time_case(label, methods, checks, expected):
    """Checks the XNOR methods, then times every method (ms, median)."""
    import tensorflow as tf

    fns = {name: tf.function(method)
           for name, method in methods.items()}
    # The first call of each traces it (never timed); check the XNOR outputs.
    for name, fn in fns.items():
        out = fn()
        if name in checks:
            _check_exact(f"{label} {name}", out.numpy(), expected)
    # On the CPU a tf.function call returns once its ops have run, so timing
    # the call measures the work.
    return {name: common.median_seconds(fn, repeats=FLAGS.repeats,
                                        warmup=FLAGS.warmup) * 1e3
            for name, fn in fns.items()}


def _entry(kind, label, batch, macs, ms, float_bytes, packed_bytes):
    return {
        "kind": kind, "case": label, "batch": batch, "macs": macs,
        "ms": ms,
        "speedup_op": ms["float32"] / ms["xnor"],
        "speedup_with_bitpack": ms["float32"] / ms["bitpack_xnor"],
        "float32_gmac_per_s": macs / ms["float32"] / 1e6,
        "xnor_gmac_per_s": macs / ms["xnor"] / 1e6,
        "kernel_bytes_float32": float_bytes,
        "kernel_bytes_packed": packed_bytes,
        "kernel_memory_ratio": float_bytes / packed_bytes,
    }


def _row(entry):
    ms = entry["ms"]
    return [entry["kind"], entry["case"], entry["batch"],
            f"{ms['float32']:.3f}", f"{ms['xnor']:.3f}",
            f"{ms['bitpack']:.3f}", f"{ms['bitpack_xnor']:.3f}",
            f"{ms['call']:.3f}",
            f"{entry['speedup_op']:.2f}x",
            f"{entry['speedup_with_bitpack']:.2f}x",
            f"{entry['kernel_bytes_float32'] / 1024:,.1f}",
            f"{entry['kernel_bytes_packed'] / 1024:,.1f}",
            f"{entry['kernel_memory_ratio']:.1f}x"]


def main(_):
    import tensorflow as tf
    from keras_cnnpractice.custom_ops import _loader
    from keras_cnnpractice.custom_ops import bitpack
    from keras_cnnpractice.custom_ops import pack_conv_kernel
    from keras_cnnpractice.custom_ops import pack_dense_kernel
    from keras_cnnpractice.custom_ops import xnor_conv2d
    from keras_cnnpractice.custom_ops import xnor_matmul

    word_bits = int(FLAGS.word_bits)
    rng = np.random.default_rng(FLAGS.seed)
    results = []

    for shape in FLAGS.conv_shapes:
        height, width, cin, cout = _ints(shape, 4, "conv_shapes")
        kernel_np = rng.standard_normal(
            (KERNEL_SIZE, KERNEL_SIZE, cin, cout)).astype(np.float32)
        kernel = tf.constant(kernel_np)
        packed_kernel = pack_conv_kernel(kernel, word_bits=word_bits)
        label = (f"{height}x{width}x{cin}->{cout} "
                 f"{KERNEL_SIZE}x{KERNEL_SIZE}")
        for batch in map(int, FLAGS.conv_batches):
            x_np = rng.standard_normal(
                (batch, height, width, cin)).astype(np.float32)
            x = tf.constant(x_np)
            packed_x = bitpack(x, word_bits=word_bits)

            def conv(px, pk=packed_kernel, cin=cin):
                return xnor_conv2d(px, pk, channels=cin, strides=1,
                                   padding="SAME")

            methods = {
                "float32": lambda x=x, k=kernel: tf.nn.conv2d(
                    x, k, strides=1, padding="SAME"),
                "xnor": lambda px=packed_x, conv=conv: conv(px),
                "bitpack": lambda x=x: bitpack(x, word_bits=word_bits),
                "bitpack_xnor": lambda x=x, conv=conv: conv(
                    bitpack(x, word_bits=word_bits)),
                "call": lambda px=packed_x: tf.identity(px),
            }
            ms = _time_case(f"conv {label} batch {batch}", methods,
                            ["xnor", "bitpack_xnor"],
                            _conv_signs_numpy(x_np, kernel_np))
            macs = batch * height * width * KERNEL_SIZE ** 2 * cin * cout
            entry = _entry("conv2d", label, batch, macs, ms,
                           kernel_np.nbytes, packed_kernel.numpy().nbytes)
            entry.update(height=height, width=width, in_channels=cin,
                         out_channels=cout, kernel_size=KERNEL_SIZE,
                         strides=1, padding="SAME")
            results.append(entry)
            print(" | ".join(str(c) for c in _row(entry)), flush=True)

    for shape in FLAGS.matmul_shapes:
        depth, units = _ints(shape, 2, "matmul_shapes")
        kernel_np = rng.standard_normal((depth, units)).astype(np.float32)
        kernel = tf.constant(kernel_np)
        packed_kernel = pack_dense_kernel(kernel, word_bits=word_bits)
        label = f"{depth}->{units}"
        for batch in map(int, FLAGS.matmul_batches):
            x_np = rng.standard_normal((batch, depth)).astype(np.float32)
            x = tf.constant(x_np)
            packed_x = bitpack(x, word_bits=word_bits)
            methods = {
                "float32": lambda x=x, k=kernel: tf.matmul(x, k),
                "xnor": lambda px=packed_x, pk=packed_kernel, d=depth:
                    xnor_matmul(px, pk, depth=d),
                "bitpack": lambda x=x: bitpack(x, word_bits=word_bits),
                "bitpack_xnor": lambda x=x, pk=packed_kernel, d=depth:
                    xnor_matmul(bitpack(x, word_bits=word_bits), pk, depth=d),
                "call": lambda px=packed_x: tf.identity(px),
            }
            ms = _time_case(f"matmul {label} batch {batch}", methods,
                            ["xnor", "bitpack_xnor"],
                            _signs(x_np) @ _signs(kernel_np))
            entry = _entry("matmul", label, batch, batch * depth * units, ms,
                           kernel_np.nbytes, packed_kernel.numpy().nbytes)
            entry.update(depth=depth, units=units)
            results.append(entry)
            print(" | ".join(str(c) for c in _row(entry)), flush=True)

    goal = [r for r in results
            if r["kind"] == "conv2d" and r["out_channels"] in GOAL_CHANNELS]
    payload = {
        "benchmark": "binary",
        "word_bits": word_bits,
        "flags": {name: FLAGS[name].value for name in (
            "conv_shapes", "conv_batches", "matmul_shapes", "matmul_batches",
            "word_bits", "repeats", "warmup", "seed", "name")},
        "tensorflow": tf.__version__,
        "op_library": _loader.build_info(),
        "cpu_flags": _cpu_flags(),
        "goal": {"speedup_vs_float32": GOAL_SPEEDUP,
                 "out_channels": list(GOAL_CHANNELS),
                 "min_speedup_op": min(
                     (r["speedup_op"] for r in goal), default=None),
                 "min_speedup_with_bitpack": min(
                     (r["speedup_with_bitpack"] for r in goal),
                     default=None)},
        "results": results,
    }
    common.write_results(
        FLAGS.name, payload,
        ["op", "case", "batch", "float32 ms", "xnor ms", "bitpack ms",
         "bitpack+xnor ms", "call ms", "speedup (op)", "speedup (with bitpack)",
         "float32 kernel KiB", "packed kernel KiB", "memory ratio"],
        [_row(r) for r in results],
        f"XNOR-popcount ops vs float32 ({word_bits}-bit words, CPU, "
        f"median of {FLAGS.repeats})")
    if goal:
        print(f"\nGoal >= {GOAL_SPEEDUP:g}x on the "
              f"{'/'.join(map(str, GOAL_CHANNELS))}-channel convolutions: "
              f"min speedup {payload['goal']['min_speedup_op']:.2f}x (op), "
              f"{payload['goal']['min_speedup_with_bitpack']:.2f}x "
              "(with bitpack)")


if __name__ == "__main__":
    app.run(main)
