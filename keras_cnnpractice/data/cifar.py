"""CIFAR-10 and CIFAR-100 from their *binary* versions, without pickle.

The binary versions (https://www.cs.toronto.edu/~kriz/cifar.html,
`cifar-10-binary.tar.gz` and `cifar-100-binary.tar.gz`) are files of
fixed-size records, read here as sequential byte streams with
`tf.data.FixedLengthRecordDataset`:

- CIFAR-10: `data_batch_1.bin` ... `data_batch_5.bin` (training) and
  `test_batch.bin`; 3073-byte records: 1 label byte, then 3072 bytes of
  pixels, the red, green and blue 32x32 planes one after the other (CHW).
- CIFAR-100: `train.bin` and `test.bin`; 3074-byte records: the coarse
  label byte, the fine label byte, then the 3072 pixel bytes.

Reference: Krizhevsky, "Learning Multiple Layers of Features from Tiny
Images", 2009.

Imports inside functions: TensorFlow, so that importing this module (as
`data.sources` and the training flags do) does not load it.
"""

import os

from keras_cnnpractice.data.examples import Examples

CIFAR10_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
                 "test": ("test_batch.bin",)}
CIFAR100_FILES = {"train": ("train.bin",), "test": ("test.bin",)}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck")
CIFAR100_LABEL_MODES = ("fine", "coarse")
IMAGE_BYTES = 32 * 32 * 3


def _resolve_dir(data_dir, names, subfolder):
    """`data_dir`, or its `subfolder` (what the tarball extracts to) when
    the files are there instead."""
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise ValueError(f"The CIFAR data folder does not exist. Received: "
                         f"data_dir={data_dir!r}")
    inner = os.path.join(data_dir, subfolder)
    if (not os.path.exists(os.path.join(data_dir, names[0]))
            and os.path.isdir(inner)):
        return inner
    return data_dir


def _checked_files(folder, names, record_bytes):
    """Full paths of `names` in `folder` and their total record count.

    Raises:
        ValueError: a missing file, or one whose size is not a positive
            multiple of `record_bytes`.
    """
    paths, count = [], 0
    for name in names:
        path = os.path.join(folder, name)
        try:
            size = os.stat(path).st_size
        except OSError as err:
            raise ValueError(f"Cannot read the CIFAR file {path}: "
                             f"{err.strerror}") from err
        if size == 0 or size % record_bytes:
            raise ValueError(
                f"The CIFAR file {path} has {size} bytes, not a positive "
                f"multiple of the {record_bytes}-byte record: it is truncated "
                f"or not from the binary version of the data set")
        paths.append(path)
        count += size // record_bytes
    return paths, count


def _class_names(folder, filename, default):
    """One class name per non-empty line of `folder/filename`, or `default`
    when that file is missing or empty."""
    try:
        with open(os.path.join(folder, filename)) as f:
            names = tuple(line.strip() for line in f if line.strip())
    except OSError:
        names = ()
    return names or default


def fixed_length_images(paths, count, record_bytes, label_offset,
                        class_names):
    """`Examples` of `(uint8 (32, 32, 3) image, int32 label)` from
    CIFAR-style records in `paths`: pixels are the last 3072 bytes of each
    record (CHW planes), the label the byte at `label_offset`."""
    import tensorflow as tf
    header = record_bytes - IMAGE_BYTES

    def parse(record):
        raw = tf.io.decode_raw(record, tf.uint8)
        label = tf.cast(raw[label_offset], tf.int32)
        image = tf.reshape(raw[header:], (3, 32, 32))
        return tf.transpose(image, (1, 2, 0)), label

    ds = tf.data.FixedLengthRecordDataset(paths, record_bytes,
                                          buffer_size=1 << 20)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    ds = ds.apply(tf.data.experimental.assert_cardinality(count))
    return Examples(ds, tuple(class_names), files=tuple(paths))


def cifar10_binary(data_dir):
    """CIFAR-10's binary version as training and test datasets.

    Args:
        data_dir: folder holding `data_batch_1.bin` ... `data_batch_5.bin`
            and `test_batch.bin`, or the folder `cifar-10-batches-bin` that
            the tarball extracts to is in.

    Returns:
        `(train, test)` `Examples` of `(image, label)`: uint8 RGB images
        of shape `(32, 32, 3)` and int32 labels 0..9, in file order (50,000
        and 10,000 of them for the real data); `class_names` from
        `batches.meta.txt` when present, `files` the batch files.

    Raises:
        ValueError: a missing file, or one whose size is not a multiple of
            3073 bytes, named in the message.
    """
    folder = _resolve_dir(data_dir, CIFAR10_FILES["train"],
                          "cifar-10-batches-bin")
    names = _class_names(folder, "batches.meta.txt", CIFAR10_CLASSES)
    return tuple(fixed_length_images(*_checked_files(folder, files, 3073),
                                     3073, 0, names)
                 for files in (CIFAR10_FILES["train"], CIFAR10_FILES["test"]))


def cifar100_binary(data_dir, label_mode="fine"):
    """CIFAR-100's binary version as training and test datasets.

    Args:
        data_dir: folder holding `train.bin` and `test.bin`, or the folder
            `cifar-100-binary` that the tarball extracts to is in.
        label_mode: `"fine"` (100 classes, default) or `"coarse"` (the 20
            superclasses).

    Returns:
        `(train, test)` `Examples` of uint8 `(32, 32, 3)` images and int32
        labels, in file order; `class_names` from `fine_label_names.txt` /
        `coarse_label_names.txt` when present, else the label numbers as
        strings; `files` the batch files.

    Raises:
        ValueError: an unknown `label_mode`, a missing file, or one whose
            size is not a multiple of 3074 bytes, named in the message.
    """
    if label_mode not in CIFAR100_LABEL_MODES:
        raise ValueError(f"label_mode must be one of "
                         f"{', '.join(CIFAR100_LABEL_MODES)}. Received: "
                         f"label_mode={label_mode!r}")
    folder = _resolve_dir(data_dir, CIFAR100_FILES["train"],
                          "cifar-100-binary")
    num = 100 if label_mode == "fine" else 20
    names = _class_names(folder, f"{label_mode}_label_names.txt",
                         tuple(str(i) for i in range(num)))
    offset = 1 if label_mode == "fine" else 0
    return tuple(fixed_length_images(*_checked_files(folder, files, 3074),
                                     3074, offset, names)
                 for files in (CIFAR100_FILES["train"],
                               CIFAR100_FILES["test"]))
