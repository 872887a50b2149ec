"""Dense with quantized inputs and kernel."""

import keras

from keras_cnnpractice import quantizers


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class QuantDense(keras.layers.Dense):
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
        self.input_quantizer = quantizers.get(input_quantizer)
        self.kernel_quantizer = quantizers.get(kernel_quantizer)

    def call(self, inputs, training=None):
        x, kernel = inputs, self.kernel
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        if self.kernel_quantizer is not None:
            kernel = self.kernel_quantizer(kernel)
        x = keras.ops.matmul(x, kernel)
        if self.bias is not None:
            x = keras.ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_quantizer": quantizers.serialize(self.input_quantizer),
            "kernel_quantizer": quantizers.serialize(self.kernel_quantizer)})
        return config
