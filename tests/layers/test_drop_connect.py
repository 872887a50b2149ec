"""DropConnect against numpy: exact at inference, unbiased in training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.layers import DropConnect
from tests.conftest import run_python
from tests.layers.helpers import assert_round_trips


def _numpy_conv2d_valid(x, kernel, bias):
    """Stride-1 'valid' cross-correlation, NHWC, in float64."""
    kh, kw = kernel.shape[:2]
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    # patches: (batch, out_h, out_w, channels, kh, kw)
    return np.einsum("bhwcij,ijco->bhwo", patches, kernel) + bias


def test_inference_is_the_plain_layer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6)).astype("float32")
    dense = DropConnect(keras.layers.Dense(5, activation="relu"), 0.5)
    y = dense(x, training=False).numpy()
    w, b = (v.numpy().astype("float64") for v in dense.layer.weights)
    np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)

    images = rng.normal(size=(2, 5, 5, 3)).astype("float32")
    conv = DropConnect(keras.layers.Conv2D(4, 3, bias_initializer="ones"), 0.3)
    y = conv(images, training=False).numpy()
    w, b = (v.numpy().astype("float64") for v in conv.layer.weights)
    np.testing.assert_allclose(y, _numpy_conv2d_valid(images, w, b),
                               rtol=1e-5, atol=1e-5)


def test_mask_drops_rate_of_the_weights_and_keeps_the_rest_scaled():
    # With the identity as input and no bias, the output is the kernel the
    # layer used: W * mask / (1 - rate).
    rate = 0.3
    layer = DropConnect(keras.layers.Dense(64, use_bias=False), rate, seed=3)
    eye = tf.eye(128)
    layer(eye)
    kernel = layer.layer.kernel.numpy()
    with tf.GradientTape() as tape:
        used = layer(eye, training=True)
        total = tf.reduce_sum(used)
    used = used.numpy()
    kept = used != 0
    # 8,192 Bernoulli(0.3) drops: standard deviation 0.005.
    assert abs((~kept).mean() - rate) < 0.025
    np.testing.assert_allclose(used[kept], kernel[kept] / (1 - rate), rtol=1e-6)
    # The variable is untouched; gradients reach it through the mask.
    np.testing.assert_array_equal(layer.layer.kernel.numpy(), kernel)
    grad = tape.gradient(total, layer.layer.kernel).numpy()
    np.testing.assert_allclose(grad, kept / (1 - rate), rtol=1e-6)


def test_one_mask_per_batch_and_a_fresh_one_per_call():
    layer = DropConnect(keras.layers.Dense(32), 0.5, seed=0)
    row = np.random.default_rng(1).normal(size=(1, 16)).astype("float32")
    batch = np.repeat(row, 4, axis=0)
    first = layer(batch, training=True).numpy()
    np.testing.assert_array_equal(first, np.repeat(first[:1], 4, axis=0))
    assert not np.array_equal(first, layer(batch, training=True).numpy())


def test_training_outputs_average_to_the_inference_output():
    rate, draws = 0.4, 4000
    rng = np.random.default_rng(2)
    layer = DropConnect(keras.layers.Dense(4), rate, seed=5)
    x = rng.normal(size=(2, 8)).astype("float32")
    layer(x)

    @tf.function
    def mean_of_draws(x):
        total = tf.zeros((2, 4))
        for _ in tf.range(draws):
            total += layer(x, training=True)
        return total / draws

    mean = mean_of_draws(x).numpy()
    w, b = (v.numpy().astype("float64") for v in layer.layer.weights)
    expected = x @ w + b
    np.testing.assert_allclose(layer(x, training=False), expected, rtol=1e-5,
                               atol=1e-6)
    # Each output is sum_i x_i w_ij m_ij / (1 - rate): variance
    # sum_i x_i^2 w_ij^2 rate / (1 - rate); the mean of n draws is within
    # five of its standard errors.
    std_error = np.sqrt((x.astype("float64")**2 @ w**2) * rate / (1 - rate)
                        / draws)
    assert np.all(np.abs(mean - expected) < 5 * std_error)


def test_seed_reproduces_the_masks():
    x = np.random.default_rng(3).normal(size=(2, 8)).astype("float32")

    def outputs(seed):
        layer = DropConnect(keras.layers.Dense(6, kernel_initializer="ones"),
                            0.5, seed=seed)
        return [layer(x, training=True).numpy() for _ in range(2)]

    np.testing.assert_array_equal(outputs(7), outputs(7))
    assert not np.array_equal(outputs(7)[0], outputs(8)[0])


def test_rate_zero_is_the_plain_layer_in_training():
    layer = DropConnect(keras.layers.Dense(3), 0.0)
    x = np.ones((2, 5), "float32")
    np.testing.assert_array_equal(layer(x, training=True), layer(x, training=False))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_invalid_rate(rate):
    with pytest.raises(ValueError, match="rate must be a number in"):
        DropConnect(keras.layers.Dense(2), rate)


def test_invalid_seed_and_layers_without_a_kernel():
    with pytest.raises(ValueError, match="seed=1.5"):
        DropConnect(keras.layers.Dense(2), 0.5, seed=1.5)
    built = keras.layers.BatchNormalization()
    built.build((None, 3))
    with pytest.raises(ValueError, match="type BatchNormalization"):
        DropConnect(built, 0.5)
    with pytest.raises(ValueError, match="type ReLU"):  # found at build time
        DropConnect(keras.layers.ReLU(), 0.5)(np.ones((1, 3), "float32"))


def test_round_trips(tmp_path):
    assert_round_trips(DropConnect(keras.layers.Dense(3), 0.25, seed=1,
                                   name="dc_dense"), (4,), tmp_path / "dense")
    assert_round_trips(DropConnect(keras.layers.Conv2D(2, 3, padding="same"),
                                   0.5, name="dc_conv"), (5, 5, 3),
                       tmp_path / "conv")
    config = DropConnect(keras.layers.Dense(3), 0.25, seed=1).get_config()
    assert config["rate"] == 0.25 and config["seed"] == 1
    assert config["layer"]["class_name"] == "Dense"


def test_fit_under_mirrored_strategy_with_stochastic_depth():
    # DropConnect and StochasticDepth in one model trained by fit() on two
    # replicas: the replicas' variables stay identical.
    script = """
import numpy as np
from keras_cnnpractice.strategies import get_strategy
strategy = get_strategy("mirrored", num_devices=2)
import keras
from keras_cnnpractice.layers import DropConnect, StochasticDepth
with strategy.scope():
    inputs = keras.Input((6, 6, 2))
    x = DropConnect(keras.layers.Conv2D(4, 3, padding="same"), 0.5, seed=1)(inputs)
    r = keras.layers.Conv2D(4, 3, padding="same")(x)
    x = StochasticDepth(0.5, seed=2)([x, r])
    x = keras.layers.Flatten()(x)
    outputs = DropConnect(keras.layers.Dense(3), 0.5, seed=3)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
rng = np.random.default_rng(0)
x = rng.normal(size=(32, 6, 6, 2)).astype("float32")
y = rng.normal(size=(32, 3)).astype("float32")
history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
assert all(np.isfinite(history.history["loss"]))
for v in model.trainable_variables:
    copies = [c.numpy() for c in v.value.values]
    assert len(copies) == 2, len(copies)
    np.testing.assert_array_equal(copies[0], copies[1])
print("replicas in sync")
"""
    assert "replicas in sync" in run_python(["-c", script]).stdout


def test_dtype_policy_follows_the_wrapped_layer():
    x = np.random.default_rng(4).normal(size=(2, 6, 6, 3))
    layer = DropConnect(keras.layers.Conv2D(4, 3, dtype="float64"), 0.5)
    assert layer.compute_dtype == "float64"
    for training in (True, False):
        assert layer(x, training=training).dtype == "float64"
    mixed = DropConnect(keras.layers.Dense(3, dtype="mixed_bfloat16"), 0.5)
    y = mixed(x[:, 0, 0].astype("float32"), training=True)
    assert y.dtype == "bfloat16" and mixed.layer.kernel.dtype == "float32"


def test_wrapped_layers_activity_loss_is_kept_in_training():
    # l2 activity regularizer: 0.01 * sum(y^2) / batch, on the output the
    # masked kernel gave.
    layer = DropConnect(keras.layers.Dense(3, activity_regularizer="l2"), 0.5,
                        seed=2)
    x = np.random.default_rng(5).normal(size=(4, 6)).astype("float32")
    for training in (True, False):
        y = layer(x, training=training).numpy().astype("float64")
        (loss,) = layer.losses
        assert float(loss) == pytest.approx(0.01 * np.sum(y**2) / 4, rel=1e-5)
