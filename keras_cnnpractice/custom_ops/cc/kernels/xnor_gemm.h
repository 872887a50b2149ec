// CPU XNOR-popcount "GEMM" shared by the XnorMatmul and XnorConv2D kernels.
//
// out[i][j] = depth - 2 * popcount(a_i ^ b_j) over packed bit rows of
// `row_bytes` bytes (see xnor.h for the bit layout; zero bits past the real
// depth XOR to zero, so they never count as mismatches).
//
// A (one row per output pixel or batch row) is copied by the caller into
// rows of XnorRowStride(row_bytes) bytes, zero past row_bytes, rows padded
// to a multiple of kRowsPerTileA. B (one row per output channel) is read
// where it is, its rows contiguous, or, where XnorPacksB says so, packed
// once per call by XnorPackBPanels. The paths:
//
//   * AVX-512 VPOPCNTDQ (the op library's avx512 level), B packed: panels of
//     32 channels interleaved by 64-bit word (word k of channel c at
//     [k * 32 + c]). A tile of 6 rows of A x 32 channels keeps 24 vectors of
//     per-channel counts: for each word k, 4 loads of B, and per row of A a
//     broadcast of its word k, then XOR, VPOPCNTQ and add into 4 of the
//     vectors (512 bit products per three instructions). The counts come
//     out one channel per lane, so no sums across lanes, and rows of any
//     length (a 64-channel 3x3 row is 9 words) keep the vectors full.
//     Measured on Zen 4 (one core at 2.6 GHz nominal, a 3x3 layer's
//     product): 14x14x512 and 28x28x256 at batch 1 1190 and 1170 G bit
//     multiply-adds per second, against 790 and 630 for the former tile of
//     6 x 4 row vectors summed across lanes at the end of each tile.
//   * AVX-512, B in place (fewer rows of A than a tile: a Dense layer at
//     batch 1 to 6 is bound by reading B once, and packing would read it
//     twice more): up to 6 rows of A x 4 rows of B as vectors along the
//     depth, masked at the row's end, summed across lanes per tile.
//   * AVX2, B in place: per-byte popcounts through a 16-entry shuffle table
//     (Mula et al., "Faster population counts using AVX2 instructions",
//     2016) for 5 rows of A, the 64-bit popcount instruction for a sixth
//     and for the row's last bytes.
//   * portable, B in place: 64-bit popcounts.
#ifndef KERAS_CNNPRACTICE_KERNELS_XNOR_GEMM_H_
#define KERAS_CNNPRACTICE_KERNELS_XNOR_GEMM_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>

#if defined(__AVX2__) || defined(__AVX512VPOPCNTDQ__)
#include <immintrin.h>
#endif

#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
#define KCP_XNOR_PANELS 1
#endif

namespace keras_cnnpractice {

constexpr int64_t kRowAlign = 32;  // bytes: one AVX2 register
// Rows of A per tile.
constexpr int64_t kRowsPerTileA = 6;
// Rows of A per call of XnorProductRows that keep a block in L1 cache.
constexpr int64_t kRowBlock = 36;
static_assert(kRowBlock % kRowsPerTileA == 0, "blocks must hold whole tiles");
// Output columns per unit of work where the rows alone make too few units
// (a Dense layer at batch 1 has one row; a 14x14 image at batch 1 196).
constexpr int64_t kColumnChunk = 128;
#ifdef KCP_XNOR_PANELS
constexpr int64_t kPanelCols = 32;  // 4 vectors of 8 64-bit words
#else
constexpr int64_t kPanelCols = 1;
#endif
static_assert(kColumnChunk % kPanelCols == 0, "chunks of whole panels");

inline int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Bytes per row of A.
inline int64_t XnorRowStride(int64_t row_bytes) {
  return RoundUp(row_bytes, kRowAlign);
}

// The name of the popcount path compiled in, for the build report.
inline const char* XnorPopcountPath() {
#ifdef KCP_XNOR_PANELS
  return "avx512_vpopcntdq";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "popcnt64";
#endif
}

// Whether the product of `rows` rows of A reads B packed by
// XnorPackBPanels (true) or B's rows in place (false).
inline bool XnorPacksB(int64_t rows) {
#ifdef KCP_XNOR_PANELS
  return rows > kRowsPerTileA;
#else
  (void)rows;
  return false;
#endif
}

inline int64_t XnorPanels(int64_t cols) {
  return (cols + kPanelCols - 1) / kPanelCols;
}

// 64-bit words per row.
inline int64_t XnorRowWords(int64_t row_bytes) { return (row_bytes + 7) / 8; }

// Bytes per packed panel.
inline int64_t XnorPanelBytes(int64_t row_bytes) {
  return kPanelCols * XnorRowWords(row_bytes) * 8;
}

// Calls f(std::integral_constant<int, R>()) with R = min(rows, 6): tiles
// shorter than kRowsPerTileA for the last rows (and for a batch of 1).
template <typename F>
inline void WithTileRows(int64_t rows, F&& f) {
  switch (rows < kRowsPerTileA ? rows : kRowsPerTileA) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 5: f(std::integral_constant<int, 5>()); break;
    default: f(std::integral_constant<int, 6>());
  }
}
static_assert(kRowsPerTileA == 6, "WithTileRows covers 1..6 rows");

// Packs panels [first, last) of B (`cols` rows of `row_bytes` bytes,
// contiguous at `b`) into `packed`, which holds XnorPanels(cols) panels of
// XnorPanelBytes(row_bytes): word k of channel p * kPanelCols + c at word
// k * kPanelCols + c of panel p; channels past `cols` and bytes past
// row_bytes are zero. Panels are independent, so callers may pack them in
// parallel.
inline void XnorPackBPanels(const uint8_t* b, int64_t row_bytes, int64_t cols,
                            int64_t first, int64_t last, uint8_t* packed) {
  const int64_t panel_bytes = XnorPanelBytes(row_bytes);
  const int64_t whole = row_bytes / 8;  // a 32-bit row may end mid-word
  std::memset(packed + first * panel_bytes, 0, (last - first) * panel_bytes);
  for (int64_t p = first; p < last; ++p) {
    uint8_t* panel = packed + p * panel_bytes;
    for (int64_t c = 0; c < kPanelCols && p * kPanelCols + c < cols; ++c) {
      const uint8_t* row = b + (p * kPanelCols + c) * row_bytes;
      for (int64_t k = 0; k < whole; ++k) {
        std::memcpy(panel + (k * kPanelCols + c) * 8, row + 8 * k, 8);
      }
      if (8 * whole < row_bytes) {
        std::memcpy(panel + (whole * kPanelCols + c) * 8, row + 8 * whole,
                    row_bytes - 8 * whole);
      }
    }
  }
}

#ifdef KCP_XNOR_PANELS
// out[r][c] = depth - 2 * popcount(a_r ^ b_c) for R rows of A (`stride`
// bytes apart) and the first `cols` (<= 32) channels of one panel.
template <int R>
inline void PanelTile(const uint8_t* a, int64_t stride, const uint8_t* panel,
                      int64_t words, int64_t depth, float* out, int64_t ldo,
                      int64_t cols) {
  __m512i count[R][4];
  for (auto& row : count) {
    for (auto& v : row) v = _mm512_setzero_si512();
  }
  for (int64_t k = 0; k < words; ++k) {
    __m512i bv[4];
    for (int v = 0; v < 4; ++v) {
      bv[v] = _mm512_loadu_si512(panel + (k * kPanelCols + 8 * v) * 8);
    }
    for (int r = 0; r < R; ++r) {
      int64_t aw;
      std::memcpy(&aw, a + r * stride + 8 * k, 8);
      const __m512i av = _mm512_set1_epi64(aw);
      for (int v = 0; v < 4; ++v) {
        count[r][v] = _mm512_add_epi64(
            count[r][v], _mm512_popcnt_epi64(_mm512_xor_si512(av, bv[v])));
      }
    }
  }
  // Masked stores at constant indices: a loop that stopped at `cols` would
  // make the compiler keep `count` in memory, stored on every k.
  __mmask8 col_mask[4];
  for (int v = 0; v < 4; ++v) {
    const int64_t n = cols - 8 * v;
    col_mask[v] = n >= 8 ? 0xFF
                         : n <= 0 ? 0 : static_cast<__mmask8>((1u << n) - 1);
  }
  const __m512i d = _mm512_set1_epi64(depth);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const __m256 f = _mm512_cvtepi64_ps(
          _mm512_sub_epi64(d, _mm512_add_epi64(count[r][v], count[r][v])));
      _mm256_mask_storeu_ps(out + r * ldo + 8 * v, col_mask[v], f);
    }
  }
}

// counts[r][c] = popcount(a_r ^ b_c) for R rows of A and the 4 rows of B
// at b_rows[c], 64 bytes at a time, the row's last bytes through a masked
// load (by 32-bit elements: a row of int32 words may end mid-word).
template <int R>
inline void RowTile(const uint8_t* a, int64_t stride,
                    const uint8_t* const b_rows[4], int64_t row_bytes,
                    int64_t counts[R][4]) {
  __m512i total[R][4];
  for (auto& row : total) {
    for (auto& t : row) t = _mm512_setzero_si512();
  }
  for (int64_t k = 0; k < row_bytes; k += 64) {
    const int64_t left = (row_bytes - k) / 4;
    const __mmask16 mask =
        left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1);
    __m512i bv[4];
    for (int c = 0; c < 4; ++c) {
      bv[c] = _mm512_maskz_loadu_epi32(mask, b_rows[c] + k);
    }
    for (int r = 0; r < R; ++r) {
      const __m512i av = _mm512_maskz_loadu_epi32(mask, a + r * stride + k);
      for (int c = 0; c < 4; ++c) {
        total[r][c] = _mm512_add_epi64(
            total[r][c], _mm512_popcnt_epi64(_mm512_xor_si512(av, bv[c])));
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < 4; ++c) {
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

// The first kVectorRows rows of a tile use AVX2; the last one uses the
// scalar popcount instruction, which runs on the integer units beside the
// vector ones. Both shapes measured on Zen 3: 5 + 1 is about 15% faster
// than 6 vector rows, and wider tiles spill the byte counters (AVX2 has 16
// registers).
constexpr int kVectorRows = kRowsPerTileA - 1;
#endif

#ifndef KCP_XNOR_PANELS
// popcount(a ^ b) over n (< 8) bytes.
inline int64_t MismatchBytes(const uint8_t* a, const uint8_t* b, int64_t n) {
  uint64_t aw = 0, bw = 0;
  std::memcpy(&aw, a, n);
  std::memcpy(&bw, b, n);
  return __builtin_popcountll(aw ^ bw);
}

// counts[r] = popcount(a_r ^ b) for kRowsPerTileA rows of A and one row of
// B (row_bytes, read in place): whole 64-bit words, then the last bytes.
inline void MismatchTile(const uint8_t* a, const uint8_t* b, int64_t stride,
                         int64_t row_bytes, int64_t counts[kRowsPerTileA]) {
  for (int r = 0; r < kRowsPerTileA; ++r) counts[r] = 0;
  int64_t done = 0;  // bytes counted
#ifdef __AVX2__
  const int64_t vectors = row_bytes / kRowAlign;
  __m256i total[kVectorRows];
  for (auto& t : total) t = _mm256_setzero_si256();
  const uint8_t* scalar_row = a + kVectorRows * stride;
  int64_t scalar_count = 0;  // a local: stores to counts could alias a, b
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
  for (int r = 0; r < kVectorRows; ++r) counts[r] = HorizontalSum64(total[r]);
  counts[kVectorRows] = scalar_count;
  done = vectors * kRowAlign;
#endif
  for (; done + 8 <= row_bytes; done += 8) {
    uint64_t bw;
    std::memcpy(&bw, b + done, 8);
    for (int r = 0; r < kRowsPerTileA; ++r) {
      uint64_t aw;
      std::memcpy(&aw, a + r * stride + done, 8);
      counts[r] += __builtin_popcountll(aw ^ bw);
    }
  }
  if (done < row_bytes) {
    for (int r = 0; r < kRowsPerTileA; ++r) {
      counts[r] += MismatchBytes(a + r * stride + done, b + done,
                                 row_bytes - done);
    }
  }
}
#endif  // !KCP_XNOR_PANELS

// B for XnorProductRows by chunks of `chunk` columns (a multiple of
// kPanelCols), for callers that split their work that way: its rows read in
// place where `packed` is null, else a chunk's panels packed into `packed`
// (XnorPanels(cols) panels of XnorPanelBytes(row_bytes)) by the first
// worker that prepares the chunk, the others waiting for it.
class XnorChunkedB {
 public:
  XnorChunkedB(const uint8_t* b, int64_t row_bytes, int64_t cols,
               int64_t chunk, uint8_t* packed)
      : b_(b), row_bytes_(row_bytes), cols_(cols), chunk_(chunk),
        packed_(packed),
        ready_(new std::once_flag[(cols + chunk - 1) / chunk]) {}

  // Packs chunk c once and calls also(c) once (the caller's own per-chunk
  // preparation), before any caller returns.
  template <typename F>
  void Prepare(int64_t c, F&& also) {
    std::call_once(ready_[c], [&] {
      if (packed_ != nullptr) {
        const int64_t j1 = (c + 1) * chunk_ < cols_ ? (c + 1) * chunk_ : cols_;
        XnorPackBPanels(b_, row_bytes_, cols_, c * chunk_ / kPanelCols,
                        XnorPanels(j1), packed_);
      }
      also(c);
    });
  }
  void Prepare(int64_t c) {
    Prepare(c, [](int64_t) {});
  }

  // B's rows from column j0 on, and their panels (null: read in place).
  const uint8_t* Rows(int64_t j0) const { return b_ + j0 * row_bytes_; }
  const uint8_t* Panels(int64_t j0) const {
    return packed_ == nullptr
               ? nullptr
               : packed_ + j0 / kPanelCols * XnorPanelBytes(row_bytes_);
  }

 private:
  const uint8_t* b_;
  int64_t row_bytes_, cols_, chunk_;
  uint8_t* packed_;
  std::unique_ptr<std::once_flag[]> ready_;
};

// out[i * ldo + j] = depth - 2 * popcount(a_i ^ b_j) for i < rows and
// j < cols. `a` holds RoundUp(rows, kRowsPerTileA) rows of `stride` bytes.
// `b` points at the columns' B rows (contiguous, `row_bytes` each) and
// `packed` at their first panel, or is null where the caller's XnorPacksB
// said no (both at the same column, a multiple of kColumnChunk; `out`
// there too). Callers keep `rows` to kRowBlock so that A stays in L1 cache
// while B passes over it.
inline void XnorProductRows(const uint8_t* a, int64_t rows, int64_t stride,
                            const uint8_t* b, const uint8_t* packed,
                            int64_t cols, int64_t row_bytes, int64_t depth,
                            float* out, int64_t ldo) {
#ifdef KCP_XNOR_PANELS
  if (packed != nullptr) {
    const int64_t words = XnorRowWords(row_bytes);
    const int64_t panel_bytes = XnorPanelBytes(row_bytes);
    for (int64_t j = 0; j < cols; j += kPanelCols) {
      const uint8_t* panel = packed + j / kPanelCols * panel_bytes;
      const int64_t n = cols - j < kPanelCols ? cols - j : kPanelCols;
      for (int64_t i = 0; i < rows; i += kRowsPerTileA) {
        WithTileRows(rows - i, [&](auto tile) {
          PanelTile<decltype(tile)::value>(a + i * stride, stride, panel,
                                           words, depth, out + i * ldo + j,
                                           ldo, n);
        });
      }
    }
    return;
  }
  for (int64_t j = 0; j < cols; j += 4) {
    // Past the last column, a valid row stands in (its counts unused).
    const uint8_t* b_rows[4];
    for (int c = 0; c < 4; ++c) {
      b_rows[c] = b + (j + c < cols ? j + c : cols - 1) * row_bytes;
    }
    for (int64_t i = 0; i < rows; i += kRowsPerTileA) {
      WithTileRows(rows - i, [&](auto tile) {
        constexpr int R = decltype(tile)::value;
        int64_t counts[R][4];
        RowTile<R>(a + i * stride, stride, b_rows, row_bytes, counts);
        for (int r = 0; r < R; ++r) {
          for (int c = 0; c < 4 && j + c < cols; ++c) {
            out[(i + r) * ldo + j + c] =
                static_cast<float>(depth - 2 * counts[r][c]);
          }
        }
      });
    }
  }
#else
  (void)packed;
  int64_t counts[kRowsPerTileA];
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < rows; i += kRowsPerTileA) {
      MismatchTile(a + i * stride, b + j * row_bytes, stride, row_bytes,
                   counts);
      for (int r = 0; r < kRowsPerTileA && i + r < rows; ++r) {
        out[(i + r) * ldo + j] = static_cast<float>(depth - 2 * counts[r]);
      }
    }
  }
#endif
}

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_XNOR_GEMM_H_
