"""Conv2D with quantized inputs and kernel."""

import keras

from keras_cnnpractice.layers._quantized import QuantizersMixin


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class QuantConv2D(QuantizersMixin, keras.layers.Conv2D):
    """`Conv2D` that quantizes its input and kernel in the forward pass.

    The kernel variable stays full precision (the "latent" weights the
    optimizer updates); the quantizers' straight-through gradients carry the
    updates back to it. In larq's spirit (`larq.layers.QuantConv2D`).

    Args:
        filters, kernel_size: as in `Conv2D`.
        input_quantizer: applied to the input; a name, dict, `Quantizer` or
            callable (`keras_cnnpractice.quantizers.get`), or None.
        kernel_quantizer: applied to the kernel, likewise.
        **kwargs: every other `Conv2D` argument, e.g.
            `kernel_constraint=WeightClip(1.0)` for latent binary weights.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        as `Conv2D`.
    """

    def __init__(self, filters, kernel_size, input_quantizer=None,
                 kernel_quantizer=None, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self._set_quantizers(input_quantizer, kernel_quantizer)

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(*self._quantized(inputs, kernel))
