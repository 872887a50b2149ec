// What the Im2colConv2D kernels (forward, input gradient, filter gradient)
// share: the convolution's geometry, the lowering of output pixels' input
// patches into rows of a column matrix (im2col) and its adjoint, the
// scatter-add of column rows back onto the input (col2im), the choice of
// block sizes, and per-worker scratch buffers. The GEMMs are packed_gemm.h's.
//
// Column layout: the column row of output pixel p = (n, oh, ow) holds its
// input patch in (kh, kw, in_c) order, i.e. Depth() = kernel_h * kernel_w *
// in_c floats, zeros where the patch reaches into the padding. That is the
// row order of an HWIO filter seen as a [Depth(), out_c] row-major matrix,
// so a block of `rows` column rows times the filter is the block's
// [rows, out_c] slice of the NHWC output.
//
// Memory: each worker lowers one block of rows at a time into its own
// buffer of at most block_bytes (default kIm2colDefaultBlockBytes), so the
// column matrix is never materialized whole; a block always holds at least
// one pixel's row (and, for the input gradient, at least the output rows
// that keep alternate blocks apart, see Col2imBlockRows).
#ifndef KERAS_CNNPRACTICE_KERNELS_IM2COL_H_
#define KERAS_CNNPRACTICE_KERNELS_IM2COL_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace keras_cnnpractice {

// Default budget of one worker's column buffer: 4 MiB (about 900 rows of a
// 3x3x128 patch).
constexpr int64_t kIm2colDefaultBlockBytes = int64_t{4} << 20;

struct Im2colGeometry {
  int64_t batch, in_h, in_w, in_c;
  int64_t kernel_h, kernel_w, out_c;
  int64_t out_h, out_w;
  int64_t stride_h, stride_w, dilation_h, dilation_w;
  int64_t pad_top, pad_left;

  // Length of a column row: one patch.
  int64_t Depth() const { return kernel_h * kernel_w * in_c; }
  int64_t Pixels() const { return batch * out_h * out_w; }
  // A 1x1 kernel at stride 1 without padding reads each input pixel as its
  // own patch: the input, seen as [Pixels(), in_c], is the column matrix.
  bool InputIsColumns() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 &&
           pad_top == 0 && pad_left == 0;
  }
};

// Calls run(col, in, len) for the runs that make up the column row of
// output pixel p: `len` floats at offset `col` of the row come from offset
// `in` of the NHWC input, or are padding where `in` is -1. The runs cover
// the row exactly once, in order; with dilation_w 1 a kernel row that lies
// inside the image is one run.
template <typename Run>
inline void ForEachPatchRun(const Im2colGeometry& g, int64_t p, Run run) {
  const int64_t c = g.in_c, kwc = g.kernel_w * c;
  const int64_t ow = p % g.out_w, oh = (p / g.out_w) % g.out_h;
  const int64_t n = p / (g.out_w * g.out_h);
  const int64_t iw0 = ow * g.stride_w - g.pad_left;
  const bool whole_rows =
      g.dilation_w == 1 && iw0 >= 0 && iw0 + g.kernel_w <= g.in_w;
  int64_t col = 0;
  for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
    const int64_t ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
    if (ih < 0 || ih >= g.in_h) {
      run(col, int64_t{-1}, kwc);
      col += kwc;
      continue;
    }
    const int64_t image_row = (n * g.in_h + ih) * g.in_w;
    if (whole_rows) {
      run(col, (image_row + iw0) * c, kwc);
      col += kwc;
      continue;
    }
    for (int64_t kw = 0; kw < g.kernel_w; ++kw, col += c) {
      const int64_t iw = iw0 + kw * g.dilation_w;
      run(col, iw < 0 || iw >= g.in_w ? int64_t{-1} : (image_row + iw) * c, c);
    }
  }
}

// im2col: writes the column rows of output pixels [p0, p0 + rows) into
// `cols` ([rows, Depth()] row-major).
inline void Im2colRows(const float* x, const Im2colGeometry& g, int64_t p0,
                       int64_t rows, float* cols) {
  const int64_t depth = g.Depth();
  for (int64_t r = 0; r < rows; ++r) {
    float* row = cols + r * depth;
    ForEachPatchRun(g, p0 + r, [&](int64_t col, int64_t in, int64_t len) {
      if (in < 0) {
        std::memset(row + col, 0, len * sizeof(float));
      } else {
        std::memcpy(row + col, x + in, len * sizeof(float));
      }
    });
  }
}

// col2im, the adjoint of Im2colRows: adds column rows [p0, p0 + rows) of
// `cols` onto the input positions they were read from (padding dropped).
// Overlapping patches add up; callers keep concurrent blocks apart.
inline void Col2imRows(const float* cols, const Im2colGeometry& g, int64_t p0,
                       int64_t rows, float* dx) {
  const int64_t depth = g.Depth();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = cols + r * depth;
    ForEachPatchRun(g, p0 + r, [&](int64_t col, int64_t in, int64_t len) {
      if (in < 0) return;
      float* dst = dx + in;
      const float* src = row + col;
      for (int64_t i = 0; i < len; ++i) dst[i] += src[i];
    });
  }
}

// Rows (output pixels) per block of the forward pass and the filter
// gradient: at most what `block_bytes` holds (and at least one), in a
// number of equal blocks that is a multiple of `workers`, so that each
// worker has the same work (7 blocks of 227 rows on 2 workers left one idle
// an eighth of the time).
inline int64_t BlockRows(const Im2colGeometry& g, int64_t block_bytes,
                         int workers) {
  const int64_t row_bytes = std::max<int64_t>(g.Depth(), 1) * sizeof(float);
  const int64_t most = std::max<int64_t>(1, block_bytes / row_bytes);
  const int64_t pixels = std::max<int64_t>(g.Pixels(), 1);
  const int64_t rounds = (pixels + most * workers - 1) / (most * workers);
  const int64_t blocks = std::min(pixels, rounds * workers);
  return (pixels + blocks - 1) / blocks;
}

// Output rows (of one image) per block of the input gradient. Block b of
// an image scatters onto input rows [b * k * s - pad, ((b + 1) * k - 1) * s
// - pad + extent); blocks b and b + 2 stay apart when the block between
// them spans k * s >= extent - s input rows, so the even blocks can run
// concurrently, then the odd ones (blocks of different images never
// overlap). k is therefore at least ceil((extent - s) / s) =
// floor((extent - 1) / s), and otherwise what `block_bytes` holds, limited
// so that each of the two phases has a block for each of `workers`.
inline int64_t Col2imBlockRows(const Im2colGeometry& g, int64_t block_bytes,
                               int workers) {
  const int64_t extent = (g.kernel_h - 1) * g.dilation_h + 1;
  const int64_t apart = std::max<int64_t>(1, (extent - 1) / g.stride_h);
  const int64_t row_bytes =
      std::max<int64_t>(g.out_w * g.Depth(), 1) * sizeof(float);
  const int64_t budget = std::max<int64_t>(1, block_bytes / row_bytes);
  const int64_t share =
      g.batch >= workers
          ? g.out_h
          : (g.out_h * g.batch + 2 * workers - 1) / (2 * workers);
  return std::min(g.out_h, std::max(apart, std::min(budget, share)));
}

// Shifted windows (an implicit im2col): at stride 1, where in_c is a
// multiple of the GEMM's depth block, each depth block of a column row is
// consecutive channels of one input pixel, and the same depth block of the
// next output pixel's row lies one pixel (in_c floats) further on in the
// input zero-padded to PaddedH() x PaddedW(). The GEMM then reads A from
// the padded input in place and no column row is written. It computes the
// output over the padded width: "virtual row" v = (n * PaddedH() + oh) *
// PaddedW() + ow for ow < PaddedW(), whose rows with ow >= out_w are
// computed and dropped ((kernel_w - 1) * dilation_w of every PaddedW()).
// ShiftWindows says where the forward pass does so.
inline int64_t PaddedH(const Im2colGeometry& g) {
  return g.out_h + (g.kernel_h - 1) * g.dilation_h;
}
inline int64_t PaddedW(const Im2colGeometry& g) {
  return g.out_w + (g.kernel_w - 1) * g.dilation_w;
}

// What writing and reading back one float of a column row costs, in
// multiply-adds of the GEMM: shifted windows save that for each of a row's
// out_c multiply-adds per float, and spend (PaddedW() - out_w) / out_w more
// GEMM rows. Intel Xeon (AVX-512), 2 cores, explicit / shifted time: 1.14
// (3x3 224x224x64), 1.05 (56x56x256), 0.98 (28x28x512), 0.88 (14x14x512),
// 1.18 (11x11 56x56x64 batch 8), 1.35 (5x5): the crossover lies at 10-26
// multiply-adds per float.
constexpr int64_t kColumnFloatCostMacs = 16;

// Where the forward pass reads its rows by shifted windows.
inline bool ShiftWindows(const Im2colGeometry& g, int64_t depth_block) {
  return g.stride_h == 1 && g.stride_w == 1 && g.in_c > 0 &&
         g.in_c % depth_block == 0 && !g.InputIsColumns() &&
         (PaddedW(g) - g.out_w) * g.out_c < kColumnFloatCostMacs * g.out_w;
}
// True where the input is its own padded image (VALID, stride 1).
inline bool InputIsPadded(const Im2colGeometry& g) {
  return g.pad_top == 0 && g.pad_left == 0 && PaddedH(g) == g.in_h &&
         PaddedW(g) == g.in_w;
}

// Floats from virtual row v's pixel in the padded input to element p of
// v's column row.
inline int64_t ShiftedOffset(const Im2colGeometry& g, int64_t p) {
  const int64_t tap = p / g.in_c;
  const int64_t kh = tap / g.kernel_w, kw = tap % g.kernel_w;
  return (kh * g.dilation_h * PaddedW(g) + kw * g.dilation_w) * g.in_c +
         p % g.in_c;
}

// Writes rows [first, last) of the zero-padded input (row r = n *
// PaddedH() + padded row), PaddedW() * in_c floats each, into `padded`.
inline void PadInputRows(const float* x, const Im2colGeometry& g,
                         int64_t first, int64_t last, float* padded) {
  const int64_t c = g.in_c, ph = PaddedH(g), pw = PaddedW(g);
  const int64_t left = std::min(g.pad_left, pw);
  const int64_t width = std::max<int64_t>(0, std::min(g.in_w, pw - left));
  for (int64_t r = first; r < last; ++r) {
    float* dst = padded + r * pw * c;
    const int64_t n = r / ph, ih = r % ph - g.pad_top;
    if (ih < 0 || ih >= g.in_h) {
      std::fill_n(dst, pw * c, 0.0f);
      continue;
    }
    std::fill_n(dst, left * c, 0.0f);
    std::memcpy(dst + left * c, x + (n * g.in_h + ih) * g.in_w * c,
                width * c * sizeof(float));
    std::fill(dst + (left + width) * c, dst + pw * c, 0.0f);
  }
}

// Output rows (of all images, oh + n * out_h) per unit of the shifted
// forward pass: units of at least `min_virtual` virtual rows where the
// output has them (each unit streams the packed filter once per
// `min_virtual` rows), at most four per worker, and a multiple of the
// workers in number where there are more units than workers.
inline int64_t ShiftedUnitRows(const Im2colGeometry& g, int64_t min_virtual,
                               int workers) {
  const int64_t rows = std::max<int64_t>(g.batch * g.out_h, 1);
  const int64_t least = (min_virtual + PaddedW(g) - 1) / PaddedW(g);
  int64_t units = std::max<int64_t>(
      1, std::min<int64_t>(4 * workers, rows / std::max<int64_t>(least, 1)));
  if (units > workers) units -= units % workers;
  return (rows + units - 1) / units;
}

// One lazily allocated scratch buffer of `size` floats per thread-pool
// worker id (0 .. NumThreads(), the calling thread included), as
// ParallelForWithWorkerId hands them out; each id is used by one thread at
// a time. Buffers are zero-filled on allocation when `zeroed`.
class WorkerBuffers {
 public:
  WorkerBuffers(int workers, int64_t size, bool zeroed)
      : buffers_(workers + 1), size_(size), zeroed_(zeroed) {}

  float* Get(int id) {
    auto& buffer = buffers_[id];
    if (!buffer) {
      buffer.reset(new float[size_]);
      if (zeroed_) std::fill_n(buffer.get(), size_, 0.0f);
    }
    return buffer.get();
  }

  // The buffers that were allocated.
  std::vector<const float*> Used() const {
    std::vector<const float*> used;
    for (const auto& buffer : buffers_) {
      if (buffer) used.push_back(buffer.get());
    }
    return used;
  }

 private:
  std::vector<std::unique_ptr<float[]>> buffers_;
  int64_t size_;
  bool zeroed_;
};

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_IM2COL_H_
