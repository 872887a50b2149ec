"""QuantConv2D and QuantDense against float arithmetic on quantized values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.constraints import WeightClip
from keras_cnnpractice.layers import QuantConv2D
from keras_cnnpractice.layers import QuantDense
from tests import numpy_reference as ref
from tests.layers.helpers import assert_round_trips

RNG = np.random.default_rng(0)


def _sign(a):
    return np.where(a >= 0, 1.0, -1.0).astype(np.float32)


def test_binary_conv_equals_float_conv_of_signs():
    x = RNG.normal(size=(2, 7, 7, 5)).astype(np.float32)
    layer = QuantConv2D(4, 3, input_quantizer="ste_sign",
                        kernel_quantizer="ste_sign", padding="same")
    y = layer(x).numpy()
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    want = tf.nn.conv2d(_sign(x), _sign(kernel), 1, "SAME").numpy() + bias
    np.testing.assert_allclose(y, want, atol=1e-5)
    # On +-1 values every output is an integer plus the bias.
    np.testing.assert_allclose(np.round(y - bias), y - bias, atol=1e-5)


def test_latent_kernel_gets_straight_through_gradient():
    x = RNG.normal(size=(1, 5, 5, 2)).astype(np.float32)
    layer = QuantConv2D(1, 3, kernel_quantizer="ste_sign", use_bias=False)
    layer.build(x.shape)
    layer.kernel.assign(RNG.uniform(-1.5, 1.5, size=(3, 3, 2, 1)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grad = tape.gradient(loss, layer.kernel).numpy()
    # d(sum conv(x, k))/dk = sum of input patches, masked where |k| > 1.
    patches = np.stack([x[0, i:i + 3, j:j + 3] for i in range(3) for j in range(3)])
    want = patches.sum(axis=0)[..., None] * (np.abs(layer.kernel.numpy()) <= 1)
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-6)


def test_without_quantizers_it_is_conv2d():
    x = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)
    ours, plain = QuantConv2D(4, 3), keras.layers.Conv2D(4, 3)
    ours.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), plain(x), atol=1e-6)


def test_fixed_point_dense_equals_numpy():
    x = RNG.uniform(-2, 2, size=(3, 6)).astype(np.float32)
    layer = QuantDense(4, input_quantizer={"class_name": "keras_cnnpractice>FixedPoint",
                                           "config": {"word_bits": 8, "frac_bits": 4,
                                                      "rounding": "nearest"}},
                       kernel_quantizer="ste_sign", activation="relu")
    y = layer(x).numpy()
    xq = ref.fixed_point(x, 8, 4, "nearest")
    want = np.maximum(xq @ _sign(layer.kernel.numpy()) + layer.bias.numpy(), 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_weight_clip_keeps_latent_weights_in_range():
    layer = QuantDense(2, kernel_quantizer="ste_sign",
                       kernel_constraint=WeightClip(1.0))
    model = keras.Sequential([keras.Input((3,)), layer])
    model.compile(optimizer=keras.optimizers.SGD(100.0), loss="mse")
    model.fit(RNG.normal(size=(8, 3)), RNG.normal(size=(8, 2)) * 10, verbose=0)
    assert np.abs(layer.kernel.numpy()).max() <= 1.0
    with pytest.raises(ValueError, match="clip_value=0"):
        WeightClip(0)


def test_works_under_mixed_bfloat16():
    layer = QuantDense(3, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                       dtype="mixed_bfloat16")
    y = layer(RNG.normal(size=(2, 4)).astype(np.float32))
    assert y.dtype == "bfloat16" and layer.kernel.dtype == "float32"


def test_round_trips(tmp_path):
    assert_round_trips(QuantConv2D(3, 3, input_quantizer="approx_sign",
                                   kernel_quantizer="ste_sign",
                                   kernel_constraint=WeightClip(), name="qconv"),
                       (6, 6, 2), tmp_path / "a")
    assert_round_trips(QuantDense(3, kernel_quantizer="dynamic_fixed_point",
                                  name="qdense"), (5,), tmp_path / "b")
