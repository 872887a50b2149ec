// CPU kernel of KerasCnnPractice>Bitpack, and the registration of the CUDA
// kernel (xnor.cu.cc) when built with GOOGLE_CUDA.
#include <cstdint>
#include <type_traits>

#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernel_devices.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/threadpool.h"
#include "xnor.h"

namespace keras_cnnpractice {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

// 1 where the sign is -1 (negative or NaN), as xnor.h specifies.
template <typename T>
inline uint64_t NegativeBit(T v) {
  return static_cast<float>(v) >= 0.0f ? 0 : 1;
}

// Packs `count` (<= word bits) elements starting at x into one word.
template <typename T, typename W>
inline W PackWord(const T* x, int64_t count) {
  using U = std::make_unsigned_t<W>;
  U word = 0;
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>) {
    int64_t j = 0;
    for (; j + 8 <= count; j += 8) {
      const __m256 v = _mm256_loadu_ps(x + j);
      // "not greater or equal", unordered: true for negatives and NaN.
      const int mask = _mm256_movemask_ps(
          _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NGE_UQ));
      word |= static_cast<U>(static_cast<uint32_t>(mask)) << j;
    }
    for (; j < count; ++j) word |= static_cast<U>(NegativeBit(x[j])) << j;
    return static_cast<W>(word);
  }
#endif
  for (int64_t j = 0; j < count; ++j) {
    word |= static_cast<U>(NegativeBit(x[j])) << j;
  }
  return static_cast<W>(word);
}

// Packs every row of x ([outer, depth]) into out ([outer, words]).
template <typename Device, typename T, typename W>
struct BitpackFunctor;

template <typename T, typename W>
struct BitpackFunctor<CpuDevice, T, W> {
  void operator()(OpKernelContext* ctx, const T* x, W* out, int64_t outer,
                  int64_t depth, int64_t words) const {
    constexpr int64_t kBits = 8 * sizeof(W);
    auto work = [=](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int64_t row = i / words, w = i % words;
        const int64_t begin = w * kBits;
        const int64_t count = depth - begin < kBits ? depth - begin : kBits;
        out[i] = PackWord<T, W>(x + row * depth + begin, count);
      }
    };
    using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        outer * words, Scheduling::Adaptive(4 * kBits), work);
  }
};

template <typename Device, typename T, typename W>
class BitpackOp : public OpKernel {
 public:
  explicit BitpackOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "Bitpack needs a tensor of rank >= 1. Received shape: ",
                    x.shape().DebugString())));
    constexpr int64_t kBits = 8 * sizeof(W);
    const int64_t depth = x.dim_size(x.dims() - 1);
    const int64_t words = (depth + kBits - 1) / kBits;
    TensorShape out_shape = x.shape();
    out_shape.set_dim(x.dims() - 1, words);
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &out));
    if (out->NumElements() == 0) return;
    BitpackFunctor<Device, T, W>()(ctx, x.flat<T>().data(),
                                   out->flat<W>().data(),
                                   x.NumElements() / depth, depth, words);
  }
};

#define REGISTER_CPU(T, W)                                      \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>Bitpack")      \
                              .Device(DEVICE_CPU)               \
                              .TypeConstraint<T>("T")           \
                              .TypeConstraint<W>("out_type"),   \
                          BitpackOp<CpuDevice, T, W>)
REGISTER_CPU(float, int32_t);
REGISTER_CPU(float, int64_t);
REGISTER_CPU(Eigen::half, int32_t);
REGISTER_CPU(Eigen::half, int64_t);
REGISTER_CPU(Eigen::bfloat16, int32_t);
REGISTER_CPU(Eigen::bfloat16, int64_t);
#undef REGISTER_CPU

#if GOOGLE_CUDA
template <typename T, typename W>
struct BitpackFunctor<GpuDevice, T, W> {
  void operator()(OpKernelContext* ctx, const T* x, W* out, int64_t outer,
                  int64_t depth, int64_t words) const {
    const int status = LaunchBitpackGpu(kDtypeCode<T>, 8 * sizeof(W), x, out,
                                        outer, depth, GpuStream(ctx));
    OP_REQUIRES(ctx, status == 0,
                absl::InternalError(absl::StrCat(
                    "Bitpack CUDA launch failed: cudaError_t ", status)));
  }
};

#define REGISTER_GPU(T, W)                                      \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>Bitpack")      \
                              .Device(::tensorflow::DEVICE_GPU) \
                              .TypeConstraint<T>("T")           \
                              .TypeConstraint<W>("out_type"),   \
                          BitpackOp<GpuDevice, T, W>)
REGISTER_GPU(float, int32_t);
REGISTER_GPU(float, int64_t);
REGISTER_GPU(Eigen::half, int32_t);
REGISTER_GPU(Eigen::half, int64_t);
REGISTER_GPU(Eigen::bfloat16, int32_t);
REGISTER_GPU(Eigen::bfloat16, int64_t);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice
