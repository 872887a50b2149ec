"""convert_for_inference: binary models onto XNOR-popcount ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.binary_inference import convert_for_inference
from keras_cnnpractice.layers import BinaryDense
from keras_cnnpractice.layers import QuantDense
from keras_cnnpractice.layers import XnorConv2D
from keras_cnnpractice.layers import XnorDense
from keras_cnnpractice.models import create_model

RNG = np.random.default_rng(0)


def _randomize(model):
    """Random latent weights and batch-norm statistics, so the check does
    not pass by accident on the initial values."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([RNG.uniform(0.5, 2, gamma.shape),
                               RNG.normal(size=beta.shape),
                               RNG.normal(size=mean.shape),
                               RNG.uniform(0.5, 2, var.shape)])
        elif layer.weights:
            layer.set_weights([RNG.uniform(-1, 1, w.shape)
                               for w in layer.get_weights()])


@pytest.mark.parametrize("name", ["binary_mlp", "binary_cnn"])
def test_converted_zoo_model_gives_the_same_predictions(name, tmp_path):
    model = create_model(name)
    _randomize(model)
    fast = convert_for_inference(model)
    kinds = [type(layer) for layer in fast.layers]
    # The first layer sees real pixels and stays a float layer.
    assert type(fast.layers[2]) is type(model.layers[2])
    assert kinds.count(XnorDense) + kinds.count(XnorConv2D) >= 3
    x = RNG.uniform(0, 255, (8, 28, 28, 1)).astype("float32")
    want = model.predict(x, verbose=0)
    np.testing.assert_array_equal(fast.predict(x, verbose=0), want)
    # Exported and reloaded (the op library is loaded in this process).
    fast.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(served.serve(x).numpy(), want, atol=1e-6)


def test_xnor_net_scale_and_packed_memory():
    inputs = keras.Input((100,))
    hidden = BinaryDense(64, scale_kernel=True, use_bias=True)(inputs)
    model = keras.Model(inputs, BinaryDense(10, scale_kernel=True)(hidden))
    _randomize(model)
    fast = convert_for_inference(model, word_bits=32)
    x = RNG.normal(size=(16, 100)).astype("float32")
    np.testing.assert_allclose(fast(x), model(x), rtol=1e-5, atol=1e-4)
    packed = fast.layers[1].packed_kernel
    assert packed.shape == (64, 4) and packed.dtype == "int32"
    # 100 x 64 float32 weights -> 64 x 4 words: 25x smaller (32x when the
    # depth is a multiple of 32).
    assert (100 * 64 * 4) / (64 * 4 * 4) == 25


def test_models_without_binary_layers_are_refused():
    inputs = keras.Input((8,))
    fixed = QuantDense(4, input_quantizer="fixed_point",
                       kernel_quantizer="ste_sign")(inputs)
    with pytest.raises(ValueError, match="no binary layer to convert"):
        convert_for_inference(keras.Model(inputs, fixed))
