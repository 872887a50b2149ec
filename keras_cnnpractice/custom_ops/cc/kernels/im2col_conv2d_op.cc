// CPU kernels of KerasCnnPractice>Im2colConv2D and its input and filter
// gradients: im2col in bounded blocks + a packed GEMM (packed_gemm.h), run
// in parallel over blocks on the CPU device's thread pool (layout and
// memory bound in im2col.h). With K = kh * kw * in_c and O = out_c:
//
//   forward:  out[block] = cols(x)[block] * W          ([rows, K] x [K, O])
//   input:    dx        += col2im(dy[block] * W^T)     ([rows, O] x [O, K])
//   filter:   dW         = sum over blocks of cols(x)[block]^T * dy[block]
//
// W (or W^T) is packed once per call, by all the workers, and shared; the
// GEMM reads the column rows (A) in place. The filter gradient accumulates
// into one [K, O] buffer per worker thread (the size of the filter each),
// summed at the end. The input gradient's blocks are
// whole output rows of one image, run in two phases (even, then odd blocks)
// so that no two concurrent blocks add onto the same input. At stride 1
// with in_c a multiple of the GEMM's depth block, the forward pass writes no
// column rows: the GEMM reads them from the padded input in place (shifted
// windows, im2col.h) where that pays. Intel Xeon (AVX-512), 2 cores, the
// op's median over 3 alternating runs, explicit -> shifted: 3x3 224x224x64
// batch 1 19.4 -> 17.1 ms, 56x56x256 16.5 -> 15.8, 11x11 56x56x64 batch 8
// 120.1 -> 102.1, 5x5 28.9 -> 21.4.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "im2col.h"
#include "nhwc_window_attrs.h"
#include "packed_gemm.h"
#include "tensorflow/core/framework/kernel_shape_util.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/tensor_util.h"
#include "tensorflow/core/platform/threadpool.h"
#include "tensorflow/core/util/padding.h"

namespace keras_cnnpractice {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
using gemm::GemmPackedB;
using gemm::kPackedABlockSize;
using gemm::PackB;
using gemm::PackedBSize;
using ThreadPool = ::tensorflow::thread::ThreadPool;

namespace {

::tensorflow::thread::ThreadPool* Workers(OpKernelContext* ctx) {
  return ctx->device()->tensorflow_cpu_worker_threads()->workers;
}

// Fills `shape` from the int32 sizes tensor of input `index`, which must
// hold 4 non-negative sizes.
void SizesInput(OpKernelContext* ctx, int index, const char* what,
                TensorShape* shape) {
  const Tensor& sizes = ctx->input(index);
  OP_REQUIRES(ctx, sizes.dims() == 1 && sizes.NumElements() == 4,
              absl::InvalidArgumentError(absl::StrCat(
                  "Im2colConv2D: ", what,
                  " must be a vector of 4 sizes. Received shape: ",
                  sizes.shape().DebugString())));
  OP_REQUIRES_OK(ctx, ::tensorflow::tensor::MakeShape(sizes, shape));
}

// The k x n matrix B (element (p, j) at b[p * b_rs + j * b_cs]) packed
// whole for GemmPackedB into `packed`, a temporary, its depth blocks shared
// among the workers (packed by one thread into a zeroed std::vector, the
// 3x3x512x512 filter of a 14x14x512 layer at batch 1 held the op at 0.72x
// of tf.nn.conv2d's speed on 2 cores; 0.81x this way). Where the temporary
// cannot be had, the context's status says so.
const float* PackInParallel(OpKernelContext* ctx, ThreadPool* workers,
                            const float* b, int64_t b_rs, int64_t b_cs,
                            int64_t k, int64_t n, Tensor* packed) {
  const ::absl::Status status = ctx->allocate_temp(
      ::tensorflow::DT_FLOAT, TensorShape({PackedBSize(k, n)}), packed);
  if (!status.ok()) {
    ctx->SetStatus(status);
    return nullptr;
  }
  float* out = packed->flat<float>().data();
  workers->ParallelFor(gemm::DepthBlocks(k), Scheduling::Fixed(1),
                       [=](int64_t first, int64_t last) {
                         for (int64_t block = first; block < last; ++block) {
                           gemm::PackBBlock(b, b_rs, b_cs, k, n, block, out);
                         }
                       });
  return out;
}

// Rows of the output block the shifted forward pass computes per GEMM (its
// per-worker scratch, 384 KiB at 512 output channels).
constexpr int64_t kShiftedChunkRows = 2 * gemm::kMc;

// y = the convolution of `input` by the packed filter `w`, by shifted
// windows (im2col.h: ShiftWindows(g, gemm::kKc) must hold): the input
// zero-padded once (by all the workers), then units of output rows, each a
// GEMM over its virtual rows that reads A from the padded input, the rows
// that fall in the padding's width dropped on the way to y.
void ShiftedWindowsForward(OpKernelContext* ctx, ThreadPool* workers,
                           const Im2colGeometry& g, const float* input,
                           const float* w, float* y) {
  const int64_t ph = PaddedH(g), pw = PaddedW(g), c = g.in_c;
  const int threads = workers->NumThreads();
  const float* padded = input;
  Tensor padded_input;
  if (!InputIsPadded(g)) {
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(
                            ::tensorflow::DT_FLOAT,
                            TensorShape({g.batch * ph * pw * c}), &padded_input));
    float* out = padded_input.flat<float>().data();
    const int64_t rows = g.batch * ph;
    workers->ParallelFor(
        rows, Scheduling::Fixed(std::max<int64_t>(1, rows / (4 * threads + 4))),
        [&](int64_t first, int64_t last) {
          PadInputRows(input, g, first, last, out);
        });
    padded = out;
  }
  const int64_t out_rows = g.batch * g.out_h;
  const int64_t unit_rows = ShiftedUnitRows(g, gemm::kMc, threads);
  const bool in_place = pw == g.out_w;  // no dropped rows (1-wide kernels)
  WorkerBuffers scratch(threads, in_place ? 0 : kShiftedChunkRows * g.out_c,
                        /*zeroed=*/false);
  workers->ParallelForWithWorkerId(
      (out_rows + unit_rows - 1) / unit_rows, Scheduling::Fixed(1),
      [&](int64_t first, int64_t last, int id) {
        float* chunk = scratch.Get(id);
        for (int64_t unit = first; unit < last; ++unit) {
          const int64_t end = std::min(out_rows, (unit + 1) * unit_rows);
          // The unit's output rows of one image at a time.
          for (int64_t row = unit * unit_rows; row < end;) {
            const int64_t n = row / g.out_h, y0 = row % g.out_h;
            const int64_t y1 = std::min(g.out_h, y0 + end - row);
            row += y1 - y0;
            const int64_t first_v = y0 * pw;  // virtual rows of image n
            const int64_t count = (y1 - y0 - 1) * pw + g.out_w;
            const float* image = padded + n * ph * pw * c;
            float* out_image = y + n * g.out_h * g.out_w * g.out_c;
            for (int64_t v0 = 0; v0 < count; v0 += kShiftedChunkRows) {
              const int64_t m = std::min(kShiftedChunkRows, count - v0);
              const float* a = image + (first_v + v0) * c;
              auto a_block = [&](int64_t i0, int64_t, int64_t p0, int64_t,
                                 int64_t* lda) {
                *lda = c;
                return a + i0 * c + ShiftedOffset(g, p0);
              };
              float* dst = in_place ? out_image + (first_v + v0) * g.out_c
                                    : chunk;
              gemm::GemmPackedBBlocks(m, g.out_c, g.Depth(), a_block, w, dst,
                                      g.out_c, /*accumulate=*/false);
              if (in_place) continue;
              for (int64_t i = 0; i < m; ++i) {
                const int64_t v = first_v + v0 + i, ox = v % pw;
                if (ox >= g.out_w) continue;
                std::memcpy(out_image + (v / pw * g.out_w + ox) * g.out_c,
                            chunk + i * g.out_c, g.out_c * sizeof(float));
              }
            }
          }
        }
      });
}

}  // namespace

// Checks the attributes and the operands' shapes, and works out the
// geometry; every op of the family shares it.
class Im2colConvArgs {
 public:
  explicit Im2colConvArgs(OpKernelConstruction* ctx) {
    std::string data_format, padding;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &strides_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dilations", &dilations_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &padding));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("data_format", &data_format));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("block_bytes", &block_bytes_));
    OP_REQUIRES_OK(ctx, ::tensorflow::GetPaddingFromString(padding, &padding_));
    OP_REQUIRES(ctx, data_format == "NHWC",
                absl::InvalidArgumentError(absl::StrCat(
                    "Im2colConv2D supports only data_format='NHWC'. "
                    "Received: data_format='",
                    data_format, "'")));
    OP_REQUIRES(ctx, block_bytes_ >= 0,
                absl::InvalidArgumentError(absl::StrCat(
                    "Im2colConv2D needs block_bytes >= 0 (0: default). "
                    "Received: block_bytes=",
                    block_bytes_)));
    if (block_bytes_ == 0) block_bytes_ = kIm2colDefaultBlockBytes;
    OP_REQUIRES_OK(ctx, CheckNhwcWindowAttrs("Im2colConv2D", strides_, dilations_));
  }

  int64_t block_bytes() const { return block_bytes_; }

  // Fills `g` for an input and a filter of these shapes, or sets an
  // InvalidArgument error.
  void Geometry(OpKernelContext* ctx, const TensorShape& x,
                const TensorShape& filter, Im2colGeometry* g) const {
    const std::string shapes =
        absl::StrCat("Received shapes: input=", x.DebugString(),
                     ", filter=", filter.DebugString());
    OP_REQUIRES(ctx, x.dims() == 4 && filter.dims() == 4,
                absl::InvalidArgumentError(absl::StrCat(
                    "Im2colConv2D needs an NHWC input and a [kernel_h, "
                    "kernel_w, in_channels, out_channels] filter (rank 4 "
                    "each). ",
                    shapes)));
    OP_REQUIRES(ctx, x.dim_size(3) == filter.dim_size(2),
                absl::InvalidArgumentError(absl::StrCat(
                    "Im2colConv2D: the input has ", x.dim_size(3),
                    " channels but the filter expects ", filter.dim_size(2),
                    ". ", shapes)));
    OP_REQUIRES(ctx, filter.dim_size(0) >= 1 && filter.dim_size(1) >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "Im2colConv2D needs a non-empty kernel. ", shapes)));
    g->batch = x.dim_size(0);
    g->in_h = x.dim_size(1);
    g->in_w = x.dim_size(2);
    g->in_c = x.dim_size(3);
    g->kernel_h = filter.dim_size(0);
    g->kernel_w = filter.dim_size(1);
    g->out_c = filter.dim_size(3);
    g->stride_h = strides_[1];
    g->stride_w = strides_[2];
    g->dilation_h = dilations_[1];
    g->dilation_w = dilations_[2];
    const int64_t in[2] = {g->in_h, g->in_w};
    const int64_t k[2] = {g->kernel_h, g->kernel_w};
    const int64_t s[2] = {g->stride_h, g->stride_w};
    const int64_t d[2] = {g->dilation_h, g->dilation_w};
    int64_t* out[2] = {&g->out_h, &g->out_w};
    int64_t* pad[2] = {&g->pad_top, &g->pad_left};
    for (int i = 0; i < 2; ++i) {
      const int64_t extent = (k[i] - 1) * d[i] + 1;
      OP_REQUIRES(ctx, padding_ == ::tensorflow::SAME || in[i] >= extent,
                  absl::InvalidArgumentError(absl::StrCat(
                      "Im2colConv2D with padding='VALID': the dilated kernel "
                      "(extent ",
                      extent, ") is larger than the input (", in[i], "). ",
                      shapes)));
      int64_t pad_after;
      OP_REQUIRES_OK(ctx, ::tensorflow::GetWindowedOutputSizeVerbose(
                              in[i], k[i], d[i], s[i], padding_, out[i],
                              pad[i], &pad_after));
    }
  }

  // Fills `g` like Geometry and checks that `out_backprop` has the
  // convolution's output shape.
  void GradientGeometry(OpKernelContext* ctx, const TensorShape& x,
                        const TensorShape& filter,
                        const TensorShape& out_backprop,
                        Im2colGeometry* g) const {
    Geometry(ctx, x, filter, g);
    if (!ctx->status().ok()) return;
    const TensorShape want({g->batch, g->out_h, g->out_w, g->out_c});
    OP_REQUIRES(ctx, out_backprop == want,
                absl::InvalidArgumentError(absl::StrCat(
                    "Im2colConv2D gradient: out_backprop must have the "
                    "output shape ",
                    want.DebugString(), ". Received: out_backprop shape ",
                    out_backprop.DebugString())));
  }

 private:
  std::vector<int32_t> strides_, dilations_;
  ::tensorflow::Padding padding_;
  int64_t block_bytes_ = 0;
};

class Im2colConv2DOp : public OpKernel {
 public:
  explicit Im2colConv2DOp(OpKernelConstruction* ctx)
      : OpKernel(ctx), args_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    Im2colGeometry g{};
    args_.Geometry(ctx, x.shape(), filter.shape(), &g);
    if (!ctx->status().ok()) return;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({g.batch, g.out_h, g.out_w, g.out_c}),
                            &out));
    if (out->NumElements() == 0) return;
    float* y = out->flat<float>().data();  // all zeros when in_c is 0
    const float* input = x.flat<float>().data();
    auto* workers = Workers(ctx);
    const int64_t depth = g.Depth(), pixels = g.Pixels();
    Tensor packed;
    const float* w = PackInParallel(ctx, workers, filter.flat<float>().data(),
                                    g.out_c, 1, depth, g.out_c, &packed);
    if (!ctx->status().ok()) return;
    if (ShiftWindows(g, gemm::kKc)) {
      ShiftedWindowsForward(ctx, workers, g, input, w, y);
      return;
    }
    const int64_t rows = BlockRows(g, args_.block_bytes(),
                                   workers->NumThreads());
    const bool direct = g.InputIsColumns();
    // Per worker: its block's column rows (the GEMM reads A in place).
    WorkerBuffers scratch(workers->NumThreads(), direct ? 0 : rows * depth,
                          /*zeroed=*/false);
    workers->ParallelForWithWorkerId(
        (pixels + rows - 1) / rows, Scheduling::Fixed(1),
        [&](int64_t first, int64_t last, int id) {
          float* cols = scratch.Get(id);
          for (int64_t blk = first; blk < last; ++blk) {
            const int64_t p0 = blk * rows, n = std::min(rows, pixels - p0);
            const float* block = input + p0 * depth;
            if (!direct) {
              Im2colRows(input, g, p0, n, cols);
              block = cols;
            }
            GemmPackedB(n, g.out_c, depth, block, depth, 1, w,
                        y + p0 * g.out_c, g.out_c, /*accumulate=*/false,
                        /*a_scratch=*/nullptr);
          }
        });
  }

 private:
  Im2colConvArgs args_;
};

class Im2colConv2DBackpropInputOp : public OpKernel {
 public:
  explicit Im2colConv2DBackpropInputOp(OpKernelConstruction* ctx)
      : OpKernel(ctx), args_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& filter = ctx->input(1);
    const Tensor& dy = ctx->input(2);
    TensorShape x_shape;
    SizesInput(ctx, 0, "input_sizes", &x_shape);
    if (!ctx->status().ok()) return;
    Im2colGeometry g{};
    args_.GradientGeometry(ctx, x_shape, filter.shape(), dy.shape(), &g);
    if (!ctx->status().ok()) return;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x_shape, &out));
    if (out->NumElements() == 0) return;
    float* dx = out->flat<float>().data();
    std::fill_n(dx, out->NumElements(), 0.0f);
    if (dy.NumElements() == 0) return;
    const float* grad = dy.flat<float>().data();
    auto* workers = Workers(ctx);
    const int64_t depth = g.Depth();
    // W^T: element (o, k) of the [O, K] matrix is W[k, o].
    Tensor packed;
    const float* wt = PackInParallel(ctx, workers,
                                     filter.flat<float>().data(), 1, g.out_c,
                                     g.out_c, depth, &packed);
    if (!ctx->status().ok()) return;
    if (g.InputIsColumns()) {  // each pixel's column row is its input row
      const int64_t pixels = g.Pixels();
      const int64_t rows = BlockRows(g, args_.block_bytes(),
                                     workers->NumThreads());
      workers->ParallelFor(
          (pixels + rows - 1) / rows, Scheduling::Fixed(1),
          [&](int64_t first, int64_t last) {
            for (int64_t blk = first; blk < last; ++blk) {
              const int64_t p0 = blk * rows, n = std::min(rows, pixels - p0);
              GemmPackedB(n, depth, g.out_c, grad + p0 * g.out_c, g.out_c, 1,
                          wt, dx + p0 * depth, depth, /*accumulate=*/false,
                          /*a_scratch=*/nullptr);
            }
          });
      return;
    }
    const int64_t k = Col2imBlockRows(g, args_.block_bytes(),
                                      workers->NumThreads());
    const int64_t per_image = (g.out_h + k - 1) / k;
    WorkerBuffers scratch(workers->NumThreads(), k * g.out_w * depth,
                          /*zeroed=*/false);
    for (int64_t phase = 0; phase < 2; ++phase) {
      const int64_t count = (per_image + 1 - phase) / 2;  // blocks per image
      workers->ParallelForWithWorkerId(
          g.batch * count, Scheduling::Fixed(1),
          [&](int64_t first, int64_t last, int id) {
            float* cols = scratch.Get(id);
            for (int64_t i = first; i < last; ++i) {
              const int64_t image = i / count;
              const int64_t oh0 = (phase + 2 * (i % count)) * k;
              const int64_t n = std::min(k, g.out_h - oh0) * g.out_w;
              const int64_t p0 = (image * g.out_h + oh0) * g.out_w;
              GemmPackedB(n, depth, g.out_c, grad + p0 * g.out_c, g.out_c, 1,
                          wt, cols, depth, /*accumulate=*/false,
                          /*a_scratch=*/nullptr);
              Col2imRows(cols, g, p0, n, dx);
            }
          });
    }
  }

 private:
  Im2colConvArgs args_;
};

class Im2colConv2DBackpropFilterOp : public OpKernel {
 public:
  explicit Im2colConv2DBackpropFilterOp(OpKernelConstruction* ctx)
      : OpKernel(ctx), args_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& dy = ctx->input(2);
    TensorShape w_shape;
    SizesInput(ctx, 1, "filter_sizes", &w_shape);
    if (!ctx->status().ok()) return;
    Im2colGeometry g{};
    args_.GradientGeometry(ctx, x.shape(), w_shape, dy.shape(), &g);
    if (!ctx->status().ok()) return;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, w_shape, &out));
    if (out->NumElements() == 0) return;
    const float* input = x.flat<float>().data();
    const float* grad = dy.flat<float>().data();
    auto* workers = Workers(ctx);
    const int64_t depth = g.Depth(), pixels = g.Pixels();
    const int64_t rows = BlockRows(g, args_.block_bytes(),
                                   workers->NumThreads());
    const bool direct = g.InputIsColumns();
    // Per worker: the block of A copied row-major, the block's dy packed as
    // B, and its column rows.
    const int64_t packed_dy = PackedBSize(rows, g.out_c);
    WorkerBuffers scratch(
        workers->NumThreads(),
        kPackedABlockSize + packed_dy + (direct ? 0 : rows * depth),
        /*zeroed=*/false);
    WorkerBuffers sums(workers->NumThreads(), depth * g.out_c,
                       /*zeroed=*/true);
    workers->ParallelForWithWorkerId(
        (pixels + rows - 1) / rows, Scheduling::Fixed(1),
        [&](int64_t first, int64_t last, int id) {
          float* packed_a = scratch.Get(id);
          float* dy_block = packed_a + kPackedABlockSize;
          float* cols = dy_block + packed_dy;
          for (int64_t blk = first; blk < last; ++blk) {
            const int64_t p0 = blk * rows, n = std::min(rows, pixels - p0);
            const float* block = input + p0 * depth;
            if (!direct) {
              Im2colRows(input, g, p0, n, cols);
              block = cols;
            }
            PackB(grad + p0 * g.out_c, g.out_c, 1, n, g.out_c, dy_block);
            // cols^T: element (k, r) of the [K, n] matrix is cols[r, k].
            GemmPackedB(depth, g.out_c, n, block, 1, depth, dy_block,
                        sums.Get(id), g.out_c, /*accumulate=*/true, packed_a);
          }
        });
    float* dw = out->flat<float>().data();
    std::fill_n(dw, out->NumElements(), 0.0f);
    for (const float* sum : sums.Used()) {
      for (int64_t i = 0; i < out->NumElements(); ++i) dw[i] += sum[i];
    }
  }

 private:
  Im2colConvArgs args_;
};

REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>Im2colConv2D")
                            .Device(DEVICE_CPU)
                            .TypeConstraint<float>("T"),
                        Im2colConv2DOp);
REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>Im2colConv2DBackpropInput")
                            .Device(DEVICE_CPU)
                            .TypeConstraint<float>("T")
                            .HostMemory("input_sizes"),
                        Im2colConv2DBackpropInputOp);
REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>Im2colConv2DBackpropFilter")
                            .Device(DEVICE_CPU)
                            .TypeConstraint<float>("T")
                            .HostMemory("filter_sizes"),
                        Im2colConv2DBackpropFilterOp);

}  // namespace keras_cnnpractice
