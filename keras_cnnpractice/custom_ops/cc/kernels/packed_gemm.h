// Single-threaded float GEMM in the BLIS style (Van Zee & van de Geijn,
// "BLIS: A Framework for Rapidly Instantiating BLAS Functionality", 2015):
// B is packed into panels of kNR columns, blocks of A into panels of kMR
// rows, and a kMR x kNR register-tile micro-kernel multiplies a panel pair
// over kKC-long slices of the inner dimension. Written with GCC vector
// extensions, so the compiler emits FMA on the -march it is given (AVX2:
// 8-float vectors, a 6x16 tile in 12 ymm accumulators; AVX-512: 16-float
// vectors, a 6x32 tile; SSE, the generic build: 4-float vectors, 6x8). On
// a 2-core Zen3 it ran at 65-74 GFLOP/s per core where Eigen's Matrix
// product and Tensor contraction (from TensorFlow's headers) ran at 50-55.
//
// Operands are addressed by strides, so transposed operands need no copy
// beyond the packing: element (i, p) of A is a[i * a_rs + p * a_cs] and
// element (p, j) of B is b[p * b_rs + j * b_cs]; C is row-major with
// leading dimension ldc. The callers parallelize over independent GEMMs.
//
// This header must stay free of TensorFlow includes.
#ifndef KERAS_CNNPRACTICE_KERNELS_PACKED_GEMM_H_
#define KERAS_CNNPRACTICE_KERNELS_PACKED_GEMM_H_

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace keras_cnnpractice {
namespace gemm {

// The build's native vector width: a wider GCC vector type than the target
// has registers for is lowered through memory (the generic x86-64-v2 build
// with 32-byte vectors ran im2col at 5 GFLOP/s, 1/50 of its 6x8 SSE tile).
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif
typedef float Vec __attribute__((vector_size(kVecBytes)));

constexpr int64_t kLanes = kVecBytes / sizeof(float);
constexpr int64_t kMR = 6;           // rows of the register tile
constexpr int64_t kNR = 2 * kLanes;  // columns of the register tile
constexpr int64_t kKC = 256;         // inner-dimension slice (panels in L1)
constexpr int64_t kMC = 96;          // rows of A packed at once (in L2)

// Floats of the scratch buffer GemmPackedB needs to pack blocks of A.
constexpr int64_t kPackedABlockSize = kMC * kKC;

// Unaligned vector load and store (memcpy compiles to one vmovups).
inline Vec Load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }

inline int64_t RoundUpTo(int64_t x, int64_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

// Floats of a packed k x n B.
inline int64_t PackedBSize(int64_t k, int64_t n) {
  return k * RoundUpTo(n, kNR);
}

// Packs the k x n matrix B into `out` (PackedBSize(k, n) floats): for each
// kKC-row slice, its panels of kNR columns one after the other, each stored
// row by row and zero-padded to kNR columns.
inline void PackB(const float* b, int64_t b_rs, int64_t b_cs, int64_t k,
                  int64_t n, float* out) {
  for (int64_t pc = 0; pc < k; pc += kKC) {
    const int64_t kc = std::min(kKC, k - pc);
    for (int64_t j0 = 0; j0 < n; j0 += kNR) {
      const int64_t nr = std::min(kNR, n - j0);
      for (int64_t p = 0; p < kc; ++p, out += kNR) {
        const float* src = b + (pc + p) * b_rs + j0 * b_cs;
        if (b_cs == 1) {
          std::memcpy(out, src, nr * sizeof(float));
        } else {
          for (int64_t j = 0; j < nr; ++j) out[j] = src[j * b_cs];
        }
        std::fill(out + nr, out + kNR, 0.0f);
      }
    }
  }
}

// Packs the mc x kc block of A into panels of kMR rows, each stored column
// by column and zero-padded to kMR rows.
inline void PackA(const float* a, int64_t a_rs, int64_t a_cs, int64_t mc,
                  int64_t kc, float* out) {
  for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
    const int64_t mr = std::min(kMR, mc - i0);
    for (int64_t p = 0; p < kc; ++p, out += kMR) {
      const float* src = a + i0 * a_rs + p * a_cs;
      for (int64_t i = 0; i < mr; ++i) out[i] = src[i * a_rs];
      for (int64_t i = mr; i < kMR; ++i) out[i] = 0.0f;
    }
  }
}

// C[0:mr, 0:nr] (+)= packed A panel x packed B panel over kc.
inline void MicroKernel(int64_t kc, const float* a, const float* b, float* c,
                        int64_t ldc, int64_t mr, int64_t nr, bool accumulate) {
  Vec acc[kMR][2];
  for (int64_t i = 0; i < kMR; ++i) acc[i][0] = acc[i][1] = Vec{};
  for (int64_t p = 0; p < kc; ++p, a += kMR, b += kNR) {
    const Vec b0 = Load(b), b1 = Load(b + kLanes);
    for (int64_t i = 0; i < kMR; ++i) {
      acc[i][0] += a[i] * b0;
      acc[i][1] += a[i] * b1;
    }
  }
  if (mr == kMR && nr == kNR) {
    for (int64_t i = 0; i < kMR; ++i) {
      float* row = c + i * ldc;
      Store(row, accumulate ? Load(row) + acc[i][0] : acc[i][0]);
      Store(row + kLanes,
            accumulate ? Load(row + kLanes) + acc[i][1] : acc[i][1]);
    }
    return;
  }
  float tile[kMR][kNR];
  std::memcpy(tile, acc, sizeof(tile));
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i][j] : tile[i][j];
    }
  }
}

// C (m x n) = A (m x k) x B, or C += A x B when `accumulate`, with B packed
// by PackB(..., k, n, packed_b). `a_scratch` holds kPackedABlockSize floats
// (one per thread). k may be 0 (C is then zeroed, or left as it is).
inline void GemmPackedB(int64_t m, int64_t n, int64_t k, const float* a,
                        int64_t a_rs, int64_t a_cs, const float* packed_b,
                        float* c, int64_t ldc, bool accumulate,
                        float* a_scratch) {
  if (k == 0 && !accumulate) {
    for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.0f);
  }
  const int64_t n_pad = RoundUpTo(n, kNR);
  for (int64_t pc = 0; pc < k; pc += kKC) {
    const int64_t kc = std::min(kKC, k - pc);
    const float* b_slice = packed_b + pc * n_pad;
    for (int64_t ic = 0; ic < m; ic += kMC) {
      const int64_t mc = std::min(kMC, m - ic);
      PackA(a + ic * a_rs + pc * a_cs, a_rs, a_cs, mc, kc, a_scratch);
      for (int64_t j0 = 0; j0 < n; j0 += kNR) {
        const float* b_panel = b_slice + j0 * kc;
        for (int64_t i0 = 0; i0 < mc; i0 += kMR) {
          MicroKernel(kc, a_scratch + i0 * kc, b_panel,
                      c + (ic + i0) * ldc + j0, ldc, std::min(kMR, mc - i0),
                      std::min(kNR, n - j0), accumulate || pc > 0);
        }
      }
    }
  }
}

}  // namespace gemm
}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_PACKED_GEMM_H_
