"""Reading a pack one example per `tf.data` element (`packed`).

Imports inside functions: TensorFlow, so that importing the pack format (as
`kcp-pack` and `data.sources` do) does not load it.
"""

import functools

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.data.examples import Examples
from keras_cnnpractice.data.packs.batches import record_batches
from keras_cnnpractice.data.packs.format import LABEL_BYTES
from keras_cnnpractice.data.packs.format import check_shard_sizes
from keras_cnnpractice.data.packs.format import packed_info
from keras_cnnpractice.data.packs.verify import ShardVerifier
from keras_cnnpractice.data.packs.verify import verify_shard

VERIFY_MODES = ("open", "background", "none")
SHUFFLE_BUFFER_BYTES = 256 << 20


def _checked_label(label, info):
    """`label` as int32, after asserting `0 <= label < num_classes`.

    The assertion is a comparison per example, next to a parse that
    already copies the whole record; checked before the cast, so a label
    that wraps to a valid int32 is caught too."""
    import tensorflow as tf
    n = len(info.class_names)
    valid = tf.logical_and(label >= 0, label < n)
    check = tf.debugging.Assert(valid, [
        f"A label of the pack {info.directory} is not in [0, {n}) (its "
        f"{n} classes): the pack is corrupt; pack the data again. "
        f"Received: label=", label])
    with tf.control_dependencies([check]):
        return tf.cast(label, tf.int32)


def _parse_raw(info):
    import tensorflow as tf
    pixels = info.record_bytes - LABEL_BYTES

    def parse(record):
        label = tf.io.decode_raw(tf.strings.substr(record, 0, LABEL_BYTES),
                                 tf.int32, little_endian=True)[0]
        image = tf.io.decode_raw(tf.strings.substr(record, LABEL_BYTES,
                                                   pixels), tf.uint8)
        return tf.reshape(image, info.shape), _checked_label(label, info)

    return parse


def _parse_tfrecord(info):
    import tensorflow as tf
    features = {"image": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        image = tf.io.decode_raw(example["image"], tf.uint8)
        return (tf.reshape(image, info.shape),
                _checked_label(example["label"], info))

    return parse


def packed(directory, shuffle=False, seed=None, verify="open",
           shuffle_buffer=None, cycle_length=4):
    """A pack as a `tf.data.Dataset` of `(uint8 image (h, w, c), int32 label)`.

    Raw shards are read with `tf.data.FixedLengthRecordDataset` (a plain
    sequential read of each file), TFRecord shards with
    `tf.data.TFRecordDataset` (which also checks each record's CRC).

    Without `shuffle` the images come in the source's order, shard after
    shard. With `shuffle`, every epoch visits the shards in a new order,
    reads `cycle_length` of them at a time interleaved record by record,
    and passes the records through a shuffle buffer; with a `seed` the
    sequence of epochs is reproducible.

    Every shard's size is checked against the index on open, always (a
    `stat`, so a truncated shard is caught at once). Its SHA-256 is checked
    according to `verify`:

    - `"open"` (default): all shards are hashed (and a raw pack's labels
      checked against the class count, in the same read) before this
      returns, so a corrupt pack fails here, before any training step; it
      costs one sequential read of the whole pack.
    - `"background"`: a background thread hashes the shards while training
      starts, and the reader waits for a shard's verdict before reading its
      first record, so no record of a corrupt shard is ever produced: the
      iterator raises (a `tf.errors.OpError` whose message names the shard)
      instead.
    - `"none"`: no hashing (for packs already verified, e.g. on fast
      local disks between runs).

    Args:
        directory: the pack's folder.
        shuffle: shuffle shards and records, differently each epoch.
        seed: seed of the shuffles.
        verify: `"open"`, `"background"` or `"none"`, see above.
        shuffle_buffer: records in the shuffle buffer (default: as many as
            fit in 256 MiB, at most the whole pack).
        cycle_length: shards read at once when shuffling.

    Returns:
        `Examples`: the dataset (with a known cardinality), the class
        names, the shard paths as `files`, the `PackedInfo` as `info` and,
        for a raw pack, `read_batches` (`batches.record_batches` bound to
        this pack and its checksum verification), with which
        `build_pipeline` reads whole batches at once.

    Raises:
        ValueError: no valid index, a bad argument, a missing, special or
            truncated shard, or (with `verify="open"`) a shard whose
            checksum differs or, raw, that holds a label outside the
            classes; the message names the shard file.
        tf.errors.InvalidArgumentError: while iterating, a record whose
            label is not in `[0, len(class_names))` (the message gives the
            label).
    """
    import tensorflow as tf
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}. "
                         f"Received: verify={verify!r}")
    check_int("cycle_length", cycle_length, 1)
    info = packed_info(directory)
    check_shard_sizes(info)
    if verify == "open":
        for i in range(len(info.shards)):
            verify_shard(info, i)
    record_bytes = info.record_bytes

    def read(path):
        if info.format == "raw":
            return tf.data.FixedLengthRecordDataset(path, record_bytes,
                                                    buffer_size=1 << 20)
        return tf.data.TFRecordDataset(path, buffer_size=1 << 20)

    paths = tf.data.Dataset.from_tensor_slices(
        (tf.constant(info.shard_paths(), tf.string),
         tf.range(len(info.shards), dtype=tf.int32)))
    if shuffle:
        paths = paths.shuffle(len(info.shards), seed=seed,
                              reshuffle_each_iteration=True)
    verifier = ShardVerifier(info) if verify == "background" else None
    if verifier is not None:

        def check(i):
            verifier.check(int(i))
            return i

        def gate(path, i):
            done = tf.py_function(check, [i], tf.int32)
            with tf.control_dependencies([done]):
                return tf.identity(path)
    else:
        def gate(path, i):
            return path
    paths = paths.map(gate)
    if shuffle:
        if shuffle_buffer is None:
            shuffle_buffer = SHUFFLE_BUFFER_BYTES // record_bytes
        shuffle_buffer = max(1, min(int(shuffle_buffer), info.num_examples))
        records = paths.interleave(
            read, cycle_length=min(cycle_length, len(info.shards)),
            block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
        records = records.shuffle(shuffle_buffer, seed=seed,
                                  reshuffle_each_iteration=True)
    else:
        records = paths.flat_map(read)
    parse = _parse_raw(info) if info.format == "raw" else _parse_tfrecord(info)
    ds = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True)
    ds = ds.apply(tf.data.experimental.assert_cardinality(info.num_examples))
    read_batches = None
    if info.format == "raw":
        read_batches = functools.partial(
            record_batches, info,
            check_shard=verifier.check if verifier else None)
    return Examples(ds, info.class_names, files=tuple(info.shard_paths()),
                    info=info, read_batches=read_batches)
