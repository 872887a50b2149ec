// Registration and shape function of KerasCnnPractice>StochasticRound.
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_cnnpractice {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("KerasCnnPractice>StochasticRound")
    .Input("x: T")
    .Input("seed: int64")
    .Output("y: T")
    .Attr("T: {float, half, bfloat16}")
    .Attr("word_bits: int")
    .Attr("frac_bits: int")
    .Attr("rounding: string")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle seed;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 1, &seed));
      DimensionHandle unused;
      TF_RETURN_IF_ERROR(c->WithValue(c->Dim(seed, 0), 2, &unused));
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Quantizes x to signed fixed point <word_bits, frac_bits>, saturating.

rounding="stochastic" rounds up with probability equal to the fractional
remainder (unbiased), drawing Philox4x32-10 bits keyed by `seed`;
rounding="nearest" rounds half to even and ignores `seed`.
)doc");

}  // namespace keras_cnnpractice
