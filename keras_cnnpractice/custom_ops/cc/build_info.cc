// What this op library was compiled against, read by the Python loader
// (keras_cnnpractice/custom_ops/_loader.py) through ctypes so that a library
// built for another TensorFlow is refused with instructions to rebuild.
// setup.py defines KCP_TF_VERSION from the TensorFlow it compiles against.
#ifndef KCP_TF_VERSION
#error "KCP_TF_VERSION must be defined by the build (setup.py)"
#endif

#if GOOGLE_CUDA
#define KCP_BUILT_WITH_CUDA "true"
#else
#define KCP_BUILT_WITH_CUDA "false"
#endif

extern "C" const char* KerasCnnPracticeBuildInfo() {
  return "{\"tensorflow_version\": \"" KCP_TF_VERSION
         "\", \"cuda\": " KCP_BUILT_WITH_CUDA "}";
}
