// What the CPU and CUDA kernels of the Winograd ops share: the geometry of a
// call, the transforms (host and device code) and the CUDA launchers.
//
// Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", CVPR 2016) computes an
// m x m output tile of a stride-1 3x3 correlation from an alpha x alpha input
// tile d (alpha = m + 2) as
//     Y = A^T [ sum over input channels of (G g G^T) .* (B^T d B) ] A,
// i.e. alpha^2 elementwise products per tile and channel pair instead of
// 9 m^2. Summed over channels, the products become alpha^2 independent
// matrix products [tiles x in] x [in x out], one per position xi of the
// alpha x alpha transform domain. m = 2 (alpha 4, 16 products for 4
// outputs), m = 4 (alpha 6, 36 products for 16 outputs) and m = 6 (alpha 8,
// 64 products for 36 outputs: 5.06x fewer than direct) are supported.
//
// Layouts: input NHWC; filter [3, 3, in, out]; transformed filter
// U[i][j][c][k] = (G g_ck G^T)[i][j], i.e. [alpha, alpha, in, out]; output
// NHWC. Output tile (ty, tx) of image n covers output rows ty*m .. ty*m+m-1
// and columns tx*m .. tx*m+m-1 (cropped at the edges), and reads input rows
// ty*m - pad_top .. + alpha - 1 (zero outside the image), likewise columns.
//
// This header must stay free of TensorFlow includes: the CUDA file that uses
// it is also built on its own by the standalone GPU harness (tests/gpu/).
#ifndef KERAS_CNNPRACTICE_KERNELS_WINOGRAD_H_
#define KERAS_CNNPRACTICE_KERNELS_WINOGRAD_H_

#include <cstdint>

#ifndef KCP_HOST_DEVICE
#if defined(__CUDACC__)
#define KCP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define KCP_HOST_DEVICE inline
#endif
#endif

namespace keras_cnnpractice {

struct WinogradGeometry {
  int64_t batch, in_h, in_w, in_channels, out_channels;
  int64_t out_h, out_w;
  int64_t pad_top, pad_left;
  int64_t tile;               // m: 2, 4 or 6
  int64_t tiles_h, tiles_w;   // ceil(out_h / m), ceil(out_w / m)
};

// ---------------------------------------------------------------------------
// The one-dimensional transforms (Lavin & Gray 2016, section 4.1 and 4.2),
// written out so that no multiplication by 0 or 1 is left to the compiler
// (which may not drop them: 0 * inf is NaN).

template <int kTile>
struct Transform;

// F(2, 3): interpolation points 0, 1, -1 and infinity.
template <>
struct Transform<2> {
  static constexpr int kAlpha = 4;
  // r = B^T d, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
  template <typename T>
  KCP_HOST_DEVICE static void Input(const T (&d)[4], T (&r)[4]) {
    r[0] = d[0] - d[2];
    r[1] = d[1] + d[2];
    r[2] = d[2] - d[1];
    r[3] = d[1] - d[3];
  }
  // r = G g, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
  template <typename T>
  KCP_HOST_DEVICE static void Filter(const T (&g)[3], T (&r)[4]) {
    const T even = g[0] + g[2];
    r[0] = g[0];
    r[1] = 0.5f * (even + g[1]);
    r[2] = 0.5f * (even - g[1]);
    r[3] = g[2];
  }
  // y = A^T m, A^T = [1 1 1 0; 0 1 -1 -1].
  template <typename T>
  KCP_HOST_DEVICE static void Output(const T (&m)[4], T (&y)[2]) {
    y[0] = m[0] + m[1] + m[2];
    y[1] = m[1] - m[2] - m[3];
  }
};

// F(4, 3): interpolation points 0, 1, -1, 2, -2 and infinity.
template <>
struct Transform<4> {
  static constexpr int kAlpha = 6;
  // r = B^T d, B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
  //                   0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
  template <typename T>
  KCP_HOST_DEVICE static void Input(const T (&d)[6], T (&r)[6]) {
    const T a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
    const T c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
    r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    r[1] = a + b;
    r[2] = a - b;
    r[3] = c + e;
    r[4] = c - e;
    r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
  }
  // r = G g, G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
  //               1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
  template <typename T>
  KCP_HOST_DEVICE static void Filter(const T (&g)[3], T (&r)[6]) {
    const T even = g[0] + g[2], quad = g[0] + 4.0f * g[2];
    r[0] = 0.25f * g[0];
    r[1] = (-1.0f / 6.0f) * (even + g[1]);
    r[2] = (-1.0f / 6.0f) * (even - g[1]);
    r[3] = (1.0f / 24.0f) * (quad + 2.0f * g[1]);
    r[4] = (1.0f / 24.0f) * (quad - 2.0f * g[1]);
    r[5] = g[2];
  }
  // y = A^T m, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
  //                   0 1 -1 8 -8 1].
  template <typename T>
  KCP_HOST_DEVICE static void Output(const T (&m)[6], T (&y)[4]) {
    const T s1 = m[1] + m[2], d1 = m[1] - m[2];
    const T s2 = m[3] + m[4], d2 = m[3] - m[4];
    y[0] = m[0] + s1 + s2;
    y[1] = d1 + 2.0f * d2;
    y[2] = s1 + 4.0f * s2;
    y[3] = d1 + 8.0f * d2 + m[5];
  }
};

// F(6, 3): interpolation points 0, 1, -1, 1/2, -1/2, 2, -2 and infinity
// (the choice of Lavin & Gray's F(6x6, 3x3) and NNPACK's): the entries of
// B^T reach 21/4, those of A^T 32, those of G 1/90, so rounding errors grow
// further (see winograd.py for the measured bound).
template <>
struct Transform<6> {
  static constexpr int kAlpha = 8;
  // r = B^T d, B^T = [1 0 -21/4 0 21/4 0 -1 0; 0 1 1 -17/4 -17/4 1 1 0;
  //   0 -1 1 17/4 -17/4 -1 1 0; 0 1/2 1/4 -5/2 -5/4 2 1 0;
  //   0 -1/2 1/4 5/2 -5/4 -2 1 0; 0 2 4 -5/2 -5 1/2 1 0;
  //   0 -2 4 5/2 -5 -1/2 1 0; 0 -1 0 21/4 0 -21/4 0 1].
  template <typename T>
  KCP_HOST_DEVICE static void Input(const T (&d)[8], T (&r)[8]) {
    r[0] = (d[0] - d[6]) + 5.25f * (d[4] - d[2]);
    r[7] = (d[7] - d[1]) + 5.25f * (d[3] - d[5]);
    T even = (d[2] + d[6]) - 4.25f * d[4];
    T odd = (d[1] + d[5]) - 4.25f * d[3];
    r[1] = even + odd;
    r[2] = even - odd;
    even = (d[6] + 0.25f * d[2]) - 1.25f * d[4];
    odd = (0.5f * d[1] - 2.5f * d[3]) + 2.0f * d[5];
    r[3] = even + odd;
    r[4] = even - odd;
    even = (d[6] + 4.0f * d[2]) - 5.0f * d[4];
    odd = (2.0f * d[1] - 2.5f * d[3]) + 0.5f * d[5];
    r[5] = even + odd;
    r[6] = even - odd;
  }
  // r = G g, G = [1 0 0; -2/9 -2/9 -2/9; -2/9 2/9 -2/9;
  //   1/90 1/45 2/45; 1/90 -1/45 2/45; 32/45 16/45 8/45;
  //   32/45 -16/45 8/45; 0 0 1].
  template <typename T>
  KCP_HOST_DEVICE static void Filter(const T (&g)[3], T (&r)[8]) {
    const T even = g[0] + g[2];
    const T small = g[0] + 4.0f * g[2], large = 4.0f * g[0] + g[2];
    r[0] = g[0];
    r[1] = (-2.0f / 9.0f) * (even + g[1]);
    r[2] = (-2.0f / 9.0f) * (even - g[1]);
    r[3] = (1.0f / 90.0f) * (small + 2.0f * g[1]);
    r[4] = (1.0f / 90.0f) * (small - 2.0f * g[1]);
    r[5] = (8.0f / 45.0f) * (large + 2.0f * g[1]);
    r[6] = (8.0f / 45.0f) * (large - 2.0f * g[1]);
    r[7] = g[2];
  }
  // y = A^T m, A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 0;
  //   0 1 1 4 4 1/4 1/4 0; 0 1 -1 8 -8 1/8 -1/8 0;
  //   0 1 1 16 16 1/16 1/16 0; 0 1 -1 32 -32 1/32 -1/32 1].
  template <typename T>
  KCP_HOST_DEVICE static void Output(const T (&m)[8], T (&y)[6]) {
    const T s1 = m[1] + m[2], d1 = m[1] - m[2];
    const T s2 = m[3] + m[4], d2 = m[3] - m[4];
    const T s3 = m[5] + m[6], d3 = m[5] - m[6];
    y[0] = m[0] + s1 + s2 + s3;
    y[1] = d1 + 2.0f * d2 + 0.5f * d3;
    y[2] = s1 + 4.0f * s2 + 0.25f * s3;
    y[3] = d1 + 8.0f * d2 + 0.125f * d3;
    y[4] = s1 + 16.0f * s2 + 0.0625f * s3;
    y[5] = d1 + 32.0f * d2 + 0.03125f * d3 + m[7];
  }
};

// The one-dimensional transforms as rules for Apply2D: kIn -> kOut values.
template <int kTile>
struct InputRule {
  static constexpr int kIn = kTile + 2, kOut = kTile + 2;
  template <typename T>
  KCP_HOST_DEVICE static void Apply(const T (&in)[kIn], T (&out)[kOut]) {
    Transform<kTile>::Input(in, out);
  }
};

template <int kTile>
struct FilterRule {
  static constexpr int kIn = 3, kOut = kTile + 2;
  template <typename T>
  KCP_HOST_DEVICE static void Apply(const T (&in)[kIn], T (&out)[kOut]) {
    Transform<kTile>::Filter(in, out);
  }
};

template <int kTile>
struct OutputRule {
  static constexpr int kIn = kTile + 2, kOut = kTile;
  template <typename T>
  KCP_HOST_DEVICE static void Apply(const T (&in)[kIn], T (&out)[kOut]) {
    Transform<kTile>::Output(in, out);
  }
};

// y = M x M^T for the one-dimensional transform x -> M x of `Rule`: the
// rule is applied to the columns of x, then to the rows of the result.
template <typename Rule, typename T>
KCP_HOST_DEVICE void Apply2D(const T (&x)[Rule::kIn][Rule::kIn],
                             T (&y)[Rule::kOut][Rule::kOut]) {
  T tmp[Rule::kOut][Rule::kIn];
  for (int j = 0; j < Rule::kIn; ++j) {
    T col[Rule::kIn], r[Rule::kOut];
    for (int i = 0; i < Rule::kIn; ++i) col[i] = x[i][j];
    Rule::Apply(col, r);
    for (int i = 0; i < Rule::kOut; ++i) tmp[i][j] = r[i];
  }
  for (int i = 0; i < Rule::kOut; ++i) Rule::Apply(tmp[i], y[i]);
}

// CUDA launchers (winograd.cu.cc), asynchronous on `stream` (a
// cudaStream_t); each returns the cudaError_t of its launches, 0 on
// success.
//
// transformed = the transform of `filter` ([3, 3, in, out] -> [alpha,
// alpha, in, out]) for tile m.
int LaunchWinogradFilterTransformGpu(int64_t tile, const float* filter,
                                     float* transformed, int64_t in_channels,
                                     int64_t out_channels, void* stream);
// Floats of the workspace LaunchWinogradConv2DGpu needs: the transformed
// tiles and their products, alpha^2 x tiles x (in + out).
int64_t WinogradGpuWorkspaceFloats(const WinogradGeometry& g);
// out = the convolution of x with the filter whose transform is `u`, over
// the geometry `g`.
int LaunchWinogradConv2DGpu(const float* x, const float* u, float* out,
                            float* workspace, const WinogradGeometry& g,
                            void* stream);

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_WINOGRAD_H_
