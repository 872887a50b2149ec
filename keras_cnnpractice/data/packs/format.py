"""The pack format: the layout constants, the index (`PackedInfo`,
`packed_info`, which trusts nothing in it) and the file checks shared by
the readers and the writer. The layout: `keras_cnnpractice.data.packs`."""

import dataclasses
import hashlib
import json
import os
import stat

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
FORMATS = ("raw", "tfrecord")
SHARD_SUFFIX = {"raw": ".raw", "tfrecord": ".tfrecord"}
LABEL_BYTES = 4
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
            raise unreadable(path, err) from err
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(path)
        size = st.st_size
        if size != shard["bytes"]:
            raise ValueError(f"Packed shard {path} has {size} bytes but the "
                             f"index says {shard['bytes']}: it is truncated "
                             f"or was changed; pack the data again")


def unreadable(path, err):
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
