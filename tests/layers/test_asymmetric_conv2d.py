"""AsymmetricConv2D: shapes, the 6C^2 vs 9C^2 count, errors, serialization."""

import numpy as np
import pytest

from keras_cnnpractice.layers import AsymmetricConv2D
from tests.layers.helpers import assert_round_trips
from tests.layers.helpers import gradient_support


@pytest.mark.parametrize("padding, out", [("same", 12), ("valid", 10)])
def test_shape_like_a_3x3(padding, out):
    y = AsymmetricConv2D(5, 3, padding=padding)(np.zeros((1, 12, 12, 2), "float32"))
    assert y.shape == (1, out, out, 5)


def test_weights_are_2n_c_squared():
    c = 8
    layer = AsymmetricConv2D(c, 3, use_bias=False)
    layer.build((None, 10, 10, c))
    assert layer.count_params() == 6 * c * c


def test_receptive_field_is_n_by_n():
    layer = AsymmetricConv2D(1, 3, activation="linear", kernel_initializer="ones")
    assert gradient_support(layer, np.ones((1, 9, 9, 1), "float32")) == (
        [3, 3], [5, 5])


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=0), "filters=0"), (dict(filters=4, kernel_size=1), "kernel_size=1"),
    (dict(filters=4, padding="full"), "padding='full'")])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AsymmetricConv2D(**kwargs)


def test_round_trip(tmp_path):
    assert_round_trips(AsymmetricConv2D(4, 5, activation="tanh", name="asym"),
                       (9, 9, 3), tmp_path)
