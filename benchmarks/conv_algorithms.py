"""Convolution algorithms against `tf.nn.conv2d`, in one run, on the CPU, in
the shape of Lavin & Gray's Table 5 ("Fast Algorithms for Convolutional
Neural Networks", 2015):

  * the VGG-16 3x3, stride-1, SAME layers whose input and output channels
    agree (conv1.2 224x224x64->64, conv2.2 112x112x128->128, conv3.2
    56x56x256->256, conv4.2 28x28x512->512, conv5.2 14x14x512->512) at
    batch 1 and 8;
  * 5x5, 7x7, 9x9 and 11x11 kernels, stride 1, SAME, on one mid-network
    shape, 56x56x64->64 at batch 8 (VGG's conv3 resolution with conv1's
    width: large enough that the FFT's transform cost is amortized over
    64x64 channel pairs, small enough that an 11x11 direct convolution
    (25 GFLOP) stays within a second or so on two cores).

Methods: `native` (`tf.nn.conv2d`), `im2col` (`im2col_conv2d`), `fft`
(`fft_conv2d`), `winograd` (F(2x2,3x3)), `winograd4` (F(4x4,3x3)) and
`winograd6` (F(6x6,3x3)), the last three on 3x3 kernels only; each runs
inside a `tf.function` on pre-made float32 input and kernel (the Winograd
filter transform is part of the timed call, as in training and in
`FastConv2D`). `winograd4_cached` is F(4x4,3x3) given the filter transformed
beforehand (`winograd_filter_transform`), what inference with a fixed
kernel could pay; the goal is judged on `winograd4`. Before a case is
timed, every method's output on the first image is compared with a float64 numpy direct
convolution and the relative error (max |diff| / max |reference|) is
recorded; the run stops if one exceeds 1e-3: a benchmark must not time
wrong code. After one warm-up call each, a case's methods are called in
rounds, one call of each per round, so that they share whatever load the
machine carries, for about --target_seconds per method (3 to --max_repeats
rounds); the best (minimum) time is reported, the one least disturbed by
other work on a shared machine, and the median is kept in the JSON too.

Reported per case and method: ms and effective GFLOP/s, the direct
algorithm's FLOPs 2 N H_out W_out kh kw C_in C_out divided by the time
(Lavin & Gray's metric, so a faster algorithm may exceed the machine's
real FLOP rate), and the speedup over `native`. The ceiling is the
machine's float32 matrix-multiply rate, the best of several --matmul_size
cubed `tf.matmul` calls (2048^3 by default: short calls, so that one of
them escapes other work on a shared machine).

Goals (issue 17): Winograd F(4x4,3x3) >= 2.0x `tf.nn.conv2d` on every
VGG layer (all have 64+ channels) and >= 2.5x on their summed time, at
each batch; FFT faster than `tf.nn.conv2d` for 9x9 and 11x11 kernels;
im2col within 1.25x of `tf.nn.conv2d`'s time everywhere.

    python benchmarks/conv_algorithms.py [--quick] [--batches 1,8]
        [--target_seconds 1.0] [--max_repeats 10] [--matmul_size 2048]

--quick runs conv3.2 and conv5.2 at batch 1 and the 9x9 kernel at batch 1,
timing each method for 0.2 s (under a minute). Writes
benchmarks/results/conv_algorithms.{json,md} (or NAME.* with --name).
"""

import functools
import math
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

VGG_LAYERS = [("conv1.2", 224, 64), ("conv2.2", 112, 128),
              ("conv3.2", 56, 256), ("conv4.2", 28, 512),
              ("conv5.2", 14, 512)]
LARGE_KERNELS = (5, 7, 9, 11)
LARGE_KERNEL_SHAPE = (56, 64, 8)  # side, channels, batch
METHODS = ("native", "im2col", "fft", "winograd", "winograd4",
           "winograd4_cached", "winograd6")
LABELS = {"native": "tf.nn.conv2d", "im2col": "im2col", "fft": "FFT",
          "winograd": "F(2x2,3x3)", "winograd4": "F(4x4,3x3)",
          "winograd4_cached": "F(4x4,3x3) cached filter",
          "winograd6": "F(6x6,3x3)"}
MAX_ERROR = 1e-3
GOAL_WINOGRAD4 = 2.0        # every VGG layer
GOAL_WINOGRAD4_TOTAL = 2.5  # the VGG layers' summed time, each batch
GOAL_FFT_KERNELS = (9, 11)
GOAL_IM2COL = 1.25

flags.DEFINE_bool("quick", False, "A reduced set (about a minute).")
flags.DEFINE_list("batches", ["1", "8"], "Batch sizes of the VGG layers.")
flags.DEFINE_float("target_seconds", 1.0, "Time spent timing each method "
                   "per case (the best call is kept).")
flags.DEFINE_integer("max_repeats", 10, "Most timed calls per method.")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matmul that "
                     "measures the machine's peak.")
flags.DEFINE_integer("seed", 0, "Seed of the random inputs and kernels.")
flags.DEFINE_string("name", "conv_algorithms", "Results file name.")
FLAGS = flags.FLAGS


def _cases():
    """(label, kernel, side, channels, batch) of every convolution."""
    if FLAGS.quick:
        return [("conv3.2", 3, 56, 256, 1), ("conv5.2", 3, 14, 512, 1),
                ("9x9", 9, 56, 64, 1)]
    side, channels, batch = LARGE_KERNEL_SHAPE
    return ([(name, 3, s, c, int(n)) for n in FLAGS.batches
             for name, s, c in VGG_LAYERS]
            + [(f"{k}x{k}", k, side, channels, batch) for k in LARGE_KERNELS])


def _timed_ms(fns, target_seconds):
    """{name: (best, median) ms} of each of `fns` ({name: callable}).

    After one warm-up call each, the functions are called in rounds, one
    call of each per round, so that they share whatever load the machine
    carries; as many rounds (3 to --max_repeats) as fit in about
    `target_seconds` per function.
    """
    once = {name: common.call_seconds(fn, repeats=1, warmup=0)[0]
            for name, fn in fns.items()}
    rounds = max(3, min(FLAGS.max_repeats, math.ceil(
        target_seconds * len(fns) / sum(once.values()))))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name] += common.call_seconds(fn, repeats=1, warmup=0)
    return {name: (min(t) * 1e3, statistics.median(t) * 1e3)
            for name, t in times.items()}


def _matmul_gflops(size, target_seconds):
    import tensorflow as tf
    rng = np.random.default_rng(FLAGS.seed)
    a = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
    b = tf.constant(rng.standard_normal((size, size), dtype=np.float32))
    fn = tf.function(lambda: tf.matmul(a, b))
    fn()
    best, _ = _timed_ms({"matmul": fn}, target_seconds)["matmul"]
    return 2 * size ** 3 / best / 1e6


def _run_case(label, kernel, side, channels, batch, target_seconds):
    import tensorflow as tf
    from keras_cnnpractice.custom_ops import conv_algorithms
    from keras_cnnpractice.custom_ops import conv_autotune
    from keras_cnnpractice.custom_ops import winograd

    rng = np.random.default_rng(FLAGS.seed)
    x_np = rng.standard_normal((batch, side, side, channels),
                               dtype=np.float32)
    w_np = (rng.standard_normal((kernel, kernel, channels, channels),
                                dtype=np.float32)
            / np.float32(np.sqrt(kernel * kernel * channels)))
    x, w = tf.constant(x_np), tf.constant(w_np)
    ref = conv_autotune.reference_conv2d(x_np[:1], w_np, (1, 1), "SAME",
                                         (1, 1))
    flops = 2 * batch * side * side * kernel * kernel * channels * channels
    entry = {"case": label, "kernel": kernel, "height": side, "width": side,
             "in_channels": channels, "out_channels": channels,
             "batch": batch, "strides": 1, "padding": "SAME",
             "direct_flops": flops, "ms": {}, "median_ms": {}, "gflops": {},
             "relative_error": {}}
    methods = {m: functools.partial(conv_algorithms.conv2d, x, w, m, 1,
                                    "SAME", 1)
               for m in conv_autotune.valid_algorithms((kernel, kernel),
                                                       (1, 1), (1, 1))}
    if kernel == 3:
        methods["winograd4_cached"] = functools.partial(
            winograd.winograd_conv2d, x, w, "SAME", tile=4,
            transformed_filter=winograd.winograd_filter_transform(w, 4))
    fns = {}
    for method, call in methods.items():
        fns[method] = tf.function(call, autograph=False)
        out = fns[method]()[:1].numpy().astype(np.float64)
        error = float(np.abs(out - ref).max() / np.abs(ref).max())
        entry["relative_error"][method] = error
        if not error <= MAX_ERROR:
            raise RuntimeError(
                f"{label} batch {batch}: {method} differs from the float64 "
                f"reference by {error:.3g} (relative); not timing wrong code")
    for method, (ms, median) in _timed_ms(fns, target_seconds).items():
        entry["ms"][method] = ms
        entry["median_ms"][method] = median
        entry["gflops"][method] = flops / ms / 1e6
        print(f"  {label} N={batch} {method}: {ms:.2f} ms, "
              f"{flops / ms / 1e6:.1f} GFLOP/s, error "
              f"{entry['relative_error'][method]:.2g}", flush=True)
    entry["speedup"] = {m: entry["ms"]["native"] / ms
                        for m, ms in entry["ms"].items()}
    return entry


def _cell(entry, method):
    if method not in entry["ms"]:
        return "-"
    cell = f"{entry['ms'][method]:.1f} / {entry['gflops'][method]:.0f}"
    if method != "native":
        cell += f" / {entry['speedup'][method]:.2f}x"
    return cell


def _totals(results):
    """Lavin & Gray's Total rows: the VGG layers' summed time per batch."""
    rows = []
    for batch in sorted({r["batch"] for r in results if r["kernel"] == 3}):
        vgg = [r for r in results if r["kernel"] == 3 and r["batch"] == batch]
        flops = sum(r["direct_flops"] for r in vgg)
        total = {"case": "Total", "batch": batch, "ms": {}, "gflops": {}}
        for method in METHODS:
            if all(method in r["ms"] for r in vgg):
                total["ms"][method] = sum(r["ms"][method] for r in vgg)
                total["gflops"][method] = flops / total["ms"][method] / 1e6
        total["speedup"] = {m: total["ms"]["native"] / ms
                            for m, ms in total["ms"].items()}
        rows.append(total)
    return rows


def _goals(results, totals):
    """Issue 17's goals judged on the per-layer `results` and the `totals`
    rows (`_totals(results)`)."""
    vgg = [r for r in results if r["kernel"] == 3]
    large = [r for r in results if r["kernel"] in GOAL_FFT_KERNELS]
    winograd4 = min((r["speedup"]["winograd4"] for r in vgg), default=None)
    winograd4_total = min((t["speedup"]["winograd4"] for t in totals),
                          default=None)
    fft = min((r["speedup"]["fft"] for r in large), default=None)
    im2col = min((r["speedup"]["im2col"] for r in results), default=None)
    return {
        "winograd4_vs_native_min_speedup": winograd4,
        "winograd4_goal": GOAL_WINOGRAD4,
        "winograd4_met": winograd4 is not None and winograd4 >= GOAL_WINOGRAD4,
        "winograd4_total_min_speedup": winograd4_total,
        "winograd4_total_goal": GOAL_WINOGRAD4_TOTAL,
        "winograd4_total_met": (winograd4_total is not None
                                and winograd4_total >= GOAL_WINOGRAD4_TOTAL),
        "fft_vs_native_min_speedup_9x9_up": fft,
        "fft_met": fft is not None and fft > 1.0,
        "im2col_vs_native_min_speedup": im2col,
        "im2col_goal": 1 / GOAL_IM2COL,
        "im2col_met": im2col is not None and im2col >= 1 / GOAL_IM2COL,
    }


def main(_):
    import tensorflow as tf
    from keras_cnnpractice.custom_ops import _loader

    target = 0.2 if FLAGS.quick else FLAGS.target_seconds
    matmul_size = FLAGS.matmul_size
    started = time.perf_counter()
    peak = _matmul_gflops(matmul_size, target)
    print(f"matmul {matmul_size}^3: {peak:.1f} GFLOP/s", flush=True)
    cases = _cases()
    results = []
    for i, case in enumerate(cases):
        print(f"[{i + 1}/{len(cases)}] {case[0]} {case[2]}x{case[2]}x"
              f"{case[3]}->{case[3]} {case[1]}x{case[1]} N={case[4]} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        results.append(_run_case(*case, target_seconds=target))
    rows = results[:]
    totals = _totals(results)
    for total in totals:
        at = max(i for i, r in enumerate(rows)
                 if r.get("kernel") == 3 and r["batch"] == total["batch"])
        rows.insert(at + 1, total)
    goals = _goals(results, totals)
    elapsed = time.perf_counter() - started
    payload = {
        "benchmark": "conv_algorithms",
        "flags": {name: FLAGS[name].value for name in (
            "quick", "batches", "target_seconds", "max_repeats",
            "matmul_size", "seed", "name")},
        "tensorflow": tf.__version__,
        "op_library": _loader.build_info(),
        "matmul_peak_gflops": peak, "matmul_size": matmul_size,
        "goals": goals, "results": results,
        "totals": totals,
        "seconds": elapsed,
    }
    columns = ["layer", "shape", "N"] + [
        LABELS[m] + (" ms / GFLOP/s" if m == "native"
                     else " ms / GFLOP/s / speedup") for m in METHODS]
    table = [[r["case"],
              "" if r["case"] == "Total" else
              f"{r['height']}x{r['width']}x{r['in_channels']}->"
              f"{r['out_channels']} {r['kernel']}x{r['kernel']}",
              r["batch"]] + [_cell(r, m) for m in METHODS] for r in rows]
    table.append(["matmul peak", f"{matmul_size}^3", "",
                  f"{peak:.0f} GFLOP/s"] + [""] * (len(METHODS) - 1))
    common.write_results(
        FLAGS.name, payload, columns, table,
        "Convolution algorithms on the CPU: best ms / effective GFLOP/s (direct "
        "FLOPs / time) / speedup over tf.nn.conv2d")
    print(f"\nGoals: F(4x4,3x3) >= {GOAL_WINOGRAD4}x tf.nn.conv2d on every "
          f"VGG layer: min {goals['winograd4_vs_native_min_speedup']:.2f}x "
          f"({'met' if goals['winograd4_met'] else 'not met'}), >= "
          f"{GOAL_WINOGRAD4_TOTAL}x in total: min "
          f"{goals['winograd4_total_min_speedup'] or 0:.2f}x "
          f"({'met' if goals['winograd4_total_met'] else 'not met'}); FFT faster "
          f"for 9x9+: min {goals['fft_vs_native_min_speedup_9x9_up'] or 0:.2f}x "
          f"({'met' if goals['fft_met'] else 'not met'}); im2col within "
          f"{GOAL_IM2COL}x: min {goals['im2col_vs_native_min_speedup']:.2f}x "
          f"({'met' if goals['im2col_met'] else 'not met'}). "
          f"Total {elapsed / 60:.1f} min.")


if __name__ == "__main__":
    app.run(main)
