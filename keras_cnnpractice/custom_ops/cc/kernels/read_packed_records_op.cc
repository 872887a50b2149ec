// CPU kernel of KerasCnnPractice>ReadPackedRecords: one preadv per record,
// scattering its label and pixels into the two outputs, records spread over
// the CPU device's threads. Shard files are opened on first use and kept
// open for the kernel's lifetime, and only when they are regular files (the
// open does not wait, so a FIFO cannot block it). A read that comes back short
// (a shard truncated after the pack was opened) fails the op naming the
// shard; no byte from past a file's end is ever returned. Every size (record,
// shard, batch) is checked against int64 overflow before it is used, and
// every label against the class count, so a crafted index or shard gives an
// InvalidArgument error, never an abort or a label no model output matches.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
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
using ::tensorflow::TensorShapeUtils;

constexpr int64_t kLabelBytes = 4;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

class ReadPackedRecordsOp : public OpKernel {
 public:
  explicit ReadPackedRecordsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::vector<int64_t> counts, shape;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("paths", &paths_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("counts", &counts));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("shape", &shape));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_classes", &num_classes_));
    OP_REQUIRES(ctx, counts.size() == paths_.size(),
                absl::InvalidArgumentError(absl::StrCat(
                    "counts must give one count per path. Received: ",
                    paths_.size(), " paths and ", counts.size(), " counts")));
    OP_REQUIRES_OK(ctx, CheckShape(shape));
    OP_REQUIRES_OK(ctx, TensorShapeUtils::MakeShape(shape, &image_shape_));
    OP_REQUIRES_OK(ctx, CheckCounts(counts));
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
    TensorShape images_shape;
    OP_REQUIRES_OK(ctx, TensorShape::BuildTensorShape(
                            {n, image_shape_.dim_size(0),
                             image_shape_.dim_size(1),
                             image_shape_.dim_size(2)},
                            &images_shape));
    Tensor* images = nullptr;
    Tensor* labels = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, images_shape, &images));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({n}), &labels));
    if (n == 0) return;
    uint8_t* pixels = images->flat<uint8_t>().data();
    int32_t* label_out = labels->flat<int32_t>().data();
    const int64_t record = record_;

    std::mutex error_mu;
    absl::Status error;
    auto work = [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int shard = shard_of[i];
        const off_t offset = (index(i) - starts_[shard]) * record;
        absl::Status status = ReadRecord(
            shard, offset, record, label_out + i, pixels + i * pixels_);
        if (status.ok()) status = CheckLabel(shard, index(i), label_out[i]);
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.ok()) error = status;
        }
      }
    };
    // Cost in cycles: a system call, then a copy of the record.
    using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        n, Scheduling::Adaptive(std::min(record, kInt64Max - 10000) + 10000),
        work);
    OP_REQUIRES_OK(ctx, error);
  }

 private:
  // Sets pixels_ and record_ from (height, width, channels), refusing
  // values that are not positive or a record whose size overflows int64.
  absl::Status CheckShape(const std::vector<int64_t>& shape) {
    if (shape.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shape must be (height, width, channels). Received: ", shape.size(),
          " values"));
    }
    pixels_ = 1;
    for (int64_t d : shape) {
      if (d <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shape values must be positive. Received: ", d));
      }
      if (pixels_ > (kInt64Max - kLabelBytes) / d) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shape (", shape[0], ", ", shape[1], ", ", shape[2],
            ") makes records larger than ", kInt64Max,
            " bytes. Received: ", d));
      }
      pixels_ *= d;
    }
    record_ = kLabelBytes + pixels_;
    return absl::OkStatus();
  }

  // Sets starts_ (the first record number of each shard), refusing counts
  // whose byte offsets or running total overflow int64.
  absl::Status CheckCounts(const std::vector<int64_t>& counts) {
    starts_.assign(1, 0);
    for (int64_t n : counts) {
      if (n < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("counts must be >= 0. Received: ", n));
      }
      if (n > kInt64Max / record_ || starts_.back() > kInt64Max - n) {
        return absl::InvalidArgumentError(absl::StrCat(
            "counts must be at most ", kInt64Max / record_,
            " each (records of ", record_, " bytes, offsets in int64) and ",
            "add up to at most ", kInt64Max, ". Received: ", n));
      }
      starts_.push_back(starts_.back() + n);
    }
    return absl::OkStatus();
  }

  // Opens a shard once, only when it is a regular file: the open does not
  // wait (O_NONBLOCK: a FIFO with no writer would block it forever), then
  // fstat decides, then reads block again.
  absl::Status OpenShard(int shard) {
    std::lock_guard<std::mutex> lock(fds_mu_);
    if (fds_[shard] >= 0) return absl::OkStatus();
    const std::string& path = paths_[shard];
    const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Packed shard ", path, " cannot be read: ", std::strerror(errno)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          "Packed shard ", path, " is not a regular file (a FIFO, a device ",
          "or a folder); pack the data again"));
    }
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    fds_[shard] = fd;
    return absl::OkStatus();
  }

  // Refuses a label outside [0, num_classes) (num_classes 0: unchecked).
  absl::Status CheckLabel(int shard, int64_t number, int32_t label) const {
    if (num_classes_ == 0 || (label >= 0 && label < num_classes_)) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "Packed shard ", paths_[shard], " holds a label outside [0, ",
        num_classes_, ") (the pack's classes) in record ", number,
        ": the pack is corrupt; pack the data again. Received: label=",
        label));
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
  int64_t record_ = 0;
  int64_t num_classes_ = 0;
  mutable std::mutex fds_mu_;
  std::vector<int> fds_;
};

REGISTER_KERNEL_BUILDER(
    Name("KerasCnnPractice>ReadPackedRecords").Device(DEVICE_CPU),
    ReadPackedRecordsOp);

}  // namespace keras_cnnpractice
