// Registration and shape functions of the binary-network inference ops:
// KerasCnnPractice>Bitpack, >XnorMatmul and >XnorConv2D. The bit layout they
// share is described in kernels/xnor.h.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_cnnpractice {

using ::tensorflow::DataType;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("KerasCnnPractice>Bitpack")
    .Input("x: T")
    .Output("packed: out_type")
    .Attr("T: {float, half, bfloat16}")
    .Attr("out_type: {int32, int64} = DT_INT32")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x;
      TF_RETURN_IF_ERROR(c->WithRankAtLeast(c->input(0), 1, &x));
      DataType out_type;
      TF_RETURN_IF_ERROR(c->GetAttr("out_type", &out_type));
      const int64_t bits = out_type == ::tensorflow::DT_INT64 ? 64 : 32;
      DimensionHandle depth = c->Dim(x, -1);
      DimensionHandle words = c->UnknownDim();
      if (c->ValueKnown(depth)) {
        words = c->MakeDim((c->Value(depth) + bits - 1) / bits);
      }
      ShapeHandle out;
      TF_RETURN_IF_ERROR(c->ReplaceDim(x, -1, words, &out));
      c->set_output(0, out);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Packs the signs of x along its last axis into 32- or 64-bit words.

Bit j of word w is 1 where x[..., w * bits + j] is negative or NaN, 0 where
it is >= 0; bits past the last element are 0.
)doc");

REGISTER_OP("KerasCnnPractice>XnorMatmul")
    .Input("a: T")
    .Input("b: T")
    .Output("product: float")
    .Attr("T: {int32, int64}")
    .Attr("depth: int")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle a, b;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 2, &a));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &b));
      c->set_output(0, c->Matrix(c->Dim(a, 0), c->Dim(b, 0)));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Binary matrix product of bit-packed rows: product[i, j] is the dot product of
the +-1 vectors packed in a[i] and b[j] (depth real bits each), computed as
depth - 2 * popcount(a[i] XOR b[j]).
)doc");

REGISTER_OP("KerasCnnPractice>XnorConv2D")
    .Input("input: T")
    .Input("filter: T")
    .Output("output: float")
    .Attr("T: {int32, int64}")
    .Attr("channels: int")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .Attr("dilations: list(int) = [1, 1, 1, 1]")
    .Attr("data_format: string = 'NHWC'")
    .SetShapeFn([](InferenceContext* c) {
      // The kernel validates every argument with a precise message; here
      // only the output shape is inferred, left unknown where it cannot be.
      ShapeHandle x, w;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &w));
      std::vector<int32_t> strides, dilations;
      std::string padding;
      TF_RETURN_IF_ERROR(c->GetAttr("strides", &strides));
      TF_RETURN_IF_ERROR(c->GetAttr("dilations", &dilations));
      TF_RETURN_IF_ERROR(c->GetAttr("padding", &padding));
      DimensionHandle spatial[2];
      for (int i = 0; i < 2; ++i) {
        spatial[i] = c->UnknownDim();
        DimensionHandle in = c->Dim(x, 1 + i), k = c->Dim(w, 1 + i);
        if (strides.size() != 4 || dilations.size() != 4 ||
            !c->ValueKnown(in) || !c->ValueKnown(k) || strides[1 + i] < 1 ||
            dilations[1 + i] < 1) {
          continue;
        }
        const int64_t s = strides[1 + i];
        const int64_t extent = (c->Value(k) - 1) * dilations[1 + i] + 1;
        const int64_t n = padding == "SAME"
                              ? (c->Value(in) + s - 1) / s
                              : (c->Value(in) - extent + s) / s;
        if (n > 0) spatial[i] = c->MakeDim(n);
      }
      c->set_output(0, c->MakeShape({c->Dim(x, 0), spatial[0], spatial[1],
                                     c->Dim(w, 0)}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Binary 2-D convolution of bit-packed NHWC input with a bit-packed filter
laid out [out_channels, kernel_h, kernel_w, words]: equal to a float
convolution of the unpacked +-1 values with zero padding, computed with XNOR
and popcount. `channels` is the real number of input channels.
)doc");

}  // namespace keras_cnnpractice
