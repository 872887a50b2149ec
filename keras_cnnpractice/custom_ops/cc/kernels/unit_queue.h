// Runs a kernel's units of work on the CPU thread pool through a shared
// counter instead of one pool task per unit.
//
// A task per unit (ParallelFor with block size 1) queues every unit in the
// pool, and the calling thread only waits; where units take ~20 us (an
// XNOR convolution at batch 1), queueing, stealing and waking threads cost
// a third of the call. Here one task per thread takes the next unit from an
// atomic counter until none is left: the calling thread works too, and a
// thread woken late simply takes fewer units.
#ifndef KERAS_CNNPRACTICE_KERNELS_UNIT_QUEUE_H_
#define KERAS_CNNPRACTICE_KERNELS_UNIT_QUEUE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "tensorflow/core/platform/threadpool.h"

namespace keras_cnnpractice {

// Calls work(unit, worker) once for every unit in [0, units), on at most
// pool->NumThreads() threads at once; `worker` (0 .. NumThreads() - 1) is
// used by one thread at a time, so it can index per-thread scratch.
template <typename F>
void RunUnits(::tensorflow::thread::ThreadPool* pool, int64_t units,
              F&& work) {
  const int64_t workers =
      std::min<int64_t>(units, std::max(1, pool->NumThreads()));
  std::atomic<int64_t> next{0};
  auto drain = [&](int64_t first, int64_t last) {
    for (int64_t worker = first; worker < last; ++worker) {
      for (int64_t u = next.fetch_add(1, std::memory_order_relaxed);
           u < units; u = next.fetch_add(1, std::memory_order_relaxed)) {
        work(u, static_cast<int>(worker));
      }
    }
  };
  using Scheduling = ::tensorflow::thread::ThreadPool::SchedulingParams;
  pool->ParallelFor(workers, Scheduling::Fixed(1), drain);
}

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_UNIT_QUEUE_H_
