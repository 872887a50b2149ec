"""What factorizing a convolution saves, and VGG-16's per-layer table.

For C channels in and out on a 56x56 map, compares each factorization with
the single convolution it replaces, in one run: parameters, multiply-adds
and receptive field from the analyzer, and measured forward time on this
CPU (median of repeated calls, batch 8).

    python benchmarks/architecture_tables.py [--channels 64]

Writes benchmarks/results/factorization_costs.{json,md} and
benchmarks/results/vgg16_analysis.md (the analyzer's table for VGG-16).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_integer("channels", 64, "C: input and output channels.")
flags.DEFINE_integer("size", 56, "Feature map side.")
flags.DEFINE_integer("batch", 8, "Batch for the timing.")
FLAGS = flags.FLAGS


def main(_):
    import keras
    import tensorflow as tf

    from keras_cnnpractice.analysis import summarize
    from keras_cnnpractice.layers import AsymmetricConv2D
    from keras_cnnpractice.layers import Bottleneck
    from keras_cnnpractice.layers import StackedConv2D
    from keras_cnnpractice.models import create_model

    c, n = FLAGS.channels, FLAGS.size
    conv = lambda k: keras.layers.Conv2D(c, k, padding="same", use_bias=False,
                                         activation="relu")
    groups = [
        ("7x7", conv(7), [("3 x (3x3)", StackedConv2D(c, 7, use_bias=False)),
                          ("1x7 + 7x1", AsymmetricConv2D(c, 7, use_bias=False))]),
        ("5x5", conv(5), [("2 x (3x3)", StackedConv2D(c, 5, use_bias=False))]),
        ("3x3", conv(3), [("1x1-3x3-1x1, C/2", Bottleneck(c, 2, use_bias=False)),
                          ("1x1-3x3-1x1, C/4", Bottleneck(c, 4, use_bias=False)),
                          ("1x3 + 3x1", AsymmetricConv2D(c, 3, use_bias=False))]),
    ]
    x = tf.random.normal([FLAGS.batch, n, n, c])
    results, rows = [], []
    for baseline_name, baseline, variants in groups:
        measured = {}
        for name, layer in [(baseline_name, baseline)] + variants:
            inputs = keras.Input((n, n, c))
            model = keras.Model(inputs, layer(inputs))
            s = summarize(model)
            fn = tf.function(lambda m=model: m(x))
            seconds = common.median_seconds(fn, repeats=10)
            measured[name] = (sum(r.params for r in s.rows), s.macs,
                              s.rows[-1].receptive_field, seconds)
        base = measured[baseline_name]
        for name, (params, macs, rf, seconds) in measured.items():
            entry = {"baseline": baseline_name, "variant": name,
                     "params": params, "params_per_c2": params / c**2,
                     "macs": macs, "receptive_field": list(rf),
                     "forward_ms": seconds * 1e3,
                     "params_vs_baseline": params / base[0],
                     "time_vs_baseline": seconds / base[3]}
            results.append(entry)
            rows.append([baseline_name, name, f"{params:,}",
                         f"{params / c**2:g} C^2", f"{macs / 1e6:,.1f}M",
                         f"{rf[0]}x{rf[1]}", f"{params / base[0]:.2f}",
                         f"{seconds * 1e3:.1f}", f"{seconds / base[3]:.2f}"])
    common.write_results(
        "factorization_costs",
        {"benchmark": "factorization_costs", "channels": c, "size": n,
         "batch": FLAGS.batch, "results": results},
        ["replaces", "layer(s)", "params", "params", "MACs/image",
         "receptive field", "params vs baseline", "forward ms (batch)",
         "time vs baseline"], rows,
        f"Factorized convolutions, C = {c}, {n}x{n} map, float32")
    vgg = summarize(create_model("vgg16"))
    (common.RESULTS / "vgg16_analysis.md").write_text(
        "# VGG-16 at 224x224x3 (kcp-analyze vgg16 "
        "--format=markdown)\n\n" + vgg.to_markdown())


if __name__ == "__main__":
    app.run(main)
