"""Device placement shared by the model-parallel layers."""

import tensorflow as tf


def check_devices(devices):
    """The device names as a list; ValueError unless a non-empty list of
    strings."""
    if (not isinstance(devices, (list, tuple)) or not devices
            or not all(isinstance(d, str) and d for d in devices)):
        raise ValueError("devices must be a non-empty list of device names "
                         f"such as '/gpu:0'. Received: devices={devices!r}")
    return list(devices)


def on_device(device, fn, *tensors):
    """`fn(*tensors)` (one output tensor), its forward ops and the ops of its
    gradient on `device`.

    `tf.device` pins the forward ops only: `GradientTape` creates gradient
    ops with no device, and TensorFlow's placer puts those on the first
    device, which would run the whole backward pass there. Here an inner
    tape records `fn` and `tf.custom_gradient` takes the gradient from it
    inside `tf.device(device)`, so the backward pass runs where the forward
    pass did; only the gradients of `tensors` and of the trainable variables
    `fn` read leave the device.
    """
    @tf.custom_gradient
    def run(*xs):
        with tf.device(device), tf.GradientTape(persistent=True) as tape:
            tape.watch([x for x in xs if x.dtype.is_floating])
            y = fn(*xs)

        def grad(dy, variables=None):
            with tf.device(device):
                grads = tape.gradient(y, [*xs, *(variables or [])],
                                      output_gradients=dy)
            if variables is None:
                return grads
            return grads[:len(xs)], grads[len(xs):]

        return y, grad

    return run(*tensors)
