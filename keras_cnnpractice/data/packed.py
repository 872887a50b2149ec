"""Reading packed data: pre-decoded images in large contiguous shards.

A pack (written by `python -m keras_cnnpractice.data.pack`) is a folder:

    OUT_DIR/
      index.json           what is in the shards; written last
      shard-00000.raw      (or .tfrecord) records, in the source's order
      shard-00001.raw
      skipped.txt          only when source files were skipped

Raw shards are fixed-size records with nothing between them and no file
header: bytes 0-3 the label (int32, little-endian), then the pixels (uint8,
height x width x channels, row-major HWC). TFRecord shards hold one
`tf.train.Example` per image with the features `image` (the same raw pixel
bytes), `label` (int64) and `shape` (int64 `[h, w, c]`).

`index.json` holds the format, the image shape, the total count, the class
names, one entry per shard (file name, record count, size in bytes,
SHA-256), the pack's arguments, a fingerprint of the source and the
skipped-files report.
"""

import dataclasses
import functools
import hashlib
import json
import os
import threading

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
FORMATS = ("raw", "tfrecord")
SHARD_SUFFIX = {"raw": ".raw", "tfrecord": ".tfrecord"}
LABEL_BYTES = 4
VERIFY_MODES = ("open", "background", "none")
SHUFFLE_BUFFER_BYTES = 256 << 20


@dataclasses.dataclass(frozen=True)
class PackedInfo:
    """What a pack's `index.json` says, checked for consistency.

    Attributes:
        directory: the pack's folder.
        format: `"raw"` or `"tfrecord"`.
        shape: `(height, width, channels)` of every image.
        num_examples: number of images.
        class_names: tuple; label `i` is `class_names[i]`.
        shards: tuple of dicts `{"file", "count", "bytes", "sha256"}`.
        args: the arguments the pack was made with.
        source_fingerprint: hash of the source's file names, sizes and
            modification times when it was packed.
        skipped: tuple of `(path, reason)` for source files left out.
    """

    directory: str
    format: str
    shape: tuple
    num_examples: int
    class_names: tuple
    shards: tuple
    args: dict
    source_fingerprint: str
    skipped: tuple

    @property
    def record_bytes(self):
        """Bytes per raw record: the label, then the pixels."""
        return LABEL_BYTES + self.shape[0] * self.shape[1] * self.shape[2]

    def shard_paths(self):
        return [os.path.join(self.directory, s["file"]) for s in self.shards]


def _bad_index(directory, what):
    return ValueError(f"{os.path.join(directory, INDEX_NAME)} is not a valid "
                      f"pack index ({what}); pack the data again with "
                      f"--overwrite")


def packed_info(directory):
    """Reads and checks a pack's index (no shard is opened).

    Args:
        directory: a folder written by `keras_cnnpractice.data.pack`.

    Returns:
        A `PackedInfo`.

    Raises:
        ValueError: no index (not a pack, or packing did not finish) or an
            inconsistent one.
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, INDEX_NAME)
    try:
        with open(path) as f:
            index = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"No {INDEX_NAME} in {directory}: it is not a pack, "
                         f"or packing it did not finish. Received: "
                         f"directory={directory!r}") from None
    except (OSError, ValueError) as err:
        raise _bad_index(directory, f"unreadable: {err}") from err
    try:
        if index.get("format_version") != FORMAT_VERSION:
            raise _bad_index(directory, f"format_version "
                             f"{index.get('format_version')!r}, this reader "
                             f"knows {FORMAT_VERSION}")
        if index.get("complete") is not True:
            raise _bad_index(directory, "not marked complete")
        info = PackedInfo(
            directory=directory, format=index["format"],
            shape=tuple(int(d) for d in index["shape"]),
            num_examples=int(index["num_examples"]),
            class_names=tuple(index["class_names"]),
            shards=tuple(dict(s) for s in index["shards"]),
            args=dict(index["args"]),
            source_fingerprint=str(index["source_fingerprint"]),
            skipped=tuple((s["path"], s["reason"])
                          for s in index["skipped"]))
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ValueError) and INDEX_NAME in str(err):
            raise
        raise _bad_index(directory, f"{type(err).__name__}: {err}") from err
    if info.format not in FORMATS or len(info.shape) != 3:
        raise _bad_index(directory, f"format {info.format!r}, shape "
                         f"{info.shape}")
    if sum(s["count"] for s in info.shards) != info.num_examples:
        raise _bad_index(directory, "shard counts do not add up to "
                         "num_examples")
    if info.format == "raw" and any(
            s["bytes"] != s["count"] * info.record_bytes for s in info.shards):
        raise _bad_index(directory, "a shard's size is not its count times "
                         "the record size")
    return info


def check_shard_sizes(info):
    """Checks that every shard exists with the size the index gives.

    Raises:
        ValueError: naming the first missing or wrongly sized shard.
    """
    for shard, path in zip(info.shards, info.shard_paths()):
        try:
            size = os.stat(path).st_size
        except OSError as err:
            raise _unreadable(path, err) from err
        if size != shard["bytes"]:
            raise ValueError(f"Packed shard {path} has {size} bytes but the "
                             f"index says {shard['bytes']}: it is truncated "
                             f"or was changed; pack the data again")


def _unreadable(path, err):
    return ValueError(f"Packed shard {path} cannot be read: {err.strerror}")


def file_sha256(path, chunk=1 << 22):
    """SHA-256 of a file's bytes, as a hex string."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def verify_shard(info, i):
    """Checks shard `i`'s SHA-256 against the index.

    Raises:
        ValueError: naming the shard, when it differs or cannot be read.
    """
    shard, path = info.shards[i], info.shard_paths()[i]
    try:
        actual = file_sha256(path)
    except OSError as err:
        raise _unreadable(path, err) from err
    if actual != shard["sha256"]:
        raise ValueError(f"Packed shard {path} is corrupt: its SHA-256 is "
                         f"{actual}, the index says {shard['sha256']}; "
                         f"pack the data again")


class _ShardVerifier:
    """Verifies shards in a background thread; `check(i)` blocks until
    shard `i` is verified (doing it at once if the thread has not reached
    it) and raises its error, every time it is asked."""

    def __init__(self, info):
        self._info = info
        self._locks = [threading.Lock() for _ in info.shards]
        self._results = [None] * len(info.shards)
        threading.Thread(target=self._run, daemon=True,
                         name="packed-verify").start()

    def _run(self):
        for i in range(len(self._locks)):
            try:
                self.check(i)
            except ValueError:
                pass  # raised again when the reader reaches shard i

    def check(self, i):
        with self._locks[i]:
            if self._results[i] is None:
                try:
                    verify_shard(self._info, i)
                    self._results[i] = ""
                except ValueError as err:
                    self._results[i] = str(err)
        if self._results[i]:
            raise ValueError(self._results[i])


def _parse_raw(info):
    import tensorflow as tf
    pixels = info.record_bytes - LABEL_BYTES

    def parse(record):
        label = tf.io.decode_raw(tf.strings.substr(record, 0, LABEL_BYTES),
                                 tf.int32, little_endian=True)[0]
        image = tf.io.decode_raw(tf.strings.substr(record, LABEL_BYTES,
                                                   pixels), tf.uint8)
        return tf.reshape(image, info.shape), label

    return parse


def _parse_tfrecord(info):
    import tensorflow as tf
    features = {"image": tf.io.FixedLenFeature([], tf.string),
                "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        image = tf.io.decode_raw(example["image"], tf.uint8)
        return (tf.reshape(image, info.shape),
                tf.cast(example["label"], tf.int32))

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

    - `"open"` (default): all shards are hashed before this returns, so a
      corrupt pack fails here, before any training step; it costs one
      sequential read of the whole pack.
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
        A `tf.data.Dataset` with a known cardinality and the attributes
        `class_names`, `info` (the `PackedInfo`) and `read_batches` (for a
        raw pack, `packed_batches.record_batches` bound to this pack and
        its checksum verification; else None), with which
        `build_pipeline` reads whole batches at once.

    Raises:
        ValueError: no valid index, a bad argument, a missing or truncated
            shard, or (with `verify="open"`) a shard whose checksum differs;
            the message names the shard file.
    """
    import tensorflow as tf
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}. "
                         f"Received: verify={verify!r}")
    if isinstance(cycle_length, bool) or not isinstance(cycle_length, int) \
            or cycle_length < 1:
        raise ValueError(f"cycle_length must be a positive integer. "
                         f"Received: cycle_length={cycle_length!r}")
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
    verifier = _ShardVerifier(info) if verify == "background" else None
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
    ds.class_names = info.class_names
    ds.info = info
    ds.read_batches = None
    if info.format == "raw":
        from keras_cnnpractice.data.packed_batches import record_batches
        ds.read_batches = functools.partial(
            record_batches, info,
            check_shard=verifier.check if verifier else None)
    return ds
