"""Epoch checkpoints: complete files only, pruning, full restore."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.training import EpochCheckpoint
from keras_cnnpractice.training import latest_checkpoint
from keras_cnnpractice.training import restore_latest


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def test_restore_brings_back_weights_and_optimizer_state(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 2))
    model = _model()
    model.fit(x, y, epochs=4, batch_size=8, verbose=0,
              callbacks=[EpochCheckpoint(tmp_path, max_to_keep=2)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["epoch-3.weights.h5", "epoch-4.weights.h5"]
    assert latest_checkpoint(tmp_path) == (4, tmp_path / "epoch-4.weights.h5")

    fresh = _model()
    assert restore_latest(fresh, tmp_path) == 4
    for a, b in zip(model.weights, fresh.weights):  # incl. BN moving stats
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(fresh.optimizer.iterations.numpy()) == 16
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_incomplete_files_are_ignored(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") == (0, None)
    assert restore_latest(_model(), tmp_path) == 0
    (tmp_path / "epoch-9.tmp-123.weights.h5").write_bytes(b"half written")
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path) == (0, None)


def test_bad_max_to_keep():
    with pytest.raises(ValueError, match="max_to_keep=0"):
        EpochCheckpoint("/tmp/x", max_to_keep=0)
