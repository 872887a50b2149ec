"""Test-time averaging: ten-crop and multi-scale views against numpy slices
and tf.image.resize, and predict_tta against an independent average."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice import tta


def _images(n=2, height=7, width=9, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, height, width, channels)).astype("float32")


def _numpy_ten_crop(images, size):
    height, width = images.shape[1:3]
    top, left = (height - size) // 2, (width - size) // 2
    corners = [(0, 0), (0, width - size), (height - size, 0),
               (height - size, width - size), (top, left)]
    crops = [images[:, y:y + size, x:x + size] for y, x in corners]
    crops += [crop[:, :, ::-1] for crop in crops]
    return np.stack(crops, axis=1)


@pytest.mark.parametrize("height,width,size", [(7, 9, 4), (7, 9, 5),
                                               (8, 6, 3), (6, 6, 6)])
def test_ten_crop_equals_numpy_slices(height, width, size):
    images = _images(height=height, width=width)
    views = tta.ten_crop(images, size)
    assert views.shape == (2, 10, size, size, 3)
    np.testing.assert_array_equal(views, _numpy_ten_crop(images, size))
    # Spot checks of the documented order: centre, then mirrored top-left.
    top, left = (height - size) // 2, (width - size) // 2
    np.testing.assert_array_equal(
        views[:, 4], images[:, top:top + size, left:left + size])
    np.testing.assert_array_equal(views[:, 5], images[:, :size, size - 1::-1])


def test_ten_crop_keeps_integer_dtype_and_works_in_tf_data():
    images = (_images() * 255).astype("uint8")
    np.testing.assert_array_equal(tta.ten_crop(images, 4),
                                  _numpy_ten_crop(images, 4))
    ds = tf.data.Dataset.from_tensor_slices(images).batch(2)
    ds = ds.map(lambda x: tta.ten_crop(x, 4))
    assert ds.element_spec.shape[1:] == (10, 4, 4, 3)
    np.testing.assert_array_equal(next(iter(ds)), _numpy_ten_crop(images, 4))


def test_multi_scale_views_are_ten_crops_of_the_resized_images():
    images = _images(height=10, width=14)
    scales, size = (6, 8, 10), 5
    views = tta.multi_scale_ten_crop(images, scales=scales, size=size)
    assert views.shape == (2, 30, 5, 5, 3) and views.dtype == tf.float32
    for k, scale in enumerate(scales):
        resized = tf.image.resize(images, (scale, round(14 * scale / 10)),
                                  method="bilinear", antialias=True)
        np.testing.assert_allclose(views[:, 10 * k:10 * (k + 1)],
                                   _numpy_ten_crop(resized.numpy(), size),
                                   atol=1e-6)
    # Portrait images: the width is the short side.
    portrait = tta.resize_short_side(_images(height=9, width=6), 4)
    assert portrait.shape == (2, 6, 4, 3)
    assert tta.multi_scale_ten_crop(_images(height=9, width=6), (4, 5),
                                    4).shape == (2, 20, 4, 4, 3)


def test_tta_views_per_policy():
    images = _images()
    np.testing.assert_array_equal(tta.tta_views(images, "none"),
                                  images[:, None])
    np.testing.assert_array_equal(tta.tta_views(images, "flip"),
                                  np.stack([images, images[:, :, ::-1]], 1))
    np.testing.assert_array_equal(tta.tta_views(images, "ten_crop", size=5),
                                  _numpy_ten_crop(images, 5))
    np.testing.assert_array_equal(
        tta.tta_views(images, "Multi_Scale", size=5, scales=(5, 6)),
        tta.multi_scale_ten_crop(images, (5, 6), 5))


def _conv_model(size):
    """A small model that is not flip-invariant."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(5, activation="softmax")(
        keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def _independent_average(model, views):
    """numpy average over views of model(view), one view at a time."""
    n, num_views = views.shape[:2]
    scores = [[np.asarray(model(views[i, v][None]))[0]
               for v in range(num_views)] for i in range(n)]
    return np.mean(scores, axis=1)


def test_predict_tta_ten_crop_equals_independent_average():
    images = _images(n=5, height=8, width=9)
    model = _conv_model(5)
    got = tta.predict_tta(model, images, "ten_crop", batch_size=2,
                          views_per_step=7)  # size 5 from the model
    assert got.shape == (5, 5) and got.dtype == np.float32
    want = _independent_average(model, _numpy_ten_crop(images, 5))
    np.testing.assert_allclose(got, want, atol=1e-6)
    plain = model.predict(_numpy_ten_crop(images, 5)[:, 4], verbose=0)
    assert not np.allclose(got, plain, atol=1e-4)  # the views matter


def test_predict_tta_multi_scale_equals_independent_average():
    images = _images(n=3, height=6, width=8)
    model = _conv_model(4)
    got = tta.predict_tta(model, images, "multi_scale", scales=(4, 6),
                          batch_size=2)
    views = tta.multi_scale_ten_crop(images, (4, 6), 4).numpy()
    np.testing.assert_allclose(got, _independent_average(model, views),
                               atol=1e-6)


def test_flip_on_a_flip_invariant_model_equals_plain_predict():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, None, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4)(pooled))
    images = _images(n=5)
    plain = model.predict(images, verbose=0)
    np.testing.assert_allclose(tta.predict_tta(model, images, "flip",
                                               batch_size=3), plain, atol=1e-6)
    np.testing.assert_allclose(tta.predict_tta(model, images, "none"), plain,
                               atol=1e-6)


def test_predict_tta_on_a_dataset_of_image_label_batches():
    images = _images(n=5, height=6, width=6)
    model = _conv_model(4)
    from_array = tta.predict_tta(model, images, "ten_crop", batch_size=2)
    labels = np.arange(5)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    np.testing.assert_allclose(tta.predict_tta(model, ds.batch(3)), from_array,
                               atol=1e-6)
    np.testing.assert_allclose(  # unbatched images, and a tensor
        tta.predict_tta(model, ds.map(lambda x, y: x), batch_size=4),
        from_array, atol=1e-6)
    np.testing.assert_allclose(tta.predict_tta(model, tf.constant(images)),
                               from_array, atol=1e-6)


def test_bad_inputs():
    images = _images()
    with pytest.raises(ValueError, match="height=7, width=9, size=8"):
        tta.ten_crop(images, 8)
    with pytest.raises(ValueError, match="rank 4"):
        tta.ten_crop(images[0], 4)
    with pytest.raises(ValueError, match="size=0"):
        tta.ten_crop(images, 0)
    with pytest.raises(ValueError, match="at least the crop size 5"):
        tta.multi_scale_ten_crop(images, scales=(4, 6), size=5)
    with pytest.raises(ValueError, match="scales=()"):
        tta.multi_scale_ten_crop(images, scales=(), size=5)
    with pytest.raises(ValueError, match="none, flip, ten_crop, multi_scale"):
        tta.tta_views(images, "five_crop")
    with pytest.raises(ValueError, match="size=None"):
        tta.tta_views(images, "ten_crop")
    inputs = keras.Input((None, None, 3))  # no fixed size to crop to
    free = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    with pytest.raises(ValueError, match="size=None"):
        tta.predict_tta(free, images, "ten_crop")
    with pytest.raises(ValueError, match="policy='ten'"):
        tta.predict_tta(free, images, "ten")
    with pytest.raises(ValueError, match="rank 4"):
        tta.predict_tta(free, images[0], "flip")
    with pytest.raises(ValueError, match="batch_size=0"):
        tta.predict_tta(free, images, "flip", batch_size=0)
    with pytest.raises(ValueError, match="no images"):
        tta.predict_tta(free, images[:0], "flip")
    with pytest.raises(ValueError, match="height=7, width=9, size=8"):
        tta.predict_tta(free, images, "ten_crop", size=8)
