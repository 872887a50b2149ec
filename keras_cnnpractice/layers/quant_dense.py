"""Dense with quantized inputs and kernel."""

import keras

from keras_cnnpractice.layers._quantized import QuantizersMixin


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class QuantDense(QuantizersMixin, keras.layers.Dense):
    """`Dense` that quantizes its input and kernel in the forward pass.

    Full-precision latent kernel, straight-through gradients; see
    `QuantConv2D`.

    Args:
        units: as in `Dense`.
        input_quantizer: applied to the input (`quantizers.get`), or None.
        kernel_quantizer: applied to the kernel, or None.
        **kwargs: every other `Dense` argument.

    Input shape:
        `(batch, ..., features)`.

    Output shape:
        `(batch, ..., units)`.
    """

    def __init__(self, units, input_quantizer=None, kernel_quantizer=None,
                 **kwargs):
        super().__init__(units, **kwargs)
        self._set_quantizers(input_quantizer, kernel_quantizer)

    def call(self, inputs, training=None):
        x = keras.ops.matmul(*self._quantized(inputs, self.kernel))
        if self.bias is not None:
            x = keras.ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x
