// Shared definitions for the Bitpack / XnorMatmul / XnorConv2D kernels.
//
// Bit layout (the contract of every kernel, CPU and CUDA): bit j (least
// significant first) of word w of a packed row holds element
// w * word_bits + j of the original row; the bit is 1 where the value is
// negative or NaN (sign -1, i.e. !(x >= 0)), 0 where it is >= 0 (sign +1,
// as `ste_sign` maps 0 to +1). Bits past the row's real length are 0 in
// every packed tensor, so they XOR to 0 and never count as a mismatch.
// A product of +-1 vectors of length d is then d - 2 * popcount(a ^ b).
//
// This header must stay free of TensorFlow includes: the CUDA file that uses
// it is also built on its own by the standalone GPU harness (tests/gpu/).
#ifndef KERAS_CNNPRACTICE_KERNELS_XNOR_H_
#define KERAS_CNNPRACTICE_KERNELS_XNOR_H_

#include <cstdint>

namespace keras_cnnpractice {

// Geometry of one XnorConv2D call. The input is NHWC with `words` packed
// words per pixel (holding `channels` real channels); the filter is packed
// as [out_channels, kernel_h, kernel_w, words]; the output is float NHWC.
// Taps that fall in the padding contribute 0, as zero padding does to a
// float convolution of the unpacked +-1 values.
struct XnorConvGeometry {
  int64_t batch, in_h, in_w;
  int64_t words;     // packed words per pixel (input and filter alike)
  int64_t channels;  // real input channels, <= words * word_bits
  int64_t kernel_h, kernel_w, out_channels;
  int64_t out_h, out_w;
  int64_t stride_h, stride_w, dilation_h, dilation_w;
  int64_t pad_top, pad_left;
};

// CUDA launchers (xnor.cu.cc), asynchronous on `stream` (a cudaStream_t);
// each returns the cudaError_t of the launch, 0 on success. `word_bits` is
// 32 (int32 words) or 64 (int64 words).
//
// Bitpack: x is [outer, depth] of float (dtype_code 0), half (1) or
// bfloat16 (2); out is [outer, ceil(depth / word_bits)] words.
int LaunchBitpackGpu(int dtype_code, int word_bits, const void* x, void* out,
                     int64_t outer, int64_t depth, void* stream);
// XnorMatmul: a is [m, words], b is [n, words] (both packed along the depth
// axis, `depth` real bits); out[i, j] = depth - 2 * popcount(a_i ^ b_j).
// Runs on the binary tensor cores: on a GPU older than sm_80 it returns
// cudaErrorInvalidDeviceFunction.
int LaunchXnorMatmulGpu(int word_bits, const void* a, const void* b,
                        float* out, int64_t m, int64_t n, int64_t words,
                        int64_t depth, void* stream);
// XnorConv2D over the geometry above; out is [batch, out_h, out_w,
// out_channels] float.
int LaunchXnorConv2DGpu(int word_bits, const void* x, const void* filter,
                        float* out, const XnorConvGeometry& g, void* stream);

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_XNOR_H_
