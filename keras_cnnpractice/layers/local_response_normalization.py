"""AlexNet's local response normalization across channels."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class LocalResponseNormalization(keras.layers.Layer):
    """`b_c = a_c / (k + alpha * sum_{|d - c| <= depth_radius} a_d^2)^beta`.

    The NORM layers of AlexNet (Krizhevsky et al., "ImageNet Classification
    with Deep Convolutional Neural Networks", 2012, section 3.3), whose
    defaults are its n = 5 (depth_radius 2), k = 2, alpha = 1e-4,
    beta = 0.75; alpha multiplies the plain sum, as in the paper. No weights.
    Computed with plain ops, so it runs under any dtype policy.

    Input shape:
        `(batch, height, width, channels)`; output has the same shape.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError("depth_radius must be a non-negative integer. "
                             f"Received: depth_radius={depth_radius!r}")
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta

    def call(self, inputs):
        # The channel window as a sum of 2r + 1 shifted slices of the
        # squares: plain ops, so every dtype policy works (TensorFlow's LRN
        # kernel has no bfloat16 or float64 CPU implementation).
        r, channels = self.depth_radius, inputs.shape[-1]
        squares = ops.pad(ops.square(inputs),
                          [[0, 0]] * (len(inputs.shape) - 1) + [[r, r]])
        window = squares[..., :channels]
        for shift in range(1, 2 * r + 1):
            window = window + squares[..., shift:shift + channels]
        return inputs / ops.power(self.bias + self.alpha * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"depth_radius": self.depth_radius, "bias": self.bias,
                       "alpha": self.alpha, "beta": self.beta})
        return config
