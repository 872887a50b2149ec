"""Swaps every `Conv2D` of a model for a `FastConv2D` with the same weights.

    import keras
    from keras_cnnpractice.fast_conv_models import with_fast_conv2d
    model = keras.applications.VGG16(weights=None)
    fast = with_fast_conv2d(model)       # algorithm="auto" in every Conv2D
    fast.predict(images)                 # same outputs, to float rounding

With `algorithm="auto"` each layer measures, where it is first called, which
algorithm computes it fastest together with its bias and activation (see
`FastConv2D`), and keeps TensorFlow's own unless another is clearly faster.
A layer timed alone does not see what its neighbours do to it (TensorFlow
fuses a convolution with what follows; caches hold other data), so choices
that win alone can lose together. Given a `sample` batch, `with_fast_conv2d`
settles the choices on the whole model instead: it traces the model with
every layer `native`, with the layers' own choices, and with each custom
algorithm's layers alone or left out, times these side by side, and fixes
each layer to the algorithm of the fastest, kept only if it beats all
`native` by 10 % (so that timing noise does not pick a custom op). The
returned model is then not slower than the original at that batch:

    fast = with_fast_conv2d(model, sample=images[:8])
    fast.save("fast.keras")              # keeps the settled algorithms
"""

import time

import keras
import tensorflow as tf

from keras_cnnpractice.custom_ops import conv_autotune
from keras_cnnpractice.layers.fast_conv2d import FastConv2D


def _convertible(layer):
    # Exactly Conv2D: its subclasses (QuantConv2D, FastConv2D, ...) compute
    # something else, or already choose.
    return (type(layer) is keras.layers.Conv2D
            and layer.data_format == "channels_last" and layer.groups == 1)


def _traced(model, x):
    """`model(x)` as a `tf.function`, traced now: with the algorithms the
    layers hold at this moment (they are read while tracing)."""
    fn = tf.function(lambda: model(x, training=False))
    fn()
    return fn


def _interleaved_ms(fns, repeats):
    """{name: fastest of `repeats` calls} of `fns` ({name: function}), called
    in rounds, one call of each per round, so that they share whatever load
    the machine carries."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            tf.nest.map_structure(lambda y: y.numpy(), fn())
            times[name].append(time.perf_counter() - start)
    return {name: min(t) * 1e3 for name, t in times.items()}


def settle(model, sample, repeats=5):
    """Fixes every `FastConv2D(auto)` of `model` to the algorithm that makes
    the whole model fastest on `sample` (see the module docstring).

    Each layer first chooses alone at the sample's batch. Then the model is
    traced once per configuration: every layer `native`; every layer its
    own choice; and, where the layers chose several custom algorithms, for
    each of them only its layers custom, and all but its layers custom. The
    traces are timed in interleaved rounds; the fastest configuration is
    kept if it is `conv_autotune.MARGIN` faster than all `native`, else
    every layer is `native`.

    Args:
        model: a model holding `FastConv2D` layers with `algorithm="auto"`.
        sample: a batch of inputs, at the batch size the model will run.
        repeats: timed rounds (the fastest call of each counts).

    Returns:
        {"ms": {configuration: milliseconds}, "kept": the configuration
        kept, "algorithms": {layer name: the algorithm it was fixed to}}.
    """
    layers = [layer for layer in model.layers
              if isinstance(layer, FastConv2D) and layer.algorithm == "auto"]
    x = tf.nest.map_structure(tf.convert_to_tensor, sample)
    model(x, training=False)  # each layer chooses at this batch
    chosen = {layer.name: layer.chosen_algorithm for layer in layers}

    def configure(kept):
        for layer in layers:
            algorithm = chosen[layer.name]
            layer.set_algorithm(algorithm if algorithm in kept else "native")

    custom = set(chosen.values()) - {"native"}
    configurations = {"native": set(), "chosen": custom}
    if len(custom) > 1:
        for algorithm in sorted(custom):
            configurations[f"only {algorithm}"] = {algorithm}
            configurations[f"without {algorithm}"] = custom - {algorithm}
    fns = {}
    for name, kept in configurations.items():
        configure(kept)
        fns[name] = _traced(model, x)
    ms = _interleaved_ms(fns, repeats)
    best = min(ms, key=ms.get)
    if ms["native"] < conv_autotune.MARGIN * ms[best]:
        best = "native"
    configure(configurations[best])
    return {"ms": ms, "kept": best,
            "algorithms": {layer.name: layer.algorithm for layer in layers}}


def with_fast_conv2d(model, algorithm="auto", portable=True, sample=None,
                     repeats=5):
    """A copy of `model` whose `Conv2D` layers are `FastConv2D`.

    Args:
        model: a built Sequential or functional Keras model.
        algorithm: the `FastConv2D` algorithm of every converted layer
            (`"auto"` chooses per layer and input shape).
        portable: `FastConv2D`'s `portable` (exports TensorFlow's own
            convolution).
        sample: with `algorithm="auto"`, a batch of inputs at the batch
            size the model will run: the layers' choices are then settled
            on the whole model (`settle`) and fixed. None leaves each layer
            choosing alone, per input shape.
        repeats: timed calls per configuration while settling.

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
    if sample is not None and algorithm == "auto":
        settle(new_model, sample, repeats)
    return new_model
