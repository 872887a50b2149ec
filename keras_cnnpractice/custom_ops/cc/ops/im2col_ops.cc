// Registration and shape functions of the im2col convolution ops:
// KerasCnnPractice>Im2colConv2D and its input and filter gradients
// (>Im2colConv2DBackpropInput, >Im2colConv2DBackpropFilter). Their
// attributes are tf.nn.conv2d's (NHWC only); `block_bytes` bounds each
// worker's column buffer (0: the kernels' default, see kernels/im2col.h).
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_cnnpractice {

using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

namespace {

// The output shape is read from the int32 sizes tensor at `input`.
absl::Status ShapeFromSizes(InferenceContext* c, int input) {
  ShapeHandle shape;
  TF_RETURN_IF_ERROR(c->MakeShapeFromShapeTensor(input, &shape));
  TF_RETURN_IF_ERROR(c->WithRank(shape, 4, &shape));
  c->set_output(0, shape);
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("KerasCnnPractice>Im2colConv2D")
    .Input("input: T")
    .Input("filter: T")
    .Output("output: T")
    .Attr("T: {float}")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .Attr("dilations: list(int) = [1, 1, 1, 1]")
    .Attr("data_format: string = 'NHWC'")
    .Attr("block_bytes: int = 0")
    .SetShapeFn(::tensorflow::shape_inference::Conv2DShape)
    .Doc(R"doc(
2-D convolution (cross-correlation, as tf.nn.conv2d) of NHWC input with an
HWIO filter, computed as im2col + GEMM: blocks of output pixels have their
input patches lowered into a column buffer of at most block_bytes per worker
thread, and each block is multiplied with the filter matrix.
)doc");

REGISTER_OP("KerasCnnPractice>Im2colConv2DBackpropInput")
    .Input("input_sizes: int32")
    .Input("filter: T")
    .Input("out_backprop: T")
    .Output("output: T")
    .Attr("T: {float}")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .Attr("dilations: list(int) = [1, 1, 1, 1]")
    .Attr("data_format: string = 'NHWC'")
    .Attr("block_bytes: int = 0")
    .SetShapeFn([](InferenceContext* c) { return ShapeFromSizes(c, 0); })
    .Doc(R"doc(
Gradient of Im2colConv2D with respect to its input (of shape input_sizes):
blocks of out_backprop times the transposed filter give column rows that
col2im adds back onto the input positions their patches were read from.
)doc");

REGISTER_OP("KerasCnnPractice>Im2colConv2DBackpropFilter")
    .Input("input: T")
    .Input("filter_sizes: int32")
    .Input("out_backprop: T")
    .Output("output: T")
    .Attr("T: {float}")
    .Attr("strides: list(int)")
    .Attr("padding: {'SAME', 'VALID'}")
    .Attr("dilations: list(int) = [1, 1, 1, 1]")
    .Attr("data_format: string = 'NHWC'")
    .Attr("block_bytes: int = 0")
    .SetShapeFn([](InferenceContext* c) { return ShapeFromSizes(c, 1); })
    .Doc(R"doc(
Gradient of Im2colConv2D with respect to its filter (of shape filter_sizes):
the sum over blocks of the transposed column rows of the input times the
matching rows of out_backprop.
)doc");

}  // namespace keras_cnnpractice
