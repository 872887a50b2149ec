"""load_pretrained: .keras files, train.py checkpoints and model_dirs."""

import json

import keras
import numpy as np
import pytest

from keras_cnnpractice import models
from keras_cnnpractice.training import EpochCheckpoint
from keras_cnnpractice.transfer import load_pretrained


def _train_run(model_dir, flags):
    """A train.py-like model_dir: flags.json and one epoch's checkpoint."""
    model_dir.mkdir()
    (model_dir / "flags.json").write_text(json.dumps(flags))
    keras.utils.set_random_seed(0)
    model = models.create_model(flags["model"], (28, 28, 1), 5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (4, 28, 28, 1)).astype("float32"),
              np.arange(4) % 5, epochs=1, verbose=0,
              callbacks=[EpochCheckpoint(model_dir / "checkpoints")])
    return model


def _assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_model_dir_and_checkpoint_rebuild_the_run_model(tmp_path):
    run = tmp_path / "run"
    trained = _train_run(run, {"model": "lenet5", "dataset": "mnist5k",
                               "classes": "5-9"})
    # The input shape from the run's dataset, then given.
    for path, shape in ((run, None),
                        (run / "checkpoints" / "epoch-1.weights.h5",
                         (28, 28, 1))):
        loaded = load_pretrained(path, input_shape=shape)
        assert getattr(loaded, "optimizer", None) is None  # weights only
        assert loaded.output_shape == (None, 5)
        assert loaded.input_shape == (None, 28, 28, 1)  # mnist5k's
        _assert_same_weights(trained, loaded)


def test_keras_file(tmp_path):
    model = models.create_model("lenet5", (28, 28, 1), 3)
    model.save(tmp_path / "model.keras")
    _assert_same_weights(model, load_pretrained(tmp_path / "model.keras"))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No pretrained model"):
        load_pretrained(tmp_path / "missing.keras")
    with pytest.raises(FileNotFoundError, match="no flags.json"):
        load_pretrained(tmp_path)
    (tmp_path / "flags.json").write_text(json.dumps({"model": "lenet5"}))
    with pytest.raises(FileNotFoundError, match="No complete checkpoint"):
        load_pretrained(tmp_path)
    (tmp_path / "bad.keras").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="bad.keras"):
        load_pretrained(tmp_path / "bad.keras")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="path="):
        load_pretrained(tmp_path / "notes.txt")
    orphan = tmp_path / "elsewhere"
    orphan.mkdir()
    (orphan / "w.weights.h5").write_bytes(b"x")
    (tmp_path / "flags.json").unlink()
    with pytest.raises(FileNotFoundError, match="weights only"):
        load_pretrained(orphan / "w.weights.h5")

    run = tmp_path / "run"
    _train_run(run, {"model": "lenet5", "dataset": "mnist5k",
                     "classes": "5-9"})
    checkpoint = run / "checkpoints" / "epoch-1.weights.h5"
    with pytest.raises(ValueError, match="class count"):
        load_pretrained(checkpoint, num_classes=3, input_shape=(28, 28, 1))
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match="Cannot load the weights"):
        load_pretrained(checkpoint, input_shape=(28, 28, 1))
