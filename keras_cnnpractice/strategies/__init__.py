"""`tf.distribute` strategies by name, and the clusters they run on.

The factory (and TensorFlow) is imported on first use, so
`keras_cnnpractice.strategies.cluster` (TF_CONFIG, ports) and the launcher
that uses it start without TensorFlow.
"""

import importlib

_FACTORY = ("STRATEGY_NAMES", "get_strategy")
__all__ = list(_FACTORY)


def __getattr__(name):
    if name in _FACTORY:
        return getattr(importlib.import_module(f"{__name__}.factory"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
