"""A stack of small convolutions covering the receptive field of a large one."""

import keras

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.layers import _sublayers as args


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class StackedConv2D(keras.layers.Layer):
    """`n` stride-1 `kernel_size` convolutions in place of one large kernel.

    Three 3x3 convolutions see a 7x7 window, like one 7x7 convolution, with
    fewer parameters (27 C^2 instead of 49 C^2) and a nonlinearity after
    each (Simonyan & Zisserman, "Very Deep Convolutional Networks for
    Large-Scale Image Recognition", 2015). The stack has
    `n = (receptive_field - 1) / (kernel_size - 1)` convolutions; the
    activation follows every one of them, so the layer is a drop-in
    replacement for `Conv2D(filters, receptive_field, activation=...)` with
    the same output shape for either padding.

    Args:
        filters: output channels of every convolution.
        receptive_field: odd side of the window the stack covers.
        kernel_size: odd side of each small kernel, at least 3.
        activation: activation after each convolution.
        padding: `"same"` or `"valid"`.
        use_bias: whether the convolutions have biases.
        kernel_initializer: initializer of every kernel.
        kernel_regularizer: regularizer of every kernel.
        **kwargs: base `Layer` arguments.

    Input shape:
        4D tensor `(batch, height, width, channels)`.

    Output shape:
        4D tensor `(batch, height', width', filters)`, with
        `height' = height` for `"same"` and
        `height - receptive_field + 1` for `"valid"`.
    """

    def __init__(self, filters, receptive_field=7, kernel_size=3,
                 activation="relu", padding="same", use_bias=True,
                 kernel_initializer="he_normal", kernel_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_int("filters", filters, 1)
        if not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError("kernel_size must be an odd integer >= 3. "
                             f"Received: kernel_size={kernel_size!r}")
        if (not isinstance(receptive_field, int) or receptive_field < kernel_size
                or (receptive_field - 1) % (kernel_size - 1)):
            raise ValueError(
                "receptive_field must be kernel_size + k * (kernel_size - 1) "
                "for some k >= 0, so that a stack of kernels covers it "
                f"exactly. Received: receptive_field={receptive_field!r}, "
                f"kernel_size={kernel_size!r}")
        args.check_padding(padding)
        self.filters = filters
        self.receptive_field = receptive_field
        self.kernel_size = kernel_size
        self.padding = padding
        args.set_common(self, activation, use_bias, kernel_initializer,
                        kernel_regularizer)
        self.depth = (receptive_field - 1) // (kernel_size - 1)
        self.convs = [args.conv(self, filters, kernel_size, f"conv{i}",
                                padding=padding, activation=self.activation)
                      for i in range(self.depth)]

    def build(self, input_shape):
        args.build_chain(self.convs, input_shape)

    def call(self, inputs):
        return args.call_chain(self.convs, inputs)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.padding == "valid":
            shrink = self.receptive_field - 1
            height = None if height is None else height - shrink
            width = None if width is None else width - shrink
        return (batch, height, width, self.filters)

    def analysis_graph(self):
        """Structure for `keras_cnnpractice.analysis`: one chain."""
        return {"branches": [self.convs], "merge": None, "post": []}

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters,
                       "receptive_field": self.receptive_field,
                       "kernel_size": self.kernel_size,
                       "padding": self.padding, **args.serialize_common(self)})
        return config
