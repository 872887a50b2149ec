"""keras_dataset: only the name checks (the loaders download)."""

import pytest

from keras_cnnpractice.data import KERAS_DATASET_NAMES
from keras_cnnpractice.data import keras_dataset


def test_names():
    assert KERAS_DATASET_NAMES == ("mnist", "fashion_mnist", "cifar10",
                                   "cifar100")


@pytest.mark.parametrize("name", ["imagenet", "", "mnist5k", None])
def test_unknown_name_is_rejected_before_any_download(name):
    with pytest.raises(ValueError, match=r"valid names: mnist, fashion_mnist"
                                         r", cifar10, cifar100\. Received"):
        keras_dataset(name)


def test_bad_cifar100_label_mode():
    with pytest.raises(ValueError, match="label_mode='both'"):
        keras_dataset("CIFAR100", label_mode="both")
