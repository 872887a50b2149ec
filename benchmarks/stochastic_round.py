"""Throughput of the compiled StochasticRound op, in one run, against
   * the same computation composed from TF ops (floor + random_uniform +
     where: `stochastic_round_reference`), and
   * a plain copy of the same bytes (`tf.raw_ops.DeepCopy`), the memory-bound
     floor any elementwise op pays.

    python benchmarks/stochastic_round.py [--sizes 1048576,16777216]

Writes benchmarks/results/stochastic_round.{json,md}.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

flags.DEFINE_list("sizes", ["1048576", "16777216"], "Elements per tensor.")
flags.DEFINE_integer("repeats", 15, "Timed calls per method (median kept).")
FLAGS = flags.FLAGS


def main(_):
    import tensorflow as tf
    from keras_cnnpractice.custom_ops import stochastic_round
    from keras_cnnpractice.custom_ops import stochastic_round_reference

    methods = {
        "op_stochastic": lambda x: stochastic_round(x, 16, 14, seed=1),
        "op_nearest": lambda x: stochastic_round(x, 16, 14, rounding="nearest",
                                                 seed=1),
        "tf_composed_stochastic": lambda x: stochastic_round_reference(
            x, 16, 14, seed=1),
        "copy": lambda x: tf.raw_ops.DeepCopy(x=x),
    }
    results, rows = [], []
    for size in map(int, FLAGS.sizes):
        x = tf.random.uniform([size], -2.0, 2.0)
        seconds = {}
        for name, method in methods.items():
            # On the CPU a tf.function call returns once its ops have run,
            # so timing the call measures the work (no host copy added).
            fn = tf.function(lambda m=method: m(x))
            seconds[name] = common.median_seconds(fn, repeats=FLAGS.repeats)
        for name, sec in seconds.items():
            gbps = 2 * 4 * size / sec / 1e9  # read + write, float32
            entry = {"size": size, "method": name, "seconds": sec,
                     "gelem_per_s": size / sec / 1e9, "gb_per_s": gbps,
                     "speedup_vs_tf_composed":
                         seconds["tf_composed_stochastic"] / sec,
                     "time_vs_copy": sec / seconds["copy"]}
            results.append(entry)
            rows.append([f"{size:,}", name, f"{sec * 1e3:.2f}",
                         f"{entry['gelem_per_s']:.3f}", f"{gbps:.2f}",
                         f"{entry['speedup_vs_tf_composed']:.2f}x",
                         f"{entry['time_vs_copy']:.2f}x"])
    common.write_results(
        "stochastic_round", {"benchmark": "stochastic_round", "dtype": "float32",
                             "word_bits": 16, "frac_bits": 14,
                             "results": results},
        ["elements", "method", "ms", "Gelem/s", "GB/s", "vs TF composed",
         "time vs copy"], rows,
        "StochasticRound throughput (float32, <16,14>)")


if __name__ == "__main__":
    app.run(main)
