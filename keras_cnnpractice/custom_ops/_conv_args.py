"""Argument handling shared by the convolution ops' Python wrappers."""

import tensorflow as tf

from keras_cnnpractice._validate import pair


def conv_attrs(strides, padding, dilations):
    """The NHWC `strides`, `padding` and `dilations` attrs of a conv op."""
    sh, sw = pair("strides", strides)
    dh, dw = pair("dilations", dilations)
    return dict(strides=[1, sh, sw, 1], padding=str(padding).upper(),
                dilations=[1, dh, dw, 1])


def float32_operand(value, name, op, error=ValueError):
    """`value` as a float32 tensor; `error` naming any other dtype.

    Values with a dtype of their own (tensors, variables, numpy arrays and
    scalars) must be float32 already: a float64 numpy array is refused as a
    float64 tensor is, never cast behind the caller's back. Python numbers
    and lists become float32.

    Args:
        value: the operand.
        name: its argument name, for the message.
        op: the op's name, for the message.
        error: the exception class (`ValueError`, or a `tf.errors.OpError`
            such as `tf.errors.InvalidArgumentError`).
    """
    if getattr(value, "dtype", None) is None:
        value = tf.convert_to_tensor(value, dtype_hint=tf.float32)
    else:
        value = tf.convert_to_tensor(value)
    if value.dtype != tf.float32:
        message = (f"{op} computes in float32; cast the operands first. "
                   f"Received: {name}.dtype={value.dtype.name}")
        if issubclass(error, tf.errors.OpError):
            raise error(None, None, message)
        raise error(message)
    return value
