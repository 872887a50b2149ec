"""A small CNN for digits, built from stacks of 3x3 convolutions."""

import keras

from keras_cnnpractice.layers import StackedConv2D
from keras_cnnpractice.models.registry import register_model


@register_model("mnist_cnn")
def mnist_cnn(input_shape=(28, 28, 1), num_classes=10, dropout=0.4):
    """Two 5x5-receptive-field stages (each two 3x3 convs), then a classifier.

    Takes raw pixel values in [0, 255] (it rescales them itself, so an
    exported model serves raw images) and returns class probabilities.
    """
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = StackedConv2D(32, receptive_field=5, name="stage1")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = StackedConv2D(64, receptive_field=5, name="stage2")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(128, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    # Under a mixed policy the softmax runs in float32, as Keras advises.
    mixed = keras.config.dtype_policy().name.startswith("mixed")
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 dtype="float32" if mixed else None,
                                 name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")
