"""The BinaryNet presets shared by BinaryConv2D and BinaryDense."""

from keras_cnnpractice.constraints import WeightClip


def binary_presets(kwargs, scale_kernel, binary_input):
    """Fills `kwargs` with the binary defaults the caller did not set: sign
    input (if `binary_input`), sign (or XNOR-scaled sign) kernel, latent
    weights clipped to [-1, 1], no bias."""
    kwargs.setdefault("input_quantizer", "ste_sign" if binary_input else None)
    kwargs.setdefault("kernel_quantizer",
                      "scaled_ste_sign" if scale_kernel else "ste_sign")
    kwargs.setdefault("kernel_constraint", WeightClip(1.0))
    kwargs.setdefault("use_bias", False)
    return kwargs
