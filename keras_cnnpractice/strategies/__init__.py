"""`tf.distribute` strategies by name, and the clusters they run on.

The factory (and TensorFlow) is imported on first use, so the strategy
names, `keras_cnnpractice.strategies.cluster` (TF_CONFIG, ports) and the
launcher that uses it start without TensorFlow.
"""

from keras_cnnpractice._lazy import lazy_attributes

# get_strategy's names (case-insensitive), importable without TensorFlow.
STRATEGY_NAMES = ("off", "one_device", "mirrored", "model_parallel",
                  "multi_worker_mirrored", "parameter_server")

__getattr__, _LAZY = lazy_attributes(__name__, {"factory": ["get_strategy"]})
__all__ = ["STRATEGY_NAMES", *_LAZY]
