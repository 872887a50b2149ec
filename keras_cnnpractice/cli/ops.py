"""Reports how the op library was built and what this machine runs of it:

    kcp-ops

the library file chosen for this CPU, the TensorFlow it was built against,
the instruction-set levels built and supported, whether CUDA kernels were
compiled in and whether a GPU is present to run them. Exit status 1, with
rebuild instructions, when the library cannot be loaded.

Imports inside functions: TensorFlow and the op library's loader, imported
by the function that needs them once the flags are parsed, so that `--help`
and a bad flag answer without loading TensorFlow (well under a second).
"""

import sys

from keras_cnnpractice.cli import _absl

PROG = "kcp-ops"


def main(argv):
    if len(argv) > 1:
        print(f"{PROG}: error: unexpected arguments: {' '.join(argv[1:])}",
              file=sys.stderr)
        sys.exit(2)
    import tensorflow as tf

    from keras_cnnpractice.custom_ops import _loader
    try:
        _loader.load_op_library()
    except _loader.OpLibraryError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(1)
    info = _loader.build_info()
    gpus = len(tf.config.list_physical_devices("GPU"))
    present = (f"{gpus} GPU(s) present to run them" if gpus
               else "no GPU present: they cannot run here")
    kernels = (f"CUDA kernels for sm_80 and sm_90 ({present})" if info["cuda"]
               else f"no CUDA kernels (no nvcc at build time; {gpus} GPU(s) "
                    f"present)")
    levels = ", ".join(level for level in _loader.ISA_LEVELS
                       if _loader.library_path(level).is_file())
    print(f"keras_cnnpractice op library "
          f"{_loader.library_path(_loader.chosen_level())}: built for "
          f"TensorFlow {info['tensorflow_version']}; {kernels}; CPU kernels "
          f"for {info['isa']} (built: {levels}; this CPU supports: "
          f"{', '.join(_loader.supported_levels())}; {_loader.ISA_ENV} "
          f"forces a lower one); XNOR popcount: {info['xnor_popcount']}")


def run():
    """The console script `kcp-ops`."""
    _absl.run(main, PROG, __doc__)


if __name__ == "__main__":
    run()
