"""Conv2D computed by im2col, FFT or Winograd, or the fastest of them."""

import contextlib
import contextvars

import keras
import numpy as np
from absl import logging

from keras_cnnpractice._validate import check_bool
from keras_cnnpractice.custom_ops import conv_algorithms
from keras_cnnpractice.custom_ops import conv_autotune

_AUTO = "auto"
_PORTABLE_EXPORT = contextvars.ContextVar("kcp_portable_export",
                                          default=False)


@contextlib.contextmanager
def portable_export():
    """Within this block, `FastConv2D(portable=True)` layers trace
    TensorFlow's own convolution instead of the custom op, so a model
    exported here (`model.export`, `keras.export.ExportArchive`,
    `tf.saved_model.save`) serves anywhere without the op library.

    `keras_cnnpractice.training.export_saved_model` (what `kcp-train`
    exports with) exports inside it. Outside it, an export traces what
    training does: the chosen algorithm, which needs the op library
    wherever the SavedModel is loaded.

        with portable_export():
            model.export("served")
    """
    token = _PORTABLE_EXPORT.set(True)
    try:
        yield
    finally:
        _PORTABLE_EXPORT.reset(token)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class FastConv2D(keras.layers.Conv2D):
    """`Conv2D` computed by a chosen algorithm: im2col + GEMM, FFT, Winograd
    F(2x2, 3x3), F(4x4, 3x3) or F(6x6, 3x3), TensorFlow's own, or the
    fastest of them.

    A drop-in for `keras.layers.Conv2D`: the same weights (`kernel`
    `[kh, kw, in, filters]`, `bias` `[filters]`) in the same order, so
    `get_weights()` / `set_weights()` move them between the two either way.
    Two differences: `padding` defaults to `"same"`, and only
    `data_format="channels_last"` and `groups=1` are accepted.

    `algorithm="auto"` chooses per input shape: when the layer is built with
    known height, width and channels, and then for every new input shape it
    is called on, `conv_autotune.choose_algorithm` times each algorithm that
    can compute the convolution, followed by this layer's bias and
    activation, on random data of that shape (an unknown batch at batches 1
    and 8), keeps those within a tolerance of a float64 numpy direct
    convolution, and takes TensorFlow's own unless another is at least 10 %
    faster at every batch measured, so that a network converted to
    `FastConv2D` (`keras_cnnpractice.fast_conv_models.with_fast_conv2d`) is
    not slower than the original. Results are
    cached on disk per shape and machine (`~/.cache/keras_cnnpractice/
    conv_algorithms.json`, or `$KCP_CONV_CACHE`), so another layer, model or
    process with the same shape does not measure again. `chosen_algorithm`
    is the algorithm of the latest shape, `chosen_algorithms` maps each
    input shape to its algorithm; both are logged. A traced call whose
    height, width or channels are unknown cannot be measured: it uses
    `native` and logs a warning.

    The custom ops compute in float32; under a mixed-precision policy the
    inputs and kernel are cast to float32 for them and the output back to
    the compute dtype (`native` computes in the compute dtype). In float64,
    `auto` keeps float64 accuracy, so it chooses `native`; integer dtypes
    are computed by `native` alone (`auto` and the custom ops refuse them).

    Export: with `portable=True` (the default), a model exported inside
    `portable_export()` (as `keras_cnnpractice.training.export_saved_model`
    does) holds TensorFlow's own `Conv2D` in this layer's place, so the
    SavedModel serves anywhere without the op library; training and
    inference, eager or in a `tf.function`, keep the chosen algorithm.
    Exported otherwise, or with `portable=False`, the SavedModel holds the
    custom op: whoever loads it must first call
    `keras_cnnpractice.custom_ops.load_op_library()` (or `tf.load_op_library`
    on any one of the `_cnnpractice_ops*.so` files).

    (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
    2015.)

    Args:
        filters, kernel_size, strides, dilation_rate: as in `Conv2D`.
        padding: `"same"` (default) or `"valid"`.
        algorithm: `"auto"`, `"native"` (`tf.nn.conv2d`), `"im2col"`,
            `"fft"` (no dilation), `"winograd"` (F(2x2, 3x3)),
            `"winograd4"` (F(4x4, 3x3)) or `"winograd6"` (F(6x6, 3x3)); the
            Winograd algorithms need a 3x3 kernel, stride 1 and no
            dilation.
        portable: inside `portable_export()`, trace TensorFlow's own
            convolution instead of the custom op (see above).
        **kwargs: every other `Conv2D` argument (`activation`, `use_bias`,
            `kernel_initializer`, `bias_initializer`, regularizers,
            constraints, `name`, `dtype`, ...).

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        as `Conv2D`: `(batch, new_height, new_width, filters)`.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="same",
                 dilation_rate=1, algorithm=_AUTO, portable=True, **kwargs):
        super().__init__(filters, kernel_size, strides=strides,
                         padding=padding, dilation_rate=dilation_rate,
                         **kwargs)
        if self.data_format != "channels_last":
            raise ValueError("FastConv2D computes channels_last (NHWC) only. "
                             f"Received: data_format={self.data_format!r}")
        if self.groups != 1:
            raise ValueError("FastConv2D has no grouped convolution. "
                             f"Received: groups={self.groups!r}")
        self.portable = check_bool("portable", portable)
        self.chosen_algorithms = {}
        self.set_algorithm(algorithm)

    def set_algorithm(self, algorithm):
        """Makes the layer compute with `algorithm` from its next trace on
        (e.g. an `auto` layer fixed to what it chose; see
        `fast_conv_models.with_fast_conv2d(..., sample=...)`).

        Raises:
            ValueError: an algorithm that cannot compute this layer's
                convolution, or `auto` for a dtype it cannot measure.
        """
        if algorithm == _AUTO:
            # Refuses a dtype `auto` cannot measure now, not at the first call.
            conv_autotune.tolerance(self.compute_dtype)
        else:
            reason = conv_algorithms.unsupported_reason(
                algorithm, self.kernel_size, self.strides, self.dilation_rate,
                self.compute_dtype)
            if reason:
                raise ValueError(
                    f"FastConv2D algorithm {algorithm!r} {reason}; choose "
                    f"'auto' or one of {conv_algorithms.ALGORITHMS}. "
                    f"Received: algorithm={algorithm!r}, kernel_size="
                    f"{self.kernel_size}, strides={self.strides}, "
                    f"dilation_rate={self.dilation_rate}, dtype="
                    f"{self.compute_dtype}")
        self.algorithm = algorithm
        # im2col and Winograd are compiled ops without an XLA kernel ("auto"
        # may choose them): Keras then leaves XLA off for the model, where
        # it would fail. "native" and "fft" (tf.signal) compile.
        self.supports_jit = algorithm in ("native", "fft")
        self.chosen_algorithm = None if algorithm == _AUTO else algorithm

    def build(self, input_shape):
        super().build(input_shape)
        if self.algorithm == _AUTO and None not in tuple(input_shape)[1:]:
            self._choose(tuple(input_shape))

    def _epilogue(self, y):
        # What Conv2D.call does after convolution_op, the bias then the
        # activation, timed with the convolution (TensorFlow fuses them into
        # its own; a custom op pays for separate passes). The bias's values
        # are stand-ins: the variable may not hold values yet while a
        # function that creates it traces.
        if self.use_bias:
            bias = np.linspace(-1, 1, self.filters)
            y = keras.ops.add(y, keras.ops.reshape(
                keras.ops.convert_to_tensor(bias, y.dtype),
                (1, 1, 1, self.filters)))
        return y if self.activation is None else self.activation(y)

    def _epilogue_name(self):
        activation = getattr(self.activation, "__name__", None)
        return "+".join((["bias"] if self.use_bias else [])
                        + [str(activation or "linear")])

    def _choose(self, shape):
        if shape not in self.chosen_algorithms:
            algorithm = conv_autotune.choose_algorithm(
                shape, (*self.kernel_size, shape[-1], self.filters),
                self.strides, self.padding, self.dilation_rate,
                self.compute_dtype, epilogue=self._epilogue,
                epilogue_name=self._epilogue_name())
            self.chosen_algorithms[shape] = algorithm
            logging.info("FastConv2D %r: algorithm %r for input shape %s.",
                         self.name, algorithm, shape)
        self.chosen_algorithm = self.chosen_algorithms[shape]
        return self.chosen_algorithm

    def _algorithm_for(self, shape):
        if self.portable and _PORTABLE_EXPORT.get():
            return "native"
        if self.algorithm != _AUTO:
            return self.algorithm
        shape = tuple(shape)
        if None in shape[1:]:
            logging.warning("FastConv2D %r: input shape %s is not known while "
                            "tracing, so no algorithm can be measured for it; "
                            "this trace uses 'native'.", self.name, shape)
            return "native"
        return self._choose(shape)

    def convolution_op(self, inputs, kernel):
        return conv_algorithms.conv2d(
            inputs, kernel, self._algorithm_for(inputs.shape), self.strides,
            self.padding, self.dilation_rate)

    def get_config(self):
        config = super().get_config()
        config.update({"algorithm": self.algorithm,
                       "portable": self.portable})
        return config
