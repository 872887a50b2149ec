// Philox4x32-10 counter-based random number generator (Salmon et al.,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011), usable from host
// and device code. Each call maps a 128-bit counter and a 64-bit key to four
// independent 32-bit words, so element i of a tensor can draw its random bits
// from counter i / 4 no matter how the work is split across threads: the CPU
// and the CUDA kernels produce identical streams for the same seed.
#ifndef KERAS_CNNPRACTICE_KERNELS_PHILOX_H_
#define KERAS_CNNPRACTICE_KERNELS_PHILOX_H_

#include <cstdint>

#if defined(__CUDACC__)
#define KCP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KCP_HOST_DEVICE inline
#endif

namespace keras_cnnpractice {

struct Philox4x32 {
  uint32_t v[4];
};

KCP_HOST_DEVICE void MulHiLo32(uint32_t a, uint32_t b, uint32_t* hi,
                               uint32_t* lo) {
  const uint64_t product = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(product >> 32);
  *lo = static_cast<uint32_t>(product);
}

// Ten rounds of Philox4x32 on `counter` with key (key0, key1).
KCP_HOST_DEVICE Philox4x32 Philox4x32_10(Philox4x32 counter, uint32_t key0,
                                         uint32_t key1) {
  constexpr uint32_t kMul0 = 0xD2511F53u;
  constexpr uint32_t kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u;
  constexpr uint32_t kWeyl1 = 0xBB67AE85u;
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    MulHiLo32(kMul0, counter.v[0], &hi0, &lo0);
    MulHiLo32(kMul1, counter.v[2], &hi1, &lo1);
    counter = Philox4x32{{hi1 ^ counter.v[1] ^ key0, lo1,
                          hi0 ^ counter.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// A uniform float in [0, 1) from the top 24 bits of `bits`: every value is
// a multiple of 2^-24, exactly representable in float32. (Converted through
// int32, which is exact below 2^24 and, unlike uint32, vectorizes on x86.)
KCP_HOST_DEVICE float Uint32ToUnitFloat(uint32_t bits) {
  return static_cast<float>(static_cast<int32_t>(bits >> 8)) *
         5.9604644775390625e-8f;
}

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_PHILOX_H_
