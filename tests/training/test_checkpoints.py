"""Epoch checkpoints: complete files only, pruning, full restore, and the
faults they survive (digests, damaged files set aside, no NaN saved)."""

import logging

import h5py
import keras
import numpy as np
import pytest

from keras_cnnpractice.training import EpochCheckpoint
from keras_cnnpractice.training import latest_checkpoint
from keras_cnnpractice.training import newest_good_checkpoint
from keras_cnnpractice.training import restore_latest
from keras_cnnpractice.training.checkpoints import DIGEST_ATTR
from keras_cnnpractice.training.checkpoints import checkpoint_problem


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


# Faults: digests, damaged files set aside, nothing non-finite saved.


class _Snapshots(keras.callbacks.Callback):
    """The model's weights after each epoch, by epoch number (1-based)."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch + 1] = self.model.get_weights()


def _trained(directory, epochs=3, max_to_keep=3):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 2))
    model, snapshots = _model(), _Snapshots()
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0,
              callbacks=[EpochCheckpoint(directory, max_to_keep), snapshots])
    return model, snapshots.weights


def _data_offset(path, dataset="layers/dense/vars/0"):
    """Byte offset in `path` of a dataset's raw data (HDF5's own record)."""
    with h5py.File(path, "r") as f:
        return f[dataset].id.get_offset()


def _assert_weights(model, expected):
    for a, b in zip(model.get_weights(), expected):
        np.testing.assert_array_equal(a, b)


def test_digest_is_stored_and_one_flipped_data_byte_fails_it(tmp_path):
    _trained(tmp_path, epochs=1)
    path = tmp_path / "epoch-1.weights.h5"
    with h5py.File(path, "r") as f:
        assert len(f.attrs[DIGEST_ATTR]) == 64  # SHA-256, hex
    assert checkpoint_problem(path) is None
    raw = bytearray(path.read_bytes())
    raw[_data_offset(path)] ^= 0x10  # a kernel value, not the HDF5 structure
    path.write_bytes(bytes(raw))
    silent = _model()
    silent.optimizer.build(silent.trainable_variables)
    silent.load_weights(path)  # Keras alone loads it without complaint
    assert "digest does not match" in checkpoint_problem(path)


def test_truncated_newest_is_set_aside_and_previous_restored(tmp_path, caplog):
    _, weights = _trained(tmp_path)
    newest = tmp_path / "epoch-3.weights.h5"
    truncated = newest.read_bytes()[:newest.stat().st_size // 2]
    newest.write_bytes(truncated)
    fresh = _model()
    with caplog.at_level(logging.WARNING):
        assert restore_latest(fresh, tmp_path) == 2
    _assert_weights(fresh, weights[2])
    assert not newest.exists()
    aside = tmp_path / "epoch-3.weights.h5.corrupt"
    assert aside.read_bytes() == truncated  # renamed, not deleted
    lines = [r.getMessage() for r in caplog.records
             if "epoch-3" in r.getMessage()]
    assert len(lines) == 1 and "cannot be read" in lines[0]
    assert str(newest) in lines[0]
    # A second restart goes straight to epoch 2 and keeps the first aside.
    (tmp_path / "epoch-3.weights.h5").write_bytes(b"not hdf5")
    assert restore_latest(_model(), tmp_path) == 2
    again = tmp_path / "epoch-3.weights.h5.corrupt-1"
    assert again.read_bytes() == b"not hdf5"
    assert aside.read_bytes() == truncated


def test_newest_good_checkpoint_skips_without_renaming(tmp_path):
    # What --init_from reads in another run's folder: the newest checkpoint
    # that verifies, leaving that run's files as they are.
    _trained(tmp_path)
    newest = tmp_path / "epoch-3.weights.h5"
    newest.write_bytes(newest.read_bytes()[:100])
    assert newest_good_checkpoint(tmp_path) == (
        2, tmp_path / "epoch-2.weights.h5")
    assert newest.exists() and not list(tmp_path.glob("*.corrupt"))


def test_500_flipped_bytes_are_refused(tmp_path):
    _, weights = _trained(tmp_path)
    newest = tmp_path / "epoch-3.weights.h5"
    raw = np.frombuffer(newest.read_bytes(), np.uint8).copy()
    rng = np.random.default_rng(1)
    where = rng.choice(raw.size, 500, replace=False)
    raw[where] ^= rng.integers(1, 256, 500).astype(np.uint8)
    newest.write_bytes(raw.tobytes())
    assert checkpoint_problem(newest) is not None
    fresh = _model()
    assert restore_latest(fresh, tmp_path) == 2
    _assert_weights(fresh, weights[2])
    assert (tmp_path / "epoch-3.weights.h5.corrupt").is_file()


def test_checkpoint_without_digest_is_accepted_with_a_warning(tmp_path,
                                                              caplog):
    _, weights = _trained(tmp_path, epochs=1)
    path = tmp_path / "epoch-1.weights.h5"
    with h5py.File(path, "r+") as f:  # as written before digests existed
        del f.attrs[DIGEST_ATTR]
    fresh = _model()
    with caplog.at_level(logging.WARNING):
        assert restore_latest(fresh, tmp_path) == 1
    _assert_weights(fresh, weights[1])
    assert any("has no digest" in r.getMessage() for r in caplog.records)
    with h5py.File(path, "r+") as f:  # ... and one holding a NaN
        f["optimizer/vars/2"][0, 0] = np.nan
    assert "NaN or infinite values" in checkpoint_problem(path)
    assert restore_latest(_model(), tmp_path) == 0
    assert (tmp_path / "epoch-1.weights.h5.corrupt").is_file()


class _Poison(keras.callbacks.Callback):
    """From epoch `start` on, writes a NaN into one variable of the model
    (or of its optimizer) at the end of every epoch."""

    def __init__(self, start, optimizer):
        super().__init__()
        self.start, self.optimizer = start, optimizer

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.start:
            owner = self.model.optimizer if self.optimizer else self.model
            variable = next(v for v in owner.variables
                            if v.dtype == "float32" and len(v.shape) == 2)
            variable.assign(np.full(variable.shape, np.nan, np.float32))


@pytest.mark.parametrize("optimizer", [False, True])
def test_nonfinite_state_is_never_saved_and_rotation_keeps_good(
        tmp_path, caplog, optimizer):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)), rng.normal(size=(32, 2))
    model = _model()
    with caplog.at_level(logging.WARNING):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0,
                  callbacks=[_Poison(3, optimizer),  # before the checkpoints
                             EpochCheckpoint(tmp_path, max_to_keep=1)])
    # Epochs 3-5 were not saved, so rotation kept epoch 2, the newest good.
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-2.weights.h5"]
    skipped = [r.getMessage() for r in caplog.records
               if r.getMessage().startswith("Not saving checkpoint")]
    assert len(skipped) == 3 and "epoch-3.weights.h5" in skipped[0]
    assert checkpoint_problem(tmp_path / "epoch-2.weights.h5") is None
    assert restore_latest(_model(), tmp_path) == 2


def test_rotation_never_prunes_the_checkpoint_just_written(tmp_path):
    _trained(tmp_path, epochs=2)
    for name in ("epoch-7.weights.h5", "epoch-8.weights.h5"):  # another run's
        (tmp_path / name).write_bytes((tmp_path / "epoch-2.weights.h5")
                                      .read_bytes())
    (tmp_path / "epoch-1.weights.h5").unlink()
    (tmp_path / "epoch-2.weights.h5").unlink()
    _trained(tmp_path, epochs=1, max_to_keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-1.weights.h5", "epoch-7.weights.h5", "epoch-8.weights.h5"]


def test_a_damaged_digest_attribute_is_not_taken_for_an_old_file(tmp_path):
    _trained(tmp_path, epochs=1)
    path = tmp_path / "epoch-1.weights.h5"
    with h5py.File(path, "r+") as f:  # one flipped bit in the name
        f.attrs["keras_cnnpractice_sha254"] = f.attrs.pop(DIGEST_ATTR)
    assert checkpoint_problem(path) == "its digest attribute is damaged"


def test_random_flips_are_refused_or_change_nothing_that_loads(tmp_path):
    model, _ = _trained(tmp_path, epochs=1)
    saved = model.get_weights() + [
        v.numpy() for v in model.optimizer.variables]
    good = np.frombuffer((tmp_path / "epoch-1.weights.h5").read_bytes(),
                         np.uint8)
    path, refused = tmp_path / "flipped.weights.h5", 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        raw, n = good.copy(), 1 + seed % 5
        where = rng.choice(raw.size, n, replace=False)
        raw[where] ^= rng.integers(1, 256, n).astype(np.uint8)
        path.write_bytes(raw.tobytes())
        if checkpoint_problem(path) is not None:
            refused += 1
            continue
        fresh = _model()  # accepted: what loads is exactly what was saved
        fresh.optimizer.build(fresh.trainable_variables)
        fresh.load_weights(path)
        loaded = fresh.get_weights() + [
            v.numpy() for v in fresh.optimizer.variables]
        for a, b in zip(saved, loaded):
            np.testing.assert_array_equal(a, b)
    assert refused >= 10  # most bytes of a small file are read
