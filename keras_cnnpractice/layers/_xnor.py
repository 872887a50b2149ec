"""What XnorDense and XnorConv2D share: packed-weight storage, the optional
per-channel scale and bias, the activation, and their config."""

import keras
import tensorflow as tf

from keras_cnnpractice.custom_ops import xnor


class XnorLayerBase(keras.layers.Layer):
    """Base of the inference-only binary layers (not trainable)."""

    def __init__(self, units, use_scale=False, use_bias=False,
                 activation=None, word_bits=64, **kwargs):
        super().__init__(trainable=False, **kwargs)
        if word_bits not in xnor.WORD_DTYPES:
            raise ValueError("word_bits must be 32 or 64. Received: "
                             f"word_bits={word_bits!r}")
        self._units = int(units)
        self.use_scale = use_scale
        self.use_bias = use_bias
        self.activation = keras.activations.get(activation)
        self.word_bits = word_bits

    def _packed_weight(self, shape, name):
        return self.add_weight(shape=shape, name=name, initializer="zeros",
                               dtype=xnor.WORD_DTYPES[self.word_bits].name,
                               trainable=False)

    def _build_output(self):
        self.scale = (self.add_weight(shape=(self._units,), name="scale",
                                      initializer="ones", trainable=False)
                      if self.use_scale else None)
        self.bias = (self.add_weight(shape=(self._units,), name="bias",
                                     initializer="zeros", trainable=False)
                     if self.use_bias else None)

    def _finish(self, y):
        y = tf.cast(y, self.compute_dtype)
        if self.scale is not None:
            y = y * tf.cast(self.scale, self.compute_dtype)
        if self.bias is not None:
            y = y + tf.cast(self.bias, self.compute_dtype)
        return self.activation(y)

    def _load_output(self, scale, bias):
        if self.scale is not None:
            self.scale.assign(scale)
        if self.bias is not None:
            self.bias.assign(bias)

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        config.update({"use_scale": self.use_scale, "use_bias": self.use_bias,
                       "activation": keras.activations.serialize(
                           self.activation),
                       "word_bits": self.word_bits})
        return config
