"""`python -m keras_cnnpractice.custom_ops`: loads the op library and reports
what it was built with (exit status 1 with rebuild instructions if it can't)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from keras_cnnpractice.custom_ops import _loader  # noqa: E402

try:
    _loader.load_op_library()
except _loader.OpLibraryError as err:
    sys.exit(f"keras_cnnpractice op library: {err}")
info = _loader.build_info()
kernels = ("with CUDA kernels (sm_80, sm_90)" if info["cuda"]
           else "CPU-only (no nvcc at build time)")
print(f"keras_cnnpractice op library {_loader.LIBRARY_PATH}: built for "
      f"TensorFlow {info['tensorflow_version']}, {kernels}, XNOR popcount: "
      f"{info['xnor_popcount']}")
