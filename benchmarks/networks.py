"""Whole networks with every Conv2D swapped for FastConv2D(algorithm="auto"),
against the same networks as Keras builds them, in one run, on the CPU.

Networks: `keras.applications` VGG-16 (the convolutional trunk,
`include_top=False`: the fully connected head is the same in both) and
ResNet-50 (whole, logits), `weights=None`, 224x224x3 inputs. The converted
copy is `keras_cnnpractice.fast_conv_models.with_fast_conv2d(model)`: the
same weights, each Conv2D a FastConv2D(auto) that measures which algorithm
computes it fastest together with its bias and activation at that batch
(see `conv_autotune`) and keeps TensorFlow's own unless another is 10 %
faster; `fast_conv_models.settle` then settles the choices on the whole
model (all native, the layers' own choices, each custom algorithm alone or
left out, timed side by side: the fastest is kept if 10 % faster than all
native; the timings are in the JSON as `settle_ms`).

Per network and batch (1 and 8 by default), both models run inference in a
`tf.function` on the same random input. Conversion, choosing and settling
are timed together ("tuning"); the per-layer choices are cached in a fresh
file for this run. Then the two are called in rounds, one call of each per
round (--repeats rounds, after one warm-up call each), and the best
(minimum) and median times are reported, with the speedups (original /
converted, of the best and of the median times; the goals are judged on
the best, as in conv_algorithms.py), the algorithms chosen, and the
largest difference of the outputs relative to the original's largest
magnitude. Where every layer settles on `native` the two models run the
same graph, so their ratio shows the timing noise of the machine.

    python benchmarks/networks.py [--networks vgg16,resnet50]
        [--batches 1,8] [--repeats 10]

Writes benchmarks/results/networks.{json,md} (or NAME.* with --name).
Goals (issue 17): never below 1.0x; VGG-16 >= 2.0x; ResNet-50 >= 1.3x.
"""

import collections
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

GOALS = {"vgg16": 2.0, "resnet50": 1.3}
SIDE = 224

flags.DEFINE_list("networks", ["vgg16", "resnet50"], "Networks to run.")
flags.DEFINE_list("batches", ["1", "8"], "Batch sizes.")
flags.DEFINE_integer("repeats", 10, "Timed rounds (one call of each model "
                     "per round).")
flags.DEFINE_integer("seed", 0, "Seed of the input.")
flags.DEFINE_string("name", "networks", "Results file name.")
FLAGS = flags.FLAGS


def _network(name):
    import keras
    if name == "vgg16":
        return keras.applications.VGG16(
            weights=None, include_top=False, input_shape=(SIDE, SIDE, 3))
    if name == "resnet50":
        return keras.applications.ResNet50(
            weights=None, input_shape=(SIDE, SIDE, 3),
            classifier_activation=None)
    raise app.UsageError(f"--networks: unknown network {name!r} (choose "
                         f"from {sorted(GOALS)})")


def _run(name, batch):
    import tensorflow as tf
    from keras_cnnpractice.fast_conv_models import settle
    from keras_cnnpractice.fast_conv_models import with_fast_conv2d
    from keras_cnnpractice.layers import FastConv2D

    original = _network(name)
    rng = np.random.default_rng(FLAGS.seed)
    x = tf.constant(rng.standard_normal((batch, SIDE, SIDE, 3),
                                        dtype=np.float32))
    start = time.perf_counter()
    fast = with_fast_conv2d(original)
    settled = settle(fast, x)
    tuning = time.perf_counter() - start
    run_original = tf.function(lambda: original(x, training=False))
    run_fast = tf.function(lambda: fast(x, training=False))
    want = run_original().numpy().astype(np.float64)
    got = run_fast().numpy().astype(np.float64)
    times = {"original": [], "fast": []}
    for _ in range(FLAGS.repeats):
        for label, fn in (("original", run_original), ("fast", run_fast)):
            times[label] += common.call_seconds(
                lambda fn=fn: fn().numpy(), repeats=1, warmup=0)
    chosen = collections.Counter(
        layer.chosen_algorithm for layer in fast.layers
        if isinstance(layer, FastConv2D))
    entry = {
        "network": name, "batch": batch,
        "ms": {k: min(v) * 1e3 for k, v in times.items()},
        "median_ms": {k: statistics.median(v) * 1e3
                      for k, v in times.items()},
        "tuning_seconds": tuning,
        "settle_ms": settled["ms"], "settled_on": settled["kept"],
        "chosen": dict(sorted(chosen.items())),
        "max_relative_error": float(np.abs(got - want).max()
                                    / np.abs(want).max()),
    }
    entry["speedup"] = entry["ms"]["original"] / entry["ms"]["fast"]
    entry["median_speedup"] = (entry["median_ms"]["original"]
                               / entry["median_ms"]["fast"])
    print(f"  {name} N={batch}: original {entry['ms']['original']:.1f} ms, "
          f"FastConv2D(auto) {entry['ms']['fast']:.1f} ms, "
          f"{entry['speedup']:.2f}x, chosen {entry['chosen']}, error "
          f"{entry['max_relative_error']:.2g}, tuning {tuning:.0f} s",
          flush=True)
    return entry


def main(_):
    import tensorflow as tf
    from keras_cnnpractice.custom_ops import _loader
    from keras_cnnpractice.custom_ops import conv_autotune

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        os.environ[conv_autotune.CACHE_ENV] = os.path.join(cache, "c.json")
        results = [_run(name, int(batch)) for name in FLAGS.networks
                   for batch in FLAGS.batches]
    goals = {name: {"goal": GOALS[name],
                    "min_speedup": min(r["speedup"] for r in results
                                       if r["network"] == name)}
             for name in FLAGS.networks}
    for goal in goals.values():
        goal["met"] = goal["min_speedup"] >= goal["goal"]
    never_slower = min(r["speedup"] for r in results) >= 1.0
    payload = {"benchmark": "networks", "tensorflow": tf.__version__,
               "op_library": _loader.build_info(),
               "flags": {n: FLAGS[n].value for n in (
                   "networks", "batches", "repeats", "seed", "name")},
               "results": results, "goals": goals,
               "never_slower": never_slower,
               "seconds": time.perf_counter() - started}
    columns = ["network", "N", "Keras ms (best / median)",
               "FastConv2D(auto) ms (best / median)",
               "speedup (best / median)",
               "algorithms chosen", "max relative error", "tuning s"]
    rows = [[r["network"], r["batch"],
             f"{r['ms']['original']:.1f} / {r['median_ms']['original']:.1f}",
             f"{r['ms']['fast']:.1f} / {r['median_ms']['fast']:.1f}",
             f"{r['speedup']:.2f}x / {r['median_speedup']:.2f}x",
             ", ".join(f"{a} {n}" for a, n in r["chosen"].items()),
             f"{r['max_relative_error']:.1e}", f"{r['tuning_seconds']:.0f}"]
            for r in results]
    common.write_results(
        FLAGS.name, payload, columns, rows,
        "keras.applications networks with every Conv2D as FastConv2D(auto) "
        "vs the originals (inference in a tf.function, 224x224x3)")
    print("\nGoals: " + "; ".join(
        f"{n} >= {g['goal']}x: min {g['min_speedup']:.2f}x "
        f"({'met' if g['met'] else 'not met'})" for n, g in goals.items())
        + f"; never slower: {'yes' if never_slower else 'no'}. Total "
        f"{(time.perf_counter() - started) / 60:.1f} min.")


if __name__ == "__main__":
    app.run(main)
