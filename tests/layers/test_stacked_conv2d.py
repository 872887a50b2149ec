"""StackedConv2D: shapes, parameter counts, receptive field, serialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.layers import StackedConv2D
from tests.layers.helpers import assert_round_trips
from tests.layers.helpers import gradient_support


@pytest.mark.parametrize("rf, k, depth", [(7, 3, 3), (5, 3, 2), (3, 3, 1),
                                          (9, 5, 2)])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_output_shape_matches_one_large_convolution(rf, k, depth, padding):
    x = np.zeros((2, 17, 19, 3), np.float32)
    layer = StackedConv2D(8, receptive_field=rf, kernel_size=k, padding=padding)
    big = keras.layers.Conv2D(8, rf, padding=padding)
    assert layer(x).shape == big(x).shape
    assert layer.compute_output_shape(x.shape) == tuple(big(x).shape)
    assert layer.depth == depth


def test_parameters_follow_the_lecture_figure():
    # Three 3x3 convs on C channels: 3 * 9 * C^2 weights vs 49 C^2 for 7x7.
    c = 16
    layer = StackedConv2D(c, receptive_field=7, use_bias=False)
    layer.build((None, 32, 32, c))
    assert layer.count_params() == 27 * c * c
    big = keras.layers.Conv2D(c, 7, use_bias=False)
    big.build((None, 32, 32, c))
    assert big.count_params() == 49 * c * c


def test_receptive_field_is_exactly_the_window():
    # The gradient of one output pixel reaches exactly a 7x7 input window.
    layer = StackedConv2D(4, receptive_field=7, activation="linear",
                          kernel_initializer="ones")
    x = tf.random.uniform((1, 15, 15, 1)) + 0.5
    assert gradient_support(layer, x) == ([4, 4], [10, 10])


def test_activation_follows_every_convolution():
    layer = StackedConv2D(2, receptive_field=5, activation="relu")
    layer.build((None, 8, 8, 1))
    assert [conv.activation.__name__ for conv in layer.convs] == ["relu", "relu"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(filters=0), "filters"),
    (dict(filters=8, receptive_field=6), "receptive_field=6"),
    (dict(filters=8, receptive_field=7, kernel_size=5), "receptive_field=7"),
    (dict(filters=8, kernel_size=4), "kernel_size=4"),
    (dict(filters=8, receptive_field=1), "receptive_field=1"),
    (dict(filters=8, padding="causal"), "padding='causal'"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StackedConv2D(**kwargs)


def test_config_round_trip_and_keras_file(tmp_path):
    assert_round_trips(StackedConv2D(6, receptive_field=5, padding="valid",
                                     activation="tanh", kernel_regularizer="l2",
                                     name="stack"), (12, 12, 2), tmp_path)
