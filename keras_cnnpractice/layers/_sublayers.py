"""Sublayer construction shared by the composite layers (and their one
own argument check, `padding`; the others are `keras_cnnpractice._validate`)."""

import keras


def check_padding(padding):
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid'. Received: "
                         f"padding={padding!r}")


def conv(layer, filters, kernel_size, name, strides=1, padding="same",
         activation=None):
    """A Conv2D sharing `layer`'s initializer, regularizer, bias and dtype."""
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding,
        activation=activation, use_bias=layer.use_bias,
        kernel_initializer=layer.kernel_initializer,
        kernel_regularizer=layer.kernel_regularizer,
        dtype=layer.dtype_policy, name=name)


def serialize_common(layer):
    """Config entries of the arguments every composite layer takes."""
    return {
        "activation": keras.activations.serialize(layer.activation),
        "use_bias": layer.use_bias,
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "kernel_regularizer": keras.regularizers.serialize(layer.kernel_regularizer),
    }


def set_common(layer, activation, use_bias, kernel_initializer,
               kernel_regularizer):
    layer.activation = keras.activations.get(activation)
    layer.use_bias = use_bias
    layer.kernel_initializer = keras.initializers.get(kernel_initializer)
    layer.kernel_regularizer = keras.regularizers.get(kernel_regularizer)


def build_chain(layers, input_shape):
    """Builds `layers` one after another; returns the last output shape."""
    shape = input_shape
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def conv_unit(layer, filters, kernel_size, name, strides=1, activate=True):
    """Conv2D [+ BatchNormalization + Activation] as a list of sublayers.

    Without batch norm the activation is fused into the convolution; with
    it, the convolution has no activation and BN + Activation follow.
    `activate=False` leaves the unit linear (e.g. before a residual add).
    """
    if not layer.batch_norm:
        return [conv(layer, filters, kernel_size, name, strides=strides,
                     activation=layer.activation if activate else None)]
    units = [conv(layer, filters, kernel_size, name, strides=strides),
             keras.layers.BatchNormalization(epsilon=1.001e-5,
                                             dtype=layer.dtype_policy,
                                             name=f"{name}_bn")]
    if activate:
        units.append(keras.layers.Activation(layer.activation,
                                             dtype=layer.dtype_policy,
                                             name=f"{name}_act"))
    return units


def call_chain(layers, x, training=None):
    for layer in layers:
        x = layer(x, training=training)
    return x
