"""Layers that run a compiled op of this package (no XLA kernel) say so
(`supports_jit = False`), so `model.compile(jit_compile=True)` warns and
runs them without XLA instead of failing; the others compile under XLA and
compute what they compute without it."""

import warnings

import keras
import numpy as np
import pytest

from keras_cnnpractice import layers as kcp

CASES = {
    "FastConv2D-native": (lambda: kcp.FastConv2D(4, 3, algorithm="native"),
                          True),
    "FastConv2D-fft": (lambda: kcp.FastConv2D(4, 3, algorithm="fft"), True),
    "FastConv2D-im2col": (lambda: kcp.FastConv2D(4, 3, algorithm="im2col"),
                          False),
    "FastConv2D-winograd": (
        lambda: kcp.FastConv2D(4, 3, algorithm="winograd"), False),
    "FastConv2D-auto": (lambda: kcp.FastConv2D(4, 3), False),
    "QuantConv2D-ste_sign": (
        lambda: kcp.QuantConv2D(4, 3, kernel_quantizer="ste_sign"), True),
    "QuantConv2D-fixed_point": (
        lambda: kcp.QuantConv2D(4, 3, kernel_quantizer="fixed_point"),
        False),
    "BinaryConv2D": (lambda: kcp.BinaryConv2D(4, 3), True),
    "XnorConv2D": (lambda: kcp.XnorConv2D(4, 3), False),
    "XnorDense": (lambda: kcp.XnorDense(4), False),
    "QuantDense-fixed_point": (
        lambda: kcp.QuantDense(4, input_quantizer="fixed_point"), False),
}


def _model(layer):
    inputs = keras.Input((8, 8, 3))
    x = layer(inputs if "Dense" not in type(layer).__name__
              else keras.layers.Flatten()(inputs))
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


@pytest.mark.parametrize("name", CASES)
def test_jit_compile_true_works_or_falls_back(name):
    make, jit = CASES[name]
    layer = make()
    assert layer.supports_jit is jit
    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    keras.utils.set_random_seed(0)
    model = _model(layer)
    eager = model.predict(x, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile("sgd", "mse", jit_compile=True)
    assert model.jit_compile is jit
    assert jit or any("jit_compile" in str(w.message) for w in caught)
    np.testing.assert_allclose(model.predict(x, verbose=0), eager,
                               rtol=1e-4, atol=1e-4)
    history = model.fit(x, np.zeros((4, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
