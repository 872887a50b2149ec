"""Writes a PNG grid of random augmentations of one image, to see a policy.

    kcp-augment-preview --policy natural photo.jpg -o grid.png
    kcp-augment-preview --policy digits digit.png -o grid.png \\
        --rows 3 --cols 4 --size 224 --seed 0

IMAGE (JPEG, PNG, BMP or GIF, decoded with `tf.io.decode_image`; grayscale
is turned into RGB) is cut to its central square (the short side) and
resized to --size x --size. The top-left cell of the grid is that image
unchanged; the other rows * cols - 1 cells are independent draws of the
augmentation policy (`keras_cnnpractice.data.augmentation_policy(POLICY,
seed=SEED, input_shape=(SIZE, SIZE, 3))` called with training=True on a
batch of copies, pixels in [0, 255]), clipped to [0, 255]. The grid is
rows * size pixels high and cols * size wide, written through a temporary
name and a rename, so a failed run leaves no half-written file.

Bad flags, a missing or unreadable image, or an unwritable output are
reported on one line, with exit status 2.

Imports inside functions: TensorFlow and the augmentation policies, imported
by the function that needs them once the flags are parsed, so that `--help`
and a bad flag answer without loading TensorFlow (well under a second).
"""

import sys

from absl import flags

from keras_cnnpractice._errors import first_line as _first_line
from keras_cnnpractice._files import write_bytes_atomic
from keras_cnnpractice.cli import _absl
from keras_cnnpractice.data.image_folder import center_square
from keras_cnnpractice.data.image_folder import decode_image_bytes
from keras_cnnpractice.data.options import AUGMENTATION_POLICIES

PROG = "kcp-augment-preview"

flags.DEFINE_enum("policy", "natural", AUGMENTATION_POLICIES,
                  "Augmentation policy to preview.")
flags.DEFINE_string("output", None, "PNG file to write.", short_name="o",
                    required=True)
flags.DEFINE_integer("rows", 3, "Grid rows.", lower_bound=1, upper_bound=64)
flags.DEFINE_integer("cols", 4, "Grid columns.", lower_bound=1,
                     upper_bound=64)
flags.DEFINE_integer("size", 224, "Side of each (square) cell in pixels.",
                     lower_bound=8, upper_bound=4096)
flags.DEFINE_integer("seed", 0, "Seed of the augmentation policy.")
FLAGS = flags.FLAGS


class PreviewError(Exception):
    """A problem with the user's input or output, reported on one line."""


def load_square(path, size):
    """IMAGE as a `(size, size, 3)` float32 tensor in [0, 255]: the central
    square of the short side, resized (bilinear, antialiased)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise PreviewError(f"cannot read image {path}: "
                           f"{err.strerror or _first_line(err)}") from err
    import tensorflow as tf
    try:
        image = decode_image_bytes(data)
    except tf.errors.OpError as err:
        raise PreviewError(
            f"cannot read image {path}: {_first_line(err)}") from err
    if min(int(image.shape[0]), int(image.shape[1])) < 1:
        raise PreviewError(f"cannot read image {path}: it has no pixels")
    return center_square(image, size)


def augment_grid(image, policy, rows, cols, seed=None):
    """A `(rows * size, cols * size, 3)` uint8 grid: `image` (a `(size,
    size, 3)` float tensor in [0, 255]) first, then rows * cols - 1 draws of
    the augmentation `policy`, row by row.

    Raises:
        ValueError: an unknown policy, or one that does not take RGB images.
    """
    import tensorflow as tf

    from keras_cnnpractice.data.augmentation import augmentation_policy
    size = int(image.shape[0])
    layer = augmentation_policy(policy, seed=seed, input_shape=(size, size, 3))
    cells = [image[None]]
    if rows * cols > 1:
        copies = tf.repeat(image[None], rows * cols - 1, axis=0)
        augmented = tf.convert_to_tensor(layer(copies, training=True))
        if tuple(augmented.shape[1:]) != (size, size, 3):
            raise ValueError(f"The {policy!r} policy changed the image size "
                             f"to {tuple(augmented.shape[1:])}; a grid needs "
                             f"{(size, size, 3)}")
        cells.append(tf.cast(augmented, tf.float32))
    cells = tf.concat(cells, axis=0)
    cells = tf.cast(tf.round(tf.clip_by_value(cells, 0.0, 255.0)), tf.uint8)
    grid = tf.reshape(cells, (rows, cols, size, size, 3))
    grid = tf.transpose(grid, (0, 2, 1, 3, 4))
    return tf.reshape(grid, (rows * size, cols * size, 3))


def write_png_atomic(path, grid):
    """Encodes `grid` (uint8 HWC) as PNG and writes it to `path` through a
    temporary name and a rename."""
    import tensorflow as tf
    data = tf.io.encode_png(grid).numpy()
    try:
        write_bytes_atomic(path, data)
    except OSError as err:
        raise PreviewError(f"cannot write {path}: "
                           f"{err.strerror or _first_line(err)}") from err


def main(argv):
    if len(argv) != 2:
        print(f"{PROG}: error: give exactly one IMAGE file (got "
              f"{len(argv) - 1})", file=sys.stderr)
        return 2
    try:
        image = load_square(argv[1], FLAGS.size)
        grid = augment_grid(image, FLAGS.policy, FLAGS.rows, FLAGS.cols,
                            seed=FLAGS.seed)
        write_png_atomic(FLAGS.output, grid)
    except (PreviewError, ValueError) as err:
        print(f"{PROG}: error: {_first_line(err)}", file=sys.stderr)
        return 2
    print(f"wrote {FLAGS.output}: {FLAGS.rows} x {FLAGS.cols} cells of "
          f"{FLAGS.size} px, policy {FLAGS.policy!r} (top-left: original)")
    return 0


def run():
    """The console script `kcp-augment-preview`."""
    _absl.run(main, PROG, __doc__)


if __name__ == "__main__":
    run()
