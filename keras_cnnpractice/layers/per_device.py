"""PerDevice: one layer run once per device, each on its own part."""

import keras
import tensorflow as tf

from keras_cnnpractice.layers._device import check_devices
from keras_cnnpractice.layers._device import on_device


def _is_list_of_shapes(shape):
    return isinstance(shape, list) and all(
        isinstance(s, (list, tuple)) for s in shape)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class PerDevice(keras.layers.Wrapper):
    """Runs the wrapped layer on each of several devices, on its own part.

    Given one tensor, the layer splits its batch into `len(devices)`
    consecutive slices and runs slice k through the wrapped layer on
    `devices[k]`: data parallelism with the weights shared, so that the
    gradients of the slices add up to the gradient of the whole batch (the
    convolutional trunk of Krizhevsky's "one weird trick", arXiv:1404.5997).
    A batch that does not divide gives slices whose sizes differ by one (a
    last, partial batch in evaluation).

    Given a list of `len(devices)` tensors, it runs tensor k on `devices[k]`
    (an elementwise layer, such as `Dropout`, between
    `ColumnParallelDense` layers, applied to each device's block).

    Each part's forward and backward pass run on its device. The wrapped
    layer's weights live where they were created (the first device, by
    default); TensorFlow copies them to the other devices each step and
    adds the devices' gradients back up beside them.

    Args:
        layer: the layer (or model) to run on every device.
        devices: device names, such as `["/gpu:0", "/gpu:1"]`.
        **kwargs: base layer keyword arguments, such as `name`.

    Input shape:
        One tensor `(batch, ...)`, or a list of `len(devices)` tensors.

    Output shape:
        A list of `len(devices)` tensors: the wrapped layer's output for
        each part.
    """

    def __init__(self, layer, devices, **kwargs):
        super().__init__(layer, **kwargs)
        self.devices = check_devices(devices)
        self.supports_jit = False  # XLA compiles for one device

    def build(self, input_shape=None):
        if _is_list_of_shapes(input_shape):
            if len(input_shape) != len(self.devices):
                raise ValueError(
                    f"PerDevice {self.name!r} got {len(input_shape)} parts "
                    f"for {len(self.devices)} devices. Received: "
                    f"input_shape={input_shape}")
            input_shape = input_shape[0]
        super().build(input_shape)

    def call(self, inputs, training=None):
        if isinstance(inputs, (list, tuple)):
            parts = list(inputs)
        else:
            count = len(self.devices)
            batch = tf.shape(inputs)[0]
            sizes = [(batch + count - 1 - k) // count for k in range(count)]
            parts = tf.split(inputs, tf.stack(sizes), num=count)
        return [on_device(device,
                          lambda x: self.layer(x, training=training), part)
                for device, part in zip(self.devices, parts)]

    def compute_output_shape(self, input_shape):
        if _is_list_of_shapes(input_shape):
            return [self.layer.compute_output_shape(s) for s in input_shape]
        part = (None, *input_shape[1:])
        return [self.layer.compute_output_shape(part)] * len(self.devices)

    def get_config(self):
        config = super().get_config()
        config.update({"devices": self.devices})
        return config
