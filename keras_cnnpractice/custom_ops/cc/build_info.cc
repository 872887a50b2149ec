// What this op library was compiled against, read by the Python loader
// (keras_cnnpractice/custom_ops/_loader.py) through ctypes so that a library
// built for another TensorFlow is refused with instructions to rebuild.
// setup.py defines KCP_TF_VERSION from the TensorFlow it compiles against;
// isa names the instruction-set level the CPU kernels were compiled for;
// xnor_popcount names the popcount path the XNOR kernels were built with.
#include <string>

#include "xnor_gemm.h"

#ifndef KCP_TF_VERSION
#error "KCP_TF_VERSION must be defined by the build (setup.py)"
#endif
#ifndef KCP_ISA
#error "KCP_ISA (the instruction-set level) must be defined by setup.py"
#endif

#if GOOGLE_CUDA
#define KCP_BUILT_WITH_CUDA "true"
#else
#define KCP_BUILT_WITH_CUDA "false"
#endif

extern "C" const char* KerasCnnPracticeBuildInfo() {
  static const std::string info =
      std::string("{\"tensorflow_version\": \"" KCP_TF_VERSION
                  "\", \"cuda\": " KCP_BUILT_WITH_CUDA
                  ", \"isa\": \"" KCP_ISA "\", \"xnor_popcount\": \"") +
      keras_cnnpractice::XnorPopcountPath() + "\"}";
  return info.c_str();
}
