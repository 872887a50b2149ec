"""replace_head and fine_tune: groups, frozen layers, the two stages."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice import models
from keras_cnnpractice.training import EpochCheckpoint
from keras_cnnpractice.training import restore_latest
from keras_cnnpractice.transfer import compile_with_groups
from keras_cnnpractice.transfer import fine_tune
from keras_cnnpractice.transfer import replace_head
from tests.transfer.helpers import three_dense


@pytest.mark.parametrize("name, old_head", [("mnist_cnn", "probabilities"),
                                            ("lenet5", "output")])
def test_replace_head_keeps_the_trunk_and_changes_the_classes(name, old_head):
    model = models.create_model(name, (28, 28, 1), 10)
    new = replace_head(model, 7)
    assert new.output_shape == (None, 7)
    assert new.layers[-1].name == "new_head"
    assert old_head not in [x.name for x in new.layers]
    for layer in new.layers[:-1]:  # the same layer objects, so same weights
        assert model.get_layer(layer.name) is layer
    # The new head on the old penultimate features, in numpy.
    images = np.random.default_rng(0).uniform(
        0, 255, (3, 28, 28, 1)).astype("float32")
    penultimate = keras.Model(model.input, model.get_layer(old_head).input)(
        images).numpy()
    kernel, bias = (w.numpy() for w in new.layers[-1].weights)
    logits = penultimate @ kernel + bias
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(new(images).numpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_replace_head_bad_arguments():
    model = models.create_model("lenet5", (28, 28, 1), 10)
    with pytest.raises(ValueError, match="num_classes=0"):
        replace_head(model, 0)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        replace_head(model, 3, head="nope")
    with pytest.raises(ValueError, match="only output"):
        replace_head(model, 3, head="f6")
    with pytest.raises(ValueError, match="layer of"):
        replace_head(model, 3, head=keras.layers.Dense(3))


def _dataset(n=8, batch=8):
    rng = np.random.default_rng(1)
    return tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(n, 5)).astype("float32"),
         rng.normal(size=(n, 3)).astype("float32"))).batch(batch)


def _weights(model):
    return {v.path: v.numpy().copy() for v in model.weights}


def test_fine_tune_moves_each_group_at_its_rate_and_freezes_frozen():
    model, lr = three_dense(6), 0.5
    x, y = next(iter(_dataset()))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables)))
    before = _weights(model)
    history = fine_tune(model, _dataset(), groups={
        "frozen": ["early"], "new": [model.get_layer("head")]},
        base_lr=lr, optimizer="sgd", epochs=1, loss="mse", metrics=())
    assert isinstance(history, keras.callbacks.History)
    assert not model.get_layer("early").trainable  # no work done for it
    multiplier = {"early": 0.0, "mid": 0.01, "head": 0.1}  # mid: default
    for path, value in _weights(model).items():
        m = multiplier[path.split("/")[0]]
        if m == 0:
            np.testing.assert_array_equal(value, before[path])
        else:
            np.testing.assert_allclose(value - before[path],
                                       -lr * m * grads[path].numpy(),
                                       rtol=1e-4, atol=1e-7)


def test_multi_stage_trains_the_head_alone_until_its_loss_plateaus():
    model = three_dense(6)
    trunk = ("early", "mid")
    start = _weights(model)
    snapshots = []
    record = keras.callbacks.LambdaCallback(
        on_train_end=lambda logs: snapshots.append(_weights(model)))
    first, second = fine_tune(
        model, _dataset(), groups={"new": ["head"]}, base_lr=0.1,
        optimizer="adam", multipliers={"pretrained": 0.1, "new": 1.0},
        epochs=2, multi_stage=True, stage1_max_epochs=10, stage1_patience=1,
        stage1_min_delta=1e9, loss="mse", metrics=(), callbacks=[record])
    # No epoch can lower the loss by 1e9: stage 1 stops after patience + 1.
    assert len(first.history["loss"]) == 2
    assert len(second.history["loss"]) == 2
    after_stage1, after_stage2 = snapshots
    for path in start:
        layer = path.split("/")[0]
        if layer in trunk:
            np.testing.assert_array_equal(after_stage1[path], start[path])
            assert not np.array_equal(after_stage2[path], after_stage1[path])
        else:
            assert not np.array_equal(after_stage1[path], start[path])
    assert all(model.get_layer(name).trainable for name in trunk)


def test_multi_stage_stops_at_max_epochs_without_a_plateau():
    first, _ = fine_tune(three_dense(6), _dataset(), groups={"new": ["head"]},
                         base_lr=0.01, epochs=1, multi_stage=True,
                         stage1_max_epochs=3, stage1_patience=5, loss="mse",
                         metrics=())
    assert len(first.history["loss"]) == 3


def test_compile_with_groups_then_resume_from_a_checkpoint(tmp_path):
    groups = {"frozen": ["early"], "new": ["head"]}
    model = three_dense(6)
    compile_with_groups(model, groups, base_lr=0.01, loss="mse", metrics=())
    model.fit(_dataset(16), epochs=2, verbose=0,
              callbacks=[EpochCheckpoint(tmp_path)])
    fresh = three_dense(6, seed=3)
    optimizer = compile_with_groups(fresh, groups, base_lr=0.01, loss="mse",
                                    metrics=())
    assert not fresh.get_layer("early").trainable
    assert restore_latest(fresh, tmp_path) == 2
    assert int(optimizer.iterations) == 4
    for a, b in zip(model.optimizer.variables, optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kwargs, match", [
    ({"groups": {"other": ["head"]}}, "has no multiplier"),
    ({"groups": {"new": ["nope"]}}, "no layer 'nope'"),
    ({"groups": {"new": ["head"], "frozen": ["head"]}}, "two groups"),
    ({"groups": {"new": ["head"]}, "default_group": None}, "in no group"),
    ({"groups": {"frozen": ["early"]}, "multi_stage": True}, "'new' group"),
    ({"optimizer": keras.optimizers.SGD(0.1), "base_lr": 0.1}, "not both"),
    ({"optimizer": "nonsense"}, "optimizer name"),
    ({"base_lr": -1.0}, "base_lr"),
    ({"multipliers": {"new": -1, "pretrained": 1}}, ">= 0"),
    ({"epochs": 0}, "epochs=0"),
    ({"multi_stage": True, "stage1_max_epochs": 0}, "stage1_max_epochs=0"),
])
def test_fine_tune_bad_arguments(kwargs, match):
    arguments = dict(groups={"new": ["head"]}, epochs=1, loss="mse")
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fine_tune(three_dense(6), _dataset(), **arguments)
