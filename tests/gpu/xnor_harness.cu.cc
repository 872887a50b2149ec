// Standalone harness around the Bitpack / XnorMatmul / XnorConv2D CUDA
// kernels: no TensorFlow, so it builds with nvcc alone on a GPU machine that
// lacks TensorFlow and is driven from Python (ctypes + CuPy device pointers)
// in test_xnor_gpu.py and time_xnor.py. Each wrapper launches on the
// default stream; the checks ask it to wait for the kernel, so the status
// covers its execution too, and the timings do not.
#include <cuda_runtime.h>

#include <cstdint>

#include "xnor.h"

namespace {

int Synchronized(int launch_status, int synchronize) {
  if (launch_status != 0 || !synchronize) return launch_status;
  return static_cast<int>(cudaDeviceSynchronize());
}

}  // namespace

extern "C" int kcp_bitpack(int dtype_code, int word_bits, const void* x,
                           void* out, long long outer, long long depth,
                           int synchronize) {
  return Synchronized(keras_cnnpractice::LaunchBitpackGpu(
                          dtype_code, word_bits, x, out, outer, depth, nullptr),
                      synchronize);
}

extern "C" int kcp_xnor_matmul(int word_bits, const void* a, const void* b,
                               float* out, long long m, long long n,
                               long long words, long long depth,
                               int synchronize) {
  return Synchronized(keras_cnnpractice::LaunchXnorMatmulGpu(
                          word_bits, a, b, out, m, n, words, depth, nullptr),
                      synchronize);
}

// `geometry` holds the 16 fields of XnorConvGeometry in declaration order.
extern "C" int kcp_xnor_conv2d(int word_bits, const void* x,
                               const void* filter, float* out,
                               const int64_t* geometry, int synchronize) {
  const int64_t* f = geometry;
  const keras_cnnpractice::XnorConvGeometry g{
      f[0], f[1], f[2],  f[3],  f[4],  f[5],  f[6],  f[7],
      f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15]};
  return Synchronized(keras_cnnpractice::LaunchXnorConv2DGpu(
                          word_bits, x, filter, out, g, nullptr),
                      synchronize);
}
