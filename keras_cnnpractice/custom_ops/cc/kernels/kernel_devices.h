// What the CPU and GPU kernel classes of the op library share: the device
// tags their functors are specialized on, the CUDA stream of a GPU kernel
// call, and the dtype codes the TensorFlow-free CUDA launchers take.
#ifndef KERAS_CNNPRACTICE_KERNELS_KERNEL_DEVICES_H_
#define KERAS_CNNPRACTICE_KERNELS_KERNEL_DEVICES_H_

#include "tensorflow/core/framework/op_kernel.h"
#if GOOGLE_CUDA
#include "xla/stream_executor/stream.h"
#endif

namespace keras_cnnpractice {

struct CpuDevice {};

#if GOOGLE_CUDA
struct GpuDevice {};

// The cudaStream_t the kernel call must launch on.
inline void* GpuStream(::tensorflow::OpKernelContext* ctx) {
  return ctx->op_device_context()->stream()->platform_specific_handle().stream;
}

// Floating-point dtype codes of the CUDA launchers: float 0, half 1,
// bfloat16 2.
template <typename T>
constexpr int kDtypeCode = -1;
template <>
constexpr int kDtypeCode<float> = 0;
template <>
constexpr int kDtypeCode<Eigen::half> = 1;
template <>
constexpr int kDtypeCode<Eigen::bfloat16> = 2;
#endif  // GOOGLE_CUDA

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_KERNEL_DEVICES_H_
