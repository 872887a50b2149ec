"""A 1xN convolution followed by an Nx1 one."""

import keras

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.layers import _sublayers as args


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class AsymmetricConv2D(keras.layers.Layer):
    """A 1xN then an Nx1 convolution: an NxN receptive field for 2N C^2
    weights instead of N^2 C^2 (6 C^2 against 9 C^2 for N = 3).

    Szegedy et al., "Rethinking the Inception Architecture for Computer
    Vision", 2016, section 3.2. The activation follows both convolutions.

    Args:
        filters: output channels of both convolutions.
        kernel_size: N, at least 2.
        activation: activation after each convolution.
        padding: `"same"` or `"valid"`.
        use_bias, kernel_initializer, kernel_regularizer: as in `Conv2D`.
        **kwargs: base `Layer` arguments.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, height', width', filters)`; `height' = height` for
        `"same"`, `height - N + 1` for `"valid"`.
    """

    def __init__(self, filters, kernel_size=3, activation="relu",
                 padding="same", use_bias=True, kernel_initializer="he_normal",
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        check_int("filters", filters, 1)
        if not isinstance(kernel_size, int) or kernel_size < 2:
            raise ValueError("kernel_size must be an integer >= 2. Received: "
                             f"kernel_size={kernel_size!r}")
        args.check_padding(padding)
        self.filters = filters
        self.kernel_size = kernel_size
        self.padding = padding
        args.set_common(self, activation, use_bias, kernel_initializer,
                        kernel_regularizer)
        self.convs = [
            args.conv(self, filters, (1, kernel_size), "conv1xn",
                      padding=padding, activation=self.activation),
            args.conv(self, filters, (kernel_size, 1), "convnx1",
                      padding=padding, activation=self.activation),
        ]

    def build(self, input_shape):
        args.build_chain(self.convs, input_shape)

    def call(self, inputs):
        return args.call_chain(self.convs, inputs)

    def compute_output_shape(self, input_shape):
        return self.convs[1].compute_output_shape(
            self.convs[0].compute_output_shape(input_shape))

    def analysis_graph(self):
        """Structure for `keras_cnnpractice.analysis`: one chain."""
        return {"branches": [self.convs], "merge": None, "post": []}

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters,
                       "kernel_size": self.kernel_size,
                       "padding": self.padding, **args.serialize_common(self)})
        return config
