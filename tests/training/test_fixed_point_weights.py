"""Fixed-point weight storage during training (Gupta et al. 2015)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.training import store_weights_in_fixed_point
from keras_cnnpractice.training.fixed_point_weights import parse_weights_format
from tests.conftest import run_python

FRAC = 10
STEP = 2.0**-FRAC


def test_parse_weights_format():
    assert parse_weights_format("float") is None
    assert parse_weights_format("fixed16:14") == (16, 14)
    for bad in ("fixed16", "fixed32:8", "int8", "fixed16:-1", ""):
        with pytest.raises(ValueError, match="weights_format"):
            parse_weights_format(bad)


def _one_sgd_step(rounding, learning_rate):
    """Weights before, float SGD update (from tf.GradientTape), after."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)),
                              keras.layers.Dense(64, use_bias=False)])
    optimizer = keras.optimizers.SGD(learning_rate)
    model.compile(optimizer=optimizer, loss="mse")
    store_weights_in_fixed_point(model, optimizer, f"fixed16:{FRAC}", rounding)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 64)).astype(np.float32)
    y = rng.normal(size=(32, 64)).astype(np.float32)
    before = model.get_weights()[0]
    kernel = tf.Variable(before)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(tf.matmul(x, kernel) - y))
    update = -learning_rate * tape.gradient(loss, kernel).numpy()
    model.train_on_batch(x, y)
    return before, update, model.get_weights()[0]


def test_weights_start_and_stay_on_the_grid():
    before, _, after = _one_sgd_step("stochastic", 0.5)
    for w in (before, after):
        np.testing.assert_array_equal(w / STEP, np.round(w / STEP))


def test_nearest_loses_small_updates_and_stochastic_keeps_them_on_average():
    # Updates far below half a grid step: nearest rounding undoes every one.
    lr = 1e-3
    before, update, after = _one_sgd_step("nearest", lr)
    assert 0 < np.abs(update).max() < STEP / 2
    np.testing.assert_array_equal(after, before)
    # Stochastic rounding moves a weight by a whole step with probability
    # |update| / step, so the mean change equals the float update; the
    # standard error of the mean over 4,096 weights is below step / 128.
    before, update, after = _one_sgd_step("stochastic", lr)
    change = after - before
    assert np.count_nonzero(change) > 0
    assert set(np.unique(np.round(change / STEP))) <= {-1.0, 0.0, 1.0}
    assert abs(np.mean(change - update)) < 5 * STEP / 128


def test_mirrored_replicas_round_identically():
    script = f"""
import numpy as np
from keras_cnnpractice.strategies import get_strategy
strategy = get_strategy("mirrored", num_devices=2)
import keras
from keras_cnnpractice.training import store_weights_in_fixed_point
with strategy.scope():
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8)])
    optimizer = keras.optimizers.SGD(0.01)
    model.compile(optimizer=optimizer, loss="mse")
    n = store_weights_in_fixed_point(model, optimizer, "fixed16:{FRAC}",
                                     "stochastic")
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 16)).astype("float32")
y = rng.normal(size=(64, 8)).astype("float32")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
for v in model.trainable_variables:
    copies = [c.numpy() for c in v.value.values]
    assert len(copies) == 2, len(copies)
    np.testing.assert_array_equal(copies[0], copies[1])
    np.testing.assert_array_equal(copies[0] * 2**{FRAC},
                                  np.round(copies[0] * 2**{FRAC}))
print("variables", n, "in sync on the grid")
"""
    out = run_python(["-c", script]).stdout
    assert "variables 2 in sync on the grid" in out
