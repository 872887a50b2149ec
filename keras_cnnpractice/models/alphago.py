"""AlphaGo's policy network (Silver et al., "Mastering the game of Go with
deep neural networks and tree search", Nature 2016, Methods)."""

import keras

from keras_cnnpractice.layers import PositionBias
from keras_cnnpractice.models.registry import register_model

L = keras.layers


@register_model("alphago_policy")
def alphago_policy(input_shape=(19, 19, 48), num_classes=None, filters=192,
                   depth=13):
    """19x19x48 feature planes; a 5x5 convolution with `filters` filters
    (zero-padded, so 19x19 is kept), `depth - 2` 3x3 convolutions with
    `filters` filters, all ReLU; a final 1x1 convolution with one filter and
    a separate bias per board point, and a softmax over the points.

    `num_classes` must be None or the number of board points (H x W).
    """
    points = input_shape[0] * input_shape[1]
    if num_classes not in (None, points):
        raise ValueError(f"The policy network predicts one of the {points} "
                         f"board points. Received: num_classes={num_classes}")
    if depth < 2:
        raise ValueError(f"depth must be >= 2. Received: depth={depth}")
    inputs = keras.Input(input_shape, name="planes")
    x = L.Conv2D(filters, 5, padding="same", activation="relu", name="conv1")(inputs)
    for i in range(2, depth):
        x = L.Conv2D(filters, 3, padding="same", activation="relu",
                     name=f"conv{i}")(x)
    x = L.Conv2D(1, 1, use_bias=False, name=f"conv{depth}")(x)
    x = L.Flatten()(x)
    x = PositionBias(name="position_bias")(x)
    outputs = L.Activation("softmax", name="move")(x)
    return keras.Model(inputs, outputs, name="alphago_policy")
