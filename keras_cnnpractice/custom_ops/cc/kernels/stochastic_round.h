// Shared definitions for the StochasticRound CPU and CUDA kernels.
//
// Quantizes x to signed fixed point <word_bits, frac_bits> (Gupta et al.,
// "Deep Learning with Limited Numerical Precision", ICML 2015): the value
// q * 2^-frac_bits with integer q in [-2^(word_bits-1), 2^(word_bits-1) - 1].
// This header must stay free of TensorFlow includes: the CUDA file that uses
// it is also built on its own by the standalone GPU harness.
#ifndef KERAS_CNNPRACTICE_KERNELS_STOCHASTIC_ROUND_H_
#define KERAS_CNNPRACTICE_KERNELS_STOCHASTIC_ROUND_H_

#include <cmath>
#include <cstdint>

#include "philox.h"

namespace keras_cnnpractice {

struct FixedPointParams {
  float scale;       // 2^frac_bits
  float inv_scale;   // 2^-frac_bits
  float min_code;    // -2^(word_bits-1)
  float max_code;    // 2^(word_bits-1) - 1
  bool stochastic;   // false: round half to even
  uint32_t key[2];   // Philox key, from seed[0]
  uint32_t ctr_hi[2];  // upper counter words, from seed[1]
};

// Parameters for <word_bits, frac_bits>, unkeyed (see WithSeed). The caller
// validates the ranges (word_bits in [2, 24], frac_bits in [0, 64]).
inline FixedPointParams MakeFixedPointParams(int word_bits, int frac_bits,
                                             bool stochastic) {
  FixedPointParams p{};
  p.scale = std::ldexp(1.0f, frac_bits);
  p.inv_scale = std::ldexp(1.0f, -frac_bits);
  p.max_code = std::ldexp(1.0f, word_bits - 1) - 1.0f;
  p.min_code = -std::ldexp(1.0f, word_bits - 1);
  p.stochastic = stochastic;
  return p;
}

// `p` keyed by a 128-bit seed: seed0 is the Philox key, seed1 the upper
// half of every counter.
inline FixedPointParams WithSeed(FixedPointParams p, uint64_t seed0,
                                 uint64_t seed1) {
  p.key[0] = static_cast<uint32_t>(seed0);
  p.key[1] = static_cast<uint32_t>(seed0 >> 32);
  p.ctr_hi[0] = static_cast<uint32_t>(seed1);
  p.ctr_hi[1] = static_cast<uint32_t>(seed1 >> 32);
  return p;
}

// Rounds one value. `u` is uniform in [0, 1) and only read when stochastic:
// v rounds up with probability equal to its fractional part, so E[q] = v.
// +-inf and out-of-range values saturate. NaN needs no test: it passes
// through floor/rint and both ordered comparisons unchanged. Branch-free
// (compare-selects, not fminf/fmaxf calls) so loops over it vectorize.
KCP_HOST_DEVICE float QuantizeFixedPoint(float x, float u,
                                         const FixedPointParams& p) {
  const float v = x * p.scale;  // exact: scaling by a power of two
  float q;
  if (p.stochastic) {
    const float f = floorf(v);
    q = f + ((u < v - f) ? 1.0f : 0.0f);
  } else {
    q = rintf(v);  // the default rounding mode: half to even
  }
  q = q < p.min_code ? p.min_code : q;
  q = q > p.max_code ? p.max_code : q;
  return q * p.inv_scale;
}

// The four uniforms used by elements 4 * group .. 4 * group + 3.
KCP_HOST_DEVICE Philox4x32 GroupRandomBits(int64_t group,
                                           const FixedPointParams& p) {
  const uint64_t g = static_cast<uint64_t>(group);
  Philox4x32 counter{{static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32),
                      p.ctr_hi[0], p.ctr_hi[1]}};
  return Philox4x32_10(counter, p.key[0], p.key[1]);
}

// Launches the CUDA kernel on `stream` (a cudaStream_t). Scalar type codes:
// 0 = float32, 1 = float16, 2 = bfloat16. Returns 0 on success, otherwise
// the cudaError_t value. Defined in stochastic_round.cu.cc.
int LaunchStochasticRoundGpu(int dtype_code, const void* x, void* y,
                             int64_t n, const FixedPointParams& params,
                             void* stream);

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_STOCHASTIC_ROUND_H_
