"""`tf.distribute` strategies by name."""

from keras_cnnpractice.strategies.factory import STRATEGY_NAMES
from keras_cnnpractice.strategies.factory import get_strategy

__all__ = ["STRATEGY_NAMES", "get_strategy"]
