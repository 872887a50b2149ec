// CPU XNOR-popcount "GEMM" shared by the XnorMatmul and XnorConv2D kernels.
//
// Operands are packed bit rows laid out identically (see xnor.h), copied by
// the caller into zero-padded buffers of `stride` bytes per row, with
// `stride` a multiple of kRowAlign; A's rows are padded to a multiple of
// kRowsPerTileA (padding rows are zero). Zero padding bits XOR to zero, so
// they never count as mismatches. The inner loop is AVX2 (per-byte
// popcounts through a 16-entry shuffle table, Mula et al., "Faster population
// counts using AVX2 instructions", 2016) when the build enables it,
// alongside 64-bit popcount instructions (__builtin_popcountll), which are
// all the portable build uses. Where the build enables AVX-512 VPOPCNTDQ
// (the op library's avx512 level), 512-bit XORs feed VPOPCNTQ directly:
// 512 bit products per row for one load, XOR, popcount and add.
#ifndef KERAS_CNNPRACTICE_KERNELS_XNOR_GEMM_H_
#define KERAS_CNNPRACTICE_KERNELS_XNOR_GEMM_H_

#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512VPOPCNTDQ__)
#include <immintrin.h>
#endif

namespace keras_cnnpractice {

constexpr int64_t kRowAlign = 32;  // bytes: one AVX2 register
// MismatchTile's shape: rows of A x rows of B per call.
constexpr int64_t kRowsPerTileA = 6;
#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
constexpr int64_t kRowsPerTileB = 4;
#else
constexpr int64_t kRowsPerTileB = 1;
#endif

inline int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// The name of the popcount path compiled in, for the build report.
inline const char* XnorPopcountPath() {
#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
  return "avx512_vpopcntdq";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "popcnt64";
#endif
}

#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
// counts[r][c] = popcount(a_r ^ b_c) for a tile of kRowsPerTileA rows of A
// and kRowsPerTileB rows of B, 64 bytes at a time; a row's last 32 bytes
// (rows are multiples of kRowAlign) through a masked load. 6 x 4 keeps 24
// accumulators and 5 operands in the 32 registers and loads 10 vectors per
// 24 products; measured on Zen 4 (one core, a 14x14x512 3x3 layer's
// product at batch 8): 6 x 1 424-462, 6 x 2 666-680, 4 x 4 590-700, 6 x 4
// 750 G bit multiply-adds per second.
inline void MismatchTile(const uint8_t* a, const uint8_t* b, int64_t stride,
                         int64_t counts[kRowsPerTileA][kRowsPerTileB]) {
  const int64_t words = stride / 8;  // 64-bit words per row
  __m512i total[kRowsPerTileA][kRowsPerTileB];
  for (auto& row : total) {
    for (auto& t : row) t = _mm512_setzero_si512();
  }
  for (int64_t k = 0; k < words; k += 8) {
    const __mmask8 mask =
        words - k >= 8 ? 0xFF : static_cast<__mmask8>((1u << (words - k)) - 1);
    __m512i bv[kRowsPerTileB];
    for (int c = 0; c < kRowsPerTileB; ++c) {
      bv[c] = _mm512_maskz_loadu_epi64(mask, b + c * stride + 8 * k);
    }
    for (int r = 0; r < kRowsPerTileA; ++r) {
      const __m512i av =
          _mm512_maskz_loadu_epi64(mask, a + r * stride + 8 * k);
      for (int c = 0; c < kRowsPerTileB; ++c) {
        total[r][c] = _mm512_add_epi64(
            total[r][c], _mm512_popcnt_epi64(_mm512_xor_si512(av, bv[c])));
      }
    }
  }
  for (int r = 0; r < kRowsPerTileA; ++r) {
    for (int c = 0; c < kRowsPerTileB; ++c) {
      counts[r][c] = _mm512_reduce_add_epi64(total[r][c]);
    }
  }
}
#elif defined(__AVX2__)
inline __m256i BytePopcounts(__m256i v) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                                         2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                         1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_and_si256(v, nibble);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
  return _mm256_add_epi8(_mm256_shuffle_epi8(table, lo),
                         _mm256_shuffle_epi8(table, hi));
}

inline int64_t HorizontalSum64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v),
                                  _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// counts[r][0] = popcount(a_r ^ b) for a tile of kRowsPerTileA rows of A
// and one row of B. The first kVectorRows rows use AVX2; the last one uses
// the scalar popcount instruction, which runs on the integer units beside
// the vector ones. Both shapes measured on Zen 3: 5 + 1 is about 15% faster
// than 6 vector rows, and wider tiles spill the byte counters (AVX2 has 16
// registers).
constexpr int kVectorRows = kRowsPerTileA - 1;

inline void MismatchTile(const uint8_t* a, const uint8_t* b, int64_t stride,
                         int64_t counts[kRowsPerTileA][kRowsPerTileB]) {
  const int64_t vectors = stride / kRowAlign;
  __m256i total[kVectorRows];
  for (auto& t : total) t = _mm256_setzero_si256();
  int64_t scalar_count = 0;
  const uint8_t* scalar_row = a + kVectorRows * stride;
  // Byte counters gain at most 8 per vector: flush them every 31 vectors.
  constexpr int64_t kFlushEvery = 31;
  for (int64_t k0 = 0; k0 < vectors; k0 += kFlushEvery) {
    const int64_t k1 = k0 + kFlushEvery < vectors ? k0 + kFlushEvery : vectors;
    __m256i bytes[kVectorRows];
    for (auto& t : bytes) t = _mm256_setzero_si256();
    for (int64_t k = k0; k < k1; ++k) {
      const __m256i bv =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b) + k);
      for (int r = 0; r < kVectorRows; ++r) {
        const __m256i av = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(a + r * stride) + k);
        bytes[r] = _mm256_add_epi8(bytes[r],
                                   BytePopcounts(_mm256_xor_si256(av, bv)));
      }
      for (int w = 0; w < 4; ++w) {
        uint64_t aw, bw;
        std::memcpy(&aw, scalar_row + kRowAlign * k + 8 * w, 8);
        std::memcpy(&bw, b + kRowAlign * k + 8 * w, 8);
        scalar_count += __builtin_popcountll(aw ^ bw);
      }
    }
    for (int r = 0; r < kVectorRows; ++r) {
      total[r] = _mm256_add_epi64(
          total[r], _mm256_sad_epu8(bytes[r], _mm256_setzero_si256()));
    }
  }
  for (int r = 0; r < kVectorRows; ++r) {
    counts[r][0] = HorizontalSum64(total[r]);
  }
  counts[kVectorRows][0] = scalar_count;
}
#else
inline void MismatchTile(const uint8_t* a, const uint8_t* b, int64_t stride,
                         int64_t counts[kRowsPerTileA][kRowsPerTileB]) {
  const int64_t words = stride / 8;
  for (int r = 0; r < kRowsPerTileA; ++r) {
    for (int c = 0; c < kRowsPerTileB; ++c) counts[r][c] = 0;
  }
  for (int64_t k = 0; k < words; ++k) {
    uint64_t av[kRowsPerTileA], bv[kRowsPerTileB];
    for (int r = 0; r < kRowsPerTileA; ++r) {
      std::memcpy(&av[r], a + r * stride + 8 * k, 8);
    }
    for (int c = 0; c < kRowsPerTileB; ++c) {
      std::memcpy(&bv[c], b + c * stride + 8 * k, 8);
    }
    for (int r = 0; r < kRowsPerTileA; ++r) {
      for (int c = 0; c < kRowsPerTileB; ++c) {
        counts[r][c] += __builtin_popcountll(av[r] ^ bv[c]);
      }
    }
  }
}
#endif  // __AVX2__

// Rows of A per call of XnorProductRows that keep a block in L1 cache.
constexpr int64_t kRowBlock = 36;
static_assert(kRowBlock % kRowsPerTileA == 0, "blocks must hold whole tiles");

// out[i * ldo + j] = depth - 2 * popcount(a_i ^ b_j) for i < rows, j < cols.
// `a` holds RoundUp(rows, kRowsPerTileA) rows and `b` RoundUp(cols,
// kRowsPerTileB) rows, both of `stride` bytes. Each tile of B rows is reused
// across all of A's rows, which callers keep to kRowBlock so that they stay
// in L1.
inline void XnorProductRows(const uint8_t* a, int64_t rows, const uint8_t* b,
                            int64_t cols, int64_t stride, int64_t depth,
                            float* out, int64_t ldo) {
  int64_t counts[kRowsPerTileA][kRowsPerTileB];
  for (int64_t j = 0; j < cols; j += kRowsPerTileB) {
    for (int64_t i = 0; i < rows; i += kRowsPerTileA) {
      MismatchTile(a + i * stride, b + j * stride, stride, counts);
      for (int r = 0; r < kRowsPerTileA && i + r < rows; ++r) {
        for (int c = 0; c < kRowsPerTileB && j + c < cols; ++c) {
          out[(i + r) * ldo + j + c] =
              static_cast<float>(depth - 2 * counts[r][c]);
        }
      }
    }
  }
}

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_XNOR_GEMM_H_
