// Register-only throughput loops for benchmarks/binary_ceiling.py: how many
// 1-bit multiply-accumulates per second one core's popcount path can do
// (XOR + popcount + add, the XNOR kernels' instructions, on data already in
// registers) against its float32 FMA rate. Built by that script for the CPU
// it runs on (-march=native), so it measures this machine's ceilings, not
// the op library's code. Prints one JSON object: the best of kRounds.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {

constexpr long kIters = 20000000;
// Independent accumulators, unrolled so they stay in registers: the loops
// are throughput-bound, not latency-bound (the FMA ones converge to 1).
constexpr int kChains = 12;

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

#if defined(__AVX512VPOPCNTDQ__) && defined(__AVX512F__)
const char* const kPopcountPath = "avx512_vpopcntdq";
// 512 bit products per XOR + VPOPCNTQ + add.
double BitMacsPerSecond(int64_t* sink) {
  __m512i a[kChains], t[kChains];
  for (int i = 0; i < kChains; ++i) {
    a[i] = _mm512_set1_epi64(0x9E3779B97F4A7C15ll * (i + 1));
    t[i] = _mm512_setzero_si512();
  }
  __m512i b = _mm512_set1_epi64(0x123456789ABCDEFll);
  const __m512i step = _mm512_set1_epi64(0x5851F42D4C957F2Dll);
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) {
      t[i] = _mm512_add_epi64(t[i],
                              _mm512_popcnt_epi64(_mm512_xor_si512(a[i], b)));
    }
    b = _mm512_add_epi64(b, step);  // new operands every step
  }
  const double s = Seconds(t0);
  for (int i = 0; i < kChains; ++i) *sink += _mm512_reduce_add_epi64(t[i]);
  return kIters * kChains * 512.0 / s;
}
#else
const char* const kPopcountPath = "popcnt64";
// 64 bit products per XOR + POPCNT + add (the scalar instruction the other
// builds use beside, or instead of, vector code).
double BitMacsPerSecond(int64_t* sink) {
  uint64_t a[kChains], t[kChains];
  for (int i = 0; i < kChains; ++i) {
    a[i] = 0x9E3779B97F4A7C15ull * (i + 1);
    t[i] = 0;
  }
  uint64_t b = 0x123456789ABCDEFull;
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) t[i] += __builtin_popcountll(a[i] ^ b);
    b += 0x5851F42D4C957F2Dull;
  }
  const double s = Seconds(t0);
  for (int i = 0; i < kChains; ++i) *sink += static_cast<int64_t>(t[i]);
  return kIters * kChains * 64.0 / s;
}
#endif

// The FMA loop on the widest float vector the build has; GCC contracts
// acc * x + y into one FMA instruction (-ffp-contract=fast, its default).
#if defined(__AVX512F__)
const char* const kFmaPath = "avx512f";
constexpr int kFloatBytes = 64;
#elif defined(__FMA__)
const char* const kFmaPath = "avx2_fma";
constexpr int kFloatBytes = 32;
#else
const char* const kFmaPath = "scalar";
constexpr int kFloatBytes = 4;
#endif
typedef float Floats __attribute__((vector_size(kFloatBytes)));
constexpr int kLanes = kFloatBytes / 4;

double FmaMacsPerSecond(float* sink) {
  Floats acc[kChains];
  const Floats x = Floats{} + 0.9999f, y = Floats{} + 1e-4f;
  for (int i = 0; i < kChains; ++i) acc[i] = Floats{} + static_cast<float>(i);
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * x + y;
  }
  const double s = Seconds(t0);
  for (int i = 0; i < kChains; ++i) {
    for (int j = 0; j < kLanes; ++j) *sink += acc[i][j];
  }
  return kIters * kChains * static_cast<double>(kLanes) / s;
}

}  // namespace

// Ceilings are the best of kRounds interleaved runs of each loop: on a
// shared machine a single run can land in a slow moment.
constexpr int kRounds = 9;

int main() {
  int64_t bits_sink = 0;
  float fma_sink = 0;
  double bit_macs = 0, fma_macs = 0;
  for (int round = 0; round < kRounds; ++round) {
    const double b = BitMacsPerSecond(&bits_sink);
    const double f = FmaMacsPerSecond(&fma_sink);
    bit_macs = b > bit_macs ? b : bit_macs;
    fma_macs = f > fma_macs ? f : fma_macs;
  }
  std::printf(
      "{\"popcount_path\": \"%s\", \"bit_macs_per_s\": %.6g, "
      "\"fma_path\": \"%s\", \"float32_macs_per_s\": %.6g, "
      "\"rounds\": %d, \"sink\": %g}\n",
      kPopcountPath, bit_macs, kFmaPath, fma_macs, kRounds,
      static_cast<double>(bits_sink) + fma_sink);
  return 0;
}
