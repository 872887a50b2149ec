"""`read_packed_records`: records of a raw pack by number, a batch per call.

The compiled op reads each record with one positioned read (`preadv`)
straight into the batch it returns, records spread over the CPU's threads,
without the GIL. `keras_cnnpractice.data.packed()` reads the same records
as a stream of examples with `tf.data.FixedLengthRecordDataset`: that is
the op's reference, in the tests, and what a pipeline uses when it wants
examples rather than batches.
"""

import os

import tensorflow as tf

from keras_cnnpractice.custom_ops import _loader

tf.no_gradient("KerasCnnPractice>ReadPackedRecords")


def check_raw_pack(info):
    """Raises `ValueError` unless `info` (a `PackedInfo`) is a raw pack,
    the only format whose records can be read by number."""
    if info.format != "raw":
        raise ValueError(f"Only raw packs can be read by record number; "
                         f"{info.directory} is a {info.format} pack")


def read_packed_records(index, info, name=None):
    """Reads the records numbered `index` of the raw pack `info`.

    Args:
        index: int64 vector of record numbers, in `[0, info.num_examples)`,
            counting through the shards in order.
        info: the pack's `PackedInfo` (format `"raw"`).
        name: optional op name.

    Returns:
        `(images, labels)`: uint8 `(len(index), h, w, c)` and int32
        `(len(index),)`, every label in `[0, len(info.class_names))`.

    Raises:
        ValueError: `info` is not a raw pack.
        tf.errors.InvalidArgumentError: a record number out of range, sizes
            that overflow int64, a shard that is not a regular file, cannot
            be read or is shorter than the index says, or a label outside
            the pack's classes (the message names the shard and the
            value). The labels are checked here, in the op, because it
            holds each batch's labels anyway: one comparison per record.
    """
    check_raw_pack(info)
    lib = _loader.load_op_library()
    images, labels = lib.keras_cnn_practice_read_packed_records(
        tf.cast(index, tf.int64),
        paths=[os.path.abspath(p) for p in info.shard_paths()],
        counts=[s["count"] for s in info.shards], shape=list(info.shape),
        num_classes=len(info.class_names), name=name)
    return images, labels
