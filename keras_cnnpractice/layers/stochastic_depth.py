"""Stochastic depth: residual branches dropped per sample in training."""

import keras

from keras_cnnpractice._validate import check_number
from keras_cnnpractice._validate import check_seed


def check_survival_probability(value):
    """Raises ValueError unless `value` is a number in (0, 1]."""
    check_number("survival_probability", value, 0, 1, low_open=True)


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class StochasticDepth(keras.layers.Layer):
    """Adds a residual branch to its shortcut, or, in training, sometimes not.

    Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth",
    ECCV 2016) trains a short network and tests a deep one: for every
    sample and every call, the residual branch of a block survives with
    probability `p = survival_probability` and is otherwise skipped, so
    the block passes its shortcut through unchanged.

    In training the layer returns `shortcut + residual * b / p`, with `b`
    a Bernoulli(p) draw per sample (the leading axis); at inference
    (`training=False`) it returns `shortcut + residual`, exactly. The
    paper keeps the branch unscaled in training and multiplies it by `p`
    at test time; dividing by `p` in training instead ("inverted" scaling,
    as `Dropout` does) gives the same network up to a rescaling of the
    branch and keeps the inference graph a plain residual sum, identical
    to a network built without stochastic depth. `p = 1` makes the layer a
    plain sum in training too.

    Args:
        survival_probability: probability `p` in (0, 1] that the residual
            branch is kept for a sample.
        seed: integer seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name`.

    Input shape:
        A list `[shortcut, residual]` of two tensors of the same shape
        `(batch, ...)`.

    Output shape:
        The shape of `shortcut`.
    """

    def __init__(self, survival_probability=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        check_survival_probability(survival_probability)
        check_seed(seed)
        self.survival_probability = float(survival_probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _check_shapes(self, input_shape):
        if (not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2
                or not all(isinstance(s, (list, tuple)) for s in input_shape)):
            raise ValueError("StochasticDepth is called on [shortcut, "
                             f"residual]. Received: input_shape={input_shape}")
        shortcut, residual = (tuple(s) for s in input_shape)
        if len(shortcut) != len(residual) or any(
                a is not None and b is not None and a != b
                for a, b in zip(shortcut, residual)):
            raise ValueError(
                "StochasticDepth needs a shortcut and a residual of the same "
                f"shape. Received: shortcut shape={shortcut}, residual "
                f"shape={residual}")
        return shortcut

    def build(self, input_shape):
        self._check_shapes(input_shape)

    def call(self, inputs, training=None):
        shortcut, residual = inputs
        if training and self.survival_probability < 1:
            noise_shape = (None,) + (1,) * (len(residual.shape) - 1)
            residual = keras.random.dropout(
                residual, 1 - self.survival_probability,
                noise_shape=noise_shape, seed=self.seed_generator)
        return shortcut + residual

    def compute_output_shape(self, input_shape):
        return self._check_shapes(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"survival_probability": self.survival_probability,
                       "seed": self.seed})
        return config
