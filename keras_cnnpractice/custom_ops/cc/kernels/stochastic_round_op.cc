// CPU kernel of KerasCnnPractice>StochasticRound, and the registration of the
// CUDA kernel (stochastic_round.cu.cc) when built with GOOGLE_CUDA.
#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "stochastic_round.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/threadpool.h"
#if GOOGLE_CUDA
#include "xla/stream_executor/stream.h"
#endif

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

// Validates the attributes once; keys the Philox stream per call.
class StochasticRoundOpBase : public OpKernel {
 public:
  explicit StochasticRoundOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
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

 protected:
  // Checks the seed input and fills `params` with the stream it selects.
  absl::Status ParamsForSeed(OpKernelContext* ctx,
                             FixedPointParams* params) const {
    const Tensor& seed = ctx->input(1);
    if (!TensorShapeUtils::IsVector(seed.shape()) || seed.NumElements() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("seed must be a vector of 2 int64 values. Received "
                       "shape: ",
                       seed.shape().DebugString()));
    }
    const auto s = seed.flat<int64_t>();
    *params = WithSeed(params_, static_cast<uint64_t>(s(0)),
                       static_cast<uint64_t>(s(1)));
    return absl::OkStatus();
  }

 private:
  FixedPointParams params_{};
};

template <typename T>
class StochasticRoundCpuOp : public StochasticRoundOpBase {
 public:
  using StochasticRoundOpBase::StochasticRoundOpBase;

  void Compute(OpKernelContext* ctx) override {
    FixedPointParams p{};
    OP_REQUIRES_OK(ctx, ParamsForSeed(ctx, &p));
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0,
                                                               x.shape(), &y));
    const T* in = x.flat<T>().data();
    T* out = y->flat<T>().data();
    const int64_t n = x.NumElements();
    // Work is split in groups of four elements, one Philox call each, so the
    // result does not depend on how the thread pool shards it.
    auto work = [in, out, n, p](int64_t first, int64_t last) {
      for (int64_t g = first; g < last; ++g) {
        const Philox4x32 bits = GroupRandomBits(g, p);
        const int64_t base = 4 * g;
        const int count = static_cast<int>(std::min<int64_t>(4, n - base));
        for (int j = 0; j < count; ++j) {
          const float u = Uint32ToUnitFloat(bits.v[j]);
          out[base + j] = static_cast<T>(
              QuantizeFixedPoint(static_cast<float>(in[base + j]), u, p));
        }
      }
    };
    constexpr int64_t kCyclesPerGroup = 120;
    using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        (n + 3) / 4, Scheduling::Adaptive(kCyclesPerGroup), work);
  }
};

#define REGISTER_CPU(T)                                            \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>StochasticRound") \
                              .Device(DEVICE_CPU)                  \
                              .TypeConstraint<T>("T"),             \
                          StochasticRoundCpuOp<T>)
REGISTER_CPU(float);
REGISTER_CPU(Eigen::half);
REGISTER_CPU(Eigen::bfloat16);
#undef REGISTER_CPU

#if GOOGLE_CUDA
template <typename T>
constexpr int kDtypeCode = -1;
template <>
constexpr int kDtypeCode<float> = 0;
template <>
constexpr int kDtypeCode<Eigen::half> = 1;
template <>
constexpr int kDtypeCode<Eigen::bfloat16> = 2;

template <typename T>
class StochasticRoundGpuOp : public StochasticRoundOpBase {
 public:
  using StochasticRoundOpBase::StochasticRoundOpBase;

  void Compute(OpKernelContext* ctx) override {
    FixedPointParams p{};
    OP_REQUIRES_OK(ctx, ParamsForSeed(ctx, &p));
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0,
                                                               x.shape(), &y));
    if (x.NumElements() == 0) return;
    void* stream =
        ctx->op_device_context()->stream()->platform_specific_handle().stream;
    const int status = LaunchStochasticRoundGpu(
        kDtypeCode<T>, x.data(), y->data(), x.NumElements(), p, stream);
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
                          StochasticRoundGpuOp<T>)
REGISTER_GPU(float);
REGISTER_GPU(Eigen::half);
REGISTER_GPU(Eigen::bfloat16);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice
