// CUDA kernel of KerasCnnPractice>StochasticRound. Free of TensorFlow headers
// so the standalone harness (tests/gpu/) can build it with nvcc alone and
// check it against numpy on a GPU machine that has no TensorFlow.
#if GOOGLE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "stochastic_round.h"

namespace keras_cnnpractice {
namespace {

__device__ __forceinline__ float Load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float Load(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
__device__ __forceinline__ float Load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void Store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void Store(__half* p, int64_t i, float v) {
  p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void Store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

// One thread per group of four elements (one Philox call), grid-stride.
template <typename T>
__global__ void StochasticRoundKernel(const T* __restrict__ x,
                                      T* __restrict__ y, int64_t n,
                                      FixedPointParams p) {
  const int64_t groups = (n + 3) / 4;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       g < groups; g += stride) {
    const Philox4x32 bits = GroupRandomBits(g, p);
    const int64_t base = 4 * g;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (base + j < n) {
        Store(y, base + j,
              QuantizeFixedPoint(Load(x, base + j), Uint32ToUnitFloat(bits.v[j]),
                                 p));
      }
    }
  }
}

template <typename T>
int Launch(const void* x, void* y, int64_t n, const FixedPointParams& p,
           cudaStream_t stream) {
  if (n == 0) return 0;
  constexpr int kThreads = 256;
  const int64_t groups = (n + 3) / 4;
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t wanted = (groups + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(
      wanted < static_cast<int64_t>(sms) * 32 ? wanted : sms * 32);
  StochasticRoundKernel<T><<<blocks, kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<T*>(y), n, p);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int LaunchStochasticRoundGpu(int dtype_code, const void* x, void* y,
                             int64_t n, const FixedPointParams& params,
                             void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype_code) {
    case 0:
      return Launch<float>(x, y, n, params, s);
    case 1:
      return Launch<__half>(x, y, n, params, s);
    case 2:
      return Launch<__nv_bfloat16>(x, y, n, params, s);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace keras_cnnpractice
#endif  // GOOGLE_CUDA
