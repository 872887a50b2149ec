"""BinaryNet's binary convolution."""

import keras

from keras_cnnpractice.layers._quantized import BinaryPresetsMixin
from keras_cnnpractice.layers.quant_conv2d import QuantConv2D


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class BinaryConv2D(BinaryPresetsMixin, QuantConv2D):
    """`QuantConv2D` preset for binary networks: sign activations and sign
    weights (straight-through, gradient cut where |x| > 1), latent weights
    clipped to [-1, 1], no bias (a BatchNormalization follows in BinaryNet;
    Courbariaux, Hubara et al., "Binarized Neural Networks", 2016).

    Args:
        filters, kernel_size: as in `Conv2D`.
        scale_kernel: multiply the binary kernel by the mean |w| of each
            output channel (XNOR-Net, Rastegari et al. 2016).
        binary_input: binarize the input too (False for a first layer that
            sees real-valued pixels).
        **kwargs: other `QuantConv2D` / `Conv2D` arguments; explicit
            quantizers or constraints given here win over the presets.
    """

    def __init__(self, filters, kernel_size, scale_kernel=False,
                 binary_input=True, **kwargs):
        super().__init__(filters, kernel_size, **self._presets(
            kwargs, scale_kernel, binary_input))
        self.scale_kernel = scale_kernel
        self.binary_input = binary_input
