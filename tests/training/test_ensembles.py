"""Ensemble, SnapshotEnsemble and the EMA helpers against numpy."""

import os

import keras
import numpy as np
import pytest

from keras_cnnpractice.training.ensembles import Ensemble
from keras_cnnpractice.training.ensembles import KeepRawWeights
from keras_cnnpractice.training.ensembles import SnapshotEnsemble
from keras_cnnpractice.training.ensembles import ema_pairs
from keras_cnnpractice.training.ensembles import ema_weights
from keras_cnnpractice.training.ensembles import evaluate_with_and_without_ema
from keras_cnnpractice.training.ensembles import load_snapshot_ensemble

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 4)).astype("float32")
Y = RNG.integers(0, 3, size=24)


def _classifier(seed, classes=3):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)),
                             keras.layers.Dense(classes, activation="softmax")])


def _softmax_scores(model, x):
    """The member's probabilities computed in numpy from its weights."""
    w, b = (v.astype("float64") for v in model.get_weights())
    logits = x @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ensemble_is_the_mean_of_the_members_scores(tmp_path):
    members = [_classifier(seed) for seed in range(3)]
    ensemble = Ensemble(members, name="three")
    expected = np.mean([_softmax_scores(m, X) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(X, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)
    ensemble.compile(loss="sparse_categorical_crossentropy",
                     metrics=["accuracy"])
    metrics = ensemble.evaluate(X, Y, verbose=0, return_dict=True)
    assert metrics["accuracy"] == pytest.approx(
        np.mean(expected.argmax(axis=1) == Y))
    assert metrics["loss"] == pytest.approx(
        -np.mean(np.log(expected[np.arange(len(Y)), Y])), rel=1e-5)
    # Config and .keras round trips, saved before any call.
    clone = Ensemble.from_config(ensemble.get_config())
    assert len(clone.members) == 3
    path = tmp_path / "ensemble.keras"
    Ensemble(members).save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Ensemble)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)


def test_ensemble_rejects_bad_members():
    with pytest.raises(ValueError, match="same output shape"):
        Ensemble([_classifier(0, classes=3), _classifier(1, classes=2)])
    with pytest.raises(ValueError, match="non-empty list"):
        Ensemble([])
    with pytest.raises(ValueError, match="non-empty list"):
        Ensemble([lambda x: x])


def _cosine(step, steps_per_cycle, max_lr, min_lr):
    # Huang et al. 2017, eq. 2 (0-based step), annealed to min_lr.
    t = np.mod(step, steps_per_cycle) / steps_per_cycle
    return min_lr + 0.5 * (max_lr - min_lr) * (np.cos(np.pi * t) + 1)


class _RecordRate(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


def test_snapshot_ensemble_schedule_and_snapshots(tmp_path):
    model = _classifier(0)
    model.compile(keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")
    record = _RecordRate()
    cycles, epochs_per_cycle, steps = 3, 2, 4  # 24 examples, batches of 6
    model.fit(X, Y, batch_size=6, epochs=cycles * epochs_per_cycle, verbose=0,
              shuffle=False, callbacks=[SnapshotEnsemble(
                  tmp_path, cycles, max_lr=0.2, min_lr=0.01), record])
    step = np.arange(cycles * epochs_per_cycle * steps)
    np.testing.assert_allclose(
        record.rates, _cosine(step, epochs_per_cycle * steps, 0.2, 0.01),
        rtol=1e-6)
    assert sorted(os.listdir(tmp_path)) == [f"snapshot-{k}.keras"
                                            for k in (1, 2, 3)]
    ensemble = load_snapshot_ensemble(tmp_path)
    assert len(ensemble.members) == 3
    # The last snapshot is the final model; the ensemble their mean.
    np.testing.assert_allclose(_softmax_scores(ensemble.members[-1], X),
                               _softmax_scores(model, X), rtol=1e-6)
    expected = np.mean([_softmax_scores(m, X) for m in ensemble.members], axis=0)
    np.testing.assert_allclose(ensemble.predict(X, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)
    last_two = load_snapshot_ensemble(tmp_path, last=2)
    np.testing.assert_allclose(
        last_two.predict(X, verbose=0),
        np.mean([_softmax_scores(m, X) for m in ensemble.members[1:]], axis=0),
        rtol=1e-5, atol=1e-6)


def test_snapshot_ensemble_errors(tmp_path):
    model = _classifier(0)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model.compile(keras.optimizers.SGD(schedule),
                  "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="float learning_rate"):
        model.fit(X, Y, epochs=2, verbose=0,
                  callbacks=[SnapshotEnsemble(tmp_path, 2, 0.1)])
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="multiple of cycles"):
        model.fit(X, Y, epochs=3, verbose=0,
                  callbacks=[SnapshotEnsemble(tmp_path, 2, 0.1)])
    with pytest.raises(ValueError, match="more than cycles"):
        model.fit(X, Y, epochs=3, verbose=0, callbacks=[SnapshotEnsemble(
            tmp_path, 2, 0.1, epochs_per_cycle=1)])
    for kwargs, message in [(dict(cycles=0), "cycles=0"),
                            (dict(max_lr=-1.0), "max_lr=-1.0"),
                            (dict(min_lr=0.5), "must not exceed"),
                            (dict(epochs_per_cycle=1.5), "epochs_per_cycle")]:
        with pytest.raises(ValueError, match=message):
            SnapshotEnsemble(tmp_path, **{"cycles": 2, "max_lr": 0.1,
                                          **kwargs})
    with pytest.raises(ValueError, match="No snapshot"):
        load_snapshot_ensemble(tmp_path / "empty")


def _numpy_sgd_with_ema(w, x, y, lr, momentum, steps):
    """Full-batch SGD on Keras's mse (mean over samples and outputs) and the
    optimizer's average: a copy after the first step, then
    average = momentum * average + (1 - momentum) * w."""
    x, y, w = x.astype("float64"), y.astype("float64"), w.astype("float64")
    average = None
    for _ in range(steps):
        w = w - lr * 2 * x.T @ (x @ w - y) / y.size
        average = w if average is None else momentum * average + (1 - momentum) * w
    return w, average


def _regression(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(2, use_bias=False)])
    model.compile(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.8),
                  "mse")
    return model


def test_polyak_averaging_helpers_against_numpy():
    y = (X @ RNG.normal(size=(4, 2))).astype("float32")
    steps, mse = 6, (lambda w: np.mean((X.astype("float64") @ w - y) ** 2))

    model = _regression(1)
    raw, average = _numpy_sgd_with_ema(model.get_weights()[0], X, y, 0.05, 0.8,
                                       steps)
    model.fit(X, y, batch_size=len(X), epochs=steps, shuffle=False, verbose=0,
              callbacks=[KeepRawWeights()])
    np.testing.assert_allclose(model.get_weights()[0], raw, rtol=1e-5)
    with ema_weights(model):
        np.testing.assert_allclose(model.get_weights()[0], average, rtol=1e-5)
    np.testing.assert_allclose(model.get_weights()[0], raw, rtol=1e-5)

    both = evaluate_with_and_without_ema(model, X, y, verbose=0)
    assert both["raw"]["loss"] == pytest.approx(mse(raw), rel=1e-5)
    assert both["ema"]["loss"] == pytest.approx(mse(average), rel=1e-5)
    assert both["raw"]["loss"] != pytest.approx(both["ema"]["loss"], rel=1e-3)
    np.testing.assert_allclose(model.get_weights()[0], raw, rtol=1e-5)

    # Without KeepRawWeights, fit() leaves the averages in the model, and
    # the helper warns that both evaluations are of the averaged weights.
    plain = _regression(1)
    plain.fit(X, y, batch_size=len(X), epochs=steps, shuffle=False, verbose=0)
    np.testing.assert_allclose(plain.get_weights()[0], average, rtol=1e-5)
    with pytest.warns(UserWarning, match="KeepRawWeights"):
        evaluate_with_and_without_ema(plain, X, y, verbose=0)


def test_polyak_helpers_need_an_ema_optimizer():
    model = _classifier(0)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="use_ema=True"):
        ema_pairs(model)
    with pytest.raises(ValueError, match="use_ema=True"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[KeepRawWeights()])
    untrained = _regression(0)
    with pytest.raises(ValueError, match="train the model first"):
        ema_pairs(untrained)
