// CPU kernel of KerasCnnPractice>StochasticRound, and the registration of the
// CUDA kernel (stochastic_round.cu.cc) when built with GOOGLE_CUDA.
#include <string>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernel_devices.h"
#include "stochastic_round.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/threadpool.h"

namespace keras_cnnpractice {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::DEVICE_GPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShapeUtils;

// Largest word length whose integer codes float32 holds exactly.
constexpr int kMaxWordBits = 24;
constexpr int kMaxFracBits = 64;

// Fills y (n elements) with x quantized by `p`, on the op's device.
template <typename Device, typename T>
struct QuantizeFunctor;

// Validates the attributes once; per call, keys the Philox stream with the
// seed input and hands the elements to QuantizeFunctor<Device, T>.
template <typename Device, typename T>
class StochasticRoundOp : public OpKernel {
 public:
  explicit StochasticRoundOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    int word_bits, frac_bits;
    std::string rounding;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("word_bits", &word_bits));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("frac_bits", &frac_bits));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("rounding", &rounding));
    OP_REQUIRES(ctx, word_bits >= 2 && word_bits <= kMaxWordBits,
                absl::InvalidArgumentError(absl::StrCat(
                    "word_bits must be in [2, ", kMaxWordBits,
                    "] (integer codes must be exact in float32). Received: "
                    "word_bits=",
                    word_bits)));
    OP_REQUIRES(ctx, frac_bits >= 0 && frac_bits <= kMaxFracBits,
                absl::InvalidArgumentError(
                    absl::StrCat("frac_bits must be in [0, ", kMaxFracBits,
                                 "]. Received: frac_bits=", frac_bits)));
    OP_REQUIRES(ctx, rounding == "stochastic" || rounding == "nearest",
                absl::InvalidArgumentError(absl::StrCat(
                    "rounding must be 'stochastic' or 'nearest'. Received: "
                    "rounding='",
                    rounding, "'")));
    params_ = MakeFixedPointParams(word_bits, frac_bits,
                                   rounding == "stochastic");
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& seed = ctx->input(1);
    OP_REQUIRES(ctx,
                TensorShapeUtils::IsVector(seed.shape()) &&
                    seed.NumElements() == 2,
                absl::InvalidArgumentError(absl::StrCat(
                    "seed must be a vector of 2 int64 values. Received "
                    "shape: ",
                    seed.shape().DebugString())));
    const auto s = seed.flat<int64_t>();
    const FixedPointParams p = WithSeed(
        params_, static_cast<uint64_t>(s(0)), static_cast<uint64_t>(s(1)));
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0,
                                                               x.shape(), &y));
    if (x.NumElements() == 0) return;
    QuantizeFunctor<Device, T>()(ctx, p, x.flat<T>().data(),
                                 y->flat<T>().data(), x.NumElements());
  }

 private:
  FixedPointParams params_{};
};

// The CPU kernel works in blocks of 32 elements: the 8 Philox groups that
// feed them run side by side in one AVX2 register each (portable C++ where
// AVX2 is not enabled), then a branch-free loop quantizes the block, which
// g++ vectorizes.
constexpr int kGroupsPerBlock = 8;
constexpr int kBlockSize = 4 * kGroupsPerBlock;

#ifdef __AVX2__
// (hi, lo) 32-bit halves of a * m for eight uint32 lanes.
inline void MulHiLo(__m256i a, __m256i m, __m256i* hi, __m256i* lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// The uniforms of elements 32 * block .. 32 * block + 31: Philox4x32-10 on
// eight consecutive counters at once, transposed into element order.
inline void BlockUniforms(int64_t block, const FixedPointParams& p, float* u) {
  const uint64_t g0 = static_cast<uint64_t>(block) * kGroupsPerBlock;
  // g0 is a multiple of 8, so adding lanes 0..7 never carries out of the
  // low counter word.
  __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(g0)),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i c1 = _mm256_set1_epi32(static_cast<int32_t>(g0 >> 32));
  __m256i c2 = _mm256_set1_epi32(static_cast<int32_t>(p.ctr_hi[0]));
  __m256i c3 = _mm256_set1_epi32(static_cast<int32_t>(p.ctr_hi[1]));
  const __m256i m0 = _mm256_set1_epi32(static_cast<int32_t>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int32_t>(0xCD9E8D57u));
  uint32_t k0 = p.key[0], k1 = p.key[1];
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, lo0, hi1, lo1;
    MulHiLo(c0, m0, &hi0, &lo0);
    MulHiLo(c2, m1, &hi1, &lo1);
    c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1),
                          _mm256_set1_epi32(static_cast<int32_t>(k0)));
    c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3),
                          _mm256_set1_epi32(static_cast<int32_t>(k1)));
    c1 = lo1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  // Lane l of c_j is word j of group l, i.e. element 4 * l + j.
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1);
  const __m256i t1 = _mm256_unpacklo_epi32(c2, c3);
  const __m256i t2 = _mm256_unpackhi_epi32(c0, c1);
  const __m256i t3 = _mm256_unpackhi_epi32(c2, c3);
  const __m256i r0 = _mm256_unpacklo_epi64(t0, t1);  // groups 0 and 4
  const __m256i r1 = _mm256_unpackhi_epi64(t0, t1);  // groups 1 and 5
  const __m256i r2 = _mm256_unpacklo_epi64(t2, t3);  // groups 2 and 6
  const __m256i r3 = _mm256_unpackhi_epi64(t2, t3);  // groups 3 and 7
  const __m256i ordered[4] = {_mm256_permute2x128_si256(r0, r1, 0x20),
                              _mm256_permute2x128_si256(r2, r3, 0x20),
                              _mm256_permute2x128_si256(r0, r1, 0x31),
                              _mm256_permute2x128_si256(r2, r3, 0x31)};
  const __m256 step = _mm256_set1_ps(5.9604644775390625e-8f);  // 2^-24
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(u + 8 * i,
                     _mm256_mul_ps(_mm256_cvtepi32_ps(
                                       _mm256_srli_epi32(ordered[i], 8)),
                                   step));
  }
}
#else
inline void BlockUniforms(int64_t block, const FixedPointParams& p, float* u) {
  for (int l = 0; l < kGroupsPerBlock; ++l) {
    const Philox4x32 bits = GroupRandomBits(block * kGroupsPerBlock + l, p);
    for (int j = 0; j < 4; ++j) u[4 * l + j] = Uint32ToUnitFloat(bits.v[j]);
  }
}
#endif  // __AVX2__

template <typename T>
void QuantizeBlocks(const T* in, T* out, int64_t n, const FixedPointParams& p,
                    int64_t first, int64_t last) {
  const FixedPointParams params = p;  // a local: stores cannot alias it
  for (int64_t b = first; b < last; ++b) {
    const int64_t base = b * kBlockSize;
    const T* __restrict x = in + base;
    T* __restrict y = out + base;
    if (base + kBlockSize <= n) {
      alignas(32) float u[kBlockSize] = {};
      if (params.stochastic) BlockUniforms(b, params, u);
      for (int e = 0; e < kBlockSize; ++e) {
        y[e] = static_cast<T>(
            QuantizeFixedPoint(static_cast<float>(x[e]), u[e], params));
      }
    } else {  // the last, partial block
      for (int64_t g = 0; 4 * g < n - base; ++g) {
        const Philox4x32 bits =
            GroupRandomBits(b * kGroupsPerBlock + g, params);
        for (int j = 0; j < 4 && base + 4 * g + j < n; ++j) {
          y[4 * g + j] = static_cast<T>(QuantizeFixedPoint(
              static_cast<float>(x[4 * g + j]), Uint32ToUnitFloat(bits.v[j]),
              params));
        }
      }
    }
  }
}

template <typename T>
struct QuantizeFunctor<CpuDevice, T> {
  void operator()(OpKernelContext* ctx, const FixedPointParams& p,
                  const T* in, T* out, int64_t n) const {
    // Element i always draws word i % 4 of Philox counter i / 4, so the
    // result does not depend on how the thread pool shards the blocks.
    auto work = [in, out, n, p](int64_t first, int64_t last) {
      QuantizeBlocks(in, out, n, p, first, last);
    };
    constexpr int64_t kCyclesPerBlock = 150;
    using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        (n + kBlockSize - 1) / kBlockSize,
        Scheduling::Adaptive(kCyclesPerBlock), work);
  }
};

#define REGISTER_CPU(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>StochasticRound") \
                              .Device(DEVICE_CPU)                  \
                              .TypeConstraint<T>("T"),             \
                          StochasticRoundOp<CpuDevice, T>)
REGISTER_CPU(float);
REGISTER_CPU(Eigen::half);
REGISTER_CPU(Eigen::bfloat16);
#undef REGISTER_CPU

#if GOOGLE_CUDA
template <typename T>
struct QuantizeFunctor<GpuDevice, T> {
  void operator()(OpKernelContext* ctx, const FixedPointParams& p,
                  const T* in, T* out, int64_t n) const {
    const int status = LaunchStochasticRoundGpu(kDtypeCode<T>, in, out, n, p,
                                                GpuStream(ctx));
    OP_REQUIRES(ctx, status == 0,
                absl::InternalError(absl::StrCat(
                    "StochasticRound CUDA launch failed: cudaError_t ",
                    status)));
  }
};

#define REGISTER_GPU(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>StochasticRound") \
                              .Device(DEVICE_GPU)                  \
                              .HostMemory("seed")                  \
                              .TypeConstraint<T>("T"),             \
                          StochasticRoundOp<GpuDevice, T>)
REGISTER_GPU(float);
REGISTER_GPU(Eigen::half);
REGISTER_GPU(Eigen::bfloat16);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice
