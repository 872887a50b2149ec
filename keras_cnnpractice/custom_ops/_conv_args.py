"""Argument handling shared by the convolution ops' Python wrappers."""

import tensorflow as tf


def pair(value, name):
    """`(value, value)` for an int, else `tuple(value)` of length 2."""
    both = (value, value) if isinstance(value, int) else tuple(value)
    if len(both) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints. "
                         f"Received: {name}={value!r}")
    return both


def conv_attrs(strides, padding, dilations):
    """The NHWC `strides`, `padding` and `dilations` attrs of a conv op."""
    sh, sw = pair(strides, "strides")
    dh, dw = pair(dilations, "dilations")
    return dict(strides=[1, sh, sw, 1], padding=str(padding).upper(),
                dilations=[1, dh, dw, 1])


def float32_operand(value, name, op):
    """`value` as a float32 tensor; ValueError naming any other dtype."""
    value = tf.convert_to_tensor(value, dtype_hint=tf.float32)
    if value.dtype != tf.float32:
        raise ValueError(f"{op} computes in float32; cast the operands first. "
                         f"Received: {name}.dtype={value.dtype.name}")
    return value
