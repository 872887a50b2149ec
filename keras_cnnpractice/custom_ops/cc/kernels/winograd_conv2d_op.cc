// CPU kernels of KerasCnnPractice>WinogradFilterTransform and
// >WinogradConv2D, and the registration of their CUDA kernels (winograd.cu.cc)
// when built with GOOGLE_CUDA. The arithmetic is in winograd_cpu.h; here are
// the argument checks and the threads.
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernel_devices.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/threadpool.h"
#include "winograd.h"
#include "winograd_cpu.h"

namespace keras_cnnpractice {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;

namespace {

::tensorflow::thread::ThreadPool* Workers(OpKernelContext* ctx) {
  return ctx->device()->tensorflow_cpu_worker_threads()->workers;
}

// Reads and checks the `tile` attribute: 2, 4 or 6.
void ReadTile(OpKernelConstruction* ctx, const char* op, int64_t* tile) {
  OP_REQUIRES_OK(ctx, ctx->GetAttr("tile", tile));
  OP_REQUIRES(ctx, *tile == 2 || *tile == 4 || *tile == 6,
              absl::InvalidArgumentError(absl::StrCat(
                  op, " supports tile=2 (F(2x2, 3x3)), tile=4 (F(4x4, "
                      "3x3)) or tile=6 (F(6x6, 3x3)). Received: tile=",
                  *tile)));
}

// Calls body(std::integral_constant<int, m>{}) for tile m (2, 4 or 6,
// checked by ReadTile), so that the body can instantiate templates on m.
template <typename Body>
void WithTile(int64_t tile, Body body) {
  switch (tile) {
    case 2: body(std::integral_constant<int, 2>{}); break;
    case 4: body(std::integral_constant<int, 4>{}); break;
    default: body(std::integral_constant<int, 6>{});
  }
}

// Checks that `filter` is [3, 3, in, out].
absl::Status CheckFilter(const Tensor& filter, const char* op) {
  if (filter.dims() != 4 || filter.dim_size(0) != 3 ||
      filter.dim_size(1) != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, " needs a 3x3 filter [3, 3, in_channels, out_channels]. "
            "Received filter shape: ",
        filter.shape().DebugString()));
  }
  return absl::OkStatus();
}

}  // namespace

template <typename Device>
struct WinogradFilterTransformFunctor;

// transformed = the transform of `filter` [3, 3, in, out].
template <>
struct WinogradFilterTransformFunctor<CpuDevice> {
  void operator()(OpKernelContext* ctx, int64_t tile, const Tensor& filter,
                  Tensor* transformed) const {
    const int64_t plane = filter.dim_size(2) * filter.dim_size(3);
    const float* f = filter.flat<float>().data();
    float* u = transformed->flat<float>().data();
    const int64_t a2 = (tile + 2) * (tile + 2);
    Workers(ctx)->ParallelFor(
        plane, Scheduling::Adaptive((9 + a2) * 4),
        [=](int64_t first, int64_t last) {
          WithTile(tile, [&](auto m) {
            winograd::FilterTransformRange<m>(f, u, plane, first, last);
          });
        });
  }
};

template <typename Device>
class WinogradFilterTransformOp : public OpKernel {
 public:
  explicit WinogradFilterTransformOp(OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    ReadTile(ctx, "WinogradFilterTransform", &tile_);
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& filter = ctx->input(0);
    OP_REQUIRES_OK(ctx, CheckFilter(filter, "WinogradFilterTransform"));
    const int64_t alpha = tile_ + 2;
    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({alpha, alpha, filter.dim_size(2),
                                            filter.dim_size(3)}),
                            &out));
    if (out->NumElements() == 0) return;
    WinogradFilterTransformFunctor<Device>()(ctx, tile_, filter, out);
  }

 private:
  int64_t tile_ = 0;
};

template <typename Device>
struct WinogradConv2DFunctor;

// out = the convolution of x by the filter, whose transform is u or, where
// u is null, is worked out from `filter`.
template <>
struct WinogradConv2DFunctor<CpuDevice> {
  void operator()(OpKernelContext* ctx, const float* x, const float* filter,
                  const float* u, float* out,
                  const WinogradGeometry& g) const {
    if (g.in_channels == 0) {  // an empty sum
      std::fill_n(out, g.batch * g.out_h * g.out_w * g.out_channels, 0.0f);
      return;
    }
    auto* workers = Workers(ctx);
    if (winograd::Fused(g)) {
      ConvolveFused(ctx, workers, x, filter, u, out, g);
      return;
    }
    const winograd::Plan p = winograd::MakePlan(g, workers->NumThreads());
    const int64_t group_floats = winograd::GroupFloats(g, p);
    const int64_t unit_floats = winograd::UnitFloats(g, p);
    const bool pack_once = winograd::PackFilterOnce(g, p);
    const int64_t packed_floats =
        pack_once ? winograd::PackedFilterFloats(g) : 0;
    Tensor scratch;
    OP_REQUIRES_OK(
        ctx, ctx->allocate_temp(
                 ::tensorflow::DT_FLOAT,
                 TensorShape({group_floats + g.in_channels + packed_floats +
                              (workers->NumThreads() + 1) * unit_floats}),
                 &scratch));
    float* v = scratch.flat<float>().data();
    float* zeros = v + group_floats;
    float* packed = pack_once ? zeros + g.in_channels : nullptr;
    float* units = zeros + g.in_channels + packed_floats;
    std::fill(zeros, zeros + g.in_channels, 0.0f);
    if (pack_once) PackInParallel(workers, u, filter, g, packed);
    const int64_t a2 = (g.tile + 2) * (g.tile + 2);
    const int64_t tiles = winograd::Tiles(g);
    for (int64_t group = 0; group < tiles; group += p.group_tiles) {
      const int64_t size = std::min(p.group_tiles, tiles - group);
      workers->ParallelFor(
          size, Scheduling::Adaptive(a2 * g.in_channels * 8),
          [=, &g, &p](int64_t first, int64_t last) {
            WithTile(g.tile, [&](auto m) {
              winograd::TransformInputTiles<m>(x, g, p.group_tiles, group,
                                               group + first, group + last,
                                               zeros, v);
            });
          });
      const int64_t row_blocks = winograd::CeilDiv(size, p.row_tiles);
      workers->ParallelForWithWorkerId(
          row_blocks * p.k_chunks, Scheduling::Fixed(1),
          [=, &g, &p](int64_t first, int64_t last, int worker) {
            WithTile(g.tile, [&](auto m) {
              for (int64_t unit = first; unit < last; ++unit) {
                const int64_t t0 = group + unit / p.k_chunks * p.row_tiles;
                const int64_t k0 = unit % p.k_chunks * p.k_chunk;
                winograd::MultiplyTiles<m>(
                    v, packed, u, filter, out, g, p, group, t0,
                    std::min(p.row_tiles, group + size - t0), k0,
                    std::min(p.k_chunk, g.out_channels - k0),
                    units + worker * unit_floats);
              }
            });
          });
    }
  }

 private:
  // U packed whole into `packed` (PackedFilterFloats) by all the workers,
  // from u or, where u is null, from the filter.
  static void PackInParallel(::tensorflow::thread::ThreadPool* workers,
                             const float* u, const float* filter,
                             const WinogradGeometry& g, float* packed) {
    workers->ParallelFor(
        winograd::FilterBlockItems(g), Scheduling::Fixed(1),
        [=, &g](int64_t first, int64_t last) {
          WithTile(g.tile, [&](auto m) {
            winograd::PackFilterBlocks<m>(u, filter, g, first, last, packed);
          });
        });
  }

  // The fused convolution (winograd_cpu.h): U packed once by all workers,
  // then units of FusedRowTiles tiles each.
  static void ConvolveFused(OpKernelContext* ctx,
                            ::tensorflow::thread::ThreadPool* workers,
                            const float* x, const float* filter,
                            const float* u, float* out,
                            const WinogradGeometry& g) {
    const int64_t packed_floats = winograd::PackedFilterFloats(g);
    const int64_t rt = winograd::FusedRowTiles(g, workers->NumThreads());
    const int64_t unit_floats = winograd::FusedUnitFloats(g, rt);
    Tensor scratch;
    OP_REQUIRES_OK(
        ctx, ctx->allocate_temp(
                 ::tensorflow::DT_FLOAT,
                 TensorShape({packed_floats + g.in_channels +
                              (workers->NumThreads() + 1) * unit_floats}),
                 &scratch));
    float* packed = scratch.flat<float>().data();
    float* zeros = packed + packed_floats;
    float* units = zeros + g.in_channels;
    std::fill(zeros, zeros + g.in_channels, 0.0f);
    PackInParallel(workers, u, filter, g, packed);
    const int64_t tiles = winograd::Tiles(g);
    workers->ParallelForWithWorkerId(
        winograd::CeilDiv(tiles, rt), Scheduling::Fixed(1),
        [=, &g](int64_t first, int64_t last, int worker) {
          WithTile(g.tile, [&](auto m) {
            for (int64_t unit = first; unit < last; ++unit) {
              const int64_t t0 = unit * rt;
              winograd::ConvolveTiles<m>(x, packed, out, g, rt, t0,
                                         std::min(rt, tiles - t0), zeros,
                                         units + worker * unit_floats);
            }
          });
        });
  }
};

template <typename Device>
class WinogradConv2DOp : public OpKernel {
 public:
  explicit WinogradConv2DOp(OpKernelConstruction* ctx)
      : OpKernel(ctx) {
    ReadTile(ctx, "WinogradConv2D", &tile_);
    if (!ctx->status().ok()) return;
    std::string padding, data_format;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &padding));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("data_format", &data_format));
    OP_REQUIRES(ctx, padding == "SAME" || padding == "VALID",
                absl::InvalidArgumentError(absl::StrCat(
                    "WinogradConv2D supports padding='SAME' or 'VALID'. "
                    "Received: padding='",
                    padding, "'")));
    OP_REQUIRES(ctx, data_format == "NHWC",
                absl::InvalidArgumentError(absl::StrCat(
                    "WinogradConv2D supports only data_format='NHWC'. "
                    "Received: data_format='",
                    data_format, "'")));
    same_ = padding == "SAME";
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    const Tensor& transformed = ctx->input(2);
    OP_REQUIRES(ctx, x.dims() == 4,
                absl::InvalidArgumentError(absl::StrCat(
                    "WinogradConv2D needs an NHWC input of rank 4. Received "
                    "input shape: ",
                    x.shape().DebugString())));
    OP_REQUIRES_OK(ctx, CheckFilter(filter, "WinogradConv2D"));
    OP_REQUIRES(ctx, x.dim_size(3) == filter.dim_size(2),
                absl::InvalidArgumentError(absl::StrCat(
                    "WinogradConv2D: the input has ", x.dim_size(3),
                    " channels but the filter expects ", filter.dim_size(2),
                    ". Received shapes: input=", x.shape().DebugString(),
                    ", filter=", filter.shape().DebugString())));
    const int64_t alpha = tile_ + 2;
    const TensorShape want_u({alpha, alpha, filter.dim_size(2),
                              filter.dim_size(3)});
    const bool cached = transformed.shape() != TensorShape({0});
    OP_REQUIRES(
        ctx, !cached || transformed.shape() == want_u,
        absl::InvalidArgumentError(absl::StrCat(
            "WinogradConv2D: transformed_filter must be empty (shape [0]) or "
            "the tile=",
            tile_, " transform of the filter, of shape ", want_u.DebugString(),
            ". Received transformed_filter shape: ",
            transformed.shape().DebugString())));

    WinogradGeometry g{};
    g.batch = x.dim_size(0);
    g.in_h = x.dim_size(1);
    g.in_w = x.dim_size(2);
    g.in_channels = x.dim_size(3);
    g.out_channels = filter.dim_size(3);
    g.tile = tile_;
    if (same_) {
      g.out_h = g.in_h;
      g.out_w = g.in_w;
      g.pad_top = g.pad_left = 1;
    } else {
      OP_REQUIRES(ctx, g.in_h >= 3 && g.in_w >= 3,
                  absl::InvalidArgumentError(absl::StrCat(
                      "WinogradConv2D with padding='VALID' needs an input of "
                      "at least 3x3 pixels. Received input shape: ",
                      x.shape().DebugString())));
      g.out_h = g.in_h - 2;
      g.out_w = g.in_w - 2;
      g.pad_top = g.pad_left = 0;
    }
    g.tiles_h = winograd::CeilDiv(g.out_h, g.tile);
    g.tiles_w = winograd::CeilDiv(g.out_w, g.tile);

    Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({g.batch, g.out_h, g.out_w,
                                            g.out_channels}),
                            &out));
    if (out->NumElements() == 0) return;
    WinogradConv2DFunctor<Device>()(
        ctx, x.flat<float>().data(), filter.flat<float>().data(),
        cached ? transformed.flat<float>().data() : nullptr,
        out->flat<float>().data(), g);
  }

 private:
  int64_t tile_ = 0;
  bool same_ = true;
};

REGISTER_KERNEL_BUILDER(
    Name("KerasCnnPractice>WinogradFilterTransform").Device(DEVICE_CPU),
    WinogradFilterTransformOp<CpuDevice>);
REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>WinogradConv2D")
                            .Device(DEVICE_CPU),
                        WinogradConv2DOp<CpuDevice>);

#if GOOGLE_CUDA
template <>
struct WinogradFilterTransformFunctor<GpuDevice> {
  void operator()(OpKernelContext* ctx, int64_t tile, const Tensor& filter,
                  Tensor* transformed) const {
    const int status = LaunchWinogradFilterTransformGpu(
        tile, filter.flat<float>().data(), transformed->flat<float>().data(),
        filter.dim_size(2), filter.dim_size(3), GpuStream(ctx));
    OP_REQUIRES(ctx, status == 0,
                absl::InternalError(absl::StrCat(
                    "WinogradFilterTransform CUDA launch failed: "
                    "cudaError_t ",
                    status)));
  }
};

template <>
struct WinogradConv2DFunctor<GpuDevice> {
  void operator()(OpKernelContext* ctx, const float* x, const float* filter,
                  const float* u, float* out,
                  const WinogradGeometry& g) const {
    const int64_t a = g.tile + 2;
    const int64_t u_floats = u == nullptr ? a * a * g.in_channels *
                                                g.out_channels
                                          : 0;
    Tensor workspace;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(
                            ::tensorflow::DT_FLOAT,
                            TensorShape({WinogradGpuWorkspaceFloats(g) +
                                         u_floats}),
                            &workspace));
    float* own_u = workspace.flat<float>().data();
    float* rest = own_u + u_floats;
    void* stream = GpuStream(ctx);
    int status = 0;
    if (u == nullptr) {
      status = LaunchWinogradFilterTransformGpu(
          g.tile, filter, own_u, g.in_channels, g.out_channels, stream);
      u = own_u;
    }
    if (status == 0) {
      status = LaunchWinogradConv2DGpu(x, u, out, rest, g, stream);
    }
    OP_REQUIRES(ctx, status == 0,
                absl::InternalError(absl::StrCat(
                    "WinogradConv2D CUDA launch failed: cudaError_t ",
                    status)));
  }
};

REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>WinogradFilterTransform")
                            .Device(::tensorflow::DEVICE_GPU),
                        WinogradFilterTransformOp<GpuDevice>);
REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>WinogradConv2D")
                            .Device(::tensorflow::DEVICE_GPU),
                        WinogradConv2DOp<GpuDevice>);
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice
