"""Prints a network's per-layer analysis: shapes, parameters, multiply-adds,
activation memory, receptive field and jump, with totals.

    kcp-analyze vgg16
    kcp-analyze resnet50 --input_shape=32,32,3 --batch_size=128
    kcp-analyze googlenet --format=markdown --output=googlenet.md
    kcp-analyze path/to/model.keras --format=csv

MODEL is a name from the model zoo (`keras_cnnpractice.models.list_models()`)
or a saved `.keras` file.

Imports inside functions: Keras, the model zoo and the analyzer, imported by
the function that needs them once the flags are parsed, so that `--help` and
a bad flag answer without loading TensorFlow (well under a second).
"""

import sys

from absl import flags

from keras_cnnpractice._files import write_text_atomic
from keras_cnnpractice.cli import _absl

PROG = "kcp-analyze"

flags.DEFINE_list("input_shape", None, "height,width,channels (default: the "
                  "network's native input).")
flags.DEFINE_integer("num_classes", None, "Classes (default: the network's).",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 1, "Batch for the training-memory estimate.",
                     lower_bound=1)
flags.DEFINE_integer("optimizer_slots", 2, "Optimizer copies of the weights "
                     "(2 Adam, 1 momentum, 0 SGD).", lower_bound=0)
flags.DEFINE_enum("format", "table", ["table", "markdown", "csv"],
                  "Output format.")
flags.DEFINE_string("output", None, "Write to this file instead of stdout.")
FLAGS = flags.FLAGS


def _load(name_or_path):
    import keras

    from keras_cnnpractice import layers  # noqa: F401  (registers our layers)
    from keras_cnnpractice.models import create_model
    if name_or_path.endswith(".keras"):
        return keras.models.load_model(name_or_path, compile=False)
    shape = None
    if FLAGS.input_shape:
        try:
            shape = tuple(int(n) for n in FLAGS.input_shape)
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError("--input_shape must be three positive integers "
                             "(height,width,channels). Received: "
                             f"{','.join(FLAGS.input_shape)}")
    return create_model(name_or_path, shape, FLAGS.num_classes)


def main(argv):
    if len(argv) != 2:
        print(f"{PROG}: error: give exactly one MODEL (a zoo name or a .keras "
              "file)", file=sys.stderr)
        return 2
    from keras_cnnpractice.analysis import summarize
    try:
        model = _load(argv[1])
    except (ValueError, OSError) as err:
        print(f"{PROG}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    summary = summarize(model, batch_size=FLAGS.batch_size,
                        optimizer_slots=FLAGS.optimizer_slots)
    text = {"table": lambda: str(summary) + "\n",
            "markdown": summary.to_markdown, "csv": summary.to_csv}[FLAGS.format]()
    if FLAGS.output:
        write_text_atomic(FLAGS.output, text)
    else:
        sys.stdout.write(text)
    return 0


def run():
    """The console script `kcp-analyze`."""
    _absl.run(main, PROG, __doc__)


if __name__ == "__main__":
    run()
