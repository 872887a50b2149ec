"""Round-trip helper shared by the layer tests."""

import keras
import numpy as np


def assert_round_trips(layer, input_shape, tmp_path):
    """get_config/from_config gives the same config, and a model holding
    `layer` saved to .keras and loaded back computes the same outputs."""
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input(input_shape)
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, *input_shape)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)
    assert isinstance(loaded.get_layer(layer.name), type(layer))
