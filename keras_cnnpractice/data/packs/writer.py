"""Writing packs: decode a data set once, store its pixels in large shards.

`pack_dataset` is what `kcp-pack` runs; the
command's docstring (`keras_cnnpractice/cli/pack.py`) describes sources,
resizing, determinism and how re-runs and interruptions are handled, and
`keras_cnnpractice.data.packs` the layout on disk.

Imports inside functions: TensorFlow, loaded only when a pack is written, so
that `kcp-pack --help` and its flag checks answer without it.
"""


import hashlib
import json
import os
import shutil
import struct

from keras_cnnpractice._validate import check_number
from keras_cnnpractice.data import cifar
from keras_cnnpractice.data.examples import Examples
from keras_cnnpractice.data.image_folder import check_resize
from keras_cnnpractice.data.image_folder import list_image_folder
from keras_cnnpractice.data.image_folder import read_image_files
from keras_cnnpractice.data.image_folder import resize_image
from keras_cnnpractice.data.image_folder import warn_skipped
from keras_cnnpractice.data.mnist5k import load_mnist5k
from keras_cnnpractice.data.packs.format import FORMAT_VERSION
from keras_cnnpractice.data.packs.format import FORMATS
from keras_cnnpractice.data.packs.format import INDEX_NAME
from keras_cnnpractice.data.packs.format import LABEL_BYTES
from keras_cnnpractice.data.packs.format import SHARD_SUFFIX
from keras_cnnpractice.data.packs.format import check_shard_sizes
from keras_cnnpractice.data.packs.format import file_sha256
from keras_cnnpractice.data.packs.format import packed_info

SPLITS = ("train", "test")
SKIPPED_NAME = "skipped.jsonl"


class _Source:
    """A data set to pack: its canonical name, class names, a fingerprint
    of its files, and `examples(size, resize, workers)`, which yields
    `(image, label, where)` in order and fills `skipped`."""

    def __init__(self, name, class_names, fingerprint, examples):
        self.name = name
        self.class_names = tuple(class_names)
        self.fingerprint = fingerprint
        self.skipped = []
        self._examples = examples

    def examples(self, size, resize, workers):
        return self._examples(self, size, resize, workers)


def _fingerprint(root, paths):
    """SHA-256 of the relative names, sizes and modification times of
    `paths` (under `root`)."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            st = os.stat(path)
            entry = f"{st.st_size}\t{st.st_mtime_ns}"
        except OSError as err:
            entry = f"unreadable {err.errno}"
        digest.update(f"{os.path.relpath(path, root)}\t{entry}\n".encode())
    return digest.hexdigest()


def _folder_source(root):
    root = os.path.abspath(os.path.expanduser(root))
    listing = list_image_folder(root)
    every = sorted(list(listing.paths) + [p for p, _ in listing.skipped])

    def examples(source, size, resize, workers):
        source.skipped.extend((os.path.relpath(p, root), r)
                              for p, r in listing.skipped)
        results = read_image_files(listing.paths, size, resize,
                                           workers)
        for path, label, (image, reason) in zip(listing.paths,
                                                listing.labels, results):
            if image is None:
                source.skipped.append((os.path.relpath(path, root), reason))
            else:
                yield image, label, path

    return _Source(f"folder:{root}", listing.class_names,
                   _fingerprint(root, every), examples)


def _dataset_source(name, examples_in, fingerprint):
    """A source over `Examples` of (uint8 image, label)."""

    def examples(source, size, resize, workers):
        import tensorflow as tf
        data = examples_in.dataset
        if size is not None:
            data = data.map(
                lambda x, y: (resize_image(x, size, resize), y),
                num_parallel_calls=workers or tf.data.AUTOTUNE,
                deterministic=True)
        for i, (image, label) in enumerate(data.as_numpy_iterator()):
            yield image, int(label), f"{name} record {i}"

    return _Source(name, examples_in.class_names, fingerprint, examples)


def _cifar_source(kind, data_dir, split):
    data_dir = os.path.abspath(os.path.expanduser(data_dir))
    reader = cifar.cifar10_binary if kind == "cifar10" else \
        cifar.cifar100_binary
    train, test = reader(data_dir)
    ds = train if split == "train" else test
    files = sorted(os.path.join(folder, f)
                   for folder, _, names in os.walk(data_dir) for f in names
                   if f.endswith(".bin"))
    return _dataset_source(f"{kind}:{data_dir}", ds,
                           _fingerprint(data_dir, files))


def _mnist5k_source(split):
    import tensorflow as tf
    images, labels = load_mnist5k()[SPLITS.index(split)]
    ds = tf.data.Dataset.from_tensor_slices((images, labels.astype("int32")))
    return _dataset_source(
        "mnist5k", Examples(ds, tuple(str(d) for d in range(10))), "mnist5k")


def parse_source(spec, split=None):
    """Resolves a SOURCE argument (see the module docstring).

    Raises:
        ValueError: an unknown form, a missing folder, or `split` with a
            folder.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}. "
                         f"Received: split={split!r}")
    spec = os.fspath(spec)
    kind, sep, rest = spec.partition(":")
    if spec == "mnist5k":
        return _mnist5k_source(split or "train")
    if sep and kind in ("cifar10", "cifar100"):
        return _cifar_source(kind, rest, split or "train")
    if sep and kind == "folder":
        spec = rest
    elif sep and not os.path.isdir(spec):
        raise ValueError(f"Unknown source {spec!r}: give a folder with one "
                         f"sub-folder per class (or folder:DIR), cifar10:DIR, "
                         f"cifar100:DIR or mnist5k. Received: source={spec!r}")
    if split is not None:
        raise ValueError(f"A folder source has no splits; --split applies to "
                         f"cifar10:, cifar100: and mnist5k. Received: "
                         f"split={split!r}")
    return _folder_source(spec)


class _ShardWriter:
    """Writes records into numbered shards of `records_per_shard` each,
    returning the index entries of the shards."""

    def __init__(self, folder, fmt, shape, records_per_shard):
        self._folder, self._fmt, self._shape = folder, fmt, shape
        self._per_shard = records_per_shard
        self._file = None
        self._count = 0
        self.shards = []

    def _open(self):
        name = (f"shard-{len(self.shards):05d}"
                f"{SHARD_SUFFIX[self._fmt]}")
        self._path = os.path.join(self._folder, name)
        self.shards.append({"file": name, "count": 0})
        if self._fmt == "raw":
            self._file = open(self._path, "xb")
            self._digest = hashlib.sha256()
        else:
            import tensorflow as tf
            self._file = tf.io.TFRecordWriter(self._path)

    def _close(self):
        if self._file is None:
            return
        if self._fmt == "raw":
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            digest = self._digest.hexdigest()
        else:
            self._file.close()
            with open(self._path, "rb") as f:
                os.fsync(f.fileno())
            digest = file_sha256(self._path)
        self.shards[-1].update(bytes=os.path.getsize(self._path),
                               sha256=digest)
        self._file = None

    def add(self, image, label):
        if self._file is not None and self.shards[-1]["count"] >= \
                self._per_shard:
            self._close()
        if self._file is None:
            self._open()
        pixels = image.tobytes(order="C")
        if self._fmt == "raw":
            record = struct.pack("<i", label) + pixels
            self._file.write(record)
            self._digest.update(record)
        else:
            import tensorflow as tf
            feature = tf.train.Feature
            example = tf.train.Example(features=tf.train.Features(feature={
                "image": feature(bytes_list=tf.train.BytesList(
                    value=[pixels])),
                "label": feature(int64_list=tf.train.Int64List(
                    value=[label])),
                "shape": feature(int64_list=tf.train.Int64List(
                    value=list(self._shape)))}))
            self._file.write(example.SerializeToString(deterministic=True))
        self.shards[-1]["count"] += 1

    def finish(self):
        self._close()
        return self.shards


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_stale_partials(out_dir):
    """Removes the `.NAME.partial-PID` and `.NAME.old-PID` folders beside
    `out_dir` left by killed runs (their process is gone) or by this
    process; a live run's folders are left alone."""
    parent, name = os.path.split(out_dir)
    try:
        entries = os.listdir(parent)
    except FileNotFoundError:
        return
    for entry in entries:
        pid = _leftover_pid(entry, name)
        if pid is not None and (pid == os.getpid() or not _pid_alive(pid)):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _leftover_pid(entry, name):
    """The PID in `.NAME.partial-PID` or `.NAME.old-PID`, else None."""
    for kind in ("partial", "old"):
        prefix = f".{name}.{kind}-"
        pid = entry[len(prefix):]
        if entry.startswith(prefix) and pid.isdigit():
            return int(pid)
    return None


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _existing(out_dir, args, source, overwrite):
    """The complete pack already in `out_dir` made with `args` from the
    unchanged source, else None (when `out_dir` is free or may be
    replaced).

    Raises:
        ValueError: `out_dir` holds something else and may not be replaced.
    """
    if not os.path.lexists(out_dir):
        return None
    if not os.path.isdir(out_dir):
        raise ValueError(f"OUT_DIR {out_dir} exists and is not a folder. "
                         f"Received: out_dir={out_dir!r}")
    if not os.path.exists(os.path.join(out_dir, INDEX_NAME)):
        if not os.listdir(out_dir):
            return None
        raise ValueError(f"OUT_DIR {out_dir} is not empty and holds no pack "
                         f"index; refusing to write there. Received: "
                         f"out_dir={out_dir!r}")
    try:
        info = packed_info(out_dir)
        check_shard_sizes(info)
    except ValueError as err:
        if overwrite:
            return None
        raise ValueError(f"{err} (or pass --overwrite)") from err
    changes = [f"{k}: {info.args.get(k)!r} -> {v!r}" for k, v in args.items()
               if info.args.get(k) != v]
    if not changes and info.source_fingerprint == source.fingerprint:
        return info
    if overwrite:
        return None
    what = (f"other arguments ({'; '.join(changes)})" if changes else
            "the same arguments, but the source changed since")
    raise ValueError(f"OUT_DIR {out_dir} holds a pack made with {what}; pass "
                     f"--overwrite to rebuild it, or choose another OUT_DIR")


def pack_dataset(source, out_dir, size=None, resize="short_side", shard_mb=256,
         workers=None, format="raw", split=None, overwrite=False):
    """Decodes `source` once and writes it into `out_dir` as a pack.

    Sources, resizing, the record layout, determinism, re-runs and
    interruptions are described in the docstring of the command
    `kcp-pack` (`keras_cnnpractice/cli/pack.py`).

    Args:
        source: a SOURCE string (folder, `folder:DIR`, `cifar10:DIR`,
            `cifar100:DIR` or `mnist5k`).
        out_dir: the pack's folder.
        size: side of the square images to store, or None to keep the
            source's size (then all images must have one size).
        resize: `"short_side"` or `"exact"` (used with `size`).
        shard_mb: MiB of records per shard (> 0).
        workers: decoding threads (default: the CPU count, at most 8).
        format: `"raw"` (fixed-size records) or `"tfrecord"`.
        split: `"train"` (default) or `"test"` for CIFAR and mnist5k.
        overwrite: replace a pack made with other arguments or from a
            source that changed.

    Returns:
        `(info, reused)`: the pack's `PackedInfo`, and whether `out_dir`
        already held it (nothing was written).

    Raises:
        ValueError: a bad argument or source, images of different sizes
            without `size`, no usable image, or an `out_dir` that holds
            something else.
        OSError: `out_dir` cannot be written.
    """
    check_resize(size, resize)
    if format not in FORMATS:
        raise ValueError(f"format must be one of "
                         f"{', '.join(FORMATS)}. Received: "
                         f"format={format!r}")
    check_number("shard_mb", shard_mb, 0, low_open=True)
    out_dir = os.path.abspath(os.path.expanduser(os.fspath(out_dir)))
    src = parse_source(source, split)
    args = {"source": src.name,
            "split": None if src.name.startswith("folder:") else
            split or "train", "size": size,
            "resize": resize if size is not None else None,
            "format": format, "shard_mb": shard_mb}
    _remove_stale_partials(out_dir)
    info = _existing(out_dir, args, src, overwrite)
    if info is not None:
        return info, True
    parent, name = os.path.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{name}.partial-{os.getpid()}")
    os.mkdir(tmp)
    try:
        _write(src, tmp, args, size, resize, shard_mb, workers,
                       format)
        _fsync_dir(tmp)
        if os.path.lexists(out_dir):
            old = os.path.join(parent, f".{name}.old-{os.getpid()}")
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return packed_info(out_dir), False


def _write_skipped(path, skipped):
    """Writes the skipped-files report: one JSON object `{"path",
    "reason"}` a line, ASCII-only, so no character of a file name (a tab,
    a newline, U+2028, an undecodable byte) can break or forge a line."""
    with open(path, "x", encoding="ascii") as f:
        f.writelines(json.dumps({"path": p, "reason": r}) + "\n"
                     for p, r in skipped)


def _write(src, tmp, args, size, resize, shard_mb, workers, fmt):
    """Decodes `src` and writes shards, `skipped.jsonl` and the index into
    `tmp`; returns the index."""
    writer = shape = None
    for image, label, where in src.examples(size, resize, workers):
        if shape is None:
            shape = tuple(int(d) for d in image.shape)
            record_bytes = LABEL_BYTES + image.size
            per_shard = max(1, int(shard_mb * (1 << 20)) // record_bytes)
            writer = _ShardWriter(tmp, fmt, shape, per_shard)
        elif tuple(image.shape) != shape:
            raise ValueError(
                f"{where} is {'x'.join(map(str, image.shape))} but the "
                f"first image is {'x'.join(map(str, shape))}: fixed-size "
                f"records need one shape; pass --size to resize every image")
        writer.add(image, label)
    skipped = sorted(src.skipped)
    warn_skipped(skipped, src.name)
    if writer is None:
        shown = "; ".join(f"{p}: {r}" for p, r in skipped[:3])
        raise ValueError(f"No usable image in {src.name}"
                         + (f" ({len(skipped)} skipped: {shown})"
                            if skipped else ""))
    shards = writer.finish()
    if skipped:
        _write_skipped(os.path.join(tmp, SKIPPED_NAME), skipped)
    index = {
        "format_version": FORMAT_VERSION,
        "complete": True,
        "format": fmt,
        "record": ({"label": "int32 little-endian, bytes 0-3",
                    "image": "uint8 HWC pixels, bytes 4-"
                             f"{LABEL_BYTES + int(image.size) - 1}",
                    "record_bytes": record_bytes}
                   if fmt == "raw" else
                   {"features": "image: bytes (uint8 HWC pixels), label: "
                                "int64, shape: int64 [h, w, c]"}),
        "shape": list(shape),
        "dtype": "uint8",
        "num_examples": sum(s["count"] for s in shards),
        "class_names": list(src.class_names),
        "shards": shards,
        "args": args,
        "source_fingerprint": src.fingerprint,
        "skipped": [{"path": p, "reason": r} for p, r in skipped],
    }
    with open(os.path.join(tmp, INDEX_NAME), "x") as f:
        f.write(json.dumps(index, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return index
