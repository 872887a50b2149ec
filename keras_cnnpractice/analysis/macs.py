"""Multiply-adds of the layers that do them."""

import math

import keras


def multiply_adds(layer, input_shape, output_shape):
    """Multiply-adds per image of one (leaf) layer; 0 for layers without
    weights to multiply by (pooling, normalization, activations)."""
    if not output_shape or any(n is None for n in output_shape[1:]):
        return 0
    out_positions = math.prod(output_shape[1:-1]) if len(output_shape) > 2 else 1
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        cin = input_shape[-1]
        depthwise = out_positions * cin * layer.depth_multiplier * kh * kw
        return depthwise + out_positions * cin * layer.depth_multiplier * layer.filters
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return out_positions * input_shape[-1] * layer.depth_multiplier * kh * kw
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        in_positions = math.prod(input_shape[1:-1])
        return in_positions * input_shape[-1] * kh * kw * layer.filters
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return (out_positions * layer.filters * kh * kw * input_shape[-1]
                // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        return out_positions * input_shape[-1] * layer.units
    return 0
