// Registration and shape function of KerasCnnPractice>AffineResample, the
// fused augmentation pass (keras_cnnpractice/layers/_resample.py holds the
// same computation in TensorFlow ops, for XLA).
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_cnnpractice {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("KerasCnnPractice>AffineResample")
    .Input("images: T")
    .Input("matrices: float")
    .Input("color_matrix: float")
    .Input("color_offset: float")
    .Input("mean_matrix: float")
    .Output("output: float")
    .Attr("T: {uint8, float}")
    .Attr("height: int")
    .Attr("width: int")
    .Attr("interpolation: string")
    .Attr("fill_mode: string")
    .Attr("fill_value: float = 0.0")
    .Attr("color: bool = false")
    .Attr("clip: list(float) = []")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle images, matrices;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &images));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 3, &matrices));
      int64_t height, width;
      TF_RETURN_IF_ERROR(c->GetAttr("height", &height));
      TF_RETURN_IF_ERROR(c->GetAttr("width", &width));
      if (height < 1 || width < 1) {
        return absl::InvalidArgumentError(
            "height and width must be >= 1. Received: height=" +
            std::to_string(height) + ", width=" + std::to_string(width));
      }
      DimensionHandle batch;
      TF_RETURN_IF_ERROR(
          c->Merge(c->Dim(images, 0), c->Dim(matrices, 0), &batch));
      c->set_output(0, c->MakeShape({batch, c->MakeDim(height),
                                     c->MakeDim(width), c->Dim(images, 3)}));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Samples each image once through its output-to-source matrix, then applies one
color map and one clip, in a single pass per image.

Output pixel (y, x) of image b reads images[b] at (row, col) = (v / w, u / w)
with (u, v, w) = matrices[b] @ (x, y, 1): bilinear or nearest, each
neighbour read through fill_mode ("reflect", "wrap", "nearest", "constant"
with fill_value) as ImageProjectiveTransformV3 does. With color, each RGB
pixel p becomes color_matrix[b] @ p + color_offset[b] + mean_matrix[b] @ m,
where m is the image's per-channel mean after sampling; clip = [low, high]
clamps the result.
)doc");

}  // namespace keras_cnnpractice
