"""Reading packed data: pre-decoded images in large contiguous shards.

A pack (written by `kcp-pack`) is a folder:

    OUT_DIR/
      index.json           what is in the shards; written last
      shard-00000.raw      (or .tfrecord) records, in the source's order
      shard-00001.raw
      skipped.jsonl        only when source files were skipped: one JSON
                           object {"path": ..., "reason": ...} a line

Raw shards are fixed-size records with nothing between them and no file
header: bytes 0-3 the label (int32, little-endian), then the pixels (uint8,
height x width x channels, row-major HWC). TFRecord shards hold one
`tf.train.Example` per image with the features `image` (the same raw pixel
bytes), `label` (int64) and `shape` (int64 `[h, w, c]`).

`index.json` holds the format, the image shape, the total count, the class
names, one entry per shard (file name, record count, size in bytes,
SHA-256), the pack's arguments, a fingerprint of the source and the
skipped-files report.

A reader trusts nothing in a pack: `packed_info` refuses an index whose
sizes do not fit the readers' 64-bit arithmetic, whose shard names are not
plain file names inside the pack's folder, or whose counts do not add up,
before any shard is opened; shards are opened only when they are regular
files (a FIFO or a device could block or never end); and every label is
checked against the number of classes, so a label no model output can
match fails naming the label instead of failing inside a loss. Labels are
checked where the bytes pass anyway: in the checksum pass of `verify`
(one strided comparison per block, so a crafted pack fails at open, as a
`ValueError`), in the batch reader's op (one comparison per record read),
and by an assertion in the per-example parser (for `verify="none"` and
`"background"`).
"""

import dataclasses
import functools
import hashlib
import json
import os
import stat
import threading

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
FORMATS = ("raw", "tfrecord")
SHARD_SUFFIX = {"raw": ".raw", "tfrecord": ".tfrecord"}
LABEL_BYTES = 4
VERIFY_MODES = ("open", "background", "none")
SHUFFLE_BUFFER_BYTES = 256 << 20
INT64_MAX = (1 << 63) - 1
# The per-example parser cuts a record with int32 offsets.
MAX_RECORD_BYTES = (1 << 31) - 1


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
        directory: a folder written by `kcp-pack`.

    Returns:
        A `PackedInfo`.

    Raises:
        ValueError: no index (not a pack, or packing did not finish) or an
            inconsistent one: sizes that overflow 64 bits, a shard name
            that is not a plain file name inside `directory`, counts that
            do not add up (the one-line message names the value).
    """
    directory = os.fspath(directory)
    index = _read_index(directory)
    try:
        _check_header(index)
        shape = _check_shape(index["shape"])
        record_bytes = LABEL_BYTES + shape[0] * shape[1] * shape[2]
        shards = _check_shards(directory, index, record_bytes)
        info = PackedInfo(
            directory=directory, format=index["format"], shape=shape,
            num_examples=index["num_examples"],
            class_names=_check_class_names(index["class_names"]),
            shards=shards, args=dict(index["args"]),
            source_fingerprint=str(index["source_fingerprint"]),
            skipped=tuple((s["path"], s["reason"])
                          for s in index["skipped"]))
    except _IndexError as err:
        raise _bad_index(directory, str(err)) from None
    except (KeyError, TypeError, ValueError) as err:
        raise _bad_index(directory, f"{type(err).__name__}: {err}") from err
    return info


class _IndexError(ValueError):
    """One inconsistency of an index, reported by `packed_info`."""


def _read_index(directory):
    """The parsed `index.json` of `directory`."""
    path = os.path.join(directory, INDEX_NAME)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"No {INDEX_NAME} in {directory}: it is not a pack, "
                         f"or packing it did not finish. Received: "
                         f"directory={directory!r}") from None
    except (OSError, ValueError) as err:
        raise _bad_index(directory, f"unreadable: {err}") from err


def _check_header(index):
    if not isinstance(index, dict):
        raise _IndexError(f"not a JSON object: {type(index).__name__}")
    if index.get("format_version") != FORMAT_VERSION:
        raise _IndexError(f"format_version {index.get('format_version')!r}, "
                          f"this reader knows {FORMAT_VERSION}")
    if index.get("complete") is not True:
        raise _IndexError("not marked complete")
    if index.get("format") not in FORMATS:
        raise _IndexError(f"format {index.get('format')!r}")


def _integer(name, value, low=0, high=INT64_MAX):
    """`value` when it is an integer in `[low, high]`, else an error
    naming it (JSON floats and booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or not low <= value <= high:
        raise _IndexError(f"{name} must be an integer in [{low}, {high}]. "
                          f"Received: {name}={value!r}")
    return value


def _check_shape(shape):
    """`(h, w, c)`, each at least 1, a record of at most
    `MAX_RECORD_BYTES` (multiplied in Python's exact integers)."""
    if not isinstance(shape, list) or len(shape) != 3:
        raise _IndexError(f"shape must be [height, width, channels]. "
                          f"Received: shape={shape!r}")
    shape = tuple(_integer("shape", d, low=1) for d in shape)
    if LABEL_BYTES + shape[0] * shape[1] * shape[2] > MAX_RECORD_BYTES:
        raise _IndexError(f"shape {list(shape)} makes records larger than "
                          f"{MAX_RECORD_BYTES} bytes. Received: "
                          f"shape={list(shape)}")
    return shape


def _check_class_names(names):
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) for n in names):
        raise _IndexError(f"class_names must be a non-empty list of "
                          f"strings. Received: class_names={names!r}")
    return tuple(names)


def _check_shards(directory, index, record_bytes):
    """The shard entries as dicts, each with a safe file name and sizes
    that fit int64; their counts add up to `num_examples`."""
    shards = index["shards"]
    if not isinstance(shards, list) or not shards:
        raise _IndexError(f"shards must be a non-empty list. Received: "
                          f"shards={shards!r}")
    total = _integer("num_examples", index["num_examples"],
                     high=INT64_MAX // record_bytes)
    checked = [_check_shard(directory, s, record_bytes, index["format"])
               for s in shards]
    if sum(s["count"] for s in checked) != total:
        raise _IndexError(f"shard counts add up to "
                          f"{sum(s['count'] for s in checked)}, not "
                          f"num_examples={total}")
    return tuple(checked)


def _check_shard(directory, shard, record_bytes, fmt):
    if not isinstance(shard, dict):
        raise _IndexError(f"a shard entry must be an object. Received: "
                          f"{shard!r}")
    shard = dict(shard)
    _check_shard_name(directory, shard["file"])
    count = _integer("count", shard["count"],
                     high=INT64_MAX // record_bytes)
    size = _integer("bytes", shard["bytes"])
    if fmt == "raw" and size != count * record_bytes:
        raise _IndexError(f"shard {shard['file']!r} has bytes={size}, not "
                          f"its count times the record size "
                          f"({count} x {record_bytes})")
    if not isinstance(shard["sha256"], str):
        raise _IndexError(f"sha256 must be a string. Received: "
                          f"sha256={shard['sha256']!r}")
    return shard


def _check_shard_name(directory, name):
    """Checks that a shard's `name` is a plain file name that stays inside
    `directory` once symbolic links are resolved (no separator, no `..`,
    not absolute), so an index can never make a reader open another
    file."""
    if not isinstance(name, str) or name in ("", ".", "..") \
            or "\0" in name or "/" in name or os.sep in name \
            or (os.altsep and os.altsep in name) or os.path.isabs(name):
        raise _IndexError(f"shard file names must be plain file names in "
                          f"the pack's folder. Received: file={name!r}")
    folder = os.path.realpath(directory)
    if os.path.dirname(os.path.realpath(os.path.join(folder, name))) \
            != folder:
        raise _IndexError(f"shard file {name!r} is a link that leads out "
                          f"of the pack's folder. Received: file={name!r}")


def check_shard_sizes(info):
    """Checks that every shard is a regular file with the size the index
    gives.

    Raises:
        ValueError: naming the first missing, special (a FIFO, a device, a
            folder) or wrongly sized shard.
    """
    for shard, path in zip(info.shards, info.shard_paths()):
        try:
            st = os.stat(path)
        except OSError as err:
            raise _unreadable(path, err) from err
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path)
        size = st.st_size
        if size != shard["bytes"]:
            raise ValueError(f"Packed shard {path} has {size} bytes but the "
                             f"index says {shard['bytes']}: it is truncated "
                             f"or was changed; pack the data again")


def _unreadable(path, err):
    return ValueError(f"Packed shard {path} cannot be read: {err.strerror}")


def _not_regular(path):
    return ValueError(f"Packed shard {path} is not a regular file (a FIFO, "
                      f"a device or a folder); pack the data again")


def open_regular(path):
    """Opens `path` for reading in binary mode only if it is a regular
    file: the open itself does not wait (`O_NONBLOCK`, so a FIFO with no
    writer cannot block it), then `fstat` decides.

    Returns:
        A binary file object, blocking again.

    Raises:
        ValueError: `path` is not a regular file.
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_regular(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_sha256(path, chunk=1 << 22, inspect=None):
    """SHA-256 of a regular file's bytes, as a hex string.

    Args:
        path: the file.
        chunk: bytes per read; every block but the last has this size.
        inspect: optional callable `(offset, block)` given every block
            read, so one pass can check more than the digest.

    Raises:
        ValueError: `path` is not a regular file.
        OSError: it cannot be read.
    """
    digest = hashlib.sha256()
    offset = 0
    with open_regular(path) as f:
        while True:
            block = f.read(chunk)
            if not block:
                return digest.hexdigest()
            if inspect is not None:
                inspect(offset, block)
            digest.update(block)
            offset += len(block)


def _bad_labels(info, found):
    """An `inspect` for `file_sha256` over a raw shard read in blocks of
    whole records: appends `(record in the shard, label)` to `found` for
    the first label of each block outside `[0, num_classes)`."""
    import numpy as np
    record, n = info.record_bytes, len(info.class_names)

    def inspect(offset, block):
        labels = np.ndarray((len(block) // record,), "<i4", block, 0,
                            (record,))
        bad = np.flatnonzero((labels < 0) | (labels >= n))
        if bad.size:
            found.append((offset // record + int(bad[0]),
                          int(labels[bad[0]])))

    return inspect


def verify_shard(info, i):
    """Checks shard `i`'s SHA-256 against the index and, for a raw pack,
    its labels against the class count, in the same read.

    Raises:
        ValueError: naming the shard, when it differs, cannot be read, or
            holds a label outside `[0, len(class_names))` (naming the
            label).
    """
    shard, path = info.shards[i], info.shard_paths()[i]
    found, inspect, chunk = [], None, 1 << 22
    if info.format == "raw":
        chunk = info.record_bytes * max(1, chunk // info.record_bytes)
        inspect = _bad_labels(info, found)
    try:
        actual = file_sha256(path, chunk, inspect)
    except OSError as err:
        raise _unreadable(path, err) from err
    if actual != shard["sha256"]:
        raise ValueError(f"Packed shard {path} is corrupt: its SHA-256 is "
                         f"{actual}, the index says {shard['sha256']}; "
                         f"pack the data again")
    if found:
        number = sum(s["count"] for s in info.shards[:i]) + found[0][0]
        raise ValueError(f"Packed shard {path} holds a label outside [0, "
                         f"{len(info.class_names)}) (the pack's classes) in "
                         f"record {number}: the pack is corrupt; pack the "
                         f"data again. Received: label={found[0][1]}")


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
        A `tf.data.Dataset` with a known cardinality and the attributes
        `class_names`, `info` (the `PackedInfo`) and `read_batches` (for a
        raw pack, `packed_batches.record_batches` bound to this pack and
        its checksum verification; else None), with which
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
