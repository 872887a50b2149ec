// CPU kernel of KerasCnnPractice>XnorConv2D, and the registration of the
// CUDA kernel (xnor.cu.cc) when built with GOOGLE_CUDA.
//
// CPU algorithm: per unit of kRowBlock output pixels x a chunk of output
// channels, im2col over packed words into a small per-thread buffer and
// the XNOR-popcount product of those rows with the chunk's filter rows
// (xnor_gemm.h), packed once per call where the product reads them so.
// Taps in the padding are left as zero words, i.e. +1 values; their
// contribution, the sum of the filter's signs at that tap, is subtracted
// afterwards, so the result equals zero padding.
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "im2col.h"
#include "kernel_devices.h"
#include "nhwc_window_attrs.h"
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

template <typename Device, typename W>
struct XnorConv2DFunctor;

// Lowers output pixels p0 .. p0 + rows - 1 into rows of `stride` bytes at
// `cols`: tap t of a pixel at byte t * tap_bytes, a run of taps over
// adjacent input pixels in one copy. Taps in the padding are zeroed and
// listed in `padded` as (row, tap) pairs.
inline void LowerPixels(const uint8_t* x, const XnorConvGeometry& g,
                        int64_t tap_bytes, int64_t stride, int64_t p0,
                        int64_t rows, uint8_t* cols,
                        std::vector<int64_t>* padded) {
  padded->clear();
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t p = p0 + r;
    const int64_t ow = p % g.out_w, oh = (p / g.out_w) % g.out_h;
    const int64_t b = p / (g.out_w * g.out_h);
    uint8_t* row = cols + r * stride;
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
      const int64_t iw0 = ow * g.stride_w - g.pad_left;
      const bool row_inside = ih >= 0 && ih < g.in_h;
      const uint8_t* in_row =
          row_inside ? x + (b * g.in_h + ih) * g.in_w * tap_bytes : nullptr;
      int64_t run = 0;  // taps kw - run .. kw - 1, inside and adjacent
      for (int64_t kw = 0; kw <= g.kernel_w; ++kw) {
        const int64_t iw = iw0 + kw * g.dilation_w;
        const bool inside =
            row_inside && kw < g.kernel_w && iw >= 0 && iw < g.in_w;
        if (inside && (run == 0 || g.dilation_w == 1)) {
          ++run;
          continue;
        }
        if (run > 0) {
          std::memcpy(row + (kh * g.kernel_w + kw - run) * tap_bytes,
                      in_row + (iw0 + (kw - run) * g.dilation_w) * tap_bytes,
                      run * tap_bytes);
        }
        run = inside ? 1 : 0;  // dilated: this tap starts the next run
        if (!inside && kw < g.kernel_w) {
          const int64_t t = kh * g.kernel_w + kw;
          std::memset(row + t * tap_bytes, 0, tap_bytes);
          padded->push_back(r);
          padded->push_back(t);
        }
      }
    }
  }
}

template <typename W>
struct XnorConv2DFunctor<CpuDevice, W> {
  void operator()(OpKernelContext* ctx, const W* x, const W* filter,
                  float* out, const XnorConvGeometry& g) const {
    const int64_t taps = g.kernel_h * g.kernel_w;
    const int64_t tap_bytes = g.words * sizeof(W);
    const int64_t row_bytes = taps * tap_bytes;
    const int64_t stride = XnorRowStride(row_bytes);
    const int64_t depth = taps * g.channels;
    const int64_t cout = g.out_channels;

    // Units of work: kRowBlock output pixels x `chunk` output channels. The
    // channels are split (into kColumnChunk) only where the pixels alone
    // make too few units to spread over the threads (a 14x14 image at
    // batch 1 has 6 blocks), since each unit lowers its pixels again.
    const int64_t pixels = g.batch * g.out_h * g.out_w;
    const int64_t blocks = (pixels + kRowBlock - 1) / kRowBlock;
    auto* workers = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    const int threads = workers->NumThreads();
    const int64_t chunk =
        blocks >= 4 * threads ? RoundUp(cout, kPanelCols) : kColumnChunk;
    const int64_t chunks = (cout + chunk - 1) / chunk;

    // Per chunk, prepared by the first unit that needs it: each tap's sum
    // of signs per output channel (tap_sums[t * cout + co]) for the padding
    // correction, and, where the product reads them so, the filter's rows
    // ([cout, kernel_h, kernel_w, words] is one row per output channel)
    // packed into panels.
    uint8_t* packed = nullptr;
    Tensor packed_buf;
    if (XnorPacksB(pixels)) {
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(
                              ::tensorflow::DT_UINT8,
                              TensorShape({XnorPanels(cout) *
                                           XnorPanelBytes(row_bytes)}),
                              &packed_buf));
      packed = packed_buf.flat<uint8_t>().data();
    }
    XnorChunkedB chunked_filter(reinterpret_cast<const uint8_t*>(filter),
                                row_bytes, cout, chunk, packed);
    std::vector<float> tap_sums(taps * cout);
    auto sum_taps = [&](int64_t c) {
      const int64_t co0 = c * chunk;
      const int64_t co1 = co0 + chunk < cout ? co0 + chunk : cout;
      for (int64_t co = co0; co < co1; ++co) {
        const W* f = filter + co * taps * g.words;
        for (int64_t t = 0; t < taps; ++t) {
          int64_t negative = 0;
          for (int64_t w = 0; w < g.words; ++w) {
            negative += __builtin_popcountll(
                static_cast<uint64_t>(static_cast<std::make_unsigned_t<W>>(
                    f[t * g.words + w])));
          }
          tap_sums[t * cout + co] =
              static_cast<float>(g.channels - 2 * negative);
        }
      }
    };

    // Per worker: its block's lowered rows (bytes past a row's taps stay
    // zero) and padded taps. Threads take units from a shared counter
    // (unit_queue.h), which balances them where static shares per thread did
    // not (a thread woken late held the call up: 28x28x256 at batch 1 0.68
    // against 0.46 ms on 2 cores).
    const int64_t block_bytes = RoundUp(kRowBlock, kRowsPerTileA) * stride;
    WorkerBuffers lowered(threads, block_bytes / sizeof(float),
                          /*zeroed=*/true);
    std::vector<std::vector<int64_t>> padded_taps(threads + 1);
    const auto* x_bytes = reinterpret_cast<const uint8_t*>(x);
    RunUnits(workers, blocks * chunks, [&](int64_t u, int id) {
      auto* cols = reinterpret_cast<uint8_t*>(lowered.Get(id));
      std::vector<int64_t>& padded = padded_taps[id];
      const int64_t p0 = u / chunks * kRowBlock;
      const int64_t j0 = u % chunks * chunk;
      const int64_t rows = pixels - p0 < kRowBlock ? pixels - p0 : kRowBlock;
      const int64_t n = cout - j0 < chunk ? cout - j0 : chunk;
      chunked_filter.Prepare(u % chunks, sum_taps);
      LowerPixels(x_bytes, g, tap_bytes, stride, p0, rows, cols, &padded);
      float* block_out = out + p0 * cout + j0;
      XnorProductRows(cols, rows, stride, chunked_filter.Rows(j0),
                      chunked_filter.Panels(j0), n, row_bytes, depth,
                      block_out, cout);
      for (size_t i = 0; i < padded.size(); i += 2) {
        float* o = block_out + padded[i] * cout;
        const float* s = tap_sums.data() + padded[i + 1] * cout + j0;
        for (int64_t co = 0; co < n; ++co) o[co] -= s[co];
      }
    });
  }
};

// Checks the attributes and the inputs' shapes, and works out the geometry.
class XnorConv2DArgs {
 public:
  explicit XnorConv2DArgs(OpKernelConstruction* ctx) {
    std::string data_format, padding;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("channels", &channels_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &strides_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dilations", &dilations_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &padding));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("data_format", &data_format));
    same_ = padding == "SAME";
    OP_REQUIRES(ctx, data_format == "NHWC",
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorConv2D supports only data_format='NHWC'. Received: "
                    "data_format='",
                    data_format, "'")));
    OP_REQUIRES(ctx, channels_ >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorConv2D needs channels >= 1. Received: channels=",
                    channels_)));
    OP_REQUIRES_OK(ctx, CheckNhwcWindowAttrs("XnorConv2D", strides_, dilations_));
  }

  // Fills `g` for `x` and `filter`, or sets an InvalidArgument error.
  void Geometry(OpKernelContext* ctx, const Tensor& x, const Tensor& filter,
                int64_t word_bits, XnorConvGeometry* g) const {
    OP_REQUIRES(ctx, x.dims() == 4 && filter.dims() == 4,
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorConv2D needs a packed NHWC input and a packed "
                    "[out_channels, kernel_h, kernel_w, words] filter (rank "
                    "4 each). Received shapes: input=",
                    x.shape().DebugString(),
                    ", filter=", filter.shape().DebugString())));
    const int64_t words = (channels_ + word_bits - 1) / word_bits;
    OP_REQUIRES(
        ctx, x.dim_size(3) == words && filter.dim_size(3) == words,
        absl::InvalidArgumentError(absl::StrCat(
            "XnorConv2D: channels=", channels_, " packs into ", words,
            " words of ", word_bits, " bits, but the input has ",
            x.dim_size(3), " and the filter ", filter.dim_size(3),
            ". Received shapes: input=", x.shape().DebugString(),
            ", filter=", filter.shape().DebugString())));
    g->batch = x.dim_size(0);
    g->in_h = x.dim_size(1);
    g->in_w = x.dim_size(2);
    g->words = words;
    g->channels = channels_;
    g->out_channels = filter.dim_size(0);
    g->kernel_h = filter.dim_size(1);
    g->kernel_w = filter.dim_size(2);
    g->stride_h = strides_[1];
    g->stride_w = strides_[2];
    g->dilation_h = dilations_[1];
    g->dilation_w = dilations_[2];
    OP_REQUIRES(ctx, g->kernel_h >= 1 && g->kernel_w >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "XnorConv2D needs a non-empty kernel. Received filter "
                    "shape: ",
                    filter.shape().DebugString())));
    int64_t* out_dims[2] = {&g->out_h, &g->out_w};
    int64_t* pads[2] = {&g->pad_top, &g->pad_left};
    const int64_t in[2] = {g->in_h, g->in_w};
    const int64_t k[2] = {g->kernel_h, g->kernel_w};
    const int64_t s[2] = {g->stride_h, g->stride_w};
    const int64_t d[2] = {g->dilation_h, g->dilation_w};
    for (int i = 0; i < 2; ++i) {
      const int64_t extent = (k[i] - 1) * d[i] + 1;
      if (same_) {
        *out_dims[i] = (in[i] + s[i] - 1) / s[i];
        const int64_t total = (*out_dims[i] - 1) * s[i] + extent - in[i];
        *pads[i] = total > 0 ? total / 2 : 0;
      } else {
        OP_REQUIRES(ctx, in[i] >= extent,
                    absl::InvalidArgumentError(absl::StrCat(
                        "XnorConv2D with padding='VALID': the dilated kernel "
                        "(extent ",
                        extent, ") is larger than the input (", in[i],
                        "). Received shapes: input=", x.shape().DebugString(),
                        ", filter=", filter.shape().DebugString())));
        *out_dims[i] = (in[i] - extent + s[i]) / s[i];
        *pads[i] = 0;
      }
    }
  }

 private:
  int64_t channels_ = 0;
  std::vector<int32_t> strides_, dilations_;
  bool same_ = false;
};

template <typename Device, typename W>
class XnorConv2DOp : public OpKernel {
 public:
  explicit XnorConv2DOp(OpKernelConstruction* ctx)
      : OpKernel(ctx), args_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    XnorConvGeometry g{};
    args_.Geometry(ctx, x, filter, 8 * sizeof(W), &g);
    if (!ctx->status().ok()) return;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({g.batch, g.out_h, g.out_w,
                                            g.out_channels}),
                            &out));
    if (out->NumElements() == 0) return;
    XnorConv2DFunctor<Device, W>()(ctx, x.flat<W>().data(),
                                   filter.flat<W>().data(),
                                   out->flat<float>().data(), g);
  }

 private:
  XnorConv2DArgs args_;
};

#define REGISTER_CPU(W)                                       \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>XnorConv2D") \
                              .Device(DEVICE_CPU)             \
                              .TypeConstraint<W>("T"),        \
                          XnorConv2DOp<CpuDevice, W>)
REGISTER_CPU(int32_t);
REGISTER_CPU(int64_t);
#undef REGISTER_CPU

#if GOOGLE_CUDA
template <typename W>
struct XnorConv2DFunctor<GpuDevice, W> {
  void operator()(OpKernelContext* ctx, const W* x, const W* filter,
                  float* out, const XnorConvGeometry& g) const {
    const int status =
        LaunchXnorConv2DGpu(8 * sizeof(W), x, filter, out, g, GpuStream(ctx));
    OP_REQUIRES(ctx, status == 0,
                absl::InternalError(absl::StrCat(
                    "XnorConv2D CUDA launch failed: cudaError_t ", status)));
  }
};

#define REGISTER_GPU(W)                                         \
  REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>XnorConv2D")   \
                              .Device(::tensorflow::DEVICE_GPU) \
                              .TypeConstraint<W>("T"),          \
                          XnorConv2DOp<GpuDevice, W>)
REGISTER_GPU(int32_t);
REGISTER_GPU(int64_t);
#undef REGISTER_GPU
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice
