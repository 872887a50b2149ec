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
levels = ", ".join(level for level in _loader.ISA_LEVELS
                   if _loader.library_path(level).is_file())
print(f"keras_cnnpractice op library "
      f"{_loader.library_path(_loader.chosen_level())}: built for "
      f"TensorFlow {info['tensorflow_version']}, {kernels}, CPU kernels "
      f"for {info['isa']} (built: {levels}; this CPU supports: "
      f"{', '.join(_loader.supported_levels())}; {_loader.ISA_ENV} forces "
      f"a lower one), XNOR popcount: {info['xnor_popcount']}")
