"""Inference-only binary Conv2D layer running the XNOR-popcount op."""

import keras

from keras_cnnpractice.custom_ops import xnor
from keras_cnnpractice._validate import pair
from keras_cnnpractice.layers._xnor import XnorLayerBase


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class XnorConv2D(XnorLayerBase):
    """`conv2d(sign(x), sign(kernel))` with zero padding, the signs packed
    32 or 64 to a word along the channels and the convolution computed by
    `xnor_conv2d` (XNOR + popcount), then an optional per-filter scale
    (XNOR-Net), bias and activation.

    What `convert_for_inference` turns a trained `BinaryConv2D` (or a
    `QuantConv2D` with sign quantizers) into; its output equals the float
    layer's. NHWC only. Not trainable. Needs the compiled op library
    wherever it runs, including where an exported SavedModel is loaded.

    Args:
        filters: output channels.
        kernel_size, strides, dilation_rate: int or pair.
        padding: `"same"` or `"valid"`.
        use_scale, use_bias, activation, word_bits: as in `XnorDense`.

    Input shape:
        `(batch, height, width, channels)`, binarized by sign.

    Output shape:
        `(batch, new_height, new_width, filters)`.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid",
                 dilation_rate=1, **kwargs):
        super().__init__(filters, **kwargs)
        self.supports_jit = False  # compiled XNOR ops: no XLA kernel
        self.filters = filters
        self.kernel_size = pair("kernel_size", kernel_size)
        self.strides = pair("strides", strides)
        self.dilation_rate = pair("dilation_rate", dilation_rate)
        if str(padding).lower() not in ("same", "valid"):
            raise ValueError("padding must be 'same' or 'valid'. Received: "
                             f"padding={padding!r}")
        self.padding = str(padding).lower()

    def build(self, input_shape):
        self.channels = int(input_shape[-1])
        words = -(-self.channels // self.word_bits)
        self.packed_kernel = self._packed_weight(
            (self.filters, *self.kernel_size, words), "packed_kernel")
        self._build_output()

    def load_kernel(self, kernel, scale=None, bias=None):
        """Packs a float `[kh, kw, channels, filters]` kernel's signs."""
        self.packed_kernel.assign(
            xnor.pack_conv_kernel(kernel, self.word_bits))
        self._load_output(scale, bias)

    def call(self, inputs):
        y = xnor.xnor_conv2d(xnor.bitpack(inputs, word_bits=self.word_bits),
                             self.packed_kernel, self.channels, self.strides,
                             self.padding, self.dilation_rate)
        return self._finish(y)

    def compute_output_shape(self, input_shape):
        spatial = []
        for n, k, s, d in zip(input_shape[1:3], self.kernel_size,
                              self.strides, self.dilation_rate):
            if n is not None and self.padding == "valid":
                n -= (k - 1) * d
            spatial.append(None if n is None else -(-n // s))
        return (input_shape[0], *spatial, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters,
                       "kernel_size": self.kernel_size,
                       "strides": self.strides, "padding": self.padding,
                       "dilation_rate": self.dilation_rate})
        return config
