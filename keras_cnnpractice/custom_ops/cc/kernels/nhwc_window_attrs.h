// The check the NHWC convolution kernels (XnorConv2D, Im2colConv2D and its
// gradients) make of their `strides` and `dilations` attrs.
#ifndef KERAS_CNNPRACTICE_KERNELS_NHWC_WINDOW_ATTRS_H_
#define KERAS_CNNPRACTICE_KERNELS_NHWC_WINDOW_ATTRS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keras_cnnpractice {

// OK when `strides` and `dilations` are both [1, h, w, 1] with h, w >= 1;
// otherwise an InvalidArgument naming `op`, the attr and its value.
inline absl::Status CheckNhwcWindowAttrs(const char* op,
                                         const std::vector<int32_t>& strides,
                                         const std::vector<int32_t>& dilations) {
  for (const auto* list : {&strides, &dilations}) {
    const char* what = list == &strides ? "strides" : "dilations";
    if (list->size() != 4 || (*list)[0] != 1 || (*list)[3] != 1 ||
        (*list)[1] < 1 || (*list)[2] < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          op, " needs ", what,
          " = [1, h, w, 1] with h, w >= 1 (NHWC). Received: ", what, "=[",
          absl::StrJoin(*list, ", "), "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace keras_cnnpractice

#endif  // KERAS_CNNPRACTICE_KERNELS_NHWC_WINDOW_ATTRS_H_
