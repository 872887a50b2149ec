// CPU kernel of KerasCnnPractice>ReadPackedRecords: one preadv per record,
// scattering its label and pixels into the two outputs, records spread over
// the CPU device's threads. Shard files are opened on first use and kept
// open for the kernel's lifetime. A read that comes back short (a shard
// truncated after the pack was opened) fails the op naming the shard; no byte
// from past a file's end is ever returned.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/threadpool.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "packed labels are little-endian int32, read in place");

namespace keras_cnnpractice {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

constexpr int64_t kLabelBytes = 4;

class ReadPackedRecordsOp : public OpKernel {
 public:
  explicit ReadPackedRecordsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::vector<int64_t> counts, shape;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("paths", &paths_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("counts", &counts));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("shape", &shape));
    OP_REQUIRES(ctx, counts.size() == paths_.size(),
                absl::InvalidArgumentError(absl::StrCat(
                    "counts must give one count per path. Received: ",
                    paths_.size(), " paths and ", counts.size(), " counts")));
    OP_REQUIRES(ctx, shape.size() == 3,
                absl::InvalidArgumentError(absl::StrCat(
                    "shape must be (height, width, channels). Received: ",
                    shape.size(), " values")));
    pixels_ = 1;
    for (int64_t d : shape) {
      OP_REQUIRES(ctx, d > 0,
                  absl::InvalidArgumentError(absl::StrCat(
                      "shape values must be positive. Received: ", d)));
      pixels_ *= d;
      image_shape_.AddDim(d);
    }
    starts_.push_back(0);
    for (int64_t n : counts) {
      OP_REQUIRES(ctx, n >= 0,
                  absl::InvalidArgumentError(absl::StrCat(
                      "counts must be >= 0. Received: ", n)));
      starts_.push_back(starts_.back() + n);
    }
    fds_.assign(paths_.size(), -1);
  }

  ~ReadPackedRecordsOp() override {
    for (int fd : fds_) {
      if (fd >= 0) close(fd);
    }
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& index_t = ctx->input(0);
    OP_REQUIRES(ctx, index_t.dims() == 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "index must be a vector. Received shape ",
                    index_t.shape().DebugString())));
    const int64_t n = index_t.dim_size(0);
    const auto index = index_t.vec<int64_t>();
    const int64_t total = starts_.back();
    std::vector<int> shard_of(n);
    for (int64_t i = 0; i < n; ++i) {
      OP_REQUIRES(ctx, index(i) >= 0 && index(i) < total,
                  absl::InvalidArgumentError(absl::StrCat(
                      "Record numbers must be in [0, ", total,
                      "). Received: ", index(i))));
      shard_of[i] = static_cast<int>(
          std::upper_bound(starts_.begin(), starts_.end(), index(i)) -
          starts_.begin() - 1);
      OP_REQUIRES_OK(ctx, OpenShard(shard_of[i]));
    }
    TensorShape images_shape({n});
    images_shape.AppendShape(image_shape_);
    Tensor* images = nullptr;
    Tensor* labels = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images_shape, &images));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({n}), &labels));
    uint8_t* pixels = images->flat<uint8_t>().data();
    int32_t* label_out = labels->flat<int32_t>().data();
    const int64_t record = kLabelBytes + pixels_;

    std::mutex error_mu;
    absl::Status error;
    auto work = [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int shard = shard_of[i];
        const off_t offset = (index(i) - starts_[shard]) * record;
        absl::Status status = ReadRecord(
            shard, offset, record, label_out + i, pixels + i * pixels_);
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.ok()) error = status;
        }
      }
    };
    // Cost in cycles: a system call, then a copy of the record.
    using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        n, Scheduling::Adaptive(10000 + record), work);
    OP_REQUIRES_OK(ctx, error);
  }

 private:
  absl::Status OpenShard(int shard) {
    std::lock_guard<std::mutex> lock(fds_mu_);
    if (fds_[shard] >= 0) return absl::OkStatus();
    const int fd = open(paths_[shard].c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Packed shard ", paths_[shard],
                       " cannot be read: ", std::strerror(errno)));
    }
    fds_[shard] = fd;
    return absl::OkStatus();
  }

  // Reads one record (label, then pixels) at `offset` of `shard`,
  // resuming after partial reads; fails when the file ends first.
  absl::Status ReadRecord(int shard, off_t offset, int64_t record,
                          int32_t* label, uint8_t* pixels) const {
    int fd;
    {
      std::lock_guard<std::mutex> lock(fds_mu_);
      fd = fds_[shard];
    }
    iovec parts[2] = {{label, kLabelBytes},
                      {pixels, static_cast<size_t>(pixels_)}};
    int64_t done = 0;
    while (done < record) {
      iovec* first = done < kLabelBytes ? &parts[0] : &parts[1];
      if (done < kLabelBytes) {
        parts[0].iov_base = reinterpret_cast<char*>(label) + done;
        parts[0].iov_len = kLabelBytes - done;
      } else {
        parts[1].iov_base = pixels + (done - kLabelBytes);
        parts[1].iov_len = record - done;
      }
      const int count = first == &parts[0] ? 2 : 1;
      const ssize_t got = preadv(fd, first, count, offset + done);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Packed shard ", paths_[shard],
                         " cannot be read: ", std::strerror(errno)));
      }
      if (got == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Packed shard ", paths_[shard], " is truncated: a read at byte ",
            offset, " got ", done, " of ", record,
            " bytes; pack the data again"));
      }
      done += got;
    }
    return absl::OkStatus();
  }

  std::vector<std::string> paths_;
  std::vector<int64_t> starts_;
  TensorShape image_shape_;
  int64_t pixels_ = 0;
  mutable std::mutex fds_mu_;
  std::vector<int> fds_;
};

REGISTER_KERNEL_BUILDER(
    Name("KerasCnnPractice>ReadPackedRecords").Device(DEVICE_CPU),
    ReadPackedRecordsOp);

}  // namespace keras_cnnpractice
