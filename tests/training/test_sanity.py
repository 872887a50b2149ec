"""Sanity checks: initial loss against ln(C), overfitting 20 digits."""

import math

import keras
import numpy as np
import pytest

from keras_cnnpractice.data import load_mnist5k
from keras_cnnpractice.data import make_dataset
from keras_cnnpractice.training.regularization import add_l2
from keras_cnnpractice.training.sanity import check_initial_loss
from keras_cnnpractice.training.sanity import overfit_tiny
from keras_cnnpractice.training.sanity import take_examples
from keras_cnnpractice.training.sanity import unregularized_clone


@pytest.fixture(scope="module")
def digits():
    """Two training digits of each class (the file groups them by class)."""
    (x, y), _ = load_mnist5k()
    rows = np.concatenate([np.flatnonzero(y == d)[:2] for d in range(10)])
    return x[rows].astype(np.float32), y[rows].astype(np.int64)


def _classifier(init_stddev=None, dropout=0.0, batch_norm=False, seed=0):
    keras.utils.set_random_seed(seed)
    init = ("glorot_uniform" if init_stddev is None
            else keras.initializers.RandomNormal(stddev=init_stddev, seed=seed))
    layers = [keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
              keras.layers.Flatten(), keras.layers.Dense(64, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(10, activation="softmax",
                                     kernel_initializer=init))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_small_init_starts_at_ln_c(digits):
    # Nearly zero scores: a uniform softmax, whose cross-entropy is ln 10.
    result = check_initial_loss(_classifier(init_stddev=1e-5), digits)
    assert result.ok and result.num_classes == 10 and result.num_examples == 20
    assert result.expected == pytest.approx(math.log(10), abs=1e-12)
    assert result.data_loss == pytest.approx(math.log(10), abs=1e-3)
    assert result.regularization_loss == 0.0
    assert "OK" in result.message


def test_data_loss_matches_keras_crossentropy_for_arrays_and_datasets(digits):
    model = _classifier()
    x, y = digits
    reference = float(np.mean(keras.losses.sparse_categorical_crossentropy(
        y, model.predict(x, verbose=0))))
    from_arrays = check_initial_loss(model, digits, batch_size=7)
    from_dataset = check_initial_loss(
        model, make_dataset(x, y, batch_size=6, training=False))
    assert from_arrays.data_loss == pytest.approx(reference, rel=1e-5)
    assert from_dataset.data_loss == pytest.approx(reference, rel=1e-5)
    assert check_initial_loss(model, digits, max_examples=8).num_examples == 8


def test_regularization_raises_the_total_not_the_data_loss(digits):
    model = _classifier(init_stddev=1e-5)
    before = check_initial_loss(model, digits)
    add_l2(model, 10.0)
    after = check_initial_loss(model, digits)
    kernels = [v.numpy() for v in model.trainable_variables
               if v.name == "kernel"]
    assert after.data_loss == pytest.approx(before.data_loss, abs=1e-9)
    assert after.regularization_loss == pytest.approx(
        10.0 * sum(float(np.sum(k.astype(np.float64) ** 2)) for k in kernels),
        rel=1e-4)
    assert after.total_loss > before.total_loss + 1.0
    assert after.total_loss == pytest.approx(
        after.data_loss + after.regularization_loss)


def test_large_init_is_flagged(digits):
    result = check_initial_loss(_classifier(init_stddev=3.0), digits)
    assert not result.ok and result.data_loss > 2 * math.log(10)
    assert "initialized too large" in result.message


def test_check_leaves_model_and_batch_norm_statistics_alone(digits):
    model = _classifier(batch_norm=True, dropout=0.5)
    model.trainable_variables[0].regularizer = keras.regularizers.L2(1.0)
    before = [w.copy() for w in model.get_weights()]
    result = check_initial_loss(model, digits)
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert model.trainable_variables[0].regularizer is not None
    assert result.regularization_loss > 0


def test_unregularized_clone_drops_penalties_and_dropout(digits):
    model = _classifier(dropout=0.9)
    add_l2(model, 1.0)
    clone = unregularized_clone(model)
    assert float(sum(model.losses)) > 0 and not clone.losses
    x, _ = digits
    # Dropout at rate 0: training mode gives the inference-mode outputs.
    np.testing.assert_allclose(clone(x, training=True), model(x), atol=1e-6)
    assert all(v.regularizer is not None for v in model.trainable_variables
               if v.name == "kernel")


def test_overfit_twenty_digits(digits):
    model = _classifier(dropout=0.5)
    add_l2(model, 1.0)  # strong enough to stop memorization if it stayed
    before = [w.copy() for w in model.get_weights()]
    result = overfit_tiny(model, digits, n=20, epochs=100)
    assert result.ok, result.message
    assert result.final_accuracy == 1.0 and result.num_examples == 20
    assert result.epochs_run == len(result.losses) < 100
    assert result.losses[-1] < result.losses[0]
    # Epoch 1's loss is the data loss alone: the penalties were removed.
    assert result.losses[0] == pytest.approx(
        check_initial_loss(model, digits).data_loss, rel=1e-4)
    assert all(np.array_equal(a, b)
               for a, b in zip(before, model.get_weights()))
    assert "reached training accuracy 1.000 on 20 examples" in result.message


def test_overfit_with_zero_learning_rate_says_too_low(digits):
    result = overfit_tiny(_classifier(), digits, epochs=15, learning_rate=0.0)
    assert not result.ok and result.epochs_run == 15
    assert result.losses == [result.losses[0]] * 15
    assert result.learning_rate == 0.0
    assert "loss not decreasing" in result.message
    assert "learning rate (0) is probably too low" in result.message


def test_overfit_with_huge_learning_rate_says_too_high(digits):
    model = _classifier()
    model.compile(optimizer=keras.optimizers.SGD(1e4),
                  loss="sparse_categorical_crossentropy")
    result = overfit_tiny(model, digits, epochs=15)
    assert not result.ok and result.learning_rate == 1e4
    assert "learning rate (1e+04) is probably too high" in result.message


def test_take_examples_from_a_dataset_of_batches(digits):
    x, y = digits
    images, labels = take_examples(
        make_dataset(x, keras.utils.to_categorical(y, 10), 6,
                     training=False), n=9)
    np.testing.assert_array_equal(images, x[:9])
    np.testing.assert_array_equal(labels, y[:9])  # one-hot rows accepted


@pytest.mark.parametrize("kwargs, message", [
    ({"tolerance": 0}, "tolerance=0"),
    ({"num_classes": 1}, "num_classes=1"),
    ({"num_classes": 12}, "Received: num_classes=12"),
])
def test_bad_arguments(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_initial_loss(_classifier(), digits, **kwargs)


def test_bad_data(digits):
    x, y = digits
    model = _classifier()
    with pytest.raises(ValueError, match=r"Labels must lie in \[0, 10\)"):
        check_initial_loss(model, (x, y + 5))
    with pytest.raises(ValueError, match="20 images, 3 labels"):
        overfit_tiny(model, (x, y[:3]))
    with pytest.raises(ValueError, match="Received: a tuple of 3 items"):
        check_initial_loss(model, (x, y, y))
    with pytest.raises(ValueError, match="epochs=0"):
        overfit_tiny(model, digits, epochs=0)
    with pytest.raises(ValueError, match="learning_rate=-1"):
        overfit_tiny(model, digits, learning_rate=-1)


def test_unregularized_clone_reaches_nested_layers(digits):
    # A sub-model and a wrapper: their inner layers lose penalties and
    # noise too (found through public attributes, not Keras internals).
    from keras_cnnpractice.layers import DropConnect
    inner = keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(32, activation="relu",
                           activity_regularizer=keras.regularizers.L2(1.0)),
        keras.layers.Dropout(0.9)], name="inner")
    model = keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(), inner,
        DropConnect(keras.layers.Dense(10), 0.5)])
    model(digits[0])
    assert float(sum(model.losses)) > 0
    clone = unregularized_clone(model)
    x, _ = digits
    assert not clone.losses or float(sum(clone.losses)) == 0
    np.testing.assert_allclose(clone(x, training=True), model(x), atol=1e-5)
