"""Output sizes and receptive fields of convolution-like layers."""

import math

import keras

from keras_cnnpractice._validate import pair


def conv_output_size(n, f, stride=1, padding=0):
    """Spatial output size of a convolution or pooling: (N - F + 2P) / S + 1.

    Args:
        n: input size N.
        f: filter size F.
        stride: stride S.
        padding: zero padding P per side (int), `"valid"` (P = 0) or
            `"same"` (TensorFlow's: output `ceil(N / S)` for any F).

    Raises:
        ValueError: the filter does not fit, i.e. N + 2P < F, or it does not
            tile the input: (N - F + 2P) is not a multiple of S (the 7x7
            input, 3x3 filter, stride 3 case).
    """
    for name, value in (("n", n), ("f", f), ("stride", stride)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer. Received: "
                             f"{name}={value!r}")
    if padding == "same":
        return math.ceil(n / stride)
    p = 0 if padding == "valid" else padding
    if not isinstance(p, int) or p < 0:
        raise ValueError("padding must be a non-negative int, 'valid' or "
                         f"'same'. Received: padding={padding!r}")
    span = n - f + 2 * p
    if span < 0:
        raise ValueError(f"A {f}x{f} filter does not fit a {n}x{n} input "
                         f"with padding {p}: N - F + 2P = {span} < 0.")
    if span % stride:
        raise ValueError(
            f"A {f}x{f} filter with stride {stride} does not fit a {n}x{n} "
            f"input with padding {p}: (N - F + 2P) / S + 1 = ({n} - {f} + "
            f"{2 * p}) / {stride} + 1 = {span / stride + 1:.2f} is not an "
            "integer.")
    return span // stride + 1


# Layers whose output is a view of their input, or the input itself at
# inference: they add no activation memory.
VIEW_LAYERS = (keras.layers.Flatten, keras.layers.Reshape,
               keras.layers.Dropout, keras.layers.Identity,
               keras.layers.InputLayer)

# Layers that reduce the whole spatial extent: afterwards every unit sees
# the whole input.
GLOBAL_LAYERS = (keras.layers.Flatten, keras.layers.GlobalAveragePooling2D,
                 keras.layers.GlobalMaxPooling2D)


def receptive_field_step(layer, rf, jump, input_shape):
    """The (receptive field, jump) after `layer`, per spatial axis.

    `rf` and `jump` are (height, width) pairs for the layer's input; jump
    is the distance in input pixels between neighbouring units. A kernel k
    with dilation d and stride s gives rf + (k - 1) * d * jump and
    jump * s. Layers without a spatial kernel leave both unchanged.
    """
    if isinstance(layer, GLOBAL_LAYERS) and len(input_shape) == 4:
        size = input_shape[1:3]
        return (tuple(r + (n - 1) * j if n else r
                      for r, j, n in zip(rf, jump, size)), jump)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        k = pair("kernel_size", layer.kernel_size)
        s = pair("strides", layer.strides)
        new_jump = tuple(j / st for j, st in zip(jump, s))
        return (tuple(r + (kk - 1) * j for r, kk, j in zip(rf, k, new_jump)),
                new_jump)
    kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size",
                                                            None)
    if kernel is None or not hasattr(layer, "strides"):
        return rf, jump
    k, s = pair("kernel_size", kernel), pair("strides", layer.strides)
    d = pair("dilation_rate", getattr(layer, "dilation_rate", 1))
    return (tuple(r + (kk - 1) * dd * j for r, kk, dd, j in zip(rf, k, d, jump)),
            tuple(j * st for j, st in zip(jump, s)))
