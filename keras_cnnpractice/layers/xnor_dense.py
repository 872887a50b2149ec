"""Inference-only binary Dense layer running the XNOR-popcount op."""

import keras
import tensorflow as tf

from keras_cnnpractice.custom_ops import xnor
from keras_cnnpractice.layers._xnor import XnorLayerBase


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class XnorDense(XnorLayerBase):
    """`sign(x) @ sign(kernel)`, with the signs packed 32 or 64 to a word and
    the product computed by `xnor_matmul` (XNOR + popcount), then an
    optional per-unit scale (XNOR-Net), bias and activation.

    What `convert_for_inference` turns a trained `BinaryDense` (or a
    `QuantDense` with sign quantizers) into; its output equals the float
    layer's. Not trainable. Needs the compiled op library wherever it runs,
    including where an exported SavedModel is loaded.

    Args:
        units: output units.
        use_scale: multiply by a per-unit scale.
        use_bias: add a bias.
        activation: applied last.
        word_bits: 32 or 64 bits per packed word.

    Input shape:
        `(..., depth)`, binarized by sign (0 counts as +1).

    Output shape:
        `(..., units)`.
    """

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.supports_jit = False  # compiled XNOR ops: no XLA kernel
        self.units = units

    def build(self, input_shape):
        self.depth = int(input_shape[-1])
        words = -(-self.depth // self.word_bits)
        self.packed_kernel = self._packed_weight((self.units, words),
                                                 "packed_kernel")
        self._build_output()

    def load_kernel(self, kernel, scale=None, bias=None):
        """Packs a float `[depth, units]` kernel's signs into the layer."""
        self.packed_kernel.assign(
            xnor.pack_dense_kernel(kernel, self.word_bits))
        self._load_output(scale, bias)

    def call(self, inputs):
        flat = tf.reshape(inputs, [-1, self.depth])
        y = xnor.xnor_matmul(xnor.bitpack(flat, word_bits=self.word_bits),
                             self.packed_kernel, self.depth)
        y = tf.reshape(y, tf.concat([tf.shape(inputs)[:-1], [self.units]], 0))
        return self._finish(y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config
