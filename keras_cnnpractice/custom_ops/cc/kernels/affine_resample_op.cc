// CPU kernel of KerasCnnPractice>AffineResample: one pass per image that
// samples through an output-to-source matrix, applies one color map and one
// clip. Threads take whole images, so the second pass of a mean-dependent
// color map (contrast) reads an image that is still in the core's L2.
//
// The sampling matches keras_cnnpractice/layers/_resample.py (and so
// ImageProjectiveTransformV3): each neighbour read through the fill mode on
// its own, bilinear as two horizontal blends and one vertical (the
// separable path blends vertically first: equal up to float32 rounding).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"
#include "tensorflow/core/platform/threadpool.h"

namespace keras_cnnpractice {
namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

enum class Fill { kReflect, kWrap, kNearest, kConstant };

// Integer positions beyond this are clamped before any arithmetic: far
// outside every image, and the int64 index math below never overflows.
constexpr float kMaxCoordinate = 1 << 28;

// One axis of one sample: the two neighbours' element offsets (already
// multiplied by the axis stride), whether each lies inside the image, and
// the weight of the second one. Nearest sampling uses i0 and in0 only.
struct Tap {
  int64_t i0, i1;
  float frac;
  bool in0, in1;
};

// `_resample.wrap_coordinate`: a continuous position shifted by whole
// periods into [0, size - 1].
inline float WrapCoordinate(float coord, int64_t size) {
  const float s = static_cast<float>(size);
  const float span = std::max(s - 1.0f, 1.0f);
  if (coord < 0.0f) {
    coord = coord + s * (std::floor(-coord / span) + 1.0f);
  } else if (coord > s - 1.0f) {
    coord = coord - s * std::floor(coord / span);
  }
  return std::min(std::max(coord, 0.0f), s - 1.0f);
}

// `_resample.fill_index`: an integer position mapped into [0, size).
inline int64_t FillIndex(int64_t i, int64_t size, Fill fill) {
  if (i >= 0 && i < size) return i;
  if (fill == Fill::kReflect) {  // (d c b a | a b c d | d c b a)
    int64_t m = i % (2 * size);
    if (m < 0) m += 2 * size;
    return m >= size ? 2 * size - 1 - m : m;
  }
  return std::min(std::max(i, int64_t{0}), size - 1);  // nearest, constant
}

struct Params {
  int64_t in_h, in_w, channels, out_h, out_w;
  bool bilinear;
  Fill fill;
  float fill_value;
};

inline Tap MakeTap(float coord, int64_t size, int64_t stride,
                   const Params& p) {
  // NaN reads position 0; huge positions are clamped far outside.
  if (std::isnan(coord)) coord = 0.0f;
  coord = std::min(std::max(coord, -kMaxCoordinate), kMaxCoordinate);
  Fill fill = p.fill;
  if (fill == Fill::kWrap) {
    if (coord < 0.0f || coord > static_cast<float>(size - 1)) {
      coord = WrapCoordinate(coord, size);
    }
    fill = Fill::kNearest;
  }
  Tap t;
  int64_t i0;
  if (p.bilinear) {
    const float f = std::floor(coord);
    t.frac = coord - f;
    i0 = static_cast<int64_t>(f);
  } else {
    t.frac = 0.0f;
    i0 = static_cast<int64_t>(std::floor(coord + 0.5f));
  }
  const int64_t i1 = i0 + 1;
  t.in0 = i0 >= 0 && i0 < size;
  t.in1 = i1 >= 0 && i1 < size;
  t.i0 = FillIndex(i0, size, fill) * stride;
  t.i1 = FillIndex(i1, size, fill) * stride;
  return t;
}

// Columns [begin, end) of one output row: out[x * C + c], rows[x * row_step]
// and cols[x] giving the taps (row_step 0: one row tap for the whole row).
template <typename T, int kChannels, bool kConstant>
void SampleRow(const T* src, const Tap* rows, int row_step, const Tap* cols,
               int64_t begin, int64_t end, const Params& p, float* out) {
  const int64_t channels = kChannels > 0 ? kChannels : p.channels;
  const float fill = p.fill_value;
  for (int64_t x = begin; x < end; ++x) {
    const Tap& r = rows[x * row_step];
    const Tap& c = cols[x];
    const T* p00 = src + r.i0 + c.i0;
    float* o = out + x * channels;
    if (!p.bilinear) {
      const bool inside = r.in0 && c.in0;
      for (int64_t k = 0; k < channels; ++k) {
        const float v = static_cast<float>(p00[k]);
        o[k] = (kConstant && !inside) ? fill : v;
      }
      continue;
    }
    const T* p01 = src + r.i0 + c.i1;
    const T* p10 = src + r.i1 + c.i0;
    const T* p11 = src + r.i1 + c.i1;
    const bool in00 = r.in0 && c.in0, in01 = r.in0 && c.in1;
    const bool in10 = r.in1 && c.in0, in11 = r.in1 && c.in1;
    for (int64_t k = 0; k < channels; ++k) {
      float v00 = static_cast<float>(p00[k]);
      float v01 = static_cast<float>(p01[k]);
      float v10 = static_cast<float>(p10[k]);
      float v11 = static_cast<float>(p11[k]);
      if (kConstant) {
        v00 = in00 ? v00 : fill;
        v01 = in01 ? v01 : fill;
        v10 = in10 ? v10 : fill;
        v11 = in11 ? v11 : fill;
      }
      const float top = v00 + c.frac * (v01 - v00);
      const float bottom = v10 + c.frac * (v11 - v10);
      o[k] = top + r.frac * (bottom - top);
    }
  }
}

// SampleRow for any channel count and fill mode (3 channels and the
// constant fill have instantiations of their own).
template <typename T>
void SampleRows(const T* src, const Tap* rows, int row_step, const Tap* cols,
                int64_t begin, int64_t end, const Params& p, float* out) {
  if (begin >= end) return;
  const bool constant = p.fill == Fill::kConstant;
  if (p.channels == 3) {
    constant ? SampleRow<T, 3, true>(src, rows, row_step, cols, begin, end,
                                     p, out)
             : SampleRow<T, 3, false>(src, rows, row_step, cols, begin, end,
                                      p, out);
  } else {
    constant ? SampleRow<T, 0, true>(src, rows, row_step, cols, begin, end,
                                     p, out)
             : SampleRow<T, 0, false>(src, rows, row_step, cols, begin, end,
                                      p, out);
  }
}

// The columns [first, last] of output row `fy` under the affine `m` whose
// samples have both neighbours inside the image on both axes (first > last:
// none). Positions are affine, so monotonic, in x (float rounding keeps
// that): the span is solved for with a one-pixel margin, then its two ends
// are checked with the very expressions the taps use.
inline void InsideSpan(const float* m, float fy, const Params& p,
                       int64_t* first, int64_t* last) {
  const float x_max = static_cast<float>(p.out_w - 1);
  float lo = 0.0f, hi = x_max;
  // lo <= x <= hi where 0 <= a * x + b < limit, with a margin.
  auto narrow = [&](float a, float b, float limit) {
    if (a == 0.0f) {
      if (!(b >= 0.0f && b < limit)) hi = -1.0f;
      return;
    }
    float x0 = (0.0f - b) / a, x1 = (limit - b) / a;
    if (a < 0.0f) std::swap(x0, x1);
    lo = std::max(lo, std::ceil(x0) + 1.0f);
    hi = std::min(hi, std::floor(x1) - 1.0f);
  };
  const float bu = m[1] * fy + m[2], bv = m[4] * fy + m[5];
  narrow(m[0], bu, static_cast<float>(p.in_w - 1));
  narrow(m[3], bv, static_cast<float>(p.in_h - 1));
  *first = 1;
  *last = 0;
  if (!(lo <= hi)) return;  // also NaN
  auto inside = [&](float fx) {  // InsideRow's own expressions
    const float u = m[0] * fx + bu;
    const float v = m[3] * fx + bv;
    return u >= 0.0f && u < static_cast<float>(p.in_w - 1) && v >= 0.0f &&
           v < static_cast<float>(p.in_h - 1);
  };
  if (inside(lo) && inside(hi)) {
    *first = static_cast<int64_t>(lo);
    *last = static_cast<int64_t>(hi);
  }
}

// Scratch of one thread for InsideRow: per column, the offset of the top
// left neighbour and the two weights.
struct InsideScratch {
  std::vector<int64_t> base;
  std::vector<float> cu, cv;
};

// Columns [begin, end) of such a span: no fill mode and no branch per
// pixel. The positions go through a loop of their own, which the compiler
// vectorizes, and the reads through a second one.
template <typename T, int kChannels>
void InsideRowN(const T* src, const float* m, float fy, int64_t begin,
                int64_t end, const Params& p, InsideScratch* scratch,
                float* out) {
  const int64_t channels = kChannels > 0 ? kChannels : p.channels;
  const int64_t row_stride = p.in_w * channels;
  // The clamps only guard the reads: the positions are inside.
  const int64_t u_last = p.bilinear ? p.in_w - 2 : p.in_w - 1;
  const int64_t v_last = p.bilinear ? p.in_h - 2 : p.in_h - 1;
  const float bu = m[1] * fy + m[2], bv = m[4] * fy + m[5];
  const float round = p.bilinear ? 0.0f : 0.5f;
  int64_t* __restrict base = scratch->base.data();
  float* __restrict cu = scratch->cu.data();
  float* __restrict cv = scratch->cv.data();
  for (int64_t x = begin; x < end; ++x) {
    const float fx = static_cast<float>(x);
    const float u = m[0] * fx + bu;
    const float v = m[3] * fx + bv;
    const float fu = std::floor(u + round), fv = std::floor(v + round);
    const int64_t iu =
        std::min(std::max(static_cast<int64_t>(fu), int64_t{0}), u_last);
    const int64_t iv =
        std::min(std::max(static_cast<int64_t>(fv), int64_t{0}), v_last);
    base[x] = iv * row_stride + iu * channels;
    cu[x] = u - fu;
    cv[x] = v - fv;
  }
  if (!p.bilinear) {
    for (int64_t x = begin; x < end; ++x) {
      const T* p00 = src + base[x];
      for (int64_t k = 0; k < channels; ++k) {
        out[x * channels + k] = static_cast<float>(p00[k]);
      }
    }
    return;
  }
  for (int64_t x = begin; x < end; ++x) {
    const T* p00 = src + base[x];
    const T* p10 = p00 + row_stride;
    const float wu = cu[x], wv = cv[x];
    for (int64_t k = 0; k < channels; ++k) {
      const float v00 = static_cast<float>(p00[k]);
      const float v01 = static_cast<float>(p00[channels + k]);
      const float v10 = static_cast<float>(p10[k]);
      const float v11 = static_cast<float>(p10[channels + k]);
      const float top = v00 + wu * (v01 - v00);
      const float bottom = v10 + wu * (v11 - v10);
      out[x * channels + k] = top + wv * (bottom - top);
    }
  }
}

template <typename T>
void InsideRow(const T* src, const float* m, float fy, int64_t begin,
               int64_t end, const Params& p, InsideScratch* scratch,
               float* out) {
  p.channels == 3
      ? InsideRowN<T, 3>(src, m, fy, begin, end, p, scratch, out)
      : InsideRowN<T, 0>(src, m, fy, begin, end, p, scratch, out);
}

// The taps of columns [begin, end) of any row, each through the fill mode.
inline void GeneralTaps(const float* m, float fy, bool affine, int64_t begin,
                        int64_t end, const Params& p, Tap* rows, Tap* cols) {
  for (int64_t x = begin; x < end; ++x) {
    const float fx = static_cast<float>(x);
    float u = m[0] * fx + m[1] * fy + m[2];
    float v = m[3] * fx + m[4] * fy + m[5];
    if (!affine) {
      const float w = m[6] * fx + m[7] * fy + m[8];
      u /= w;
      v /= w;
    }
    rows[x] = MakeTap(v, p.in_h, p.in_w * p.channels, p);
    cols[x] = MakeTap(u, p.in_w, p.channels, p);
  }
}

// The separable bilinear path (no rotation, shear or perspective: every
// output row reads the same two source rows): first the two rows blended
// into `tmp` over the source columns [begin, end) that the output reads,
// a contiguous loop the compiler vectorizes; then each output pixel blends
// two of those. The reference blends horizontally first; the two orders
// differ by float32 rounding only.
template <typename T>
void BlendRows(const T* src, const Tap& r, int64_t begin, int64_t end,
               const Params& p, float* tmp) {
  const T* __restrict a = src + r.i0;
  const T* __restrict b = src + r.i1;
  const float frac = r.frac;
  if (p.fill == Fill::kConstant && !(r.in0 && r.in1)) {
    for (int64_t j = begin; j < end; ++j) {
      const float va = r.in0 ? static_cast<float>(a[j]) : p.fill_value;
      const float vb = r.in1 ? static_cast<float>(b[j]) : p.fill_value;
      tmp[j] = va + frac * (vb - va);
    }
    return;
  }
  for (int64_t j = begin; j < end; ++j) {
    const float va = static_cast<float>(a[j]);
    tmp[j] = va + frac * (static_cast<float>(b[j]) - va);
  }
}

template <int kChannels, bool kConstant>
void BlendColumns(const float* tmp, const Tap* cols, const Params& p,
                  float* out) {
  const int64_t channels = kChannels > 0 ? kChannels : p.channels;
  const float fill = p.fill_value;
  for (int64_t x = 0; x < p.out_w; ++x) {
    const Tap& c = cols[x];
    const float* t0 = tmp + c.i0;
    const float* t1 = tmp + c.i1;
    float* o = out + x * channels;
    for (int64_t k = 0; k < channels; ++k) {
      const float a = (kConstant && !c.in0) ? fill : t0[k];
      const float b = (kConstant && !c.in1) ? fill : t1[k];
      o[k] = a + c.frac * (b - a);
    }
  }
}

template <typename T>
void SeparableBilinearRow(const T* src, const Tap& row, const Tap* cols,
                          int64_t begin, int64_t end, const Params& p,
                          float* tmp, float* out) {
  BlendRows(src, row, begin, end, p, tmp);
  const bool constant = p.fill == Fill::kConstant;
  if (p.channels == 3) {
    constant ? BlendColumns<3, true>(tmp, cols, p, out)
             : BlendColumns<3, false>(tmp, cols, p, out);
  } else {
    constant ? BlendColumns<0, true>(tmp, cols, p, out)
             : BlendColumns<0, false>(tmp, cols, p, out);
  }
}

// The color map of one image: out = A @ p + b, then the clip.
struct Color {
  float a[9];
  float b[3];
};

// `color` by value: a copy the stores to `row` cannot alias, so the
// coefficients stay in registers.
inline void ColorRow(const Color color, bool clip, float low, float high,
                     int64_t width, float* __restrict row) {
  const float* a = color.a;
  for (int64_t x = 0; x < width; ++x) {
    float* px = row + 3 * x;
    const float r = px[0], g = px[1], bl = px[2];
    for (int c = 0; c < 3; ++c) {
      float v = color.b[c] + r * a[3 * c] + g * a[3 * c + 1] +
                bl * a[3 * c + 2];
      if (clip) v = std::max(std::min(v, high), low);
      px[c] = v;
    }
  }
}

// T: the images' dtype (uint8 or float).
template <typename T>
class AffineResampleOp : public OpKernel {
 public:
  explicit AffineResampleOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string interpolation, fill_mode;
    std::vector<float> clip;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("height", &height_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("width", &width_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("interpolation", &interpolation));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("fill_mode", &fill_mode));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("fill_value", &fill_value_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("color", &color_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clip", &clip));
    OP_REQUIRES(ctx, height_ >= 1 && width_ >= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "height and width must be >= 1. Received: height=",
                    height_, ", width=", width_)));
    OP_REQUIRES(ctx, interpolation == "bilinear" || interpolation == "nearest",
                absl::InvalidArgumentError(absl::StrCat(
                    "interpolation must be 'bilinear' or 'nearest'. "
                    "Received: interpolation='",
                    interpolation, "'")));
    bilinear_ = interpolation == "bilinear";
    if (fill_mode == "reflect") {
      fill_ = Fill::kReflect;
    } else if (fill_mode == "wrap") {
      fill_ = Fill::kWrap;
    } else if (fill_mode == "nearest") {
      fill_ = Fill::kNearest;
    } else if (fill_mode == "constant") {
      fill_ = Fill::kConstant;
    } else {
      ctx->CtxFailure(absl::InvalidArgumentError(absl::StrCat(
          "fill_mode must be 'reflect', 'wrap', 'nearest' or 'constant'. "
          "Received: fill_mode='",
          fill_mode, "'")));
      return;
    }
    OP_REQUIRES(ctx, clip.empty() || (clip.size() == 2 && clip[0] <= clip[1]),
                absl::InvalidArgumentError(absl::StrCat(
                    "clip must be [] or [low, high] with low <= high. "
                    "Received: clip=[",
                    absl::StrJoin(clip, ", "), "]")));
    clip_ = !clip.empty();
    if (clip_) {
      low_ = clip[0];
      high_ = clip[1];
    }
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& images = ctx->input(0);
    const Tensor& matrices = ctx->input(1);
    OP_REQUIRES(ctx, images.dims() == 4,
                absl::InvalidArgumentError(absl::StrCat(
                    "images must be (batch, height, width, channels). "
                    "Received shape: ",
                    images.shape().DebugString())));
    const int64_t batch = images.dim_size(0);
    OP_REQUIRES(ctx,
                matrices.dims() == 3 && matrices.dim_size(0) == batch &&
                    matrices.dim_size(1) == 3 && matrices.dim_size(2) == 3,
                absl::InvalidArgumentError(absl::StrCat(
                    "matrices must be (batch, 3, 3) with batch=", batch,
                    ". Received shape: ", matrices.shape().DebugString())));
    Params p{images.dim_size(1), images.dim_size(2), images.dim_size(3),
             height_,           width_,             bilinear_,
             fill_,             fill_value_};
    OP_REQUIRES(ctx, batch == 0 || (p.in_h >= 1 && p.in_w >= 1),
                absl::InvalidArgumentError(absl::StrCat(
                    "images must have height and width >= 1. Received "
                    "shape: ",
                    images.shape().DebugString())));
    bool uses_mean = false;
    std::vector<Color> colors;
    if (color_) {
      OP_REQUIRES(ctx, p.channels == 3,
                  absl::InvalidArgumentError(absl::StrCat(
                      "a color map needs 3 channels. Received shape: ",
                      images.shape().DebugString())));
      const Tensor& a = ctx->input(2);
      const Tensor& b = ctx->input(3);
      const Tensor& w = ctx->input(4);
      const TensorShape square({batch, 3, 3}), vector({batch, 3});
      OP_REQUIRES(ctx,
                  a.shape() == square && b.shape() == vector &&
                      w.shape() == square,
                  absl::InvalidArgumentError(absl::StrCat(
                      "color_matrix, color_offset and mean_matrix must be (",
                      batch, ", 3, 3), (", batch, ", 3) and (", batch,
                      ", 3, 3). Received shapes: ", a.shape().DebugString(),
                      ", ", b.shape().DebugString(), ", ",
                      w.shape().DebugString())));
      const float* w_data = w.flat<float>().data();
      for (int64_t i = 0; i < w.NumElements(); ++i) {
        uses_mean |= w_data[i] != 0.0f;
      }
      colors.resize(batch);
      const float* a_data = a.flat<float>().data();
      const float* b_data = b.flat<float>().data();
      for (int64_t i = 0; i < batch; ++i) {
        std::copy(a_data + 9 * i, a_data + 9 * i + 9, colors[i].a);
        std::copy(b_data + 3 * i, b_data + 3 * i + 3, colors[i].b);
      }
    }
    TensorShape out_shape;
    OP_REQUIRES_OK(ctx, TensorShape::BuildTensorShape(
                            {batch, p.out_h, p.out_w, p.channels},
                            &out_shape));
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, out_shape, &output));
    if (output->NumElements() == 0) return;

    const float* m_data = matrices.flat<float>().data();
    const float* w_data = color_ ? ctx->input(4).flat<float>().data()
                                 : nullptr;
    float* out = output->flat<float>().data();
    const bool clip = clip_;
    const float low = low_, high = high_;
    const bool color = color_;
    const int64_t image_out = p.out_h * p.out_w * p.channels;
    const int64_t image_in = p.in_h * p.in_w * p.channels;

    auto work = [&](int64_t first, int64_t last) {
      std::vector<Tap> rows(p.out_w), cols(p.out_w);
      std::vector<float> tmp;
      InsideScratch scratch{std::vector<int64_t>(p.out_w),
                            std::vector<float>(p.out_w),
                            std::vector<float>(p.out_w)};
      int64_t begin = 0, end = 0;
      for (int64_t i = first; i < last; ++i) {
        const float* m = m_data + 9 * i;
        float* dst = out + i * image_out;
        const T* src = images.flat<T>().data() + i * image_in;
        const bool separable = m[1] == 0.0f && m[3] == 0.0f &&
                               m[6] == 0.0f && m[7] == 0.0f && m[8] == 1.0f;
        if (separable) {  // crops, resizes, flips: taps per column once
          begin = p.in_w * p.channels;
          end = 0;
          for (int64_t x = 0; x < p.out_w; ++x) {
            cols[x] = MakeTap(m[0] * static_cast<float>(x) + m[2], p.in_w,
                              p.channels, p);
            begin = std::min({begin, cols[x].i0, cols[x].i1});
            end = std::max({end, cols[x].i0 + p.channels,
                            cols[x].i1 + p.channels});
          }
          tmp.resize(p.in_w * p.channels);
        }
        double sums[3] = {0.0, 0.0, 0.0};
        for (int64_t y = 0; y < p.out_h; ++y) {
          const float fy = static_cast<float>(y);
          float* row = dst + y * p.out_w * p.channels;
          if (separable) {
            rows[0] = MakeTap(m[4] * fy + m[5], p.in_h,
                              p.in_w * p.channels, p);
            if (p.bilinear) {
              SeparableBilinearRow(src, rows[0], cols.data(), begin, end, p,
                                   tmp.data(), row);
            } else {
              SampleRows(src, rows.data(), 0, cols.data(), 0, p.out_w, p,
                         row);
            }
          } else {
            // The span whose samples are all inside is sampled straight
            // from the positions; the columns either side take the taps.
            const bool affine = m[6] == 0.0f && m[7] == 0.0f && m[8] == 1.0f;
            int64_t first = p.out_w, last = p.out_w - 1;
            if (affine) InsideSpan(m, fy, p, &first, &last);
            if (first > last) first = last = p.out_w;  // no such span
            GeneralTaps(m, fy, affine, 0, first, p, rows.data(), cols.data());
            SampleRows(src, rows.data(), 1, cols.data(), 0, first, p, row);
            if (first < p.out_w) {
              InsideRow(src, m, fy, first, last + 1, p, &scratch, row);
              GeneralTaps(m, fy, affine, last + 1, p.out_w, p, rows.data(),
                          cols.data());
              SampleRows(src, rows.data(), 1, cols.data(), last + 1, p.out_w,
                         p, row);
            }
          }
          if (!color) continue;
          if (uses_mean) {
            float s[3] = {0.0f, 0.0f, 0.0f};
            for (int64_t x = 0; x < p.out_w; ++x) {
              for (int c = 0; c < 3; ++c) s[c] += row[3 * x + c];
            }
            for (int c = 0; c < 3; ++c) sums[c] += s[c];
          } else {
            ColorRow(colors[i], clip, low, high, p.out_w, row);
          }
        }
        if (color && uses_mean) {
          Color c = colors[i];
          const double n = static_cast<double>(p.out_h * p.out_w);
          const float* w = w_data + 9 * i;
          for (int r = 0; r < 3; ++r) {
            for (int k = 0; k < 3; ++k) {
              c.b[r] += w[3 * r + k] * static_cast<float>(sums[k] / n);
            }
          }
          ColorRow(c, clip, low, high, p.out_h * p.out_w, dst);
        } else if (clip && !color) {
          for (int64_t k = 0; k < image_out; ++k) {
            dst[k] = std::max(std::min(dst[k], high), low);
          }
        }
      }
    };
    using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        batch, Scheduling::Fixed(1), work);
  }

 private:
  int64_t height_ = 0, width_ = 0;
  float fill_value_ = 0.0f;
  bool bilinear_ = true, color_ = false, clip_ = false;
  Fill fill_ = Fill::kReflect;
  float low_ = 0.0f, high_ = 0.0f;
};

}  // namespace

REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>AffineResample")
                            .Device(DEVICE_CPU)
                            .TypeConstraint<uint8_t>("T"),
                        AffineResampleOp<uint8_t>);
REGISTER_KERNEL_BUILDER(Name("KerasCnnPractice>AffineResample")
                            .Device(DEVICE_CPU)
                            .TypeConstraint<float>("T"),
                        AffineResampleOp<float>);

}  // namespace keras_cnnpractice
