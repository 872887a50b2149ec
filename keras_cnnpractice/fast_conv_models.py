"""Swaps every `Conv2D` of a model for a `FastConv2D` with the same weights.

    import keras
    from keras_cnnpractice.fast_conv_models import with_fast_conv2d
    model = keras.applications.VGG16(weights=None)
    fast = with_fast_conv2d(model)       # algorithm="auto" in every Conv2D
    fast.predict(images)                 # same outputs, to float rounding

With `algorithm="auto"` each layer measures, where it is first called, which
algorithm computes it fastest together with its bias and activation (see
`FastConv2D`), and keeps TensorFlow's own unless another is clearly faster,
so the converted model is not slower than the original.
"""

import keras

from keras_cnnpractice.layers.fast_conv2d import FastConv2D


def _convertible(layer):
    # Exactly Conv2D: its subclasses (QuantConv2D, FastConv2D, ...) compute
    # something else, or already choose.
    return (type(layer) is keras.layers.Conv2D
            and layer.data_format == "channels_last" and layer.groups == 1)


def with_fast_conv2d(model, algorithm="auto", portable=True):
    """A copy of `model` whose `Conv2D` layers are `FastConv2D`.

    Args:
        model: a built Sequential or functional Keras model.
        algorithm: the `FastConv2D` algorithm of every converted layer
            (`"auto"` chooses per layer and input shape).
        portable: `FastConv2D`'s `portable` (exports TensorFlow's own
            convolution).

    Returns:
        The new model, weights copied; the original is untouched. Layers
        other than `Conv2D` (and `Conv2D` layers in `channels_first` or
        grouped) are copied unchanged.

    Raises:
        ValueError: a model without a `Conv2D` to convert, or a subclassed
            model (`keras.models.clone_model` cannot swap its layers).
    """
    converted = {layer.name for layer in model.layers if _convertible(layer)}
    if not converted:
        raise ValueError("with_fast_conv2d found no channels_last, ungrouped "
                         f"Conv2D layer to convert in model {model.name!r}")

    def clone(layer):
        config = layer.get_config()
        if layer.name in converted:
            return FastConv2D.from_config(
                {**config, "algorithm": algorithm, "portable": portable})
        return layer.__class__.from_config(config)

    new_model = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, new_model.layers):
        new.set_weights(old.get_weights())
    return new_model
