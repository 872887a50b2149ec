"""Quantizers: values and straight-through gradients against numpy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice import quantizers
from tests import numpy_reference as ref

X = np.array([-2.5, -1.0, -0.6, -0.0, 0.0, 0.3, 1.0, 1.7], np.float32)


def _value_and_grad(fn, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y.numpy(), tape.gradient(y, x, output_gradients=tf.fill(x.shape, 2.0)).numpy()


def test_ste_sign():
    y, g = _value_and_grad(quantizers.ste_sign, X)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(g, 2.0 * (np.abs(X) <= 1.0))
    _, g = _value_and_grad(lambda t: quantizers.ste_sign(t, clip_value=None), X)
    np.testing.assert_array_equal(g, np.full_like(X, 2.0))


def test_approx_sign():
    y, g = _value_and_grad(quantizers.approx_sign, X)
    np.testing.assert_array_equal(y, np.where(X >= 0, 1.0, -1.0))
    np.testing.assert_allclose(g, 2.0 * np.maximum(0, 2 - 2 * np.abs(X)), rtol=1e-6)


def test_fixed_point_uses_the_compiled_op():
    x = np.random.default_rng(0).uniform(-3, 3, 1000).astype(np.float32)
    got = quantizers.fixed_point(x, 10, 6, seed=(4, 5)).numpy()
    want = ref.fixed_point(x, 10, 6, "stochastic", ref.uniforms(x.size, 4, 5))
    np.testing.assert_array_equal(got, want.astype(np.float32))
    _, g = _value_and_grad(lambda t: quantizers.fixed_point(t, 4, 1), X)
    np.testing.assert_array_equal(g, 2.0 * ((X >= -4) & (X <= 3.5)))


@pytest.mark.parametrize("scale", [1e-3, 0.7, 5.0, 300.0])
def test_dynamic_fixed_point_places_the_binary_point(scale):
    x = np.random.default_rng(1).normal(size=500).astype(np.float32) * scale
    got = quantizers.dynamic_fixed_point(x, 8).numpy()
    e = np.ceil(np.log2(np.abs(x).max()))
    step = 2.0 ** (e - 7)
    want = np.clip(np.round(x / step), -128, 127) * step
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    assert np.all(quantizers.dynamic_fixed_point(np.zeros(4, np.float32)) == 0)


def test_dynamic_fixed_point_gradient_is_straight_through():
    x = np.array([0.1, -0.4, 0.25], np.float32)  # max 0.4 -> no saturation
    _, g = _value_and_grad(lambda t: quantizers.dynamic_fixed_point(t, 8), x)
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])


def test_get_and_serialization():
    assert quantizers.get(None) is None
    assert isinstance(quantizers.get("ste_sign"), quantizers.SteSign)
    fp = quantizers.FixedPoint(12, 8, "nearest")
    assert quantizers.get(fp) is fp
    clone = quantizers.get(quantizers.serialize(fp))
    assert isinstance(clone, quantizers.FixedPoint)
    assert clone.get_config() == {"word_bits": 12, "frac_bits": 8,
                                  "rounding": "nearest"}
    np.testing.assert_array_equal(clone(X).numpy(),
                                  ref.fixed_point(X, 12, 8, "nearest"))
    for cls in (quantizers.SteSign, quantizers.ApproxSign,
                quantizers.DynamicFixedPoint):
        obj = cls()
        again = quantizers.get(quantizers.serialize(obj))
        assert type(again) is cls and again.get_config() == obj.get_config()
    fn = lambda t: t  # noqa: E731
    assert quantizers.get(fn) is fn


@pytest.mark.parametrize("bad, message", [
    ("sign", "Unknown quantizer 'sign'"), (3, "Cannot interpret 3")])
def test_get_rejects(bad, message):
    with pytest.raises(ValueError, match=message):
        quantizers.get(bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="clip_value=0"):
        quantizers.SteSign(clip_value=0)
    with pytest.raises(ValueError, match="rounding='up'"):
        quantizers.FixedPoint(rounding="up")
    with pytest.raises(tf.errors.InvalidArgumentError, match="word_bits=30"):
        quantizers.FixedPoint(word_bits=30)(tf.ones(3))
