"""keras_cnnpractice: CNNs in practice for TensorFlow / Keras 3.

Subpackages are imported on first use (`keras_cnnpractice.layers`, ...), so
`python -m keras_cnnpractice.predict` needs nothing but TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = ("analysis", "custom_ops", "data", "layers", "models",
                "quantizers", "strategies", "training")
__all__ = list(_SUBPACKAGES)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
