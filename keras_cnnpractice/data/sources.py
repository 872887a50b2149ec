"""Named datasets for `train.py --dataset=`."""

from keras_cnnpractice.data.mnist5k import load_mnist5k

DATASET_NAMES = ("mnist5k",)


def load_dataset(name):
    """Loads the dataset called `name`.

    Returns:
        `((x_train, y_train), (x_test, y_test), num_classes)` with uint8
        NHWC images.

    Raises:
        ValueError: unknown name.
    """
    if name == "mnist5k":
        return (*load_mnist5k(), 10)
    raise ValueError(f"Unknown dataset {name!r}; valid names: "
                     f"{', '.join(DATASET_NAMES)}. Received: dataset={name!r}")
