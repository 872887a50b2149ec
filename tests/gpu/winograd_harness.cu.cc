// Standalone harness around the Winograd CUDA kernels: no TensorFlow, so it
// builds with nvcc alone on a GPU machine that lacks TensorFlow and is
// driven from Python (ctypes + CuPy or PyTorch device pointers) in
// test_winograd_gpu.py and time_winograd.py. Each wrapper launches on the
// default stream; the checks ask it to wait for the kernels, so the status
// covers their execution too, and the timings do not (a synchronization per
// call would be timed with the kernels).
#include <cuda_runtime.h>

#include <cstdint>

#include "winograd.h"

namespace {

int Synchronized(int launch_status, int synchronize = 1) {
  if (launch_status != 0 || !synchronize) return launch_status;
  return static_cast<int>(cudaDeviceSynchronize());
}

// `f` holds the 12 fields of WinogradGeometry in declaration order.
keras_cnnpractice::WinogradGeometry Geometry(const int64_t* f) {
  return {f[0], f[1], f[2], f[3], f[4], f[5],
          f[6], f[7], f[8], f[9], f[10], f[11]};
}

}  // namespace

extern "C" int kcp_winograd_filter_transform(long long tile,
                                             const float* filter, float* u,
                                             long long in_channels,
                                             long long out_channels) {
  return Synchronized(keras_cnnpractice::LaunchWinogradFilterTransformGpu(
      tile, filter, u, in_channels, out_channels, nullptr));
}

extern "C" long long kcp_winograd_workspace_floats(const int64_t* geometry) {
  return keras_cnnpractice::WinogradGpuWorkspaceFloats(Geometry(geometry));
}

extern "C" int kcp_winograd_conv2d(const float* x, const float* u,
                                   float* out, float* workspace,
                                   const int64_t* geometry, int synchronize) {
  return Synchronized(keras_cnnpractice::LaunchWinogradConv2DGpu(
                          x, u, out, workspace, Geometry(geometry), nullptr),
                      synchronize);
}
