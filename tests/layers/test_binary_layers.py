"""BinaryConv2D / BinaryDense presets against float arithmetic on signs."""

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice import quantizers
from keras_cnnpractice.constraints import WeightClip
from keras_cnnpractice.layers import BinaryConv2D
from keras_cnnpractice.layers import BinaryDense
from tests.layers.helpers import assert_round_trips

RNG = np.random.default_rng(3)


def _sign(a):
    return np.where(a >= 0, 1.0, -1.0).astype(np.float32)


def test_binary_conv_presets():
    layer = BinaryConv2D(4, 3)
    assert isinstance(layer.kernel_constraint, WeightClip)
    assert isinstance(layer.input_quantizer, quantizers.SteSign)
    assert not layer.use_bias
    x = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)
    y = layer(x).numpy()
    want = tf.nn.conv2d(_sign(x), _sign(layer.kernel.numpy()), 1, "VALID").numpy()
    np.testing.assert_allclose(y, want, atol=1e-5)
    first = BinaryConv2D(4, 3, binary_input=False)
    assert first.input_quantizer is None


def test_xnor_scaling_per_output_channel():
    layer = BinaryConv2D(5, 3, scale_kernel=True, padding="same")
    x = RNG.normal(size=(1, 5, 5, 2)).astype(np.float32)
    y = layer(x).numpy()
    w = layer.kernel.numpy()
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    want = tf.nn.conv2d(_sign(x), _sign(w) * alpha, 1, "SAME").numpy()
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_binary_dense_and_scaled_quantizer_gradient():
    layer = BinaryDense(3, scale_kernel=True)
    x = RNG.normal(size=(4, 6)).astype(np.float32)
    y = layer(x).numpy()
    w = layer.kernel.numpy()
    np.testing.assert_allclose(y, _sign(x) @ (_sign(w) * np.abs(w).mean(0)),
                               rtol=1e-5, atol=1e-5)
    k = tf.constant([[0.5, -2.0], [-0.25, 0.5]])
    with tf.GradientTape() as tape:
        tape.watch(k)
        q = quantizers.scaled_ste_sign(k)
    grad = tape.gradient(q, k).numpy()  # alpha constant, sign straight-through
    alpha = np.abs(k.numpy()).mean(axis=0)
    np.testing.assert_allclose(grad, (np.abs(k.numpy()) <= 1) * alpha)


def test_explicit_arguments_win_and_round_trips(tmp_path):
    layer = BinaryDense(2, kernel_quantizer="approx_sign", use_bias=True,
                        name="bd")
    assert isinstance(layer.kernel_quantizer, quantizers.ApproxSign)
    assert layer.use_bias
    assert_round_trips(layer, (4,), tmp_path / "dense")
    assert_round_trips(BinaryConv2D(3, 3, scale_kernel=True, binary_input=False,
                                    name="bc"), (5, 5, 2), tmp_path / "conv")


def test_a_binary_mlp_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 16)).astype(np.float32)
    y = (x[:, :8].sum(axis=1) > 0).astype(np.int32)
    model = keras.Sequential([
        keras.Input((16,)), BinaryDense(64, binary_input=False),
        keras.layers.BatchNormalization(), BinaryDense(64),
        keras.layers.BatchNormalization(), keras.layers.Dense(2, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    keras.utils.set_random_seed(0)
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    assert history.history["accuracy"][-1] > 0.85
    for layer in [la for la in model.layers if isinstance(la, BinaryDense)]:
        assert np.abs(layer.kernel.numpy()).max() <= 1.0
