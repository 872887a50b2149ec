"""PCALighting: adapt() against numpy's covariance PCA, the offsets it adds,
inference identity, dtypes, seeding, errors and saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVALUES
from keras_cnnpractice.layers.pca_lighting import IMAGENET_EIGENVECTORS
from keras_cnnpractice.layers.pca_lighting import PCALighting
from tests.layers.helpers import assert_round_trips


def _images(n=20, height=6, width=5, seed=0):
    """RGB images with correlated channels and a non-zero mean."""
    rng = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.6, 0.3], [0.0, 0.5, 0.2], [0.0, 0.0, 0.1]])
    pixels = rng.normal(size=(n * height * width, 3)) @ mixing + [0.4, 0.5, 0.6]
    return pixels.reshape(n, height, width, 3).astype("float32")


def _numpy_pca(images):
    pixels = images.reshape(-1, 3).astype("float64")
    values, vectors = np.linalg.eigh(np.cov(pixels.T, bias=True))
    return values[::-1], vectors[:, ::-1]  # descending, as the layer stores


def _assert_matches_numpy(layer, images):
    want_values, want_vectors = _numpy_pca(images)
    values = layer.eigenvalue_weights.numpy()
    vectors = layer.eigenvector_weights.numpy()
    np.testing.assert_allclose(values, want_values, rtol=1e-6)
    # Same eigenvectors up to sign: |<v_i, w_i>| = 1, column by column.
    np.testing.assert_allclose(np.abs((vectors * want_vectors).sum(0)), 1.0,
                               atol=1e-6)
    # The layer's sign convention: largest-magnitude component positive.
    assert np.all(vectors[np.abs(vectors).argmax(0), range(3)] > 0)


def _offsets(layer, images, training=True):
    """The per-image offsets, after checking they are constant per image."""
    diff = np.asarray(layer(images, training=training), "float64") - images
    offsets = diff[:, 0, 0, :]
    np.testing.assert_allclose(diff, np.broadcast_to(offsets[:, None, None],
                                                     diff.shape), atol=1e-6)
    return offsets


def test_adapt_on_an_array_matches_numpy():
    images = _images()
    layer = PCALighting()
    layer.adapt(images, batch_size=7)  # 7 does not divide 20: a short batch
    _assert_matches_numpy(layer, images)
    whole = PCALighting()
    whole.adapt(tf.constant(images))
    np.testing.assert_allclose(whole.eigenvalue_weights.numpy(),
                               layer.eigenvalue_weights.numpy(), rtol=1e-6)


def test_adapt_on_a_dataset_of_image_label_batches_matches_numpy():
    images = _images(seed=1)
    labels = np.arange(len(images))
    layer = PCALighting()
    layer.adapt(tf.data.Dataset.from_tensor_slices((images, labels)).batch(6))
    _assert_matches_numpy(layer, images)
    # Unbatched images are batched; `steps` stops after that many batches.
    unbatched = PCALighting()
    unbatched.adapt(tf.data.Dataset.from_tensor_slices(images), batch_size=4,
                    steps=2)
    _assert_matches_numpy(unbatched, images[:8])


def test_adapt_accuracy_with_a_large_pixel_offset():
    # Values near 1000 with unit spread: a raw sum of squares would lose
    # digits; the shifted accumulation keeps them.
    images = (_images(seed=2) + 1000.0).astype("float64")
    layer = PCALighting()
    layer.adapt(images, batch_size=3)
    want_values, _ = _numpy_pca(images)
    np.testing.assert_allclose(layer.eigenvalue_weights.numpy(), want_values,
                               rtol=1e-5)


def test_offset_is_constant_per_image_and_alpha_has_alphastd():
    layer = PCALighting(alphastd=0.1, eigenvalues=IMAGENET_EIGENVALUES,
                        eigenvectors=IMAGENET_EIGENVECTORS, seed=0)
    images = np.random.default_rng(3).uniform(size=(4000, 2, 2, 3))
    offsets = _offsets(layer, images.astype("float32"))
    # offset = V @ (alpha * lambda): solve for alpha.
    vectors = np.asarray(IMAGENET_EIGENVECTORS)
    alpha = np.linalg.solve(vectors, offsets.T).T / IMAGENET_EIGENVALUES
    np.testing.assert_allclose(alpha.std(axis=0), 0.1, rtol=0.08)
    np.testing.assert_allclose(alpha.mean(axis=0), 0.0, atol=0.01)
    assert abs(np.corrcoef(alpha.T)[0, 1]) < 0.1  # independent per component


def test_offset_lies_in_the_span_of_the_principal_components():
    # Grey images vary only along (1, 1, 1): the covariance has rank 1, so
    # every offset is a multiple of (1, 1, 1).
    grey = np.random.default_rng(4).uniform(size=(30, 4, 4, 1))
    images = np.repeat(grey, 3, axis=-1).astype("float32")
    layer = PCALighting(alphastd=0.5, seed=1)
    layer.adapt(images)
    np.testing.assert_allclose(layer.eigenvalue_weights.numpy()[1:], 0.0,
                               atol=1e-7)
    offsets = _offsets(layer, images)
    assert np.abs(offsets).max() > 1e-3
    along_grey = np.repeat(offsets.mean(1, keepdims=True), 3, axis=1)
    np.testing.assert_allclose(offsets, along_grey, atol=1e-6)


def test_identity_at_inference():
    images = _images(n=3)
    layer = PCALighting(eigenvalues=IMAGENET_EIGENVALUES,
                        eigenvectors=IMAGENET_EIGENVECTORS, seed=2)
    for kwargs in ({"training": False}, {"training": None}):
        np.testing.assert_array_equal(layer(images, **kwargs), images)
    # Like Keras's augmentation layers, a direct call defaults to training.
    assert np.abs(layer(images) - images).max() > 1e-4
    inputs = keras.Input((6, 5, 3))
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_array_equal(model.predict(images, verbose=0), images)
    assert np.abs(model(images, training=True) - images).max() > 1e-4
    assert np.all(_offsets(PCALighting(alphastd=0.0), images) == 0)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("shape", [(6, 5, 3), (2, 6, 5, 3)])
def test_dtype_and_shape_are_preserved(dtype, shape):
    layer = PCALighting(eigenvalues=IMAGENET_EIGENVALUES,
                        eigenvectors=IMAGENET_EIGENVECTORS, seed=3)
    images = np.full(shape, 0.5, dtype)
    for training in (False, True):
        out = layer(images, training=training)
        assert out.dtype == dtype and tuple(out.shape) == shape
    diff = (np.asarray(out, "float64") - 0.5).reshape(-1, 6 * 5, 3)
    assert np.abs(diff).max() > 1e-3
    assert np.all(diff == diff[:, :1])  # constant per image


def test_same_seed_same_output():
    images = _images(n=4)
    def make(seed):
        return PCALighting(eigenvalues=IMAGENET_EIGENVALUES,
                           eigenvectors=IMAGENET_EIGENVECTORS, seed=seed)
    first, second, other = make(7), make(7), make(8)
    a = first(images, training=True)
    np.testing.assert_array_equal(a, second(images, training=True))
    assert not np.allclose(a, other(images, training=True))
    assert not np.allclose(a, first(images, training=True))  # fresh alphas


def test_in_a_tf_data_map_on_batches():
    images = _images(n=8)
    layer = PCALighting(eigenvalues=IMAGENET_EIGENVALUES,
                        eigenvectors=IMAGENET_EIGENVECTORS, seed=4)
    ds = tf.data.Dataset.from_tensor_slices((images, np.arange(8))).batch(4)
    ds = ds.map(lambda x, y: (layer(x, training=True), y))
    out = np.concatenate([x.numpy() for x, _ in ds])
    assert out.shape == images.shape and out.dtype == np.float32
    offsets = (out - images)[:, 0, 0]
    np.testing.assert_allclose(out - images, np.broadcast_to(
        offsets[:, None, None], out.shape), atol=1e-6)
    assert len(np.unique(offsets.round(7), axis=0)) == 8


def test_bad_inputs():
    layer = PCALighting(eigenvalues=IMAGENET_EIGENVALUES,
                        eigenvectors=IMAGENET_EIGENVECTORS)
    with pytest.raises(ValueError, match="dtype=uint8"):
        layer(np.zeros((2, 4, 4, 3), "uint8"), training=True)
    with pytest.raises(ValueError, match="3 channels"):
        layer(np.zeros((2, 4, 4, 1), "float32"), training=True)
    with pytest.raises(ValueError, match="rank"):
        layer(np.zeros((4, 3), "float32"), training=True)
    with pytest.raises(ValueError, match="alphastd=-0.1"):
        PCALighting(alphastd=-0.1)
    with pytest.raises(ValueError, match="both"):
        PCALighting(eigenvalues=IMAGENET_EIGENVALUES)
    with pytest.raises(ValueError, match="eigenvalues="):
        PCALighting(eigenvalues=[1.0, 2.0], eigenvectors=np.eye(3))
    with pytest.raises(ValueError, match="eigenvalues="):
        PCALighting(eigenvalues=[1.0, -2.0, 0.0], eigenvectors=np.eye(3))
    with pytest.raises(ValueError, match="eigenvectors="):
        PCALighting(eigenvalues=[1.0, 2.0, 0.0], eigenvectors=np.eye(2))
    with pytest.raises(ValueError, match="seed="):
        PCALighting(seed="one")
    with pytest.raises(ValueError, match="adapt"):  # training before adapt
        PCALighting()(np.zeros((1, 2, 2, 3), "float32"), training=True)
    unadapted = PCALighting()
    with pytest.raises(ValueError, match="dtype=uint8"):
        unadapted.adapt(np.zeros((2, 4, 4, 3), "uint8"))
    with pytest.raises(ValueError, match="3 channels"):
        unadapted.adapt(np.zeros((2, 4, 4, 4), "float32"))
    with pytest.raises(ValueError, match="no pixels"):
        unadapted.adapt(np.zeros((0, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="batch_size=0"):
        unadapted.adapt(_images(), batch_size=0)
    with pytest.raises(ValueError, match="already batched"):
        unadapted.adapt(tf.data.Dataset.from_tensor_slices(_images()).batch(2),
                        batch_size=4)


def test_round_trips_with_adapted_values(tmp_path):
    images = _images(seed=5)
    layer = PCALighting(alphastd=0.2, seed=3, name="lighting")
    layer.adapt(images)
    assert_round_trips(layer, (6, 5, 3), tmp_path / "adapted")
    loaded = keras.models.load_model(tmp_path / "adapted" / "model.keras")
    loaded_layer = loaded.get_layer("lighting")
    _assert_matches_numpy(loaded_layer, images)
    assert loaded_layer.alphastd == 0.2 and loaded_layer.seed == 3
    _offsets(loaded_layer, images)  # trains after loading: no adapt needed
    assert_round_trips(
        PCALighting(eigenvalues=IMAGENET_EIGENVALUES,
                    eigenvectors=IMAGENET_EIGENVECTORS, name="imagenet"),
        (4, 4, 3), tmp_path / "given")
