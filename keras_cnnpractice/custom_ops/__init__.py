"""Custom TensorFlow ops compiled into `_cnnpractice_ops*.so` (one build
per instruction-set level, chosen at load time: see `_loader`).

The library is loaded lazily on first use; `OpLibraryError` says how to
rebuild it when it is missing or stale.
"""

from keras_cnnpractice.custom_ops._loader import OpLibraryError
from keras_cnnpractice.custom_ops._loader import load_op_library
from keras_cnnpractice.custom_ops.affine_resample import affine_resample
from keras_cnnpractice.custom_ops.fft_conv import fft_conv2d
from keras_cnnpractice.custom_ops.im2col import im2col_conv2d
from keras_cnnpractice.custom_ops.im2col import im2col_conv2d_reference
from keras_cnnpractice.custom_ops.packed_records import read_packed_records
from keras_cnnpractice.custom_ops.stochastic_round import fixed_point_range
from keras_cnnpractice.custom_ops.stochastic_round import stochastic_round
from keras_cnnpractice.custom_ops.stochastic_round import stochastic_round_reference
from keras_cnnpractice.custom_ops.winograd import winograd_conv2d
from keras_cnnpractice.custom_ops.winograd import winograd_conv2d_reference
from keras_cnnpractice.custom_ops.winograd import winograd_filter_transform
from keras_cnnpractice.custom_ops.xnor import bitpack
from keras_cnnpractice.custom_ops.xnor import pack_conv_kernel
from keras_cnnpractice.custom_ops.xnor import pack_dense_kernel
from keras_cnnpractice.custom_ops.xnor import xnor_conv2d
from keras_cnnpractice.custom_ops.xnor import xnor_matmul

__all__ = ["OpLibraryError", "affine_resample", "bitpack", "fft_conv2d", "fixed_point_range",
           "im2col_conv2d", "im2col_conv2d_reference", "load_op_library",
           "pack_conv_kernel", "pack_dense_kernel", "read_packed_records",
           "stochastic_round", "stochastic_round_reference", "winograd_conv2d",
           "winograd_conv2d_reference", "winograd_filter_transform",
           "xnor_conv2d", "xnor_matmul"]
