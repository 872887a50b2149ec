"""add_l2 against a numpy sum of squared kernels."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.training import add_l2


def _model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.SeparableConv2D(4, 3)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_penalty_is_strength_times_sum_of_squared_kernels():
    model = _model()
    assert add_l2(model, 0.01) == 4  # conv, depthwise, pointwise, dense
    kernels = [model.layers[1].kernel, model.layers[3].depthwise_kernel,
               model.layers[3].pointwise_kernel, model.layers[5].kernel]
    expected = 0.01 * sum(np.sum(np.square(k.numpy().astype(np.float64)))
                          for k in kernels)
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


def test_zero_strength_removes_the_penalty_and_negative_is_rejected():
    model = _model()
    add_l2(model, 0.5)
    add_l2(model, 0.0)
    assert model.losses == []
    with pytest.raises(ValueError, match="Received: strength=-1"):
        add_l2(model, -1)
