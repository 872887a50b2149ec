// Registration and shape functions of the Winograd convolution ops:
// KerasCnnPractice>WinogradFilterTransform and >WinogradConv2D. The
// algorithm and the layouts are described in kernels/winograd.h.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_cnnpractice {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("KerasCnnPractice>WinogradFilterTransform")
    .Input("filter: float")
    .Output("transformed_filter: float")
    .Attr("tile: int = 2")
    .SetShapeFn([](InferenceContext* c) {
      // The kernel validates the tile and the filter with precise messages.
      ShapeHandle filter;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &filter));
      int64_t tile;
      TF_RETURN_IF_ERROR(c->GetAttr("tile", &tile));
      const DimensionHandle alpha =
          tile > 0 ? c->MakeDim(tile + 2) : c->UnknownDim();
      c->set_output(0, c->MakeShape({alpha, alpha, c->Dim(filter, 2),
                                     c->Dim(filter, 3)}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
The Winograd transform of a 3x3 filter [3, 3, in, out] for output tiles of
tile x tile pixels (2, 4 or 6): transformed_filter[:, :, c, k] = G g G^T, with g
= filter[:, :, c, k] and G the (tile + 2) x 3 matrix of F(tile x tile, 3x3).
)doc");

REGISTER_OP("KerasCnnPractice>WinogradConv2D")
    .Input("input: float")
    .Input("filter: float")
    .Input("transformed_filter: float")
    .Output("output: float")
    .Attr("tile: int = 2")
    .Attr("padding: string")
    .Attr("data_format: string = 'NHWC'")
    .SetShapeFn([](InferenceContext* c) {
      // The kernel validates every argument with a precise message; here
      // only the output shape is inferred, left unknown where it cannot be.
      ShapeHandle x, filter;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &filter));
      std::string padding;
      TF_RETURN_IF_ERROR(c->GetAttr("padding", &padding));
      DimensionHandle spatial[2];
      for (int i = 0; i < 2; ++i) {
        const DimensionHandle in = c->Dim(x, 1 + i);
        spatial[i] = c->UnknownDim();
        if (!c->ValueKnown(in)) continue;
        if (padding == "SAME") {
          spatial[i] = in;
        } else if (padding == "VALID" && c->Value(in) >= 3) {
          spatial[i] = c->MakeDim(c->Value(in) - 2);
        }
      }
      c->set_output(0, c->MakeShape({c->Dim(x, 0), spatial[0], spatial[1],
                                     c->Dim(filter, 3)}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Stride-1 3x3 convolution of NHWC input by Winograd's minimal filtering
F(tile x tile, 3x3) (Lavin & Gray 2016), tile 2, 4 or 6: equal, up to rounding,
to Conv2D with strides 1 and the same padding ("SAME" or "VALID").

transformed_filter is either empty (shape [0]: the op transforms `filter`
itself) or WinogradFilterTransform(filter, tile) computed earlier, which the
op then uses instead of `filter`'s values, so a filter that does not change
is transformed once.
)doc");

}  // namespace keras_cnnpractice
