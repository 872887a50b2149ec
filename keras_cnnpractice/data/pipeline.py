"""`tf.data` input pipelines: shuffle, batch, augment in parallel, prefetch."""

import tensorflow as tf


def make_dataset(images, labels, batch_size, training, augment=None,
                 seed=None):
    """Builds a batched `tf.data.Dataset` of `(float32 images, labels)`.

    Training datasets are reshuffled every epoch. Augmentation runs on whole
    batches in a parallel map, and the next batches are prefetched while the
    model computes on the current one.

    Args:
        images: uint8 or float array, NHWC.
        labels: integer labels.
        batch_size: global batch size.
        training: shuffle and augment when True.
        augment: callable applied to float32 image batches when training.
        seed: shuffle seed.
    """
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def to_float(x, y):
        x = tf.cast(x, tf.float32)
        if training and augment is not None:
            x = augment(x, training=True)
        return x, tf.cast(y, tf.int32)

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=not training)
    return ds.prefetch(tf.data.AUTOTUNE)
