"""The data layer's named choices, importable without TensorFlow (the
training flags list them)."""

# The policies of `augmentation.augmentation_policy(name)`.
AUGMENTATION_POLICIES = ("digits", "natural", "none")
# Where augmentation runs: in the tf.data map, or first in the model.
AUGMENT_PLACES = ("data", "model")
