"""ColumnParallelDense: a Dense layer split column-wise over devices."""

import keras
import tensorflow as tf

from keras_cnnpractice._validate import check_int
from keras_cnnpractice.layers._device import check_devices
from keras_cnnpractice.layers._device import on_device

INPUT_SPLITS = ("batch", "features")
# Activations that mix the units of a row: applied after the gather.
ROW_WISE_ACTIVATIONS = ("softmax", "log_softmax", "sparsemax")


def check_width(name, units, num_devices):
    """ValueError unless `num_devices` devices can share `units` columns."""
    if units % num_devices:
        raise ValueError(
            f"Layer {name!r}: units must divide by the number of devices "
            f"that share its columns. Received: units={units}, "
            f"num_devices={num_devices}")


def is_row_wise(activation):
    """Whether a Keras activation mixes the units of a row (softmax, ...)."""
    return (keras.activations.serialize(keras.activations.get(activation))
            in ROW_WISE_ACTIVATIONS)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class ColumnParallelDense(keras.layers.Layer):
    """A `Dense` layer whose kernel and bias are split column-wise over
    devices: the model-parallel fully connected layers of Krizhevsky's "one
    weird trick" (arXiv:1404.5997).

    With K devices, device k holds the kernel's columns
    `[k * units / K, (k + 1) * units / K)` and the same slice of the bias,
    1/K of the layer's weights. The layer's input comes as K parts, part k
    on device k: batch slices (`input_split="batch"`, from a data-parallel
    trunk, see `PerDevice`) or column blocks (`input_split="features"`,
    from a previous `ColumnParallelDense`). Every device first gathers all
    the parts (the whole batch with all its features), then computes its
    block of units for the whole batch; the output is the K blocks, block k
    on device k. Forward and backward passes of each block run on its
    device; the weight gradients never leave it.

    The shards are initialized together, as one `Dense` kernel of shape
    `(input features, units)` would be, then split.

    Args:
        units: output features; must divide by `len(devices)`.
        devices: device names, such as `["/gpu:0", "/gpu:1"]`.
        input_split: "batch" or "features", as above.
        activation: an elementwise activation, applied on each device to
            its block; a row-wise one (softmax, ...) must be applied after
            concatenating the blocks.
        use_bias: whether to add a bias.
        kernel_initializer, bias_initializer: as for `Dense`.
        **kwargs: base layer keyword arguments, such as `name`.

    Input shape:
        A list of `len(devices)` 2-D tensors: `(batch_k, features)` for
        "batch", `(batch, features_k)` for "features".

    Output shape:
        A list of `len(devices)` tensors `(batch, units / len(devices))`;
        their concatenation along the last axis is the layer's output.
    """

    def __init__(self, units, devices, input_split="batch", activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        check_int("units", units, 1)
        self.devices = check_devices(devices)
        check_width(self.name, units, len(self.devices))
        if input_split not in INPUT_SPLITS:
            raise ValueError(f"input_split must be one of {INPUT_SPLITS}. "
                             f"Received: input_split={input_split!r}")
        if is_row_wise(activation):
            raise ValueError(
                "activation must be elementwise; apply a row-wise one after "
                "concatenating the blocks. Received: activation="
                f"{keras.activations.serialize(keras.activations.get(activation))!r}")
        self.units = units
        self.input_split = input_split
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_jit = False  # XLA compiles for one device

    def build(self, input_shape):
        if (not isinstance(input_shape, list)
                or len(input_shape) != len(self.devices)):
            raise ValueError(
                f"Layer {self.name!r} takes a list of {len(self.devices)} "
                f"parts, one per device. Received: input_shape={input_shape}")
        if self.input_split == "batch":
            features = input_shape[0][-1]
        else:
            features = sum(shape[-1] for shape in input_shape)
        width = self.units // len(self.devices)
        kernel = self.kernel_initializer((features, self.units),
                                         dtype=self.variable_dtype)
        bias = self.bias_initializer((self.units,), dtype=self.variable_dtype)
        self.kernels, self.biases = [], []
        for k, device in enumerate(self.devices):
            columns = slice(k * width, (k + 1) * width)
            with tf.device(device):
                self.kernels.append(self.add_weight(
                    shape=(features, width), name="kernel",
                    initializer=lambda shape, dtype, v=kernel[:, columns]: v))
                if self.use_bias:
                    self.biases.append(self.add_weight(
                        shape=(width,), name="bias",
                        initializer=lambda shape, dtype, v=bias[columns]: v))

    def _block(self, k):
        axis = 0 if self.input_split == "batch" else -1

        def block(*parts):
            outputs = keras.ops.matmul(keras.ops.concatenate(parts, axis),
                                       self.kernels[k])
            if self.use_bias:
                outputs = outputs + self.biases[k]
            return self.activation(outputs)

        return block

    def call(self, inputs):
        return [on_device(device, self._block(k), *inputs)
                for k, device in enumerate(self.devices)]

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        if self.input_split == "batch":
            sizes = [shape[0] for shape in input_shape]
            batch = None if None in sizes else sum(sizes)
        return [(batch, self.units // len(self.devices))] * len(self.devices)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "devices": self.devices,
            "input_split": self.input_split,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer":
                keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer":
                keras.initializers.serialize(self.bias_initializer),
        })
        return config
