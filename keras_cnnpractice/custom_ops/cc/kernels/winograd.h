// What the CPU and CUDA kernels of the Winograd ops share: the geometry of a
// call and the CUDA launchers.
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
// outputs) and m = 4 (alpha 6, 36 products for 16 outputs) are supported.
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

namespace keras_cnnpractice {

struct WinogradGeometry {
  int64_t batch, in_h, in_w, in_channels, out_channels;
  int64_t out_h, out_w;
  int64_t pad_top, pad_left;
  int64_t tile;               // m: 2 or 4
  int64_t tiles_h, tiles_w;   // ceil(out_h / m), ceil(out_w / m)
};

// CUDA launchers (winograd_conv2d_op.cu.cc), asynchronous on `stream` (a
// cudaStream_t); each returns the cudaError_t of its launches, 0 on
// success.
//
// U = the transformed filter of `filter` ([3, 3, in, out] -> [alpha, alpha,
// in, out]) for tile m.
int LaunchWinogradFilterTransformGpu(int64_t tile, const float* filter,
                                     float* transformed, int64_t in_channels,
                                     int64_t out_channels, void* stream);
// out = the convolution of x with the filter whose transform is `u`, over
// the geometry `g`. `workspace` must hold WinogradGpuWorkspaceFloats(g)
// floats.
int64_t WinogradGpuWorkspaceFloats(const WinogradGeometry& g);
int LaunchWinogradConv2DGpu(const float* x, const float* u, float* out,
                            float* workspace, const WinogradGeometry& g,
                            void* stream);

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_WINOGRAD_H_
