"""AlexNet's PCA colour augmentation ("fancy PCA", "lighting")."""

import keras
import numpy as np
import tensorflow as tf

from keras_cnnpractice._validate import check_int
from keras_cnnpractice._validate import check_number
from keras_cnnpractice._validate import check_seed
from keras_cnnpractice.layers._augment import as_batch
from keras_cnnpractice.layers._augment import check_images
from keras_cnnpractice.layers._augment import restore
from keras_cnnpractice.layers.augment_steps import lighting_offsets
from keras_cnnpractice.layers.augment_steps import random_normal

# The principal components of ImageNet's RGB pixel values, for pixels scaled
# to [0, 1] (RGB order, before any mean/std normalization). Taken from
# fb.resnet.torch (datasets/imagenet.lua, the `pca` table used by its
# `Lighting` transform), which reproduces the augmentation of AlexNet
# (Krizhevsky et al., 2012, section 4.1). Eigenvalues in descending order;
# the columns of IMAGENET_EIGENVECTORS are the matching eigenvectors, so
# `IMAGENET_EIGENVECTORS[:, i]` belongs to `IMAGENET_EIGENVALUES[i]`.
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = ((-0.5675, 0.7192, 0.4009),
                         (-0.5808, -0.0045, -0.8140),
                         (-0.5836, -0.6948, 0.4203))

_ADAPT_BATCH_SIZE = 128


@keras.saving.register_keras_serializable(package="keras_cnnpractice")
class PCALighting(keras.layers.Layer):
    """Adds a random multiple of the RGB principal components to each image.

    AlexNet's colour augmentation (Krizhevsky et al., "ImageNet
    Classification with Deep Convolutional Neural Networks", 2012, section
    4.1): with `(lambda_i, p_i)` the eigenvalues and eigenvectors of the 3x3
    covariance of the RGB pixel values of the training set, every pixel of
    an image gets the same offset

        `[p_1, p_2, p_3] @ [alpha_1 * lambda_1, alpha_2 * lambda_2,
        alpha_3 * lambda_3]`

    with `alpha_i ~ N(0, alphastd)` drawn once per image and per call.

    The components come either from the constructor (for example
    `IMAGENET_EIGENVALUES` / `IMAGENET_EIGENVECTORS`, for pixels in [0, 1])
    or from `adapt()` on the training images, which must have the same pixel
    scale as the images the layer will see. Both are stored as
    non-trainable weights, so they are saved with the model.

    The offset is added in training (inside `fit`, or in a direct call:
    as with Keras's own augmentation layers `training` defaults to True, so
    `ds.map(lambda x, y: (layer(x), y))` augments); at inference
    (`training=False`: `predict`, `evaluate`, an exported model) the layer
    is the identity. The output keeps the dtype and shape of the input (the offset
    is computed in float32, or float64 for float64 images). Pixels are not
    clipped.

    Args:
        alphastd: standard deviation of the `alpha_i`; AlexNet used 0.1.
            0 makes the layer the identity.
        eigenvalues: `None`, to be set by `adapt()`, or three non-negative
            eigenvalues of the RGB covariance.
        eigenvectors: `None`, or a 3x3 matrix whose column `i` is the unit
            eigenvector of `eigenvalues[i]`; given together with
            `eigenvalues`.
        seed: integer seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer keyword arguments, such as `name`.

    Input shape:
        `(height, width, 3)` or `(batch, height, width, 3)`, float, RGB.

    Output shape:
        Same shape and dtype as the input.
    """

    def __init__(self, alphastd=0.1, eigenvalues=None, eigenvectors=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        check_number("alphastd", alphastd, 0)
        if (eigenvalues is None) != (eigenvectors is None):
            raise ValueError(
                "Give both eigenvalues and eigenvectors, or neither (and "
                f"call adapt()). Received: eigenvalues={eigenvalues!r}, "
                f"eigenvectors={eigenvectors!r}")
        if eigenvalues is not None:
            values = np.asarray(eigenvalues, dtype="float64")
            vectors = np.asarray(eigenvectors, dtype="float64")
            if (values.shape != (3,) or not np.all(np.isfinite(values))
                    or np.any(values < 0)):
                raise ValueError(
                    "eigenvalues must be 3 finite non-negative numbers. "
                    f"Received: eigenvalues={eigenvalues!r}")
            if vectors.shape != (3, 3) or not np.all(np.isfinite(vectors)):
                raise ValueError("eigenvectors must be a finite 3x3 matrix "
                                 "(one eigenvector per column). Received: "
                                 f"eigenvectors={eigenvectors!r}")
            eigenvalues, eigenvectors = values.tolist(), vectors.tolist()
        check_seed(seed)
        self.alphastd = float(alphastd)
        self.eigenvalues = eigenvalues
        self.eigenvectors = eigenvectors
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Whether the eigen weights hold real values (constructor, adapt()
        # or loaded weights): training without them would silently add 0.
        self._has_components = eigenvalues is not None
        # Keep the input dtype: no autocast of float16 images to float32.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

    def build(self, input_shape=None):
        # Constant initializers rather than assign(): the values must also
        # be there when the layer is first built inside a traced function,
        # e.g. a tf.data map, where Keras lifts variable creation out.
        given = self.eigenvalues is not None
        self.eigenvalue_weights = self.add_weight(
            name="eigenvalues", shape=(3,), dtype="float32",
            initializer=(keras.initializers.Constant(self.eigenvalues)
                         if given else "zeros"), trainable=False)
        self.eigenvector_weights = self.add_weight(
            name="eigenvectors", shape=(3, 3), dtype="float32",
            initializer=(keras.initializers.Constant(self.eigenvectors)
                         if given else "zeros"), trainable=False)

    def adapt(self, data, batch_size=None, steps=None):
        """Sets the principal components from the RGB covariance of `data`.

        The covariance (population, i.e. divided by the pixel count) of all
        pixels is computed in one streaming pass in float64: per batch, the
        pixel count, the sum and the sum of outer products of the pixels
        (shifted by the first batch's mean, for accuracy) are accumulated;
        only one batch is held in memory at a time. Its eigendecomposition
        replaces any components given to the constructor.

        Eigenvalues are stored in descending order, as in
        `IMAGENET_EIGENVALUES`; eigenvector `i` is column `i`, with its sign
        chosen so that its largest-magnitude component is positive (the sign
        does not change the distribution of the offsets, since alpha is
        symmetric about 0).

        Args:
            data: float RGB images: a numpy array or tensor of shape
                `(n, height, width, 3)` (or one `(height, width, 3)` image),
                or a `tf.data.Dataset` of such image batches or of
                `(images, labels, ...)` tuples, whose images are used. A
                dataset of single images is batched with `batch_size`.
            batch_size: images per step for arrays, tensors and unbatched
                datasets (default 128). Must not be given for a batched
                dataset.
            steps: number of batches to read at most (default: all).

        Raises:
            ValueError: bad images, batch size or steps, or no pixels.
        """
        for name, value in (("batch_size", batch_size), ("steps", steps)):
            check_int(name, value, 1, allow_none=True)
        if not self.built:
            self.build()
        count, shift, total, outer = 0, None, np.zeros(3), np.zeros((3, 3))
        for batch in self._adapt_batches(data, batch_size, steps):
            pixels = tf.reshape(tf.cast(batch, "float64"), (-1, 3))
            if shift is None:
                if pixels.shape[0] == 0:
                    continue
                shift = tf.reduce_mean(pixels, axis=0)
            pixels = pixels - shift
            count += int(pixels.shape[0])
            total += tf.reduce_sum(pixels, axis=0).numpy()
            outer += tf.matmul(pixels, pixels, transpose_a=True).numpy()
        if count == 0:
            raise ValueError("PCALighting.adapt() received no pixels. "
                             "Received: an empty dataset")
        mean = total / count
        covariance = outer / count - np.outer(mean, mean)
        values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
        values, vectors = values[::-1], vectors[:, ::-1]
        signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), range(3)])
        self.eigenvalue_weights.assign(np.maximum(values, 0.0))
        self.eigenvector_weights.assign(vectors * signs)
        self._has_components = True

    def _adapt_batches(self, data, batch_size, steps):
        """Yields image batches (tensors of rank 4) of `data`."""
        if isinstance(data, tf.data.Dataset):
            spec = data.element_spec
            if isinstance(spec, (tuple, list)):
                data = data.map(lambda *element: element[0])
                spec = spec[0]
            if not isinstance(spec, tf.TensorSpec):
                raise ValueError(
                    "PCALighting.adapt() needs a dataset of image tensors "
                    f"or (images, labels) tuples. Received: element_spec="
                    f"{data.element_spec}")
            if spec.shape.rank == 3:
                data = data.batch(batch_size or _ADAPT_BATCH_SIZE)
            elif batch_size is not None:
                raise ValueError(
                    "batch_size is only for arrays and unbatched datasets; "
                    f"this dataset is already batched. Received: "
                    f"batch_size={batch_size}")
            batches = iter(data if steps is None else data.take(steps))
        else:
            images = data if tf.is_tensor(data) else np.asarray(data)
            if images.ndim == 3:
                images = images[None]
            size = batch_size or _ADAPT_BATCH_SIZE
            batches = (images[start:start + size]
                       for start in range(0, images.shape[0], size))
            if steps is not None:
                batches = (b for b, _ in zip(batches, range(steps)))
        for batch in batches:
            yield self._check(batch)

    def _check(self, images):
        images = check_images(images, "PCALighting")
        if not images.dtype.is_floating:
            raise ValueError(
                "PCALighting needs float images (cast integer pixels first, "
                f"e.g. with tf.cast). Received: dtype={images.dtype.name}")
        if images.shape[-1] != 3:
            raise ValueError(
                "PCALighting needs RGB images with 3 channels. Received: "
                f"shape={images.shape}")
        return images

    def call(self, inputs, training=True):
        images = self._check(inputs)
        if not training or self.alphastd == 0:
            return images
        if not self._has_components:
            raise ValueError(
                "PCALighting has no principal components: call adapt() on "
                "the training images, or pass eigenvalues and eigenvectors "
                "(e.g. IMAGENET_EIGENVALUES, IMAGENET_EIGENVECTORS). "
                "Received: eigenvalues=None")
        images, single = as_batch(images)
        dtype = "float64" if images.dtype == tf.float64 else "float32"
        alpha = tf.cast(random_normal((tf.shape(images)[0], 3),
                                      self.alphastd, self.seed_generator),
                        dtype)
        offset = lighting_offsets(alpha, self.eigenvalue_weights,
                                  self.eigenvector_weights)
        outputs = tf.cast(images, dtype) + offset[:, None, None, :]
        return restore(tf.cast(outputs, images.dtype), single)

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self._has_components = True

    def compute_output_spec(self, inputs, training=True):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"alphastd": self.alphastd,
                       "eigenvalues": self.eigenvalues,
                       "eigenvectors": self.eigenvectors, "seed": self.seed})
        return config
