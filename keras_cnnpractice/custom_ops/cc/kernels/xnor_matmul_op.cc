// CPU kernel of KerasCnnPractice>XnorMatmul, and the registration of the
// CUDA kernel (xnor.cu.cc) when built with GOOGLE_CUDA.
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernel_devices.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "unit_queue.h"
#include "xnor.h"
#include "xnor_gemm.h"

namespace keras_cnnpractice {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

// product ([m, n]) from packed rows a ([m, words]) and b ([n, words]).
template <typename Device, typename W>
struct XnorMatmulFunctor;

template <typename W>
struct XnorMatmulFunctor<CpuDevice, W> {
  void operator()(OpKernelContext* ctx, const W* a, const W* b, float* out,
                  int64_t m, int64_t n, int64_t words, int64_t depth) const {
    const int64_t row_bytes = words * sizeof(W);
    const int64_t stride = XnorRowStride(row_bytes);
    const int64_t m_pad = RoundUp(m, kRowsPerTileA);
    // a's rows copied into zero-padded rows of `stride` bytes.
    Tensor a_buf, b_buf;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(::tensorflow::DT_UINT8,
                                           TensorShape({m_pad * stride}),
                                           &a_buf));
    uint8_t* pa = a_buf.flat<uint8_t>().data();
    std::memset(pa, 0, m_pad * stride);
    for (int64_t i = 0; i < m; ++i) {
      std::memcpy(pa + i * stride, reinterpret_cast<const uint8_t*>(a) +
                                       i * row_bytes, row_bytes);
    }
    // b's rows are read in place or, where the product reads them so,
    // packed into panels (xnor_gemm.h), a chunk of columns by the first
    // unit that needs it.
    uint8_t* packed = nullptr;
    if (XnorPacksB(m)) {
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(
                              ::tensorflow::DT_UINT8,
                              TensorShape({XnorPanels(n) *
                                           XnorPanelBytes(row_bytes)}),
                              &b_buf));
      packed = b_buf.flat<uint8_t>().data();
    }
    XnorChunkedB chunked_b(reinterpret_cast<const uint8_t*>(b), row_bytes, n,
                           kColumnChunk, packed);
    // Units of kRowBlock rows x kColumnChunk columns.
    const int64_t chunks = (n + kColumnChunk - 1) / kColumnChunk;
    const int64_t units = (m + kRowBlock - 1) / kRowBlock * chunks;
    RunUnits(ctx->device()->tensorflow_cpu_worker_threads()->workers, units,
             [&](int64_t u, int) {
               const int64_t i0 = u / chunks * kRowBlock;
               const int64_t j0 = u % chunks * kColumnChunk;
               const int64_t rows = m - i0 < kRowBlock ? m - i0 : kRowBlock;
               const int64_t cols =
                   n - j0 < kColumnChunk ? n - j0 : kColumnChunk;
               chunked_b.Prepare(u % chunks);
               XnorProductRows(pa + i0 * stride, rows, stride,
                               chunked_b.Rows(j0), chunked_b.Panels(j0), cols,
                               row_bytes, depth, out + i0 * n + j0, n);
             });
  }
};

template <typename Device, typename W>
class XnorMatmulOp : public OpKernel {
 public:
  explicit XnorMatmulOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("depth", &depth_));
    OP_REQUIRES(ctx, depth_ >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorMatmul needs depth >= 1. Received: depth=", depth_)));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& a = ctx->input(0);
    const Tensor& b = ctx->input(1);
    OP_REQUIRES(ctx, a.dims() == 2 && b.dims() == 2,
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorMatmul needs two packed matrices (rank 2). Received "
                    "shapes: a=",
                    a.shape().DebugString(), ", b=", b.shape().DebugString())));
    constexpr int64_t kBits = 8 * sizeof(W);
    const int64_t words = (depth_ + kBits - 1) / kBits;
    OP_REQUIRES(ctx, a.dim_size(1) == words && b.dim_size(1) == words,
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorMatmul: depth=", depth_, " packs into ", words,
                    " words of ", kBits, " bits per row, but a has ",
                    a.dim_size(1), " and b has ", b.dim_size(1),
                    ". Received shapes: a=", a.shape().DebugString(),
                    ", b=", b.shape().DebugString())));
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({a.dim_size(0), b.dim_size(0)}),
                            &out));
    if (out->NumElements() == 0) return;
    XnorMatmulFunctor<Device, W>()(ctx, a.flat<W>().data(), b.flat<W>().data(),
                                   out->flat<float>().data(), a.dim_size(0),
                                   b.dim_size(0), words, depth_);
  }

 private:
  int64_t depth_ = 0;
};

#define REGISTER_CPU(W)                                       \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>XnorMatmul") \
                              .Device(DEVICE_CPU)             \
                              .TypeConstraint<W>("T"),        \
                          XnorMatmulOp<CpuDevice, W>)
REGISTER_CPU(int32_t);
REGISTER_CPU(int64_t);
#undef REGISTER_CPU

#if GOOGLE_CUDA
template <typename W>
struct XnorMatmulFunctor<GpuDevice, W> {
  void operator()(OpKernelContext* ctx, const W* a, const W* b, float* out,
                  int64_t m, int64_t n, int64_t words, int64_t depth) const {
    const int status = LaunchXnorMatmulGpu(8 * sizeof(W), a, b, out, m, n,
                                           words, depth, GpuStream(ctx));
    OP_REQUIRES(ctx, status == 0,
                absl::InternalError(absl::StrCat(
                    "XnorMatmul CUDA launch failed: cudaError_t ", status)));
  }
};

#define REGISTER_GPU(W)                                       \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>XnorMatmul") \
                              .Device(::tensorflow::DEVICE_GPU) \
                              .TypeConstraint<W>("T"),        \
                          XnorMatmulOp<GpuDevice, W>)
REGISTER_GPU(int32_t);
REGISTER_GPU(int64_t);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice
