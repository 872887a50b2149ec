"""LRMultiplierOptimizer: each group moves at multiplier * learning rate."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.training import EpochCheckpoint
from keras_cnnpractice.training import restore_latest
from keras_cnnpractice.transfer import LRMultiplierOptimizer
from tests.conftest import run_python
from tests.transfer.helpers import three_dense

GROUPS = {"frozen": ["early"], "pretrained": ["mid"], "new": ["head"]}
RATES = {"frozen": 0.0, "pretrained": 0.01, "new": 0.1}
LAYER_GROUP = {"early": "frozen", "mid": "pretrained", "head": "new"}


def _data(n=16):
    rng = np.random.default_rng(1)
    return (rng.normal(size=(n, 5)).astype("float32"),
            rng.normal(size=(n, 3)).astype("float32"))


def _weights(model):
    return {v.path: v.numpy().copy() for v in model.weights}


def _gradients(model, x, y):
    """d(mean squared error)/d(weights), by autodiff of the plain model."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    grads = tape.gradient(loss, model.trainable_variables)
    return {v.path: g.numpy() for v, g in zip(model.trainable_variables, grads)}


def _one_step(optimizer):
    model = three_dense(4)
    x, y = _data()
    before, grads = _weights(model), _gradients(model, x, y)
    model.compile(optimizer=optimizer, loss="mse")
    model.train_on_batch(x, y)
    return model, before, grads


def test_sgd_moves_each_group_by_minus_rate_times_gradient():
    lr = 0.5
    model, before, grads = _one_step(LRMultiplierOptimizer(
        keras.optimizers.SGD(lr), GROUPS, RATES))
    for path, value in _weights(model).items():
        multiplier = RATES[LAYER_GROUP[path.split("/")[0]]]
        if multiplier == 0:
            np.testing.assert_array_equal(value, before[path])  # bit for bit
        else:
            np.testing.assert_allclose(value - before[path],
                                       -lr * multiplier * grads[path],
                                       rtol=1e-4, atol=1e-7)  # float32 ulp


def test_adam_first_step_is_rate_times_multiplier_per_group():
    # Adam's first step is lr * g / (|g| + eps'), i.e. lr * sign(g): scaling
    # the gradients would not change it; scaling the learning rate does.
    lr = 1e-2
    model, before, grads = _one_step(LRMultiplierOptimizer(
        keras.optimizers.Adam(lr, epsilon=1e-12), GROUPS, RATES))
    steps = {}
    for path, value in _weights(model).items():
        group = LAYER_GROUP[path.split("/")[0]]
        if RATES[group] == 0:
            np.testing.assert_array_equal(value, before[path])
            continue
        step = value - before[path]
        np.testing.assert_allclose(step, -lr * RATES[group]
                                   * np.sign(grads[path]), rtol=1e-3)
        steps.setdefault(group, []).append(np.abs(step).mean())
    ratio = np.mean(steps["new"]) / np.mean(steps["pretrained"])
    assert ratio == pytest.approx(RATES["new"] / RATES["pretrained"], rel=1e-3)


@pytest.mark.parametrize("make", [
    lambda: keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(0.01, 10), weight_decay=0.1),
    lambda: keras.optimizers.SGD(0.1, momentum=0.9, global_clipnorm=0.5,
                                 use_ema=True),
    lambda: keras.optimizers.RMSprop(0.01, gradient_accumulation_steps=2),
], ids=["adam_schedule_decay", "momentum_clip_ema", "rmsprop_accumulate"])
@pytest.mark.slow
def test_equals_the_wrapped_optimizer_when_every_multiplier_is_one(make):
    x, y = _data(32)
    plain, grouped = three_dense(4), three_dense(4)
    optimizers = (make(), LRMultiplierOptimizer(
        make(), GROUPS, {"frozen": 1, "pretrained": 1, "new": 1}))
    for model, optimizer in zip((plain, grouped), optimizers):
        for step in range(6):
            with tf.GradientTape() as tape:
                batch = slice(8 * (step % 4), 8 * (step % 4 + 1))
                loss = tf.reduce_mean(tf.square(model(x[batch]) - y[batch]))
            variables = model.trainable_variables
            optimizer.apply(tape.gradient(loss, variables), variables)
    for a, b in zip(plain.weights, grouped.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    plain_optimizer, grouped_optimizer = optimizers
    assert int(grouped_optimizer.iterations) == int(plain_optimizer.iterations)
    assert float(grouped_optimizer.learning_rate) == float(
        plain_optimizer.learning_rate)


def _grouped_adam():
    return LRMultiplierOptimizer(keras.optimizers.Adam(1e-2), GROUPS,
                                 {"frozen": 0, "pretrained": 0.5, "new": 1})


def test_checkpoints_and_keras_files_keep_every_group_state(tmp_path):
    x, y = _data(32)
    model = three_dense(4)
    model.compile(optimizer=_grouped_adam(), loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[EpochCheckpoint(tmp_path / "ckpt")])
    # The frozen group has no optimizer state at all.
    assert not any("frozen" in v.path for v in model.optimizer.variables)

    fresh = three_dense(4, seed=7)
    fresh.compile(optimizer=_grouped_adam(), loss="mse")
    assert restore_latest(fresh, tmp_path / "ckpt") == 2
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, LRMultiplierOptimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for other in (fresh, loaded):
        assert int(other.optimizer.iterations) == 8
        assert len(other.optimizer.variables) == len(model.optimizer.variables)
        for a, b in zip(model.optimizer.variables, other.optimizer.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Restored state continues exactly as the original run does.
    for m in (model, fresh, loaded):
        m.train_on_batch(x[:8], y[:8])
    for a, b, c in zip(model.weights, fresh.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())


def test_callbacks_set_every_group_rate_through_learning_rate():
    x, y = _data(16)
    model = three_dense(4)
    model.compile(optimizer=LRMultiplierOptimizer(
        keras.optimizers.SGD(0.1), GROUPS, RATES), loss="mse")
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(_weights(model)))
    # Learning rate 0 from the second epoch on: nothing may move then.
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: 0.0 if epoch else lr)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[schedule, record])
    assert float(model.optimizer.learning_rate) == 0.0
    assert int(model.optimizer.iterations) == 4
    for path in seen[0]:
        np.testing.assert_array_equal(seen[0][path], seen[1][path])


def test_mixed_precision_loss_scaling_wraps_it():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model, before, _ = _one_step(LRMultiplierOptimizer(
            keras.optimizers.SGD(0.5), GROUPS, RATES))
    finally:
        keras.config.set_dtype_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    after = _weights(model)
    np.testing.assert_array_equal(after["early/kernel"], before["early/kernel"])
    assert not np.array_equal(after["head/kernel"], before["head/kernel"])


def test_longest_matching_entry_decides_the_group():
    optimizer = LRMultiplierOptimizer(
        keras.optimizers.SGD(0.1), {"pretrained": ["stage1"],
                                    "frozen": ["stage1/conv0"]})
    assert optimizer.group_of("stage1/conv0/kernel") == "frozen"
    assert optimizer.group_of("model/stage1/conv1/kernel") == "pretrained"
    assert optimizer.group_of("stage10/kernel") == "pretrained"  # default
    assert optimizer.group_of("head/kernel") == "pretrained"


@pytest.mark.parametrize("kwargs, match", [
    ({"multipliers": {"new": -1.0}}, "multiplier=|>= 0"),
    ({"multipliers": {"new": float("nan")}}, ">= 0"),
    ({"groups": {"other": ["head"]}}, "has no multiplier"),
    ({"groups": {"new": ["head"], "frozen": ["head"]}}, "two groups"),
    ({"groups": {"new": [3]}}, "Group entries"),
    ({"groups": ["head"]}, "groups must be a dict"),
    ({"default_group": "other"}, "default_group="),
    ({"optimizer": "adam"}, "plain Keras optimizer"),
    ({"optimizer": keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD())}, "plain Keras optimizer"),
])
def test_bad_arguments(kwargs, match):
    arguments = dict(optimizer=keras.optimizers.SGD(0.1),
                     groups={"new": ["head"]})
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LRMultiplierOptimizer(**arguments)


_MIRRORED = """
from keras_cnnpractice.strategies import get_strategy
strategy = get_strategy("mirrored", 2)
import keras, numpy as np, tensorflow as tf
from keras_cnnpractice.transfer import LRMultiplierOptimizer
rng = np.random.default_rng(1)
data = tf.data.Dataset.from_tensor_slices(
    (rng.normal(size=(16, 5)).astype("float32"),
     rng.normal(size=(16, 3)).astype("float32"))).batch(8)
weights = []
for scope in (tf.distribute.get_strategy(), strategy):
    with scope.scope():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,))
        x = keras.layers.Dense(4, name="early")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
        start = model.get_layer("early").kernel.numpy()
        model.compile(LRMultiplierOptimizer(keras.optimizers.Adam(0.01), {
            "frozen": ["early"], "new": ["head"]}), "mse")
        model.fit(data, epochs=2, verbose=0)
        assert np.array_equal(start, model.get_layer("early").kernel.numpy())
        weights.append([w.numpy() for w in model.weights])
assert strategy.num_replicas_in_sync == 2
for a, b in zip(*weights):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("same")
"""


def test_mirrored_strategy_replicas_update_like_one_device():
    assert run_python(["-c", _MIRRORED], timeout=300).stdout.strip()[-4:] \
        == "same"
