"""export_saved_model: complete, replaces atomically, serves the model."""

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice.training import export_saved_model


def _model(bias):
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, kernel_initializer="ones",
                               bias_initializer=keras.initializers.Constant(bias))
    return keras.Model(inputs, dense(inputs))


def test_export_then_replace(tmp_path):
    target = tmp_path / "export"
    x = np.ones((1, 3), np.float32)
    export_saved_model(_model(0.0), target)
    first = tf.saved_model.load(str(target))
    np.testing.assert_allclose(first.serve(x), [[3, 3]])
    export_saved_model(_model(1.0), target)  # replaces the previous export
    second = tf.saved_model.load(str(target))
    np.testing.assert_allclose(second.serve(x), [[4, 4]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_augmentation_and_dropout_are_inactive_in_the_export(tmp_path):
    # Keras's own model.export() would serve these layers in training mode:
    # their `training` argument defaults to True.
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.RandomFlip("horizontal", seed=1)(inputs)
    outputs = keras.layers.Dropout(0.5, seed=1)(x)
    export_saved_model(keras.Model(inputs, outputs), tmp_path / "export")
    served = tf.saved_model.load(str(tmp_path / "export"))
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 3))
    for _ in range(3):
        np.testing.assert_array_equal(served.serve(images.astype("float32")),
                                      images.astype("float32"))
