"""Class subsets and per-class training subsets."""

import numpy as np
import pytest

from keras_cnnpractice.data import parse_classes
from keras_cnnpractice.data import select_classes
from keras_cnnpractice.data import take_per_class


@pytest.mark.parametrize("text, expected", [
    ("", None), ("5-9", [5, 6, 7, 8, 9]), ("0,2,4", [0, 2, 4]),
    ("7,0-1", [7, 0, 1])])
def test_parse_classes(text, expected):
    assert parse_classes(text) == expected


@pytest.mark.parametrize("text", ["a", "1,1", "3-", "-1", "1,,2"])
def test_bad_classes_are_rejected(text):
    with pytest.raises(ValueError, match="Received: classes="):
        parse_classes(text)


def test_select_relabels_in_the_order_given():
    labels = np.array([0, 5, 9, 5, 3, 7], np.uint8)
    images = np.arange(6)[:, None] * np.ones((1, 4))
    x, y = select_classes(images, labels, [9, 5, 7])
    np.testing.assert_array_equal(x[:, 0], [1, 2, 3, 5])
    np.testing.assert_array_equal(y, [1, 0, 1, 2])
    assert y.dtype == np.uint8


def test_take_per_class_is_seeded_balanced_and_ordered():
    labels = np.repeat(np.arange(3), 50)
    images = np.arange(150)
    x, y = take_per_class(images, labels, 10, seed=3)
    assert np.bincount(y).tolist() == [10, 10, 10]
    assert np.all(np.diff(x) > 0) and np.array_equal(labels[x], y)
    again, _ = take_per_class(images, labels, 10, seed=3)
    other, _ = take_per_class(images, labels, 10, seed=4)
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    with pytest.raises(ValueError, match="only 50 training examples"):
        take_per_class(images, labels, 51)
