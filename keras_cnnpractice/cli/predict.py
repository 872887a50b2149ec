"""Classifies image files with an exported SavedModel, using TensorFlow only.

    kcp-predict --saved_model runs/mnist_cnn/export digit.png

Prints one line per image: the most likely class, its probability, and the
probability of every class. Images are decoded with TensorFlow (PNG, JPEG,
BMP, GIF), converted to the model's channel count and resized to its input
size when they differ. An unreadable image is reported and skipped; the exit
status is then 1.

Load only SavedModels you trust: loading and calling one runs whatever
TensorFlow ops it holds (file writes included).

Imports inside functions: TensorFlow, imported by the function that needs it
once the flags are parsed, so that `--help` and a bad flag answer without
loading TensorFlow (well under a second).
"""

import os
import sys

from absl import flags

from keras_cnnpractice._errors import first_line
from keras_cnnpractice.cli import _absl

PROG = "kcp-predict"

flags.DEFINE_string("saved_model", None, "SavedModel directory (train.py's "
                    "--export_dir).", required=True)
FLAGS = flags.FLAGS


def _load(path):
    import tensorflow as tf
    model = tf.saved_model.load(path)
    signature = model.signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    return signature, spec


def _read_image(path, spec):
    import tensorflow as tf
    height, width, channels = spec.shape[1:]
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                               expand_animations=False)
    if image.shape[:2] != (height, width):
        image = tf.image.resize(image, (height, width))
    return tf.cast(image, spec.dtype)


def main(argv):
    images = argv[1:]
    if not images:
        print(f"{PROG}: error: give at least one IMAGE file", file=sys.stderr)
        return 2
    import tensorflow as tf
    try:
        signature, spec = _load(FLAGS.saved_model)
    except (OSError, ValueError, tf.errors.OpError) as err:
        print(f"{PROG}: error: cannot load SavedModel {FLAGS.saved_model}: "
              f"{first_line(err)}", file=sys.stderr)
        return 2
    failed = 0
    for path in images:
        if not os.path.isfile(path):
            print(f"predict: skipping {path}: no such file", file=sys.stderr)
            failed += 1
            continue
        try:
            batch = _read_image(path, spec)[tf.newaxis]
        except (tf.errors.OpError, ValueError) as err:
            print(f"predict: skipping {path}: cannot decode image "
                  f"({first_line(err)})", file=sys.stderr)
            failed += 1
            continue
        (probs,) = signature(batch).values()
        probs = probs.numpy()[0]
        best = int(probs.argmax())
        listing = " ".join(f"{i}:{p:.6f}" for i, p in enumerate(probs))
        print(f"{path}: class {best} ({probs[best]:.6f}) | {listing}")
    return 1 if failed else 0


def run():
    """The console script `kcp-predict`."""
    _absl.run(main, PROG, __doc__)


if __name__ == "__main__":
    run()
