// CPU arithmetic of the Winograd ops (see winograd.h for the algorithm and
// the layouts): the transforms of Lavin & Gray (2016) for F(2x2, 3x3),
// F(4x4, 3x3) and F(6x6, 3x3), vectorized over channels, the matrix product
// of the transform domain, and the convolutions built from them.
//
// Vector code: the transforms use GCC/Clang vector types (Lanes below): 16
// floats in the avx512 build of setup.py, 8 in the avx2 build, 4 in the
// generic one. The matrix product has an AVX-512 micro-kernel (6 rows x 32
// columns, 12 zmm accumulators) in the avx512 build, an AVX2 + FMA one
// (6 x 16, 12 ymm) in the avx2 build, and the same in portable C++
// otherwise. On a CPU with full-width 512-bit FMA units the AVX-512 kernel
// does twice the AVX2 one's work per instruction
// (benchmarks/conv_algorithms.py runs both levels).
//
// The product has its own micro-kernel rather than packed_gemm.h's
// GemmPackedB because its operands differ: the transformed tiles are
// already row-contiguous (no packing of A needed), at batch 1 there are few
// of them, and the transformed filter's panels can be computed from the
// filter as they are packed. Timed on an earlier build machine (one core) on
// transform-domain shapes (rows x depth x columns 132x512x112, 162x128x64,
// 18x512x256, 180x64x64), Gemm ran at 78, 85, 54 and 82 GFLOP/s, PackB +
// GemmPackedB at 64, 62, 29 and 61.
//
// Two ways through a convolution: blocked (stage by stage over large
// groups of tiles, for layers with many channels) and fused (a few tiles at
// a time through all steps, for layers whose transformed filter is small);
// see the comments at each.
//
// Free of TensorFlow includes so the arithmetic can be read, and timed, on
// its own; the op kernels (winograd_conv2d_op.cc) add the threads.
#ifndef KERAS_CNNPRACTICE_KERNELS_WINOGRAD_CPU_H_
#define KERAS_CNNPRACTICE_KERNELS_WINOGRAD_CPU_H_

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#define KCP_WINOGRAD_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KCP_WINOGRAD_AVX2_FMA 1
#endif

#include "winograd.h"

namespace keras_cnnpractice {
namespace winograd {

// ---------------------------------------------------------------------------
// Lanes: one float, or a vector register of them: 16 with AVX-512, 8 with
// AVX, else 4. (16 rather than 8 with AVX-512: on a Zen 4 class EPYC, one
// core, 3-16 % faster per VGG layer at F(4x4) and F(6x6), transforms and
// filter packing included; an earlier measurement, before the filter's taps
// were copied once per depth block, found no gain.)

#if defined(__AVX512F__)
typedef float VecF __attribute__((vector_size(64)));
#elif defined(__AVX__)
typedef float VecF __attribute__((vector_size(32)));
#else
typedef float VecF __attribute__((vector_size(16)));
#endif

template <typename T>
struct Lanes;

template <>
struct Lanes<float> {
  static constexpr int64_t kCount = 1;
  static float Load(const float* p) { return *p; }
  static void Store(float* p, float v) { *p = v; }
};

template <>
struct Lanes<VecF> {
  static constexpr int64_t kCount = sizeof(VecF) / sizeof(float);
  static VecF Load(const float* p) {
    VecF v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void Store(float* p, VecF v) { std::memcpy(p, &v, sizeof v); }
};

// Calls body(T{}, i) for i in [0, n): a vector of lanes at a time, then
// one by one.
template <typename Body>
inline void ForLanes(int64_t n, Body body) {
  int64_t i = 0;
  for (; i + Lanes<VecF>::kCount <= n; i += Lanes<VecF>::kCount) {
    body(VecF{}, i);
  }
  for (; i < n; ++i) body(0.0f, i);
}

// ---------------------------------------------------------------------------
// Transforms of whole tiles, vectorized over the contiguous channel axis.

// G, the filter transform's matrix: the rule applied to the unit vectors.
template <int kTile>
struct FilterMatrix {
  float g[kTile + 2][3];
  FilterMatrix() {
    for (int t = 0; t < 3; ++t) {
      const float unit[3] = {t == 0 ? 1.0f : 0.0f, t == 1 ? 1.0f : 0.0f,
                             t == 2 ? 1.0f : 0.0f};
      float column[kTile + 2];
      FilterRule<kTile>::Apply(unit, column);
      for (int i = 0; i < kTile + 2; ++i) g[i][t] = column[i];
    }
  }
};

// r = row i of G g G^T = G h, h[b] = sum_t G[i][t] g[t][b], where tap(t)
// loads g[t / 3][t % 3]. Both ways of transforming the filter (the
// transform op and the panels packed from the filter) go through here, so
// they round alike and give the same products.
template <int kTile, typename T, typename Tap>
inline void FilterTransformRow(const FilterMatrix<kTile>& G, int i, Tap tap,
                               T (&r)[kTile + 2]) {
  T h[3];
  for (int b = 0; b < 3; ++b) {
    h[b] = G.g[i][0] * tap(b);
    h[b] += G.g[i][1] * tap(3 + b);
    h[b] += G.g[i][2] * tap(6 + b);
  }
  FilterRule<kTile>::Apply(h, r);
}

// v[xi * xi_stride + c] = (B^T d_c B)[xi] for c < channels, where pixel
// (i, j) of the alpha x alpha input tile d is the `channels` floats at
// rows[i * alpha + j].
template <int kTile>
inline void InputTransformTile(const float* const* rows, int64_t channels,
                               float* v, int64_t xi_stride) {
  constexpr int a = Transform<kTile>::kAlpha;
  ForLanes(channels, [&](auto lanes, int64_t c) {
    using T = decltype(lanes);
    T d[a][a], r[a][a];
    for (int i = 0; i < a * a; ++i) {
      d[i / a][i % a] = Lanes<T>::Load(rows[i] + c);
    }
    Apply2D<InputRule<kTile>>(d, r);
    for (int i = 0; i < a * a; ++i) {
      Lanes<T>::Store(v + i * xi_stride + c, r[i / a][i % a]);
    }
  });
}

// The m x m output pixels pixels[i * m + j][k] = (A^T m_k A)[i][j] for
// k < count, from the transform-domain products m[xi * xi_stride + k].
template <int kTile>
inline void OutputTransformTile(const float* m, int64_t xi_stride,
                                int64_t count, float* const* pixels) {
  constexpr int a = Transform<kTile>::kAlpha;
  ForLanes(count, [&](auto lanes, int64_t k) {
    using T = decltype(lanes);
    T x[a][a], y[kTile][kTile];
    for (int i = 0; i < a * a; ++i) {
      x[i / a][i % a] = Lanes<T>::Load(m + i * xi_stride + k);
    }
    Apply2D<OutputRule<kTile>>(x, y);
    for (int i = 0; i < kTile * kTile; ++i) {
      Lanes<T>::Store(pixels[i] + k, y[i / kTile][i % kTile]);
    }
  });
}

// u[xi][i] = (G g_i G^T)[xi] for i in [begin, end), where g_i is the 3x3
// filter filter[0..8][i] and `plane` = in * out floats separate the taps
// (filter [3][3][in][out], u [alpha][alpha][in][out]). The taps are copied
// a block at a time into local rows, and the results copied out the same
// way: the 9 + alpha^2 planes lie a multiple of 4 KiB apart whenever
// in * out is a multiple of 1024, and reading and writing them all in one
// loop made the cache alias them (2.5x to 4.5x slower, measured).
template <int kTile>
inline void FilterTransformRange(const float* filter, float* u, int64_t plane,
                                 int64_t begin, int64_t end) {
  constexpr int a = kTile + 2;
  constexpr int64_t kBlock = 128;
  const FilterMatrix<kTile> G;
  float taps[9][kBlock], out[a * a][kBlock];
  for (int64_t i0 = begin; i0 < end; i0 += kBlock) {
    const int64_t n = std::min(kBlock, end - i0);
    for (int j = 0; j < 9; ++j) {
      std::memcpy(taps[j], filter + j * plane + i0, n * sizeof(float));
    }
    ForLanes(n, [&](auto lanes, int64_t i) {
      using T = decltype(lanes);
      auto tap = [&](int t) { return Lanes<T>::Load(taps[t] + i); };
      for (int row = 0; row < a; ++row) {
        T r[a];
        FilterTransformRow<kTile>(G, row, tap, r);
        for (int j = 0; j < a; ++j) Lanes<T>::Store(out[row * a + j] + i, r[j]);
      }
    });
    for (int j = 0; j < a * a; ++j) {
      std::memcpy(u + j * plane + i0, out[j], n * sizeof(float));
    }
  }
}

// ---------------------------------------------------------------------------
// c[rows x cols] (+)= a[rows x depth] * b[depth x cols], row-major with
// leading dimensions lda, ldb, ldc, in depth blocks of kKc: each block of b
// is packed into panels of kNr columns, contiguous, which a micro-kernel
// multiplies with 6 rows of a at a time.

constexpr int64_t kMr = 6;     // micro-kernel rows
#ifdef KCP_WINOGRAD_AVX512
constexpr int64_t kNr = 32;    // micro-kernel columns (2 AVX-512 registers)
#else
constexpr int64_t kNr = 16;    // micro-kernel columns (2 AVX registers)
#endif
constexpr int64_t kKc = 64;    // depth block

// One cache line of floats, added to the strides between the planes that
// one loop reads or writes together (the taps of a filter, the packed
// blocks of U): without it those strides are multiples of 4 KiB for most
// channel counts, all the planes fall in one set of the L1 cache and evict
// each other (packing the filter of a 512 -> 512 layer ran 1.7x slower).
constexpr int64_t kLineFloats = 16;

// Floats of the packed panels of a depth block of `cols` columns, and the
// line that keeps consecutive blocks in different cache sets.
inline int64_t PackFloats(int64_t cols) {
  return kKc * (cols + kNr - 1) / kNr * kNr + kLineFloats;
}

// c[R x kNr] (+)= a[R x depth] * panel[depth x kNr]; `cols` <= kNr of the
// columns are real (the panel's others are zero); `accumulate` adds to c.
// The sum over this depth block starts from zero and is added to c at the
// end, so a long depth is summed in blocks (smaller rounding errors than
// one running sum).
#if defined(KCP_WINOGRAD_AVX512)
// 6 rows x 32 columns in 12 zmm accumulators; the partial columns of the
// last panel are loaded and stored through masks.
template <int R>
inline void MicroKernel(const float* a, int64_t lda, const float* panel,
                        int64_t depth, float* c, int64_t ldc, int64_t cols,
                        bool accumulate) {
  __m512 acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < depth; ++p) {
    const __m512 b0 = _mm512_loadu_ps(panel + p * kNr);
    const __m512 b1 = _mm512_loadu_ps(panel + p * kNr + 16);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + p]);
      acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
    }
  }
  const __mmask16 m0 = cols >= 16 ? 0xFFFF : (1u << cols) - 1;
  const __mmask16 m1 = cols >= 32   ? 0xFFFF
                       : cols > 16 ? (1u << (cols - 16)) - 1
                                   : 0;
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* dst = c + r * ldc;
    if (accumulate) {
      acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, dst));
      acc[r][1] =
          _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, dst + 16));
    }
    _mm512_mask_storeu_ps(dst, m0, acc[r][0]);
    _mm512_mask_storeu_ps(dst + 16, m1, acc[r][1]);
  }
}
#elif defined(KCP_WINOGRAD_AVX2_FMA)
template <int R>
inline void MicroKernel(const float* a, int64_t lda, const float* panel,
                        int64_t depth, float* c, int64_t ldc, int64_t cols,
                        bool accumulate) {
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < depth; ++p) {
    const __m256 b0 = _mm256_loadu_ps(panel + p * kNr);
    const __m256 b1 = _mm256_loadu_ps(panel + p * kNr + 8);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * lda + p);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
  if (cols == kNr) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      float* dst = c + r * ldc;
      if (accumulate) {
        acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_loadu_ps(dst));
        acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_loadu_ps(dst + 8));
      }
      _mm256_storeu_ps(dst, acc[r][0]);
      _mm256_storeu_ps(dst + 8, acc[r][1]);
    }
    return;
  }
  float edge[kNr];  // the partial columns of a row
  // Unrolled, as every loop over acc: an indexed acc would live in memory.
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(edge, acc[r][0]);
    _mm256_storeu_ps(edge + 8, acc[r][1]);
    float* dst = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      dst[j] = accumulate ? dst[j] + edge[j] : edge[j];
    }
  }
}
#else
// The same with the build's vector type (4 floats with SSE, 8 with AVX):
// the kNr columns in passes of two vectors, 12 accumulators in registers.
template <int R>
inline void MicroKernel(const float* a, int64_t lda, const float* panel,
                        int64_t depth, float* c, int64_t ldc, int64_t cols,
                        bool accumulate) {
  constexpr int64_t kLanes = Lanes<VecF>::kCount;
  for (int64_t j0 = 0; j0 < cols; j0 += 2 * kLanes) {
    VecF acc[R][2] = {};
    for (int64_t p = 0; p < depth; ++p) {
      const VecF b0 = Lanes<VecF>::Load(panel + p * kNr + j0);
      const VecF b1 = Lanes<VecF>::Load(panel + p * kNr + j0 + kLanes);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const float x = a[r * lda + p];
        acc[r][0] += x * b0;
        acc[r][1] += x * b1;
      }
    }
    const int64_t n = std::min(2 * kLanes, cols - j0);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      float edge[2 * kLanes];
      Lanes<VecF>::Store(edge, acc[r][0]);
      Lanes<VecF>::Store(edge + kLanes, acc[r][1]);
      float* dst = c + r * ldc + j0;
      for (int64_t j = 0; j < n; ++j) {
        dst[j] = accumulate ? dst[j] + edge[j] : edge[j];
      }
    }
  }
}
#endif  // KCP_WINOGRAD_AVX512, KCP_WINOGRAD_AVX2_FMA

// Where the kNr-column panel holding column `col` of a packed depth block of
// `depth` rows starts, and the offset of (row p, column col) in it.
inline int64_t PanelOffset(int64_t depth, int64_t p, int64_t col) {
  return col / kNr * depth * kNr + p * kNr + col % kNr;
}

// Packs the `depth` x `cols` block b (leading dimension ldb) into panels:
// pack[PanelOffset(depth, p, col)] = b[p][col], zero past `cols`.
inline void PackPanels(const float* b, int64_t ldb, int64_t depth,
                       int64_t cols, float* pack) {
  const int64_t full = cols / kNr, rest = cols % kNr;
  for (int64_t p = 0; p < depth; ++p) {
    const float* src = b + p * ldb;
    float* dst = pack + p * kNr;
    for (int64_t j = 0; j < full; ++j) {
      std::memcpy(dst + j * depth * kNr, src + j * kNr, kNr * sizeof(float));
    }
    if (rest > 0) {
      float* last = dst + full * depth * kNr;
      std::memcpy(last, src + full * kNr, rest * sizeof(float));
      std::fill(last + rest, last + kNr, 0.0f);
    }
  }
}

// c (+)= a[rows x depth] * the packed block (depth <= kKc).
inline void GemmPacked(const float* a, int64_t lda, const float* pack,
                       int64_t depth, float* c, int64_t ldc, int64_t rows,
                       int64_t cols, bool accumulate) {
  for (int64_t j0 = 0; j0 < cols; j0 += kNr) {
    const int64_t nc = std::min(kNr, cols - j0);
    const float* panel = pack + j0 * depth;
    for (int64_t i0 = 0; i0 < rows; i0 += kMr) {
      const float* ai = a + i0 * lda;
      float* ci = c + i0 * ldc + j0;
      const bool acc = accumulate;
      switch (std::min(kMr, rows - i0)) {
        case 6: MicroKernel<6>(ai, lda, panel, depth, ci, ldc, nc, acc); break;
        case 5: MicroKernel<5>(ai, lda, panel, depth, ci, ldc, nc, acc); break;
        case 4: MicroKernel<4>(ai, lda, panel, depth, ci, ldc, nc, acc); break;
        case 3: MicroKernel<3>(ai, lda, panel, depth, ci, ldc, nc, acc); break;
        case 2: MicroKernel<2>(ai, lda, panel, depth, ci, ldc, nc, acc); break;
        default: MicroKernel<1>(ai, lda, panel, depth, ci, ldc, nc, acc);
      }
    }
  }
}

// c = a * b; `pack` holds PackFloats(cols) floats.
inline void Gemm(const float* a, int64_t lda, const float* b, int64_t ldb,
                 float* c, int64_t ldc, int64_t rows, int64_t cols,
                 int64_t depth, float* pack) {
  for (int64_t p0 = 0; p0 < depth; p0 += kKc) {
    const int64_t pd = std::min(kKc, depth - p0);
    PackPanels(b + p0 * ldb, ldb, pd, cols, pack);
    GemmPacked(a + p0, lda, pack, pd, c, ldc, rows, cols, p0 > 0);
  }
}

// Floats between the taps' planes in CopyTaps's copy (pd x nk each).
inline int64_t TapsPlane(int64_t pd, int64_t nk) {
  return pd * nk + kLineFloats;
}

// taps[t * TapsPlane(pd, nk) + p * nk + k] = filter tap t (of 9) at input
// channel p0 + p, output channel k0 + k, for p < pd, k < nk (filter
// [3][3][in][out], taps `plane` floats apart). The filter's planes are a
// multiple of 4 KiB apart for many shapes: copied once per depth block, so
// that the transforms below neither make the cache alias them nor read the
// filter from memory again for each row of the transform.
inline void CopyTaps(const float* filter, int64_t plane, int64_t cout,
                     int64_t p0, int64_t pd, int64_t k0, int64_t nk,
                     float* taps) {
  for (int t = 0; t < 9; ++t) {
    for (int64_t p = 0; p < pd; ++p) {
      std::memcpy(taps + t * TapsPlane(pd, nk) + p * nk,
                  filter + t * plane + (p0 + p) * cout + k0,
                  nk * sizeof(float));
    }
  }
}

// The packed panels of U[i][j][p0 : p0 + pd][k0 : k0 + nk] for every
// j < alpha, computed from the filter's taps (copied by CopyTaps) rather
// than read from a transformed filter (FilterTransformRow). Those of
// (i, j) go to pack + j * pack_stride.
template <int kTile>
void PackFilterPanels(const float* taps, int i, int64_t pd, int64_t nk,
                      float* pack, int64_t pack_stride) {
  constexpr int a = kTile + 2;
  const FilterMatrix<kTile> G;
  if (nk % kNr != 0) {  // the zero columns of the last panel
    for (int j = 0; j < a; ++j) {
      float* last = pack + j * pack_stride + PanelOffset(pd, 0, nk);
      std::fill(last, last + pd * kNr, 0.0f);
    }
  }
  const int64_t plane = TapsPlane(pd, nk);  // tap t at taps[t * plane]
  for (int64_t p = 0; p < pd; ++p) {
    const float* tap = taps + p * nk;
    ForLanes(nk, [&](auto lanes, int64_t k) {
      using T = decltype(lanes);
      T r[a];
      FilterTransformRow<kTile>(
          G, i, [&](int t) { return Lanes<T>::Load(tap + t * plane + k); },
          r);
      for (int j = 0; j < a; ++j) {
        Lanes<T>::Store(pack + j * pack_stride + PanelOffset(pd, p, k), r[j]);
      }
    });
  }
}

// ---------------------------------------------------------------------------
// The blocked convolution, in two stages per group of tiles (the batch's
// tiles in row-major order):
//  1. the input transform of the group's tiles, into v[xi][tile][in];
//  2. units of (rows of tiles) x (output channels): the alpha^2 products
//     of those rows with U's columns, into the unit's m[xi][tile][out],
//     then the output transform of those rows and channels.
// A group's transformed tiles are shared by all the units of stage 2, so
// each input transform is done once, and U is read once per row block; the
// split favours few row blocks (U, alpha^2 x in x out, is large where the
// channels are many) and cuts the output channels into chunks where the
// workers need more units. Without a cached transformed filter, each unit
// computes the panels of U it needs from the filter as it packs them: U
// (4x the filter for F(4x4)) is then never written to memory. That costs
// 3 to 4 operations per element of U per row block (FilterTransformRow),
// against the row block's 6 to 96 multiply-adds in the product. Layers
// with a small U take the fused convolution at the end of this file.

struct Plan {
  int64_t group_tiles;  // tiles per group (stage 1)
  int64_t row_tiles;    // tiles per unit of stage 2
  int64_t k_chunk;      // output channels per unit of stage 2
  int64_t row_blocks, k_chunks;  // units per full group
};

inline int64_t CeilDiv(int64_t x, int64_t y) { return (x + y - 1) / y; }
inline int64_t RoundUp(int64_t x, int64_t to) { return CeilDiv(x, to) * to; }

// Transformed-input floats a group may hold, and products a unit may hold.
constexpr int64_t kGroupBudgetFloats = 1 << 22;  // 16 MiB
constexpr int64_t kUnitBudgetFloats = 1 << 19;   // 2 MiB
constexpr int64_t kMaxRowTiles = 16 * kMr;

inline int64_t Tiles(const WinogradGeometry& g) {
  return g.batch * g.tiles_h * g.tiles_w;
}

inline Plan MakePlan(const WinogradGeometry& g, int64_t workers) {
  const int64_t a2 = (g.tile + 2) * (g.tile + 2);
  const int64_t tiles = Tiles(g);
  Plan p;
  const int64_t most = std::max(kGroupBudgetFloats / (a2 * g.in_channels), kMr);
  p.group_tiles = CeilDiv(tiles, CeilDiv(tiles, most));  // equal groups
  p.row_blocks = CeilDiv(p.group_tiles, kMaxRowTiles);
  p.row_tiles = RoundUp(CeilDiv(p.group_tiles, p.row_blocks), kMr);
  // Enough units for every worker (four each, so that one slow worker
  // leaves little idle time), and products within budget.
  const int64_t by_workers = CeilDiv(4 * workers, p.row_blocks);
  const int64_t by_budget =
      CeilDiv(a2 * p.row_tiles * g.out_channels, kUnitBudgetFloats);
  p.k_chunk = RoundUp(
      CeilDiv(g.out_channels, std::max(by_workers, by_budget)), kNr);
  p.k_chunks = CeilDiv(g.out_channels, p.k_chunk);
  return p;
}

// Floats of the group's transformed tiles (shared by the workers).
inline int64_t GroupFloats(const WinogradGeometry& g, const Plan& p) {
  return (g.tile + 2) * (g.tile + 2) * p.group_tiles * g.in_channels;
}

// Scratch floats one worker needs in stage 2.
inline int64_t UnitFloats(const WinogradGeometry& g, const Plan& p) {
  const int64_t a = g.tile + 2;
  return a * a * p.row_tiles * p.k_chunk + a * PackFloats(p.k_chunk) +
         9 * TapsPlane(kKc, p.k_chunk) + p.k_chunk;
}

// Image, first output row and first output column of tile t.
inline void LocateTile(const WinogradGeometry& g, int64_t t, int64_t* n,
                       int64_t* y0, int64_t* x0) {
  *n = t / (g.tiles_h * g.tiles_w);
  *y0 = (t / g.tiles_w) % g.tiles_h * g.tile;
  *x0 = t % g.tiles_w * g.tile;
}

// Stage 1: v[xi][t - group_first][c] for tiles t in [first, last) of the
// group starting at tile `group_first`, `group_tiles` tiles per xi;
// `zeros` holds in_channels zeros, read for the pixels outside the image.
template <int kTile>
void TransformInputTiles(const float* x, const WinogradGeometry& g,
                         int64_t group_tiles, int64_t group_first,
                         int64_t first, int64_t last, const float* zeros,
                         float* v) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels;
  const float* rows[a * a];
  for (int64_t t = first; t < last; ++t) {
    int64_t n, y0, x0;
    LocateTile(g, t, &n, &y0, &x0);
    for (int i = 0; i < a; ++i) {
      const int64_t y = y0 - g.pad_top + i;
      for (int j = 0; j < a; ++j) {
        const int64_t xx = x0 - g.pad_left + j;
        const bool inside = y >= 0 && y < g.in_h && xx >= 0 && xx < g.in_w;
        rows[i * a + j] =
            inside ? x + ((n * g.in_h + y) * g.in_w + xx) * cin : zeros;
      }
    }
    InputTransformTile<kTile>(rows, cin, v + (t - group_first) * cin,
                              group_tiles * cin);
  }
}

// Output channels [k0, k0 + nk) of tiles [first, first + count) from
// their products m[xi * xi_stride + t * tile_stride + k]; the pixels past
// the output's edge go to `discard` (nk floats).
template <int kTile>
void TransformOutputTiles(const float* m, int64_t tile_stride,
                          int64_t xi_stride, const WinogradGeometry& g,
                          int64_t first, int64_t count, int64_t k0,
                          int64_t nk, float* discard, float* out) {
  const int64_t cout = g.out_channels;
  float* pixels[kTile * kTile];
  for (int64_t t = 0; t < count; ++t) {
    int64_t n, y0, x0;
    LocateTile(g, first + t, &n, &y0, &x0);
    for (int i = 0; i < kTile; ++i) {
      for (int j = 0; j < kTile; ++j) {
        const int64_t y = y0 + i, xx = x0 + j;
        pixels[i * kTile + j] =
            y < g.out_h && xx < g.out_w
                ? out + ((n * g.out_h + y) * g.out_w + xx) * cout + k0
                : discard;
      }
    }
    OutputTransformTile<kTile>(m + t * tile_stride, xi_stride, nk, pixels);
  }
}

// Stage 2: output channels [k0, k0 + nk) of tiles [first, first + count)
// of the group starting at `group_first`, whose transformed tiles are v.
// `u` is the transformed filter [alpha^2][in][out], or null: then U's
// panels are computed from `filter` [3][3][in][out]. `scratch` holds
// UnitFloats floats.
template <int kTile>
void MultiplyTiles(const float* v, const float* u, const float* filter,
                   float* out, const WinogradGeometry& g, const Plan& p,
                   int64_t group_first, int64_t first, int64_t count,
                   int64_t k0, int64_t nk, float* scratch) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels, cout = g.out_channels;
  const int64_t rt = p.row_tiles, kw = p.k_chunk;
  const int64_t pack_floats = PackFloats(kw);
  float* m = scratch;                     // [alpha^2][row_tiles][k_chunk]
  float* pack = m + a * a * rt * kw;      // alpha blocks of packed panels
  float* taps = pack + a * pack_floats;   // 9 planes of kKc x k_chunk taps
  float* discard = taps + 9 * TapsPlane(kKc, kw);  // cropped outputs
  const float* vt = v + (first - group_first) * cin;
  auto tiles_of = [&](int64_t xi) { return vt + xi * p.group_tiles * cin; };
  if (u != nullptr) {
    for (int64_t xi = 0; xi < a * a; ++xi) {
      Gemm(tiles_of(xi), cin, u + xi * cin * cout + k0, cout,
           m + xi * rt * kw, kw, count, nk, cin, pack);
    }
  } else {
    for (int64_t p0 = 0; p0 < cin; p0 += kKc) {
      const int64_t pd = std::min(kKc, cin - p0);
      CopyTaps(filter, cin * cout, cout, p0, pd, k0, nk, taps);
      for (int i = 0; i < a; ++i) {
        PackFilterPanels<kTile>(taps, i, pd, nk, pack, pack_floats);
        for (int j = 0; j < a; ++j) {
          GemmPacked(tiles_of(i * a + j) + p0, cin, pack + j * pack_floats,
                     pd, m + (i * a + j) * rt * kw, kw, count, nk, p0 > 0);
        }
      }
    }
  }
  TransformOutputTiles<kTile>(m, kw, rt * kw, g, first, count, k0, nk,
                              discard, out);
}

// ---------------------------------------------------------------------------
// The fused convolution, for layers whose transformed filter is small (few
// channels, as in VGG's first layers, where the blocked one spends its time
// moving transformed tiles through memory): U is packed once, shared by the
// workers, and each unit takes kFusedRowTiles tiles through the three steps
// (input transform, products, output transform) in scratch of its own that
// stays in its core's cache.

constexpr int64_t kFusedRowTiles = 12;
constexpr int64_t kFusedFilterFloats = 1 << 21;  // packed U up to 8 MiB

inline int64_t DepthBlocks(const WinogradGeometry& g) {
  return CeilDiv(g.in_channels, kKc);
}

// Floats of U packed for the fused convolution: a block of panels per
// (xi, depth block), PackFloats(out_channels) floats each.
inline int64_t PackedFilterFloats(const WinogradGeometry& g) {
  const int64_t a = g.tile + 2;
  return a * a * DepthBlocks(g) * PackFloats(g.out_channels);
}

inline bool Fused(const WinogradGeometry& g) {
  return PackedFilterFloats(g) <= kFusedFilterFloats;
}

// Scratch floats one worker needs for the fused convolution (packing the
// filter, then convolving tiles).
inline int64_t FusedUnitFloats(const WinogradGeometry& g) {
  const int64_t a = g.tile + 2;
  return std::max(a * a * kFusedRowTiles * (g.in_channels + g.out_channels) +
                      g.out_channels,
                  9 * TapsPlane(kKc, g.out_channels));
}

// Packs the blocks of U for items [first, last), item = i * DepthBlocks(g)
// + d covering (i * alpha + j, d) for every j: from the transformed filter
// u [alpha^2][in][out] or, where u is null, from `filter` [3][3][in][out]
// through `taps` (9 * TapsPlane(kKc, out) floats).
template <int kTile>
void PackFilterBlocks(const float* u, const float* filter,
                      const WinogradGeometry& g, int64_t first, int64_t last,
                      float* taps, float* packed) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels, cout = g.out_channels;
  const int64_t blocks = DepthBlocks(g), block_floats = PackFloats(cout);
  for (int64_t item = first; item < last; ++item) {
    const int i = static_cast<int>(item / blocks);
    const int64_t d = item % blocks, p0 = d * kKc;
    const int64_t pd = std::min(kKc, cin - p0);
    float* dst = packed + (i * a * blocks + d) * block_floats;
    if (u != nullptr) {
      for (int j = 0; j < a; ++j) {
        PackPanels(u + ((i * a + j) * cin + p0) * cout, cout, pd, cout,
                   dst + j * blocks * block_floats);
      }
    } else {
      CopyTaps(filter, cin * cout, cout, p0, pd, 0, cout, taps);
      PackFilterPanels<kTile>(taps, i, pd, cout, dst, blocks * block_floats);
    }
  }
}

// Convolves tiles [first, first + count), count <= kFusedRowTiles, with
// the packed U; `zeros` holds in_channels zeros, `scratch` FusedUnitFloats.
template <int kTile>
void ConvolveTiles(const float* x, const float* packed, float* out,
                   const WinogradGeometry& g, int64_t first, int64_t count,
                   const float* zeros, float* scratch) {
  constexpr int a = kTile + 2;
  constexpr int64_t rt = kFusedRowTiles;
  const int64_t cin = g.in_channels, cout = g.out_channels;
  const int64_t blocks = DepthBlocks(g), block_floats = PackFloats(cout);
  float* v = scratch;               // [alpha^2][rt][in]
  float* m = v + a * a * rt * cin;  // [alpha^2][rt][out]
  float* discard = m + a * a * rt * cout;
  TransformInputTiles<kTile>(x, g, rt, first, first, first + count, zeros, v);
  for (int xi = 0; xi < a * a; ++xi) {
    for (int64_t d = 0; d < blocks; ++d) {
      GemmPacked(v + xi * rt * cin + d * kKc, cin,
                 packed + (xi * blocks + d) * block_floats,
                 std::min(kKc, cin - d * kKc), m + xi * rt * cout, cout,
                 count, cout, d > 0);
    }
  }
  TransformOutputTiles<kTile>(m, cout, rt * cout, g, first, count, 0, cout,
                              discard, out);
}

}  // namespace winograd
}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_WINOGRAD_CPU_H_
