"""XnorDense and XnorConv2D against numpy sign arithmetic."""

import numpy as np
import pytest

from keras_cnnpractice.layers import XnorConv2D
from keras_cnnpractice.layers import XnorDense
from tests import numpy_reference as ref
from tests.layers.helpers import assert_round_trips

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("word_bits", [32, 64])
def test_xnor_dense_matches_numpy(word_bits):
    x = RNG.normal(size=(2, 3, 70)).astype("float32")
    kernel = RNG.normal(size=(70, 9)).astype("float32")
    scale, bias = RNG.uniform(0.5, 2, 9), RNG.normal(size=9)
    layer = XnorDense(9, use_scale=True, use_bias=True, activation="relu",
                      word_bits=word_bits)
    layer.build(x.shape)
    layer.load_kernel(kernel, scale, bias)
    want = np.maximum((ref.signs(x) @ ref.signs(kernel)) * scale + bias, 0)
    np.testing.assert_allclose(layer(x), want, rtol=1e-6, atol=1e-6)
    assert layer.compute_output_shape((None, 3, 70)) == (None, 3, 9)
    assert not layer.trainable_weights


@pytest.mark.parametrize("padding,strides,dilation", [
    ("same", 1, 1), ("valid", 2, 1), ("same", 2, 2)])
def test_xnor_conv2d_matches_numpy(padding, strides, dilation):
    x = RNG.normal(size=(2, 9, 8, 40)).astype("float32")
    kernel = RNG.normal(size=(3, 3, 40, 6)).astype("float32")
    layer = XnorConv2D(6, 3, strides=strides, padding=padding,
                       dilation_rate=dilation, use_bias=True)
    layer.build(x.shape)
    bias = RNG.normal(size=6)
    layer.load_kernel(kernel, bias=bias)
    want, _, _ = ref.sign_conv2d(x, kernel.transpose(3, 0, 1, 2),
                                 (strides, strides), (dilation, dilation),
                                 padding.upper())
    got = layer(x)
    np.testing.assert_allclose(got, want + bias, rtol=1e-6, atol=1e-5)
    assert layer.compute_output_shape(x.shape) == got.shape


def test_round_trips(tmp_path):
    assert_round_trips(XnorDense(5, use_scale=True, word_bits=32), (33,),
                       tmp_path / "dense")
    assert_round_trips(XnorConv2D(4, (3, 1), padding="same", use_bias=True),
                       (6, 5, 70), tmp_path / "conv")


def test_invalid_arguments():
    with pytest.raises(ValueError, match="word_bits=16"):
        XnorDense(3, word_bits=16)
    with pytest.raises(ValueError, match="padding='causal'"):
        XnorConv2D(3, 3, padding="causal")
