// CPU arithmetic of the Winograd ops (see winograd.h for the algorithm and
// the layouts): the transforms of Lavin & Gray (2016) for F(2x2, 3x3),
// F(4x4, 3x3) and F(6x6, 3x3), vectorized over channels, the matrix product
// of the transform domain, and the convolutions built from them.
//
// Vector code: the transforms use GCC/Clang vector types (Lanes below): 16
// floats in the avx512 build of setup.py, 8 in the avx2 build, 4 in the
// generic one. The products are packed_gemm.h's micro-kernels, reading the
// transformed tiles in place (their rows are contiguous) against panels of
// U that are packed from a cached transformed filter or computed from the
// filter as they are packed.
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

#include "packed_gemm.h"
#include "winograd.h"

namespace keras_cnnpractice {
namespace winograd {

// ---------------------------------------------------------------------------
// Lanes: one float, or a vector register of them: 16 with AVX-512, 8 with
// AVX, else 4. (16 rather than 8 with AVX-512: on a Zen 4 class EPYC, one
// core, 3-16 % faster per VGG layer at F(4x4) and F(6x6), transforms and
// filter packing included; an earlier measurement, before the filter's taps
// were copied once per depth block, found no gain.)

using VecF = gemm::Vec;

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

// sink(xi, (G g G^T)[xi]) for xi < alpha^2, row by row, for the 3x3
// filter g whose tap t, g[t / 3][t % 3], tap(t) loads: the rule applied to
// g's columns, then to each row of the result (as Apply2D does; 3 + alpha
// applications, none multiplying through G's zeros), each row handed to
// `sink` as soon as it is computed so that the alpha^2 results need not
// all be held in registers. Both ways of transforming the filter (the
// transform op and the panels packed from the filter) go through here, so
// they round alike and give the same products. Always inlined: a call
// (GCC declined to inline it in the op library, though it did in a small
// harness) kept the rows in memory and made packing the filter 2x slower.
template <int kTile, typename Tap, typename Sink>
__attribute__((always_inline)) inline void FilterTransformTile(Tap tap,
                                                               Sink sink) {
  using T = decltype(tap(0));
  constexpr int a = kTile + 2;
  T cols[a][3];
  for (int b = 0; b < 3; ++b) {
    const T g[3] = {tap(b), tap(3 + b), tap(6 + b)};
    T r[a];
    FilterRule<kTile>::Apply(g, r);
    for (int i = 0; i < a; ++i) cols[i][b] = r[i];
  }
  for (int i = 0; i < a; ++i) {
    T r[a];
    FilterRule<kTile>::Apply(cols[i], r);
    for (int j = 0; j < a; ++j) sink(i * a + j, r[j]);
  }
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
  float taps[9][kBlock], out[a * a][kBlock];
  for (int64_t i0 = begin; i0 < end; i0 += kBlock) {
    const int64_t n = std::min(kBlock, end - i0);
    for (int j = 0; j < 9; ++j) {
      std::memcpy(taps[j], filter + j * plane + i0, n * sizeof(float));
    }
    ForLanes(n, [&](auto lanes, int64_t i) {
      using T = decltype(lanes);
      FilterTransformTile<kTile>(
          [&](int t) { return Lanes<T>::Load(taps[t] + i); },
          [&](int xi, T r) { Lanes<T>::Store(out[xi] + i, r); });
    });
    for (int j = 0; j < a * a; ++j) {
      std::memcpy(u + j * plane + i0, out[j], n * sizeof(float));
    }
  }
}

// ---------------------------------------------------------------------------
// The products: packed_gemm.h's GEMM.

using gemm::DepthBlocks;
using gemm::Gemm;
using gemm::GemmPacked;
using gemm::GemmPackedB;
using gemm::kKc;
using gemm::kLineFloats;
using gemm::kMr;
using gemm::kNr;
using gemm::PackedBSize;
using gemm::PackFloats;
using gemm::PackPanels;
using gemm::PanelOffset;

// The packed panels of U[xi][p0 : p0 + pd][k0 : k0 + nk] for every xi <
// alpha^2, computed from `filter` [3][3][in][out] (taps `plane` floats
// apart, rows `cout` floats long) as they are packed, rather than read from
// a transformed filter; those of xi go to pack + xi * pack_stride. Each tap
// is loaded once, straight from the filter, and its nine loads are used at
// once, so that the planes' falling in one set of the L1 cache (they lie a
// multiple of 4 KiB apart for many shapes) evicts nothing still needed.
// The rows of taps kTapsAhead ahead are prefetched: in the op the filter
// comes from memory, and these strided loads alone did not keep enough
// lines in flight. (This replaced a copy of each depth block's taps followed
// by alpha passes over the copy, one per row of G g G^T, each multiplying
// through G's zeros. One core, the blocked convolution alone: 14x14x512
// batch 1, F(4x4) 6.0 -> 4.85 ms, F(6x6) 8.1 -> 6.8 ms; in the op on two
// cores the gain is smaller, 2.61-2.65 -> 2.42-2.66 ms for F(4x4).)
constexpr int64_t kTapsAhead = 2;  // rows of taps prefetched ahead

template <int kTile>
void PackFilterPanels(const float* filter, int64_t plane, int64_t cout,
                      int64_t p0, int64_t pd, int64_t k0, int64_t nk,
                      float* pack, int64_t pack_stride) {
  constexpr int a = kTile + 2;
  if (nk % kNr != 0) {  // the last panel, zero where no column is stored
    for (int xi = 0; xi < a * a; ++xi) {
      float* last = pack + xi * pack_stride + PanelOffset(pd, 0, nk - nk % kNr);
      std::fill(last, last + pd * kNr, 0.0f);
    }
  }
  for (int64_t p = 0; p < pd; ++p) {
    const float* taps = filter + (p0 + p) * cout + k0;
    if (p + kTapsAhead < pd) {
      for (int t = 0; t < 9; ++t) {
        for (int64_t k = 0; k < nk; k += kLineFloats) {
          __builtin_prefetch(taps + kTapsAhead * cout + t * plane + k);
        }
      }
    }
    ForLanes(nk, [&](auto lanes, int64_t k) {
      using T = decltype(lanes);
      float* dst = pack + PanelOffset(pd, p, k);
      FilterTransformTile<kTile>(
          [&](int t) { return Lanes<T>::Load(taps + t * plane + k); },
          [&](int xi, T r) { Lanes<T>::Store(dst + xi * pack_stride, r); });
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
// about 2.5 operations and a store per element of U per row block
// (FilterTransformTile: 3 + alpha applications of a 10-operation rule per
// alpha^2 elements for F(4x4)), against the row block's 6 to 96
// multiply-adds in the product. Where there are many row blocks
// (PackFilterOnce), U is packed whole once instead and read back by each.
// Layers with a small U take the fused convolution at the end of this file.

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
// Most tiles per row block: each row block computes U's panels again, so
// fewer, longer blocks save filter transforms, while a block's rows of one
// depth block (kMaxRowTiles x kKc floats, 30 KiB) still fit a 32 KiB L1.
// 16 * kMr -> 20 * kMr makes 56x56x256 at batch 1 (196 tiles for F(4x4))
// two blocks instead of three: Intel Xeon AVX-512, 2 cores, the op's
// median 13.1-16.2 -> 9.8-15.3 ms (better in 5 of 7 alternating rounds,
// mean 14.7 -> 12.1); shapes whose blocks did not change moved by +-15 %.
constexpr int64_t kMaxRowTiles = 20 * kMr;

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
  return a * a * (p.row_tiles * p.k_chunk + PackFloats(p.k_chunk)) +
         p.k_chunk;
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
// U comes from `packed`, U packed whole (PackFilterBlocks), where that is
// not null; else from `u`, the transformed filter [alpha^2][in][out], or,
// where that is null too, its panels are computed from `filter`
// [3][3][in][out]. `scratch` holds UnitFloats floats.
template <int kTile>
void MultiplyTiles(const float* v, const float* packed, const float* u,
                   const float* filter, float* out, const WinogradGeometry& g,
                   const Plan& p, int64_t group_first, int64_t first,
                   int64_t count, int64_t k0, int64_t nk, float* scratch) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels, cout = g.out_channels;
  const int64_t rt = p.row_tiles, kw = p.k_chunk;
  const int64_t pack_floats = PackFloats(kw);
  float* m = scratch;                     // [alpha^2][row_tiles][k_chunk]
  float* pack = m + a * a * rt * kw;    // alpha^2 blocks of packed panels
  float* discard = pack + a * a * pack_floats;  // cropped outputs
  const float* vt = v + (first - group_first) * cin;
  auto tiles_of = [&](int64_t xi) { return vt + xi * p.group_tiles * cin; };
  if (packed != nullptr) {
    const int64_t xi_floats = PackedBSize(cin, cout);
    for (int64_t p0 = 0; p0 < cin; p0 += kKc) {
      const int64_t pd = std::min(kKc, cin - p0);
      const float* block =
          packed + p0 / kKc * PackFloats(cout) + PanelOffset(pd, 0, k0);
      for (int xi = 0; xi < a * a; ++xi) {
        GemmPacked(tiles_of(xi) + p0, cin, block + xi * xi_floats, pd,
                   m + xi * rt * kw, kw, count, nk, p0 > 0);
      }
    }
  } else if (u != nullptr) {
    for (int64_t xi = 0; xi < a * a; ++xi) {
      Gemm(tiles_of(xi), cin, u + xi * cin * cout + k0, cout,
           m + xi * rt * kw, kw, count, nk, cin, pack);
    }
  } else {
    for (int64_t p0 = 0; p0 < cin; p0 += kKc) {
      const int64_t pd = std::min(kKc, cin - p0);
      PackFilterPanels<kTile>(filter, cin * cout, cout, p0, pd, k0, nk, pack,
                              pack_floats);
      for (int xi = 0; xi < a * a; ++xi) {
        GemmPacked(tiles_of(xi) + p0, cin, pack + xi * pack_floats, pd,
                   m + xi * rt * kw, kw, count, nk, p0 > 0);
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
// workers, and each unit takes FusedRowTiles tiles through the three steps
// (input transform, products, output transform) in scratch of its own that
// stays in its core's cache.

constexpr int64_t kFusedFilterFloats = 1 << 21;  // packed U up to 8 MiB

// Floats of U packed for the fused convolution: each xi's in x out matrix
// packed whole for GemmPackedB, one after the other.
inline int64_t PackedFilterFloats(const WinogradGeometry& g) {
  const int64_t a = g.tile + 2;
  return a * a * PackedBSize(g.in_channels, g.out_channels);
}

inline bool Fused(const WinogradGeometry& g) {
  return PackedFilterFloats(g) <= kFusedFilterFloats;
}

// Where the blocked convolution packs U whole once per call (by all the
// workers, PackFilterBlocks) for every row block to read, rather than
// computing its panels again in each row block: where there are at least
// kPackOnceRowBlocks row blocks, U is at most 4x the filter (F(2x2),
// F(4x4)) and packed U fits kPackOnceFloats. Intel Xeon (AVX-512), 2 cores,
// the op's median over 5 alternating runs, batch 8: F(4x4) 56x56x256 (16
// row blocks) 47.1 -> 42.7 ms, 28x28x512 (4) 43.1 -> 41.6; F(6x6)
// 56x56x256 (8 row blocks, U 7.1x the filter) 46.8 -> 47.8, so not there.
constexpr int64_t kPackOnceRowBlocks = 4;
constexpr int64_t kPackOnceFloats = int64_t{1} << 24;  // 64 MiB

inline bool PackFilterOnce(const WinogradGeometry& g, const Plan& p) {
  const int64_t row_blocks =
      CeilDiv(Tiles(g), p.group_tiles) * p.row_blocks;
  return g.tile <= 4 && row_blocks >= kPackOnceRowBlocks &&
         PackedFilterFloats(g) <= kPackOnceFloats;
}

// Tiles per unit of the fused convolution: 12, or kFusedLongRows where
// packed U is larger than kFusedCachedFilterBytes (about a core's L2: 2 MiB
// on the Xeon below, 1 MiB on a Zen 4) and there are two such units per
// worker. Each unit reads all of U; when U comes from L3 rather than L2,
// 12 rows per product are too few for what it costs to read (one core,
// 36 products of rows x 128 x 128, U 2.4 MB: 95 GFLOP/s at 12 rows, 126 at
// 36). Intel Xeon (AVX-512), 2 cores, the op's median over 3 alternating
// runs, 12 -> 36 tiles: F(4x4) 112x112x128 batch 1 7.73 -> 6.65 ms, batch
// 8 51.7 -> 45.0, 56x56x128 2.45 -> 2.19; F(6x6) 112x112x128 8.44 -> 7.29.
// With 64 channels (U 0.6-1.1 MB) 36 tiles ran 0.91-1.05x, 28x28x128 at
// batch 1 (49 tiles, two uneven units) 0.91x.
constexpr int64_t kFusedCachedFilterBytes = int64_t{2} << 20;
constexpr int64_t kFusedLongRows = 36;

inline int64_t FusedRowTiles(const WinogradGeometry& g, int workers) {
  const bool long_rows =
      PackedFilterFloats(g) * int64_t{sizeof(float)} >
          kFusedCachedFilterBytes &&
      Tiles(g) >= 2 * workers * kFusedLongRows;
  return long_rows ? kFusedLongRows : 12;
}

// Scratch floats one worker needs for fused units of `row_tiles` tiles.
inline int64_t FusedUnitFloats(const WinogradGeometry& g, int64_t row_tiles) {
  const int64_t a = g.tile + 2;
  return a * a * row_tiles * (g.in_channels + g.out_channels) +
         g.out_channels;
}

// Items of PackFilterBlocks: (depth block, panel of kNr output channels).
inline int64_t FilterBlockItems(const WinogradGeometry& g) {
  return DepthBlocks(g.in_channels) * CeilDiv(g.out_channels, kNr);
}

// Packs U for items [first, last) of FilterBlockItems, item = d * panels
// + n covering depth block d and the panel of output channels [n * kNr,
// (n + 1) * kNr) for every xi: from the transformed filter u
// [alpha^2][in][out] or, where u is null, from `filter` [3][3][in][out].
template <int kTile>
void PackFilterBlocks(const float* u, const float* filter,
                      const WinogradGeometry& g, int64_t first, int64_t last,
                      float* packed) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels, cout = g.out_channels;
  const int64_t panels = CeilDiv(cout, kNr), xi_floats = PackedBSize(cin, cout);
  for (int64_t item = first; item < last; ++item) {
    const int64_t d = item / panels, p0 = d * kKc, k0 = item % panels * kNr;
    const int64_t pd = std::min(kKc, cin - p0), nk = std::min(kNr, cout - k0);
    float* dst = packed + d * PackFloats(cout) + PanelOffset(pd, 0, k0);
    if (u != nullptr) {
      for (int xi = 0; xi < a * a; ++xi) {
        PackPanels(u + (xi * cin + p0) * cout + k0, cout, 1, pd, nk,
                   dst + xi * xi_floats);
      }
    } else {
      PackFilterPanels<kTile>(filter, cin * cout, cout, p0, pd, k0, nk, dst,
                              xi_floats);
    }
  }
}

// Convolves tiles [first, first + count), count <= rt, with the packed U;
// `zeros` holds in_channels zeros, `scratch` FusedUnitFloats(g, rt).
template <int kTile>
void ConvolveTiles(const float* x, const float* packed, float* out,
                   const WinogradGeometry& g, int64_t rt, int64_t first,
                   int64_t count, const float* zeros, float* scratch) {
  constexpr int a = kTile + 2;
  const int64_t cin = g.in_channels, cout = g.out_channels;
  float* v = scratch;               // [alpha^2][rt][in]
  float* m = v + a * a * rt * cin;  // [alpha^2][rt][out]
  float* discard = m + a * a * rt * cout;
  TransformInputTiles<kTile>(x, g, rt, first, first, first + count, zeros, v);
  for (int xi = 0; xi < a * a; ++xi) {
    GemmPackedB(count, cout, cin, v + xi * rt * cin, cin, 1,
                packed + xi * PackedBSize(cin, cout), m + xi * rt * cout,
                cout, /*accumulate=*/false, /*a_scratch=*/nullptr);
  }
  TransformOutputTiles<kTile>(m, cout, rt * cout, g, first, count, 0, cout,
                              discard, out);
}

}  // namespace winograd
}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_WINOGRAD_CPU_H_
