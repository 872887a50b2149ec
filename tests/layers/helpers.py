"""Helpers shared by the layer and analyzer tests."""

import keras
import numpy as np


def assert_round_trips(layer, input_shape, tmp_path):
    """get_config/from_config gives the same config, and a model holding
    `layer` saved to .keras and loaded back computes the same outputs."""
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False),
                               model(x, training=False), atol=1e-5)
    assert isinstance(loaded.get_layer(layer.name), type(layer))


def gradient_support(fn, image):
    """Rows/cols (min, max) of the input pixels that the centre output of
    `fn(image)` depends on: the receptive field, measured by autodiff."""
    import tensorflow as tf
    image = tf.convert_to_tensor(image)
    with tf.GradientTape() as tape:
        tape.watch(image)
        out = fn(image)
        centre = out[0, out.shape[1] // 2, out.shape[2] // 2, 0]
    support = np.argwhere(tape.gradient(centre, image).numpy()[0, :, :, 0] != 0)
    return support.min(axis=0).tolist(), support.max(axis=0).tolist()
