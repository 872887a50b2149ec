// CUDA kernels of KerasCnnPractice>WinogradFilterTransform and
// >WinogradConv2D (algorithm, layouts and transforms in winograd.h). Free of
// TensorFlow headers so the standalone harness (tests/gpu/) can build them
// with nvcc alone and check them against numpy on a GPU machine that has no
// TensorFlow.
//
// The convolution runs in three kernels on the call's stream: the input
// transform (one thread per tile and input channel, reads coalesced along
// the channels), alpha^2 matrix products [tiles x in] x [in x out] in one
// batched launch (64 x 64 output blocks in shared memory, 4 x 4 per thread),
// and the output transform (one thread per tile and output channel).
#if GOOGLE_CUDA
#include <cuda_runtime.h>

#include <cstdint>

#include "winograd.h"

namespace keras_cnnpractice {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

// Blocks for a grid-stride loop over `items`.
int Blocks(int64_t items) {
  const int64_t wanted = (items + kThreads - 1) / kThreads;
  return static_cast<int>(wanted < kMaxBlocks ? wanted : kMaxBlocks);
}

template <int kTile>
__global__ void FilterTransformKernel(const float* __restrict__ filter,
                                      float* __restrict__ u, int64_t cin,
                                      int64_t cout) {
  constexpr int a = kTile + 2;
  const int64_t plane = cin * cout;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < plane; i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    float g[3][3], r[a][a];
#pragma unroll
    for (int j = 0; j < 9; ++j) g[j / 3][j % 3] = filter[j * plane + i];
    Apply2D<FilterRule<kTile>>(g, r);
#pragma unroll
    for (int j = 0; j < a * a; ++j) u[j * plane + i] = r[j / a][j % a];
  }
}

// v[xi][t][c] = (B^T d B)[xi] of input channel c of tile t.
template <int kTile>
__global__ void InputTransformKernel(const float* __restrict__ x,
                                     float* __restrict__ v,
                                     WinogradGeometry g, int64_t tiles) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels, total = tiles * cin;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t c = i % cin, t = i / cin;
    const int64_t n = t / (g.tiles_h * g.tiles_w);
    const int64_t y0 = (t / g.tiles_w) % g.tiles_h * kTile - g.pad_top;
    const int64_t x0 = t % g.tiles_w * kTile - g.pad_left;
    float d[a][a], r[a][a];
#pragma unroll
    for (int p = 0; p < a; ++p) {
#pragma unroll
      for (int q = 0; q < a; ++q) {
        const int64_t y = y0 + p, xx = x0 + q;
        d[p][q] = y >= 0 && y < g.in_h && xx >= 0 && xx < g.in_w
                      ? x[((n * g.in_h + y) * g.in_w + xx) * cin + c]
                      : 0.0f;
      }
    }
    Apply2D<InputRule<kTile>>(d, r);
#pragma unroll
    for (int j = 0; j < a * a; ++j) v[j * total + i] = r[j / a][j % a];
  }
}

// The m x m output pixels of output channel k of tile t from
// m[xi][t][k], cropped at the image's edges.
template <int kTile>
__global__ void OutputTransformKernel(const float* __restrict__ m,
                                      float* __restrict__ out,
                                      WinogradGeometry g, int64_t tiles) {
  constexpr int a = kTile + 2;
  const int64_t cout = g.out_channels, total = tiles * cout;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t k = i % cout, t = i / cout;
    const int64_t n = t / (g.tiles_h * g.tiles_w);
    const int64_t y0 = (t / g.tiles_w) % g.tiles_h * kTile;
    const int64_t x0 = t % g.tiles_w * kTile;
    float x[a][a], y[kTile][kTile];
#pragma unroll
    for (int j = 0; j < a * a; ++j) x[j / a][j % a] = m[j * total + i];
    Apply2D<OutputRule<kTile>>(x, y);
#pragma unroll
    for (int p = 0; p < kTile; ++p) {
#pragma unroll
      for (int q = 0; q < kTile; ++q) {
        if (y0 + p < g.out_h && x0 + q < g.out_w) {
          out[((n * g.out_h + y0 + p) * g.out_w + x0 + q) * cout + k] =
              y[p][q];
        }
      }
    }
  }
}

// c[z] = a[z] * b[z] for z = blockIdx.z, with a[z] [rows x depth],
// b[z] [depth x cols] and c[z] [rows x cols] row-major and contiguous.
// Each block computes a 64 x 64 block of c through 16-deep slices held in
// shared memory; thread (ty, tx) owns rows ty + 16 i and columns tx + 16 j
// (i, j < 4), so its shared-memory reads and its stores are unit-stride
// across a warp.
constexpr int kBlockM = 64, kBlockN = 64, kBlockK = 16;

__global__ void BatchedGemmKernel(const float* __restrict__ a,
                                  const float* __restrict__ b,
                                  float* __restrict__ c, int64_t rows,
                                  int64_t cols, int64_t depth) {
  __shared__ float as[kBlockK][kBlockM + 1];
  __shared__ float bs[kBlockK][kBlockN];
  a += blockIdx.z * rows * depth;
  b += blockIdx.z * depth * cols;
  c += blockIdx.z * rows * cols;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBlockM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.y) * kBlockN;
  float acc[4][4] = {};
  for (int64_t p0 = 0; p0 < depth; p0 += kBlockK) {
    for (int l = threadIdx.x; l < kBlockM * kBlockK; l += kThreads) {
      const int i = l / kBlockK, p = l % kBlockK;
      as[p][i] = row0 + i < rows && p0 + p < depth
                     ? a[(row0 + i) * depth + p0 + p]
                     : 0.0f;
    }
    for (int l = threadIdx.x; l < kBlockK * kBlockN; l += kThreads) {
      const int p = l / kBlockN, j = l % kBlockN;
      bs[p][j] = p0 + p < depth && col0 + j < cols
                     ? b[(p0 + p) * cols + col0 + j]
                     : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kBlockK; ++p) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[p][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = bs[p][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t r = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
      if (r < rows && col < cols) c[r * cols + col] = acc[i][j];
    }
  }
}

template <int kTile>
int LaunchConv(const float* x, const float* u, float* out, float* workspace,
               const WinogradGeometry& g, cudaStream_t stream) {
  constexpr int a2 = (kTile + 2) * (kTile + 2);
  const int64_t tiles = g.batch * g.tiles_h * g.tiles_w;
  float* v = workspace;
  float* m = v + a2 * tiles * g.in_channels;
  if (tiles * g.in_channels > 0) {
    InputTransformKernel<kTile><<<Blocks(tiles * g.in_channels), kThreads, 0,
                                  stream>>>(x, v, g, tiles);
  }
  // Tiles on x, the grid's long axis (y allows 65535 blocks).
  const dim3 grid((tiles + kBlockM - 1) / kBlockM,
                  (g.out_channels + kBlockN - 1) / kBlockN, a2);
  BatchedGemmKernel<<<grid, kThreads, 0, stream>>>(v, u, m, tiles,
                                                   g.out_channels,
                                                   g.in_channels);
  OutputTransformKernel<kTile><<<Blocks(tiles * g.out_channels), kThreads, 0,
                                 stream>>>(m, out, g, tiles);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int LaunchWinogradFilterTransformGpu(int64_t tile, const float* filter,
                                     float* transformed, int64_t in_channels,
                                     int64_t out_channels, void* stream) {
  const int64_t plane = in_channels * out_channels;
  if (plane == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (tile == 2) {
    FilterTransformKernel<2><<<Blocks(plane), kThreads, 0, s>>>(
        filter, transformed, in_channels, out_channels);
  } else if (tile == 4) {
    FilterTransformKernel<4><<<Blocks(plane), kThreads, 0, s>>>(
        filter, transformed, in_channels, out_channels);
  } else if (tile == 6) {
    FilterTransformKernel<6><<<Blocks(plane), kThreads, 0, s>>>(
        filter, transformed, in_channels, out_channels);
  } else {
    return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

int64_t WinogradGpuWorkspaceFloats(const WinogradGeometry& g) {
  const int64_t a2 = (g.tile + 2) * (g.tile + 2);
  return a2 * g.batch * g.tiles_h * g.tiles_w *
         (g.in_channels + g.out_channels);
}

int LaunchWinogradConv2DGpu(const float* x, const float* u, float* out,
                            float* workspace, const WinogradGeometry& g,
                            void* stream) {
  if (g.batch * g.out_h * g.out_w * g.out_channels == 0) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (g.tile) {
    case 2:
      return LaunchConv<2>(x, u, out, workspace, g, s);
    case 4:
      return LaunchConv<4>(x, u, out, workspace, g, s);
    case 6:
      return LaunchConv<6>(x, u, out, workspace, g, s);
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
}

}  // namespace keras_cnnpractice
#endif  // GOOGLE_CUDA
