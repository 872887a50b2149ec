"""BinaryNet's MLP and CNN for digits, and their float counterparts.

Courbariaux, Hubara et al., "Binarized Neural Networks" (2016): every hidden
layer has binary (+-1) weights and takes binary activations, the sign of the
previous layer's batch-normalized output; the first layer sees real-valued
pixels. The float counterparts have the same shapes with float weights and
ReLU activations. Scaled down from the paper (3x4096 hidden units, 6 conv
layers up to 512 channels) to train on the bundled 4,000 digits on a CPU.
"""

import keras

from keras_cnnpractice.layers import BinaryConv2D
from keras_cnnpractice.layers import BinaryDense
from keras_cnnpractice.models.registry import register_model


def _block(layer, binary):
    """Layer, batch norm, then ReLU for a float net; a binary net's sign
    activation is the next binary layer's input quantizer."""
    def apply(x):
        x = keras.layers.BatchNormalization(momentum=0.9)(layer(x))
        return x if binary else keras.layers.ReLU()(x)
    return apply


def _dense(units, binary, first=False):
    if binary:
        return BinaryDense(units, binary_input=not first)
    return keras.layers.Dense(units, use_bias=False)


def _conv(filters, binary, first=False):
    if binary:
        return BinaryConv2D(filters, 3, padding="same",
                            binary_input=not first)
    return keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)


def _head(x, num_classes, binary):
    # Scores from a final batch norm, as BinaryNet; float32 softmax under a
    # mixed policy.
    x = keras.layers.BatchNormalization(momentum=0.9)(
        _dense(num_classes, binary)(x))
    mixed = keras.config.dtype_policy().name.startswith("mixed")
    return keras.layers.Activation("softmax", name="probabilities",
                                   dtype="float32" if mixed else None)(x)


def binarynet_mlp(input_shape=(28, 28, 1), num_classes=10, binary=True,
                  units=1024, hidden_layers=3):
    """BinaryNet's MNIST MLP: `hidden_layers` x `units`, batch norm after
    each; raw pixels in [0, 255] are rescaled to [-1, 1]."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Flatten()(x)
    for i in range(hidden_layers):
        x = _block(_dense(units, binary, first=i == 0), binary)(x)
    name = "binary_mlp" if binary else "float_mlp"
    return keras.Model(inputs, _head(x, num_classes, binary), name=name)


def binarynet_cnn(input_shape=(28, 28, 1), num_classes=10, binary=True):
    """BinaryNet's CIFAR-10 ConvNet pattern, scaled down: 2x(64 3x3),
    pool, 2x(128 3x3), pool, dense 256, then the classifier; batch norm
    after every layer (after the pooling where there is one)."""
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    for stage, filters in enumerate((64, 128)):
        x = _block(_conv(filters, binary, first=stage == 0), binary)(x)
        conv = _conv(filters, binary)
        x = keras.layers.MaxPooling2D()(conv(x))
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        if not binary:
            x = keras.layers.ReLU()(x)
    x = keras.layers.Flatten()(x)
    x = _block(_dense(256, binary), binary)(x)
    name = "binary_cnn" if binary else "float_cnn"
    return keras.Model(inputs, _head(x, num_classes, binary), name=name)


register_model("binary_mlp")(binarynet_mlp)
register_model("binary_cnn")(binarynet_cnn)


@register_model("float_mlp")
def float_mlp(input_shape=(28, 28, 1), num_classes=10):
    """`binarynet_mlp` with float weights and ReLU activations."""
    return binarynet_mlp(input_shape, num_classes, binary=False)


@register_model("float_cnn")
def float_cnn(input_shape=(28, 28, 1), num_classes=10):
    """`binarynet_cnn` with float weights and ReLU activations."""
    return binarynet_cnn(input_shape, num_classes, binary=False)
