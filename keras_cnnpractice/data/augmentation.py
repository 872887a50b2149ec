"""Ready augmentation pipelines, built from Keras 3 preprocessing layers."""

import keras

AUGMENTATION_POLICIES = ("digits", "none")


def augmentation_policy(name, seed=None):
    """Returns the batch augmentation called `name` as a Keras layer.

    * `digits`: small rotations (+-10 degrees), translations (+-10%) and
      zooms (+-10%), filled with black; no flips (a flipped 2 is not a 2),
      no color changes.
    * `none`: the identity.

    Args:
        name: policy name.
        seed: seed of the random layers.

    Returns:
        A Keras layer that accepts NHWC float batches; usable inside a
        `tf.data` map or a model (identity at inference).
    """
    if name == "none":
        return keras.layers.Identity(name="augment_none")
    if name == "digits":
        fill = dict(fill_mode="constant", fill_value=0.0)
        return keras.Sequential([
            keras.layers.RandomRotation(10 / 360, seed=seed, **fill),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed, **fill),
            keras.layers.RandomZoom(0.1, seed=seed, **fill),
        ], name="augment_digits")
    raise ValueError(f"Unknown augmentation policy {name!r}; valid names: "
                     f"{', '.join(AUGMENTATION_POLICIES)}. Received: {name!r}")
