"""BinaryNet's binary fully connected layer."""

import keras

from keras_cnnpractice.layers._quantized import BinaryPresetsMixin
from keras_cnnpractice.layers.quant_dense import QuantDense


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class BinaryDense(BinaryPresetsMixin, QuantDense):
    """`QuantDense` preset for binary networks; see `BinaryConv2D`.

    Args:
        units: as in `Dense`.
        scale_kernel: XNOR-Net per-output scaling of the binary kernel.
        binary_input: binarize the input too.
        **kwargs: other `QuantDense` / `Dense` arguments (they win over the
            presets).
    """

    def __init__(self, units, scale_kernel=False, binary_input=True, **kwargs):
        super().__init__(units, **self._presets(
            kwargs, scale_kernel, binary_input))
        self.scale_kernel = scale_kernel
        self.binary_input = binary_input
