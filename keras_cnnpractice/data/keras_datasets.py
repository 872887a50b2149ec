"""`keras.datasets` loaders behind one function (they download: users with
internet only, never in tests).

Imports inside functions: Keras (and with it TensorFlow), so that importing
`keras_cnnpractice.data` does not load it.
"""

import numpy as np

KERAS_DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100")
_NUM_CLASSES = {"mnist": 10, "fashion_mnist": 10, "cifar10": 10,
                "cifar100": 100}


def keras_dataset(name, label_mode="fine"):
    """Loads a `keras.datasets` data set in the shape `load_dataset` gives.

    The first call downloads the data to `~/.keras/datasets` (Keras's
    cache); later calls read the cache.

    Args:
        name: one of `KERAS_DATASET_NAMES` (case-insensitive).
        label_mode: for `"cifar100"`, `"fine"` (100 classes, default) or
            `"coarse"` (20); ignored otherwise.

    Returns:
        `((x_train, y_train), (x_test, y_test), num_classes)`: uint8 NHWC
        images (MNIST and Fashion-MNIST get a channel axis of 1) and flat
        uint8 labels.

    Raises:
        ValueError: an unknown name or label mode.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in KERAS_DATASET_NAMES:
        raise ValueError(f"Unknown keras dataset {name!r}; valid names: "
                         f"{', '.join(KERAS_DATASET_NAMES)}. Received: "
                         f"name={name!r}")
    if key == "cifar100" and label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse'. Received: "
                         f"label_mode={label_mode!r}")
    import keras
    loader = getattr(keras.datasets, key)
    if key == "cifar100":
        splits = loader.load_data(label_mode=label_mode)
        num_classes = 100 if label_mode == "fine" else 20
    else:
        splits = loader.load_data()
        num_classes = _NUM_CLASSES[key]

    def tidy(x, y):
        x = np.asarray(x, np.uint8)
        if x.ndim == 3:
            x = x[..., None]
        return x, np.asarray(y, np.uint8).reshape(-1)

    return (*(tidy(x, y) for x, y in splits), num_classes)
