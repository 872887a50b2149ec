"""Custom TensorFlow ops compiled into `_cnnpractice_ops.so`.

The library is loaded lazily on first use; `OpLibraryError` says how to
rebuild it when it is missing or stale.
"""

from keras_cnnpractice.custom_ops._loader import OpLibraryError
from keras_cnnpractice.custom_ops._loader import load_op_library
from keras_cnnpractice.custom_ops.stochastic_round import fixed_point_range
from keras_cnnpractice.custom_ops.stochastic_round import stochastic_round
from keras_cnnpractice.custom_ops.stochastic_round import stochastic_round_reference

__all__ = ["OpLibraryError", "fixed_point_range", "load_op_library",
           "stochastic_round", "stochastic_round_reference"]
