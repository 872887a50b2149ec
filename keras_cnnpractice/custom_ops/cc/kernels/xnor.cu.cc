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

// XnorConv2D's blocking: output tiles of kTile x kTile (output pixels x
// output channels), one per block at a time (grid-stride over tiles).
// The block is kTile x kTile / kRowsPerThread threads: thread (tx, ty)
// computes column tx of rows ty, ty + kRowStep, ... of the tile. Both
// operand tiles are staged in shared memory kStageWords words at a time;
// thread tid stages word tid % kStageWords of rows tid / kStageWords +
// kLoadRowStep * j (j < kLoadRows) of each.
constexpr int kTile = 32;
constexpr int kRowsPerThread = 4;
constexpr int kRowStep = kTile / kRowsPerThread;
constexpr int kStageWords = 32;
constexpr int kLoadRowStep = kThreads / kStageWords;
constexpr int kLoadRows = kTile / kLoadRowStep;
static_assert(kTile * kRowStep == kThreads, "conv block size");
static_assert(kLoadRowStep * kLoadRows == kTile, "staging rows");

// Staged tiles, rows padded by one word so the column reads
// b_tile[tx][k] of a warp fall in distinct banks; a_tile[ty + ...][k] is a
// broadcast.
template <typename W>
struct Tiles {
  W a[kTile][kStageWords + 1];
  W b[kTile][kStageWords + 1];
};

// Adds the mismatched bits of the staged words to thread (tx, ty)'s rows.
template <typename W>
__device__ __forceinline__ void AccumulateStage(const Tiles<W>& tiles, int tx,
                                                int ty, int stage_words,
                                                int64_t* mismatches) {
  // At most kStageWords * 64 per stage: int cannot overflow here.
  int stage[kRowsPerThread] = {};
  for (int k = 0; k < stage_words; ++k) {
    const W bv = tiles.b[tx][k];
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      stage[r] += Popc(tiles.a[ty + r * kRowStep][k] ^ bv);
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) mismatches[r] += stage[r];
}

// The output pixel of row `row` (b, oh, ow, as the NHWC output's row-major
// order): its image's first input pixel and its window's top-left corner.
struct Window {
  int64_t image, y0, x0;
};

__device__ __forceinline__ Window WindowOf(int64_t row,
                                           const XnorConvGeometry& g) {
  const int64_t ow = row % g.out_w, p = row / g.out_w;
  const int64_t oh = p % g.out_h, b = p / g.out_h;
  return {b * g.in_h * g.in_w, oh * g.stride_h - g.pad_top,
          ow * g.stride_w - g.pad_left};
}

// The convolution as an implicit matrix product: rows are output pixels,
// columns output channels, depth the kernel_h * kernel_w taps' packed words
// (the filter's row layout), gathered from x as they are staged. Taps in the
// padding stage zero words, i.e. +1 bits, as the CPU kernel does; each
// such tap's sum channels - 2 * popcount(filter tap) is taken out at the
// end, so the result equals zero padding.
template <typename W>
__global__ void __launch_bounds__(kThreads)
    XnorConv2DKernel(const W* __restrict__ x, const W* __restrict__ filter,
                     float* __restrict__ out, XnorConvGeometry g) {
  __shared__ Tiles<W> tiles;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kTile + tx;
  const int k = tid % kStageWords, load_row = tid / kStageWords;
  const int64_t m = g.batch * g.out_h * g.out_w, n = g.out_channels;
  const int64_t taps = g.kernel_h * g.kernel_w, depth = taps * g.words;
  const int64_t tiles_n = (n + kTile - 1) / kTile;
  const int64_t count = (m + kTile - 1) / kTile * tiles_n;
  for (int64_t t = blockIdx.x; t < count; t += gridDim.x) {
    const int64_t row0 = t / tiles_n * kTile;
    const int64_t col0 = t % tiles_n * kTile;
    Window windows[kLoadRows];
#pragma unroll
    for (int j = 0; j < kLoadRows; ++j) {
      const int64_t row = row0 + load_row + j * kLoadRowStep;
      // A row past m stages zeros: an image index of -1 marks it.
      windows[j] = row < m ? WindowOf(row, g) : Window{-1, 0, 0};
    }
    int64_t mismatches[kRowsPerThread] = {};
    for (int64_t k0 = 0; k0 < depth; k0 += kStageWords) {
      const int64_t word = k0 + k;
      const int64_t tap = word / g.words;
      const int64_t dy = tap / g.kernel_w * g.dilation_h;
      const int64_t dx = tap % g.kernel_w * g.dilation_w;
      const int64_t in_word = word - tap * g.words;
#pragma unroll
      for (int j = 0; j < kLoadRows; ++j) {
        const int r = load_row + j * kLoadRowStep;
        const Window& w = windows[j];
        const int64_t iy = w.y0 + dy, ix = w.x0 + dx;
        tiles.a[r][k] = word < depth && w.image >= 0 && iy >= 0 &&
                                iy < g.in_h && ix >= 0 && ix < g.in_w
                            ? x[(w.image + iy * g.in_w + ix) * g.words +
                                in_word]
                            : W(0);
        tiles.b[r][k] = word < depth && col0 + r < n
                            ? filter[(col0 + r) * depth + word]
                            : W(0);
      }
      __syncthreads();
      AccumulateStage(tiles, tx, ty,
                      static_cast<int>(depth - k0 < kStageWords ? depth - k0
                                                                : kStageWords),
                      mismatches);
      __syncthreads();  // the next stage overwrites the tiles
    }
    const int64_t col = col0 + tx;
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t row = row0 + ty + r * kRowStep;
      if (row >= m || col >= n) continue;
      const Window w = WindowOf(row, g);
      int64_t sum = taps * g.channels - 2 * mismatches[r];
      for (int64_t tap = 0; tap < taps; ++tap) {
        const int64_t iy = w.y0 + tap / g.kernel_w * g.dilation_h;
        const int64_t ix = w.x0 + tap % g.kernel_w * g.dilation_w;
        if (iy >= 0 && iy < g.in_h && ix >= 0 && ix < g.in_w) continue;
        const W* f = filter + col * depth + tap * g.words;
        int64_t ones = 0;
        for (int64_t i = 0; i < g.words; ++i) ones += Popc(f[i]);
        sum -= g.channels - 2 * ones;
      }
      out[row * n + col] = static_cast<float>(sum);
    }
  }
}

// XnorMatmul runs on the binary tensor cores (sm_80 and newer):
// `mma.sync m16n8k256 .b1` adds popcount(a & b) over 256 bits into a
// 16 x 8 tile of int32 sums (sm_90 has no XOR form), and popcount(a ^ b) =
// popcount(a) + popcount(b) - 2 popcount(a & b), with the row and column
// popcounts summed beside the products. Measured on an H200: 12.8x cuBLAS
// float32 on a [50176 x 4608] x [4608 x 512] product, where the popcount
// units' ceiling is 5.1x. XnorConv2D stays on the popcount units above.
// Two tensor-core versions were measured against it on the H200 (all
// exact) and were slower on most VGG layers: gathering the implicit rows
// per fragment (28x28x512, cuDNN = 1: 0.94x vs 1.06x at batch 64, 1.56x vs
// 3.62x at batch 1), and staging 64-row tiles through shared memory (1.00x
// vs 1.05x at batch 64, 4.08x vs 3.46x at batch 8, 1.76x vs 3.62x at batch
// 1; 14x14x512: 0.92x vs 1.43x, 2.26x vs 3.61x, 1.01x vs 4.18x): the
// gather, not the arithmetic, bounds the convolution.
//
// The packed operands are read as 32-bit words (both packed alike, so the
// bit order within a 256-bit step is the same for a and b). A block of 4
// warps computes a 64 x 64 output tile (grid-stride over tiles); each warp
// a 32 x 32 quarter: 2 x 4 products per 256-bit step, its fragments loaded
// straight from global memory (L1 holds a step's rows for the warps that
// share them). Fragment layout of m16n8k256 .b1 (PTX ISA): with g = lane /
// 4 and q = lane % 4, a0..a3 hold rows g, g + 8, g, g + 8 at 32-bit words
// q, q, q + 4, q + 4 of the step; b0, b1 column g at words q, q + 4; c0..c3
// rows g, g, g + 8, g + 8 at columns 2q, 2q + 1, 2q, 2q + 1.
constexpr int kMmaThreads = 128;
constexpr int kMmaTileRows = 64, kMmaTileCols = 64;
constexpr int kWarpRowTiles = 2, kWarpColTiles = 4;  // of 16 rows, 8 columns
constexpr int kStepWords = 8;                        // 256 bits

// out[i, j] = depth - 2 popcount(a_i ^ b_j), a [m, words32] and b
// [n, words32] packed alike, `depth` real bits.
__global__ void __launch_bounds__(kMmaThreads)
    XnorMatmulKernel(const uint32_t* __restrict__ a,
                     const uint32_t* __restrict__ b, float* __restrict__ out,
                     int64_t m, int64_t n, int64_t words32, int64_t depth) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, q = lane % 4;
  const int64_t tiles_n = (n + kMmaTileCols - 1) / kMmaTileCols;
  const int64_t count = (m + kMmaTileRows - 1) / kMmaTileRows * tiles_n;
  for (int64_t t = blockIdx.x; t < count; t += gridDim.x) {
    const int64_t row0 = t / tiles_n * kMmaTileRows + warp / 2 * 32;
    const int64_t col0 = t % tiles_n * kMmaTileCols + warp % 2 * 32;
    // This lane's rows and column (nullptr past m or n).
    const uint32_t* row[kWarpRowTiles][2];
#pragma unroll
    for (int i = 0; i < kWarpRowTiles; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t r = row0 + 16 * i + g + 8 * h;
        row[i][h] = r < m ? a + r * words32 : nullptr;
      }
    }
    const uint32_t* column[kWarpColTiles];
#pragma unroll
    for (int j = 0; j < kWarpColTiles; ++j) {
      const int64_t c = col0 + 8 * j + g;
      column[j] = c < n ? b + c * words32 : nullptr;
    }
    int ands[kWarpRowTiles][kWarpColTiles][4] = {};
    int64_t row_ones[kWarpRowTiles][2] = {}, col_ones[kWarpColTiles] = {};
    for (int64_t k = 0; k < words32; k += kStepWords) {
      uint32_t af[kWarpRowTiles][4], bf[kWarpColTiles][2];
#pragma unroll
      for (int i = 0; i < kWarpRowTiles; ++i) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const uint32_t* p = row[i][r % 2];
          const int64_t w = k + q + 4 * (r / 2);
          af[i][r] = p != nullptr && w < words32 ? p[w] : 0u;
        }
        row_ones[i][0] += __popc(af[i][0]) + __popc(af[i][2]);
        row_ones[i][1] += __popc(af[i][1]) + __popc(af[i][3]);
      }
#pragma unroll
      for (int j = 0; j < kWarpColTiles; ++j) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t w = k + q + 4 * h;
          bf[j][h] = column[j] != nullptr && w < words32 ? column[j][w] : 0u;
        }
        col_ones[j] += __popc(bf[j][0]) + __popc(bf[j][1]);
      }
#pragma unroll
      for (int i = 0; i < kWarpRowTiles; ++i) {
#pragma unroll
        for (int j = 0; j < kWarpColTiles; ++j) {
          int* c = ands[i][j];
          asm volatile(
              "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
              "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
              "{%0, %1, %2, %3};\n"
              : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
              : "r"(af[i][0]), "r"(af[i][1]), "r"(af[i][2]), "r"(af[i][3]),
                "r"(bf[j][0]), "r"(bf[j][1]));
        }
      }
    }
    // Whole-row and whole-column popcounts: the 4 lanes of a group hold
    // the parts of the same rows and column.
#pragma unroll
    for (int s = 1; s <= 2; s *= 2) {
#pragma unroll
      for (int i = 0; i < kWarpRowTiles; ++i) {
        row_ones[i][0] += __shfl_xor_sync(0xffffffffu, row_ones[i][0], s);
        row_ones[i][1] += __shfl_xor_sync(0xffffffffu, row_ones[i][1], s);
      }
#pragma unroll
      for (int j = 0; j < kWarpColTiles; ++j) {
        col_ones[j] += __shfl_xor_sync(0xffffffffu, col_ones[j], s);
      }
    }
#pragma unroll
    for (int j = 0; j < kWarpColTiles; ++j) {
      // Columns 2q and 2q + 1 of this 8-column tile: group 2q's, 2q + 1's.
      const int64_t ones[2] = {
          __shfl_sync(0xffffffffu, col_ones[j], 8 * q),
          __shfl_sync(0xffffffffu, col_ones[j], 8 * q + 4)};
#pragma unroll
      for (int i = 0; i < kWarpRowTiles; ++i) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int h = e / 2;
          const int64_t r = row0 + 16 * i + g + 8 * h;
          const int64_t c = col0 + 8 * j + 2 * q + e % 2;
          if (r < m && c < n) {
            const int64_t mismatches =
                row_ones[i][h] + ones[e % 2] - 2 * ands[i][j][e];
            out[r * n + c] = static_cast<float>(depth - 2 * mismatches);
          }
        }
      }
    }
  }
#endif
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
int LaunchXnorConv2D(const void* x, const void* filter, float* out,
                     const XnorConvGeometry& g, cudaStream_t stream) {
  const int64_t m = g.batch * g.out_h * g.out_w;
  if (m * g.out_channels == 0) return 0;
  const int64_t tiles =
      (m + kTile - 1) / kTile * ((g.out_channels + kTile - 1) / kTile);
  const int blocks = GridSize(tiles, 1);
  XnorConv2DKernel<W><<<blocks, dim3(kTile, kRowStep), 0, stream>>>(
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
  if (word_bits != 32 && word_bits != 64) {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  if (m * n == 0) return 0;
  int device = 0, major = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (major < 8) return static_cast<int>(cudaErrorInvalidDeviceFunction);
  const int64_t tiles = (m + kMmaTileRows - 1) / kMmaTileRows *
                        ((n + kMmaTileCols - 1) / kMmaTileCols);
  XnorMatmulKernel<<<GridSize(tiles, 1), kMmaThreads, 0,
                     static_cast<cudaStream_t>(stream)>>>(
      static_cast<const uint32_t*>(a), static_cast<const uint32_t*>(b), out,
      m, n, words * (word_bits / 32), depth);
  return static_cast<int>(cudaGetLastError());
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
