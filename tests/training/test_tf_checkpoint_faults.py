"""The parameter-server loop's TensorFlow checkpoints survive the same
faults as train.py's: a truncated, altered or non-finite newest checkpoint
is set aside and the newest good one restored."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.training import restore_newest_good


def _three_checkpoints(directory, nan_in_last=False):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, directory,
                                         max_to_keep=5)
    kernel = model.layers[0].kernel
    for k in range(3):
        value = np.nan if (nan_in_last and k == 2) else float(k)
        kernel.assign(np.full((3, 2), value, "float32"))
        manager.save()
    kernel.assign(np.full((3, 2), -7.0, "float32"))  # restore must change it
    return model, optimizer, checkpoint, manager


def _damage(prefix, how):
    (data,) = [p for p in prefix.parent.glob(prefix.name + ".data-*")]
    raw = bytearray(data.read_bytes())
    if how == "truncate":
        raw = raw[:len(raw) // 2]
    else:  # flip every byte of the second half
        raw[len(raw) // 2:] = bytes(b ^ 0xFF for b in raw[len(raw) // 2:])
    data.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["truncate", "flip", "nan"])
def test_newest_bad_checkpoint_is_set_aside(tmp_path, how):
    model, optimizer, checkpoint, manager = _three_checkpoints(
        tmp_path, nan_in_last=how == "nan")
    newest = tmp_path / "ckpt-3"
    if how != "nan":
        _damage(newest, how)
    restored = restore_newest_good(checkpoint, manager, model, optimizer)
    assert restored == str(tmp_path / "ckpt-2")
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), 1.0)
    assert not list(tmp_path.glob("ckpt-3.index"))
    assert list(tmp_path.glob("ckpt-3.index.corrupt"))  # kept, not deleted


def test_no_good_checkpoint_restores_nothing(tmp_path):
    model, optimizer, checkpoint, manager = _three_checkpoints(tmp_path)
    for k in (1, 2, 3):
        _damage(tmp_path / f"ckpt-{k}", "truncate")
    assert restore_newest_good(checkpoint, manager, model, optimizer) is None
