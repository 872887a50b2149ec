// CUDA kernels of KerasCnnPractice>Bitpack, >XnorMatmul and >XnorConv2D
// (bit layout and geometry in xnor.h). Free of TensorFlow headers so the
// standalone harness (tests/gpu/) can build them with nvcc alone and check
// them against numpy on a GPU machine that has no TensorFlow.
#if GOOGLE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "xnor.h"

namespace keras_cnnpractice {
namespace {

constexpr int kThreads = 256;

// Blocks for `items` units of work of `per_block` each, capped at 32 per SM;
// the kernels cover the rest with grid-stride loops.
int GridSize(int64_t items, int64_t per_block) {
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t wanted = (items + per_block - 1) / per_block;
  const int64_t cap = static_cast<int64_t>(sms) * 32;
  return static_cast<int>(wanted < cap ? wanted : cap);
}

__device__ __forceinline__ float Load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float Load(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
__device__ __forceinline__ float Load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

__device__ __forceinline__ int Popc(uint32_t v) { return __popc(v); }
__device__ __forceinline__ int Popc(uint64_t v) { return __popcll(v); }

// One warp per output word, grid-stride over the outer * words words: lane l
// of ballot c tests element c * 32 + l of the word, so each ballot reads 32
// consecutive elements and yields 32 consecutive bits (lane l -> bit l).
template <typename T, typename W>
__global__ void BitpackKernel(const T* __restrict__ x, W* __restrict__ out,
                              int64_t outer, int64_t depth, int64_t words) {
  constexpr int kBallots = static_cast<int>(sizeof(W)) / 4;
  const int lane = threadIdx.x % 32;
  const int64_t total = outer * words;
  const int64_t warps = static_cast<int64_t>(blockDim.x) * gridDim.x / 32;
  // Every lane of a warp shares `w`, so the loop stays warp-uniform as the
  // full-mask ballot requires.
  for (int64_t w = (blockIdx.x * static_cast<int64_t>(blockDim.x) +
                    threadIdx.x) / 32;
       w < total; w += warps) {
    const int64_t row = w / words;
    const int64_t first = (w - row * words) * kBallots * 32 + lane;
    const T* xr = x + row * depth;
    W word = 0;
#pragma unroll
    for (int c = 0; c < kBallots; ++c) {
      const int64_t j = first + c * 32;
      // !(v >= 0): negative and NaN give 1; elements past depth give 0.
      const bool bit = j < depth && !(Load(xr, j) >= 0.0f);
      word |= static_cast<W>(__ballot_sync(0xffffffffu, bit)) << (c * 32);
    }
    if (lane == 0) out[w] = word;
  }
}

// Output tiles of kTile x kTile, one per block at a time (grid-stride over
// tiles). The block is kTile x kTile / kRowsPerThread threads: thread (tx, ty)
// computes column tx of rows ty, ty + kRowStep, ... of the tile. Both operand
// tiles are staged in shared memory kStageWords words at a time.
constexpr int kTile = 32;
constexpr int kRowsPerThread = 4;
constexpr int kRowStep = kTile / kRowsPerThread;
constexpr int kStageWords = 32;
static_assert(kTile * kRowStep == kThreads, "matmul block size");

template <typename W>
__global__ void __launch_bounds__(kThreads)
    XnorMatmulKernel(const W* __restrict__ a, const W* __restrict__ b,
                     float* __restrict__ out, int64_t m, int64_t n,
                     int64_t words, int64_t depth) {
  // Rows padded by one word so the column reads b_tile[tx][k] of a warp fall
  // in distinct banks; a_tile[ty + ...][k] is a broadcast.
  __shared__ W a_tile[kTile][kStageWords + 1];
  __shared__ W b_tile[kTile][kStageWords + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kTile + tx;
  const int64_t tiles_n = (n + kTile - 1) / kTile;
  const int64_t tiles = (m + kTile - 1) / kTile * tiles_n;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t row0 = t / tiles_n * kTile;
    const int64_t col0 = t % tiles_n * kTile;
    int64_t mismatches[kRowsPerThread] = {};
    for (int64_t k0 = 0; k0 < words; k0 += kStageWords) {
      // Consecutive threads load consecutive words of one row. Rows past m
      // (or n) load 0; their results are never stored.
      for (int i = tid; i < kTile * kStageWords; i += kThreads) {
        const int r = i / kStageWords, k = i % kStageWords;
        const int64_t word = k0 + k;
        const bool in_words = word < words;
        a_tile[r][k] = in_words && row0 + r < m ? a[(row0 + r) * words + word]
                                                : W(0);
        b_tile[r][k] = in_words && col0 + r < n ? b[(col0 + r) * words + word]
                                                : W(0);
      }
      __syncthreads();
      const int stage_words = static_cast<int>(
          words - k0 < kStageWords ? words - k0 : kStageWords);
      // At most kStageWords * 64 per stage: int cannot overflow here.
      int stage[kRowsPerThread] = {};
      for (int k = 0; k < stage_words; ++k) {
        const W bv = b_tile[tx][k];
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
          stage[r] += Popc(a_tile[ty + r * kRowStep][k] ^ bv);
        }
      }
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) mismatches[r] += stage[r];
      __syncthreads();  // the next stage overwrites the tiles
    }
    const int64_t col = col0 + tx;
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t row = row0 + ty + r * kRowStep;
      if (row < m && col < n) {
        out[row * n + col] = static_cast<float>(depth - 2 * mismatches[r]);
      }
    }
  }
}

// One thread per output element, grid-stride. The output channel is the
// fastest index, so the threads of a warp share the output pixel and their
// reads of x hit the same words.
template <typename W>
__global__ void XnorConv2DKernel(const W* __restrict__ x,
                                 const W* __restrict__ filter,
                                 float* __restrict__ out, XnorConvGeometry g) {
  const int64_t total = g.batch * g.out_h * g.out_w * g.out_channels;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < total; i += stride) {
    const int64_t co = i % g.out_channels;
    int64_t p = i / g.out_channels;
    const int64_t ow = p % g.out_w;
    p /= g.out_w;
    const int64_t oh = p % g.out_h;
    const int64_t b = p / g.out_h;
    int64_t taps = 0, mismatches = 0;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      if (ih < 0 || ih >= g.in_h) continue;
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const int64_t iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
        if (iw < 0 || iw >= g.in_w) continue;
        const W* xp = x + ((b * g.in_h + ih) * g.in_w + iw) * g.words;
        const W* fp =
            filter + ((co * g.kernel_h + kh) * g.kernel_w + kw) * g.words;
        for (int64_t w = 0; w < g.words; ++w) mismatches += Popc(xp[w] ^ fp[w]);
        ++taps;
      }
    }
    // Each tap in the image adds channels - 2 * (its mismatches); padding
    // taps add 0.
    out[i] = static_cast<float>(taps * g.channels - 2 * mismatches);
  }
}

template <typename T, typename W>
int LaunchBitpack(const void* x, void* out, int64_t outer, int64_t depth,
                  cudaStream_t stream) {
  constexpr int64_t kWordBits = 8 * sizeof(W);
  const int64_t words = (depth + kWordBits - 1) / kWordBits;
  if (outer * words == 0) return 0;
  const int blocks = GridSize(outer * words, kThreads / 32);
  BitpackKernel<T, W><<<blocks, kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<W*>(out), outer, depth, words);
  return static_cast<int>(cudaGetLastError());
}

template <typename T>
int LaunchBitpackWords(int word_bits, const void* x, void* out, int64_t outer,
                       int64_t depth, cudaStream_t stream) {
  switch (word_bits) {
    case 32:
      return LaunchBitpack<T, uint32_t>(x, out, outer, depth, stream);
    case 64:
      return LaunchBitpack<T, uint64_t>(x, out, outer, depth, stream);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

template <typename W>
int LaunchXnorMatmul(const void* a, const void* b, float* out, int64_t m,
                     int64_t n, int64_t words, int64_t depth,
                     cudaStream_t stream) {
  if (m * n == 0) return 0;
  const int64_t tiles = (m + kTile - 1) / kTile * ((n + kTile - 1) / kTile);
  const int blocks = GridSize(tiles, 1);
  XnorMatmulKernel<W><<<blocks, dim3(kTile, kRowStep), 0, stream>>>(
      static_cast<const W*>(a), static_cast<const W*>(b), out, m, n, words,
      depth);
  return static_cast<int>(cudaGetLastError());
}

template <typename W>
int LaunchXnorConv2D(const void* x, const void* filter, float* out,
                     const XnorConvGeometry& g, cudaStream_t stream) {
  const int64_t total = g.batch * g.out_h * g.out_w * g.out_channels;
  if (total == 0) return 0;
  const int blocks = GridSize(total, kThreads);
  XnorConv2DKernel<W><<<blocks, kThreads, 0, stream>>>(
      static_cast<const W*>(x), static_cast<const W*>(filter), out, g);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int LaunchBitpackGpu(int dtype_code, int word_bits, const void* x, void* out,
                     int64_t outer, int64_t depth, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (dtype_code) {
    case 0:
      return LaunchBitpackWords<float>(word_bits, x, out, outer, depth, s);
    case 1:
      return LaunchBitpackWords<__half>(word_bits, x, out, outer, depth, s);
    case 2:
      return LaunchBitpackWords<__nv_bfloat16>(word_bits, x, out, outer,
                                               depth, s);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

int LaunchXnorMatmulGpu(int word_bits, const void* a, const void* b,
                        float* out, int64_t m, int64_t n, int64_t words,
                        int64_t depth, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (word_bits) {
    case 32:
      return LaunchXnorMatmul<uint32_t>(a, b, out, m, n, words, depth, s);
    case 64:
      return LaunchXnorMatmul<uint64_t>(a, b, out, m, n, words, depth, s);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

int LaunchXnorConv2DGpu(int word_bits, const void* x, const void* filter,
                        float* out, const XnorConvGeometry& g, void* stream) {
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (word_bits) {
    case 32:
      return LaunchXnorConv2D<uint32_t>(x, filter, out, g, s);
    case 64:
      return LaunchXnorConv2D<uint64_t>(x, filter, out, g, s);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace keras_cnnpractice
#endif  // GOOGLE_CUDA
