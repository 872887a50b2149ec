"""A small model shared by the transfer tests."""

import keras


def three_dense(width, seed=0):
    """Dense layers "early" -> "mid" (tanh, `width` units) -> "head" (3),
    from 5 inputs, seeded."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((5,))
    x = keras.layers.Dense(width, activation="tanh", name="early")(inputs)
    x = keras.layers.Dense(width, activation="tanh", name="mid")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
