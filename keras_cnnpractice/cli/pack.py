"""Decodes a data set once and writes its pixels into large packed shards.

    kcp-pack photos/ packs/photos --size 256
    kcp-pack photos/ packs/photos-224 --size 224 \\
        --resize exact --shard_mb 512 --workers 8 --format tfrecord
    kcp-pack cifar10:~/data/cifar-10-batches-bin packs/c10
    kcp-pack cifar10:DIR packs/c10-test --split test
    kcp-pack mnist5k packs/mnist5k

SOURCE is a folder with one sub-folder per class (`image_folder`; also
written `folder:DIR`), `cifar10:DIR` or `cifar100:DIR` (the binary versions;
CIFAR-100 with its fine labels) or `mnist5k`. `--split` picks the training
(default) or test images of the last three; a folder has no splits.

Every image is decoded once (in `--workers` threads for a folder, order
kept) and written in the source's order as a fixed-size record: the label
(int32, little-endian) then the uint8 HWC pixels, `--shard_mb` MiB of
records per shard, with no header and no timestamp, so packing the same
source with the same flags gives byte-identical shards. Records need one
shape: without `--size` every image must already have the same size; with
`--size S`, `--resize short_side` (default) cuts the central square of each
image's short side and scales it to S x S, `--resize exact` scales height
and width to S independently (the aspect ratio is lost). Undecodable files
are skipped, counted, logged and listed in `index.json` and `skipped.jsonl`
(one JSON object `{"path": ..., "reason": ...}` a line).
See `keras_cnnpractice.data.packs` for the layout; read a pack with
`keras_cnnpractice.data.packed(OUT_DIR)`.

Everything is written into a hidden folder beside OUT_DIR
(`.NAME.partial-PID`), and that folder is renamed to OUT_DIR only once the
index is written: an interrupted run leaves no OUT_DIR (and the hidden
folder, if the process was killed, is removed by the next run, even one
that finds OUT_DIR complete and does nothing else). Running
again with the same SOURCE and flags finds OUT_DIR complete, with the same
arguments and an unchanged source (same file names, sizes and modification
times), and does nothing. If OUT_DIR holds a pack made with other
arguments, or the source changed since, the run stops with an error;
`--overwrite` rebuilds it (the old pack is replaced only once the new one
is complete). `--workers` does not change the output.

The Python API is `keras_cnnpractice.data.pack_dataset`. Bad flags, a bad
SOURCE, or an unwritable OUT_DIR are reported on one line, with exit
status 2.
"""

import os
import sys

from absl import flags

from keras_cnnpractice._errors import first_line
from keras_cnnpractice.cli import _absl
from keras_cnnpractice.data.image_folder import RESIZE_MODES
from keras_cnnpractice.data.packs.format import FORMATS
from keras_cnnpractice.data.packs.writer import SKIPPED_NAME
from keras_cnnpractice.data.packs.writer import SPLITS
from keras_cnnpractice.data.packs.writer import pack_dataset

PROG = "kcp-pack"

flags.DEFINE_integer("size", None, "Side of the square images to store "
                     "(default: keep the source's size, which must then be "
                     "the same for all images).", lower_bound=1)
flags.DEFINE_enum("resize", "short_side", list(RESIZE_MODES),
                  "With --size: short_side = central square of the short "
                  "side scaled to SIZE; exact = height and width scaled to "
                  "SIZE.")
flags.DEFINE_float("shard_mb", 256, "MiB of records per shard.",
                   lower_bound=1e-6)
flags.DEFINE_integer("workers", None, "Decoding threads (default: the CPU "
                     "count, at most 8).", lower_bound=1)
flags.DEFINE_enum("format", "raw", list(FORMATS),
                  "raw: fixed-size records; tfrecord: tf.train.Example.")
flags.DEFINE_enum("split", None, list(SPLITS), "For cifar10:, cifar100: and "
                  "mnist5k (default: train).")
flags.DEFINE_bool("overwrite", False, "Replace a pack made with other "
                  "arguments or from a source that changed.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 3:
        print(f"{PROG}: error: give SOURCE and OUT_DIR (got {len(argv) - 1} "
              f"arguments)", file=sys.stderr)
        return 2
    shard_mb = FLAGS.shard_mb
    if float(shard_mb).is_integer():
        shard_mb = int(shard_mb)
    try:
        info, reused = pack_dataset(
            argv[1], argv[2], size=FLAGS.size, resize=FLAGS.resize,
            shard_mb=shard_mb, workers=FLAGS.workers, format=FLAGS.format,
            split=FLAGS.split, overwrite=FLAGS.overwrite)
    except (ValueError, OSError) as err:
        print(f"{PROG}: error: {first_line(err)}", file=sys.stderr)
        return 2
    shape = "x".join(map(str, info.shape))
    if reused:
        print(f"{info.directory} already holds this pack ({info.num_examples} "
              f"images of {shape}); nothing to do")
        return 0
    skipped = (f"; skipped {len(info.skipped)} unusable file(s), listed in "
               f"{os.path.join(info.directory, SKIPPED_NAME)}"
               if info.skipped else "")
    print(f"packed {info.num_examples} images of {shape} "
          f"({len(info.class_names)} classes) into {len(info.shards)} "
          f"{info.format} shard(s) in {info.directory}{skipped}")
    return 0


def run():
    """The console script `kcp-pack`."""
    _absl.run(main, PROG, __doc__)


if __name__ == "__main__":
    run()
