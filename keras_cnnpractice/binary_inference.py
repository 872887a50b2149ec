"""Turns a trained binary network into one that runs XNOR-popcount ops.

    from keras_cnnpractice.binary_inference import convert_for_inference
    fast = convert_for_inference(model)          # same outputs as `model`
    fast.export("served")                        # a SavedModel

Every `BinaryDense` / `BinaryConv2D` (or `QuantDense` / `QuantConv2D` whose
input and kernel quantizers are sign functions) becomes an `XnorDense` /
`XnorConv2D` holding the kernel's signs packed 64 to a word (32x less
memory than float32) and computing with `xnor_matmul` / `xnor_conv2d`; an
XNOR-Net kernel scale (`scaled_ste_sign`) becomes the layer's per-channel
scale. Layers that see real-valued inputs (`binary_input=False`, as the
first layer of BinaryNet) and every other layer are copied unchanged.

The SavedModel contains the custom ops, so whoever loads it must first
load the op library: `keras_cnnpractice.custom_ops.load_op_library()` (or
`tf.load_op_library(".../_cnnpractice_ops.so")`, the generic build), then
`tf.saved_model.load(path)`.
"""

import keras
import numpy as np

from keras_cnnpractice import quantizers
from keras_cnnpractice.layers import QuantConv2D
from keras_cnnpractice.layers import QuantDense
from keras_cnnpractice.layers import XnorConv2D
from keras_cnnpractice.layers import XnorDense

_SIGNS = (quantizers.ste_sign, quantizers.approx_sign)


def _is_sign(q):
    return q in _SIGNS or (isinstance(q, (quantizers.SteSign,
                                          quantizers.ApproxSign))
                           and not isinstance(q, quantizers.ScaledSteSign))


def _is_scaled_sign(q):
    return (q is quantizers.scaled_ste_sign
            or isinstance(q, quantizers.ScaledSteSign))


def _convertible(layer):
    """True for a Quant layer computing sign(x) * sign(w) (maybe scaled)."""
    if not isinstance(layer, (QuantDense, QuantConv2D)):
        return False
    if not _is_sign(layer.input_quantizer):
        return False
    if not (_is_sign(layer.kernel_quantizer)
            or _is_scaled_sign(layer.kernel_quantizer)):
        return False
    if isinstance(layer, QuantConv2D):
        return layer.data_format == "channels_last" and layer.groups == 1
    return True


def _xnor_layer(layer, word_bits):
    common = dict(use_scale=_is_scaled_sign(layer.kernel_quantizer),
                  use_bias=layer.use_bias,
                  activation=keras.activations.serialize(layer.activation),
                  word_bits=word_bits, name=layer.name,
                  dtype=layer.dtype_policy)
    if isinstance(layer, QuantDense):
        return XnorDense(layer.units, **common)
    return XnorConv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                      padding=layer.padding, dilation_rate=layer.dilation_rate,
                      **common)


def _load(new, old):
    kernel = keras.ops.convert_to_numpy(old.kernel)
    scale = None
    if new.use_scale:  # XNOR-Net: mean |w| over all axes but the last
        scale = np.mean(np.abs(kernel), axis=tuple(range(kernel.ndim - 1)))
    bias = keras.ops.convert_to_numpy(old.bias) if new.use_bias else None
    new.load_kernel(kernel, scale, bias)


def convert_for_inference(model, word_bits=64):
    """A copy of `model` whose binary layers run XNOR-popcount ops.

    Args:
        model: a built Sequential or functional Keras model.
        word_bits: 32 or 64 bits per packed word.

    Returns:
        The new model (weights copied; the original is untouched). Its
        outputs equal `model`'s: exactly where the binary layers are
        unscaled, to float rounding where an XNOR-Net scale is applied.

    Raises:
        ValueError: a model with no binary layer to convert, or a
            subclassed model (`keras.models.clone_model` cannot swap its
            layers).
    """
    converted = {layer.name for layer in model.layers if _convertible(layer)}
    if not converted:
        raise ValueError(
            "convert_for_inference found no binary layer to convert (a "
            "BinaryDense/BinaryConv2D, or a QuantDense/QuantConv2D with sign "
            f"input and kernel quantizers) in model {model.name!r}")

    def clone(layer):
        if layer.name in converted:
            return _xnor_layer(layer, word_bits)
        return layer.__class__.from_config(layer.get_config())

    new_model = keras.models.clone_model(model, clone_function=clone)
    # clone_model keeps the layers' order and names (not the input
    # layers' names, which hold no weights).
    for old, new in zip(model.layers, new_model.layers):
        if old.name in converted:
            _load(new, old)
        else:
            new.set_weights(old.get_weights())
    return new_model
