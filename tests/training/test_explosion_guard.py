"""ExplosionGuard: stop on an exploding loss, restore good weights, warn on a
loss that barely moves."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.data import load_mnist5k
from keras_cnnpractice.training.explosion_guard import ExplosionGuard


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = load_mnist5k()
    return x[::10].astype(np.float32), y[::10]  # 400 digits, all classes


def _model(learning_rate):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss="sparse_categorical_crossentropy")
    return model


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


class _EpochWeights(keras.callbacks.Callback):
    """Records the weights at every epoch's end."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_huge_learning_rate_stops_and_restores_initial_weights(digits,
                                                               tmp_path):
    model = _model(1e3)
    initial = [w.copy() for w in model.get_weights()]
    guard = ExplosionGuard(tmp_path / "guard")
    history = model.fit(*digits, batch_size=32, epochs=5, verbose=0,
                        callbacks=[guard])
    assert guard.exploded and guard.stopped_epoch == 0
    assert guard.stopped_batch is not None and guard.stopped_batch < 12
    assert len(history.history["loss"]) == 1
    assert guard.restored_epoch == 0 and _same(model.get_weights(), initial)
    assert guard.cause == "learning_rate"
    assert "learning rate (1e+03) is probably too high" in guard.message
    assert "restored the initial weights" in guard.message
    saved = _model(1e3)
    saved.load_weights(tmp_path / "guard" / "last_good.weights.h5")
    assert _same(saved.get_weights(), initial)
    assert [p.name for p in (tmp_path / "guard").iterdir()] == [
        "last_good.weights.h5"]


def test_explosion_after_a_good_epoch_restores_that_epoch(digits, tmp_path):
    model = _model(0.05)
    recorder = _EpochWeights()
    path = tmp_path / "good.weights.h5"
    guard = ExplosionGuard(path, factor=3.0)
    # Epoch 1 learns; epoch 2's learning rate blows the loss up.
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 0.05 if epoch == 0 else 1e3)
    model.fit(*digits, batch_size=32, epochs=4, verbose=0,
              callbacks=[schedule, recorder, guard])
    assert guard.exploded and guard.stopped_epoch == 1
    assert guard.restored_epoch == 1
    assert guard.epoch_losses[0] < guard.initial_loss
    assert _same(model.get_weights(), recorder.weights[0])
    assert "at epoch 2" in guard.message
    assert "learning rate (1e+03) is probably too high" in guard.message
    assert "restored the weights after epoch 1" in guard.message
    saved = _model(0.05)
    saved.load_weights(path)
    assert _same(saved.get_weights(), recorder.weights[0])


def test_nan_loss_stops_training(digits):
    # A NaN sample weight makes the loss NaN after every layer has run, so
    # no fused kernel can swallow it (with oneDNN on an AVX-512 CPU a NaN
    # *pixel* fed through MatMul+BiasAdd+ReLU comes out as 0).
    x, y = digits
    weights = np.ones(len(y), np.float32)
    weights[70] = np.nan  # the third batch of 32
    model = _model(0.01)
    guard = ExplosionGuard()
    model.fit(x, y, sample_weight=weights, batch_size=32, epochs=2,
              verbose=0, shuffle=False, callbacks=[guard])
    assert guard.exploded and guard.reason == "loss is nan"
    assert (guard.stopped_epoch, guard.stopped_batch) == (0, 2)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_nan_in_the_data_is_blamed_on_the_data(digits):
    # A linear model: every logit of the NaN image is a sum with a NaN term,
    # and the loss is computed from logits, so the NaN reaches the loss
    # without passing a max/min/ReLU (whose NaN handling varies by CPU).
    x, y = digits
    x = x.copy()
    x[70, 3, 5] = np.nan  # the third batch of 32
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    guard = ExplosionGuard()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False,
              callbacks=[guard])
    assert guard.exploded and guard.cause == "data"
    assert (guard.stopped_epoch, guard.stopped_batch) == (0, 2)
    assert "NaN or infinite values in its inputs" in guard.message
    assert "too high" not in guard.message
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_nan_pixel_behind_a_relu_stops_training(digits):
    # Depending on the CPU, oneDNN's fused MatMul+BiasAdd+ReLU passes the
    # NaN on (NaN loss at that batch) or outputs 0 (finite loss, NaN kernel
    # after the update): the guard stops at the same batch either way.
    x, y = digits
    x = x.copy()
    x[70] = np.nan  # the third batch of 32
    model = _model(0.01)
    guard = ExplosionGuard()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False,
              callbacks=[guard])
    assert guard.exploded and guard.cause in ("data", "gradient")
    assert (guard.stopped_epoch, guard.stopped_batch) == (0, 2)
    assert "NaN or infinite values in" in guard.message
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_barely_moving_loss_warns_learning_rate_too_low(digits):
    guard = ExplosionGuard(patience_low=2, min_relative_change=0.01)
    _model(1e-6).fit(*digits, batch_size=32, epochs=3, verbose=0,
                     callbacks=[guard])
    assert guard.too_slow and not guard.exploded
    assert len(guard.epoch_losses) == 3
    assert "learning rate (1e-06) is probably too low" in guard.message


def test_healthy_run_gives_no_warning(digits):
    guard = ExplosionGuard(patience_low=1)
    _model(0.1).fit(*digits, batch_size=32, epochs=2, verbose=0,
                    callbacks=[guard])
    assert not guard.exploded and not guard.too_slow
    assert guard.message is None and guard.stopped_epoch is None
    assert guard.epoch_losses[1] < guard.epoch_losses[0] < guard.initial_loss


@pytest.mark.parametrize("kwargs, message", [
    ({"factor": 1.0}, "factor=1.0"),
    ({"patience_low": 0}, "patience_low=0"),
    ({"min_relative_change": -0.1}, "min_relative_change=-0.1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExplosionGuard(**kwargs)
