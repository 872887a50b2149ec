// The float GEMM of the CPU kernels (the im2col convolution and its
// gradients, the Winograd transform-domain products): B packed into panels
// of kNr columns, a depth block of kKc rows at a time, and a register-tile
// micro-kernel of up to kMr rows x kNr columns that broadcasts A's elements
// from A's rows in place, in the style of BLIS (Van Zee & van de Geijn,
// "BLIS: A Framework for Rapidly Instantiating BLAS Functionality", 2015)
// without its packing of A: A's rows are contiguous for every caller but
// the filter gradient's, whose blocks are copied row-major first.
//
// Micro-kernels: AVX-512 (6 x 64, 24 zmm accumulators, masked partial
// columns) in the avx512 build of setup.py, AVX2 + FMA (6 x 16, 12 ymm: 16
// registers hold no more) in the avx2 build, GCC vector types (SSE on the
// generic build) otherwise.
// One core of a Zen 4 class EPYC (avx512 build, the 6 x 32 tile this had
// then), m x k x n = 3136x576x64, 3136x2304x256, 784x4608x512,
// 784x512x128: 111, 108, 105 and 113 GFLOP/s (of a 117 GFLOP/s FMA peak),
// where the BLIS-style kernel with packed A that this replaced ran 90, 97,
// 107 and 102. An Intel Xeon core has two 512-bit FMA ports (206 GFLOP/s),
// where 6 x 32 (2 loads of B and 6 broadcasts of A per 12 FMAs) left the
// load ports busier than the FMAs: 6 x 64 took GemmPackedB on one core from
// 119, 123, 120, 129 to 122, 133, 132, 145 GFLOP/s on the same shapes
// (3136x1152x128: 115 -> 131; medians of 7 alternating runs of a harness
// that calls this header), and the im2col op on two cores 3-10 % faster.
// A last panel of fewer columns runs only the vectors that hold them
// (3136x576x32: 132 with 6 x 32, 76 with a whole 6 x 64 tile, 136 so).
//
// This header must stay free of TensorFlow includes.
#ifndef KERAS_CNNPRACTICE_KERNELS_PACKED_GEMM_H_
#define KERAS_CNNPRACTICE_KERNELS_PACKED_GEMM_H_

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#define KCP_GEMM_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KCP_GEMM_AVX2_FMA 1
#endif

namespace keras_cnnpractice {
namespace gemm {

// The build's native vector: a wider GCC vector type than the target has
// registers for is lowered through memory (the generic x86-64-v2 build with
// 32-byte vectors once ran im2col at 5 GFLOP/s, 1/50 of its SSE speed).
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float Vec __attribute__((vector_size(kVecBytes)));
constexpr int64_t kLanes = kVecBytes / sizeof(float);

// Unaligned vector load and store (memcpy compiles to one vmovups).
inline Vec Load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }

constexpr int64_t kMr = 6;     // micro-kernel rows
#ifdef KCP_GEMM_AVX512
constexpr int64_t kNr = 64;    // micro-kernel columns (4 AVX-512 registers)
#else
constexpr int64_t kNr = 16;    // micro-kernel columns (2 AVX registers)
#endif
constexpr int64_t kKc = 64;    // depth block
constexpr int64_t kMc = 96;    // rows of A per pass over B in GemmPackedB

// One cache line of floats, added to the strides between the planes that
// one loop reads or writes together (packed depth blocks; Winograd's filter
// taps): without it those strides are multiples of 4 KiB for most channel
// counts, all the planes fall in one set of the L1 cache and evict each
// other (packing the filter of a 512 -> 512 Winograd layer ran 1.3x
// slower).
constexpr int64_t kLineFloats = 16;

// Floats of the packed panels of a depth block of `cols` columns, and the
// line that keeps consecutive blocks in different cache sets.
inline int64_t PackFloats(int64_t cols) {
  return kKc * ((cols + kNr - 1) / kNr * kNr) + kLineFloats;
}

// c[R x kNr] (+)= a[R x depth] * panel[depth x kNr]; `cols` <= kNr of the
// columns are real (the panel's others are zero); `accumulate` adds to c.
// The sum over this depth block starts from zero and is added to c at the
// end, so a long depth is summed in blocks (smaller rounding errors than
// one running sum).
#if defined(KCP_GEMM_AVX512)
// R rows x 16 * V columns in R * V zmm accumulators (6 x 64: 24, with 4
// loads of B and 6 broadcasts of A per 24 FMAs); the partial columns of the
// last panel are loaded and stored through masks.
template <int R, int V>
inline void MicroKernelColumns(const float* a, int64_t lda, const float* panel,
                               int64_t depth, float* c, int64_t ldc,
                               int64_t cols, bool accumulate) {
  __m512 acc[R][V];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < depth; ++p) {
    __m512 b[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) b[v] = _mm512_loadu_ps(panel + p * kNr + 16 * v);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        acc[r][v] = _mm512_fmadd_ps(x, b[v], acc[r][v]);
      }
    }
  }
  __mmask16 mask[V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const int64_t left = cols - 16 * v;
    mask[v] = left >= 16 ? 0xFFFF : left > 0 ? (1u << left) - 1 : 0;
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    float* dst = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      if (accumulate) {
        acc[r][v] = _mm512_add_ps(
            acc[r][v], _mm512_maskz_loadu_ps(mask[v], dst + 16 * v));
      }
      _mm512_mask_storeu_ps(dst + 16 * v, mask[v], acc[r][v]);
    }
  }
}

// Only the vectors that hold real columns: a last panel of 32 columns (or
// an output of 8, 16 or 32 channels) costs what a 6 x 32 tile did.
template <int R>
inline void MicroKernel(const float* a, int64_t lda, const float* panel,
                        int64_t depth, float* c, int64_t ldc, int64_t cols,
                        bool accumulate) {
  if (cols > 48) {
    MicroKernelColumns<R, 4>(a, lda, panel, depth, c, ldc, cols, accumulate);
  } else if (cols > 32) {
    MicroKernelColumns<R, 3>(a, lda, panel, depth, c, ldc, cols, accumulate);
  } else if (cols > 16) {
    MicroKernelColumns<R, 2>(a, lda, panel, depth, c, ldc, cols, accumulate);
  } else {
    MicroKernelColumns<R, 1>(a, lda, panel, depth, c, ldc, cols, accumulate);
  }
}
#elif defined(KCP_GEMM_AVX2_FMA)
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
  for (int64_t j0 = 0; j0 < cols; j0 += 2 * kLanes) {
    Vec acc[R][2] = {};
    for (int64_t p = 0; p < depth; ++p) {
      const Vec b0 = Load(panel + p * kNr + j0);
      const Vec b1 = Load(panel + p * kNr + j0 + kLanes);
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
      Store(edge, acc[r][0]);
      Store(edge + kLanes, acc[r][1]);
      float* dst = c + r * ldc + j0;
      for (int64_t j = 0; j < n; ++j) {
        dst[j] = accumulate ? dst[j] + edge[j] : edge[j];
      }
    }
  }
}
#endif  // KCP_GEMM_AVX512, KCP_GEMM_AVX2_FMA

// Where the kNr-column panel holding column `col` of a packed depth block of
// `depth` rows starts, and the offset of (row p, column col) in it.
inline int64_t PanelOffset(int64_t depth, int64_t p, int64_t col) {
  return col / kNr * depth * kNr + p * kNr + col % kNr;
}

// Packs the `depth` x `cols` block b (element (p, j) at b[p * b_rs +
// j * b_cs]) into panels: pack[PanelOffset(depth, p, j)] = b(p, j), zero
// past `cols`.
inline void PackPanels(const float* b, int64_t b_rs, int64_t b_cs,
                       int64_t depth, int64_t cols, float* pack) {
  const int64_t full = cols / kNr, rest = cols % kNr;
  for (int64_t p = 0; p < depth; ++p) {
    const float* src = b + p * b_rs;
    float* dst = pack + p * kNr;
    if (b_cs == 1) {  // whole panels: a copy of constant size, inlined
      for (int64_t j = 0; j < full; ++j) {
        std::memcpy(dst + j * depth * kNr, src + j * kNr,
                    kNr * sizeof(float));
      }
    } else {
      for (int64_t j = 0; j < full * kNr; ++j) {
        dst[j / kNr * depth * kNr + j % kNr] = src[j * b_cs];
      }
    }
    if (rest > 0) {
      float* last = dst + full * depth * kNr;
      for (int64_t j = 0; j < rest; ++j) {
        last[j] = src[(full * kNr + j) * b_cs];
      }
      std::fill(last + rest, last + kNr, 0.0f);
    }
  }
}

// c (+)= a[rows x depth] * the packed block (depth <= kKc). While a panel
// serves its tiles of rows, the next panel is prefetched, a share of its
// lines before each tile: where the packed B streams from memory (the
// filter of a 512-channel im2col layer, several MiB; products that each
// have a B of their own), the hardware prefetchers left the first tile of
// each panel waiting for it. Intel Xeon (AVX-512), one core, 36 products
// of 128 x 512 x 512 each with its own operands: 96 -> 108 GFLOP/s (median
// of 9 alternating runs); the im2col op on two cores, 3x3 28x28x512 batch
// 1: median 30.2-30.5 -> 23.8-26.4 ms, 14x14x512 batch 8: 48-53 -> 43-45
// ms. Products whose B stays in cache (64 output channels; the blocked
// Winograd path's panels, packed just before) unchanged within noise.
// The first panel also prefetches the rows of A that the next tile reads
// (A is read in place: Winograd's transformed tiles come from memory, a
// column block from L2): one core, 36 products of the blocked Winograd
// path's shape (112 tiles x 256 channels x 128, A from a 58 MB buffer)
// 119 -> 129 GFLOP/s, 12544 x 64 x 64 in blocks of 120: 116 -> 133;
// GemmPackedB 3136x1152x128 134 -> 147, 3136x2304x256 144 -> 150, and the
// shapes whose A stays in L1 within noise (medians of 7 alternating runs).
inline void GemmPacked(const float* a, int64_t lda, const float* pack,
                       int64_t depth, float* c, int64_t ldc, int64_t rows,
                       int64_t cols, bool accumulate) {
  const int64_t tiles = std::max<int64_t>((rows + kMr - 1) / kMr, 1);
  const int64_t panel_lines = depth * kNr / kLineFloats;
  const int64_t lines_per_tile = (panel_lines + tiles - 1) / tiles;
  for (int64_t j0 = 0; j0 < cols; j0 += kNr) {
    const int64_t nc = std::min(kNr, cols - j0);
    const float* panel = pack + j0 * depth;
    const float* next = j0 + kNr < cols ? panel + depth * kNr : nullptr;
    for (int64_t i0 = 0; i0 < rows; i0 += kMr) {
      if (next != nullptr) {
        const int64_t l0 = i0 / kMr * lines_per_tile;
        const int64_t l1 = std::min(l0 + lines_per_tile, panel_lines);
        for (int64_t l = l0; l < l1; ++l) {
          __builtin_prefetch(next + l * kLineFloats, 0, 2);
        }
      }
      const float* ai = a + i0 * lda;
      if (j0 == 0) {  // A's rows of the next tile, on their first use
        const int64_t last = std::min(rows, i0 + 2 * kMr);
        for (int64_t r = i0 + kMr; r < last; ++r) {
          for (int64_t l = 0; l < depth; l += kLineFloats) {
            __builtin_prefetch(a + r * lda + l, 0, 3);
          }
        }
      }
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

// c = a * b (ldb: b's row stride, its columns contiguous), packing b a
// depth block at a time into `pack` (PackFloats(cols) floats).
inline void Gemm(const float* a, int64_t lda, const float* b, int64_t ldb,
                 float* c, int64_t ldc, int64_t rows, int64_t cols,
                 int64_t depth, float* pack) {
  for (int64_t p0 = 0; p0 < depth; p0 += kKc) {
    const int64_t pd = std::min(kKc, depth - p0);
    PackPanels(b + p0 * ldb, ldb, 1, pd, cols, pack);
    GemmPacked(a + p0, lda, pack, pd, c, ldc, rows, cols, p0 > 0);
  }
}


// Depth blocks of a k x n B: ceil(k / kKc).
inline int64_t DepthBlocks(int64_t k) { return (k + kKc - 1) / kKc; }

// Floats of a k x n B packed whole.
inline int64_t PackedBSize(int64_t k, int64_t n) {
  return DepthBlocks(k) * PackFloats(n);
}

// Packs depth block `block` of the k x n matrix B (element (p, j) at
// b[p * b_rs + j * b_cs]) into its place in `out`, a B packed whole: the
// depth blocks one after the other, PackFloats(n) floats each.
inline void PackBBlock(const float* b, int64_t b_rs, int64_t b_cs, int64_t k,
                       int64_t n, int64_t block, float* out) {
  const int64_t p0 = block * kKc;
  PackPanels(b + p0 * b_rs, b_rs, b_cs, std::min(kKc, k - p0), n,
             out + block * PackFloats(n));
}

// Packs all of B (see PackBBlock).
inline void PackB(const float* b, int64_t b_rs, int64_t b_cs, int64_t k,
                  int64_t n, float* out) {
  for (int64_t block = 0; block < DepthBlocks(k); ++block) {
    PackBBlock(b, b_rs, b_cs, k, n, block, out);
  }
}

// Floats of the scratch GemmPackedB needs for a strided A.
constexpr int64_t kPackedABlockSize = kMc * kKc;

// out[i * kKc + p] = a[i * a_rs + p * a_cs] for i < rows, p < depth.
inline void CopyRowMajor(const float* a, int64_t a_rs, int64_t a_cs,
                         int64_t rows, int64_t depth, float* out) {
  for (int64_t p = 0; p < depth; ++p) {
    for (int64_t i = 0; i < rows; ++i) {
      out[i * kKc + p] = a[i * a_rs + p * a_cs];
    }
  }
}

// C (m x n, row-major, leading dimension ldc) = A (m x k) x B, or C += A x
// B when `accumulate`, with B packed whole (PackB), for an A that is seen a
// block at a time: a_block(i0, rows, p0, depth, &lda) returns the rows
// [i0, i0 + rows) x columns [p0, p0 + depth) of A (rows <= kMc, depth <=
// kKc, p0 a multiple of kKc) with row i0's element p0 first and its rows
// `lda` apart. k may be 0 (C is then zeroed, or left as it is).
template <typename ABlock>
inline void GemmPackedBBlocks(int64_t m, int64_t n, int64_t k, ABlock a_block,
                              const float* packed_b, float* c, int64_t ldc,
                              bool accumulate) {
  if (k == 0 && !accumulate) {
    for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.0f);
  }
  for (int64_t i0 = 0; i0 < m; i0 += kMc) {
    const int64_t rows = std::min(kMc, m - i0);
    const float* b = packed_b;
    for (int64_t p0 = 0; p0 < k; p0 += kKc, b += PackFloats(n)) {
      const int64_t pd = std::min(kKc, k - p0);
      int64_t lda = 0;
      const float* block = a_block(i0, rows, p0, pd, &lda);
      GemmPacked(block, lda, b, pd, c + i0 * ldc, ldc, rows, n,
                 accumulate || p0 > 0);
    }
  }
}

// GemmPackedB for an A whose element (i, p) is a[i * a_rs + p * a_cs];
// where a_cs is not 1, blocks of A are copied row-major into `a_scratch`
// (kPackedABlockSize floats, one per thread; unused, and may be null, where
// a_cs is 1).
inline void GemmPackedB(int64_t m, int64_t n, int64_t k, const float* a,
                        int64_t a_rs, int64_t a_cs, const float* packed_b,
                        float* c, int64_t ldc, bool accumulate,
                        float* a_scratch) {
  auto a_block = [=](int64_t i0, int64_t rows, int64_t p0, int64_t depth,
                     int64_t* lda) {
    const float* block = a + i0 * a_rs + p0 * a_cs;
    if (a_cs == 1) {
      *lda = a_rs;
      return block;
    }
    CopyRowMajor(block, a_rs, a_cs, rows, depth, a_scratch);
    *lda = kKc;
    return static_cast<const float*>(a_scratch);
  };
  GemmPackedBBlocks(m, n, k, a_block, packed_b, c, ldc, accumulate);
}

}  // namespace gemm
}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_PACKED_GEMM_H_
