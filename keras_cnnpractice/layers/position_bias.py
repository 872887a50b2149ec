"""A learned bias for every position of a flattened board or image."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class PositionBias(keras.layers.Layer):
    """Adds a separate learned bias to each of the `n` inputs of a flat vector.

    The last layer of AlphaGo's policy network is a 1x1 convolution with one
    filter "with a different bias for each location" (Silver et al.,
    "Mastering the game of Go with deep neural networks and tree search",
    2016): flatten the 1-channel map and apply this layer.

    Input shape:
        `(batch, n)`; output has the same shape.
    """

    def __init__(self, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError("PositionBias needs a known last dimension. "
                             f"Received: input_shape={input_shape}")
        self.bias = self.add_weight(shape=(input_shape[-1],), name="bias",
                                    initializer=self.bias_initializer)

    def call(self, inputs):
        return inputs + self.bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["bias_initializer"] = keras.initializers.serialize(
            self.bias_initializer)
        return config
