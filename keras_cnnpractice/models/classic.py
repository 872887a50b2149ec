"""LeNet-5, AlexNet (single tower, as on the lecture's slides) and ZFNet."""

import keras

from keras_cnnpractice.layers import LocalResponseNormalization
from keras_cnnpractice.models.registry import register_model

L = keras.layers


@register_model("lenet5")
def lenet5(input_shape=(32, 32, 1), num_classes=10):
    """LeNet-5 (LeCun et al., "Gradient-Based Learning Applied to Document
    Recognition", 1998): C1 6@5x5, S2 avg-pool, C3 16@5x5 (fully connected,
    not the paper's partial table), S4, C5 120 (a dense layer on the 5x5x16
    map), F6 84, output; tanh. Native input 32x32x1; 28x28 works too."""
    inputs = keras.Input(input_shape, name="image")
    x = L.Conv2D(6, 5, activation="tanh", name="c1")(inputs)
    x = L.AveragePooling2D(2, name="s2")(x)
    x = L.Conv2D(16, 5, activation="tanh", name="c3")(x)
    x = L.AveragePooling2D(2, name="s4")(x)
    x = L.Flatten()(x)
    x = L.Dense(120, activation="tanh", name="c5")(x)
    x = L.Dense(84, activation="tanh", name="f6")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="lenet5")


def _alexnet_like(name, input_shape, num_classes, conv1, conv2, widths,
                  pool_padding, dropout):
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if conv1.get("pad"):
        x = L.ZeroPadding2D(conv1["pad"], name="pad1")(x)
    x = L.Conv2D(96, conv1["size"], strides=conv1["stride"],
                 activation="relu", name="conv1")(x)
    x = L.MaxPooling2D(3, 2, padding=pool_padding, name="pool1")(x)
    x = LocalResponseNormalization(name="norm1")(x)
    x = L.Conv2D(256, 5, strides=conv2["stride"], padding=conv2["padding"],
                 activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(3, 2, padding=pool_padding, name="pool2")(x)
    x = LocalResponseNormalization(name="norm2")(x)
    for i, width in enumerate(widths, start=3):
        x = L.Conv2D(width, 3, padding="same", activation="relu",
                     name=f"conv{i}")(x)
    x = L.MaxPooling2D(3, 2, name="pool3")(x)
    x = L.Flatten()(x)
    for i in (6, 7):
        x = L.Dense(4096, activation="relu", name=f"fc{i}")(x)
        x = L.Dropout(dropout)(x)
    outputs = L.Dense(num_classes, activation="softmax", name="fc8")(x)
    return keras.Model(inputs, outputs, name=name)


@register_model("alexnet")
def alexnet(input_shape=(227, 227, 3), num_classes=1000, dropout=0.5):
    """AlexNet as one tower (Krizhevsky et al., 2012; the lecture's version):
    CONV1 96@11x11/4 -> 55x55x96, POOL1 3x3/2 -> 27x27, NORM1, CONV2
    256@5x5 pad 2, POOL2, NORM2, CONV3 384, CONV4 384, CONV5 256 (3x3 pad
    1), POOL3 -> 6x6x256, FC6 4096, FC7 4096, FC8. Native input 227x227x3;
    the smallest input that fits is 67x67."""
    return _alexnet_like("alexnet", input_shape, num_classes,
                         conv1={"size": 11, "stride": 4},
                         conv2={"stride": 1, "padding": "same"},
                         widths=(384, 384, 256), pool_padding="valid",
                         dropout=dropout)


@register_model("zfnet")
def zfnet(input_shape=(224, 224, 3), num_classes=1000, dropout=0.5):
    """ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional
    Networks", 2014): AlexNet with CONV1 7x7/2 instead of 11x11/4, CONV2
    5x5/2, and CONV3-5 of 512, 1024, 512 filters instead of 384, 384, 256.
    Native input 224x224x3 (110, 55, 26, 13, 6 maps as in the paper); the
    smallest that fits is 64x64."""
    return _alexnet_like("zfnet", input_shape, num_classes,
                         conv1={"size": 7, "stride": 2, "pad": 1},
                         conv2={"stride": 2, "padding": "valid"},
                         widths=(512, 1024, 512), pool_padding="same",
                         dropout=dropout)
