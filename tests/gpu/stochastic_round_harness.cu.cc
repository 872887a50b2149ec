// Standalone harness around the StochasticRound CUDA kernel: no TensorFlow,
// so it builds with nvcc alone on a GPU machine that lacks TensorFlow and is
// driven from Python (ctypes + CuPy device pointers) in
// test_stochastic_round_gpu.py.
#include <cuda_runtime.h>

#include "stochastic_round.h"

extern "C" int kcp_stochastic_round(int dtype_code, const void* x, void* y,
                                    long long n, int word_bits, int frac_bits,
                                    int stochastic, unsigned long long seed0,
                                    unsigned long long seed1) {
  using namespace keras_cnnpractice;
  const FixedPointParams p = WithSeed(
      MakeFixedPointParams(word_bits, frac_bits, stochastic != 0), seed0, seed1);
  const int status = LaunchStochasticRoundGpu(dtype_code, x, y, n, p, nullptr);
  if (status != 0) return status;
  return static_cast<int>(cudaDeviceSynchronize());
}
