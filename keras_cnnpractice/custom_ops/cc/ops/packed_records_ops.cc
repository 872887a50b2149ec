// Registration and shape function of KerasCnnPractice>ReadPackedRecords, the
// batch reader of raw packs (keras_cnnpractice/data/packed.py describes the
// record layout).
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_cnnpractice {

using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

REGISTER_OP("KerasCnnPractice>ReadPackedRecords")
    .Input("index: int64")
    .Output("images: uint8")
    .Output("labels: int32")
    .Attr("paths: list(string) >= 1")
    .Attr("counts: list(int) >= 1")
    .Attr("shape: list(int) >= 3")
    .Attr("num_classes: int >= 0 = 0")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle index;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 1, &index));
      std::vector<int64_t> shape;
      TF_RETURN_IF_ERROR(c->GetAttr("shape", &shape));
      if (shape.size() != 3) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shape must be (height, width, channels). Received: ",
            shape.size(), " values"));
      }
      std::vector<DimensionHandle> dims = {c->Dim(index, 0)};
      for (int64_t d : shape) {
        if (d <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "shape values must be positive. Received: ", d));
        }
        dims.push_back(c->MakeDim(d));
      }
      c->set_output(0, c->MakeShape(dims));
      c->set_output(1, index);
      return absl::OkStatus();
    })
    .Doc(R"doc(
Reads the records numbered `index` of a raw pack: images[i] and labels[i] are
record index[i], counting through the shard files `paths` in order (shard k
holds counts[k] records). A record is a little-endian int32 label followed by
the uint8 pixels of one image of `shape` (height, width, channels); each is
read with one positioned read, straight into the outputs, in parallel. Only
regular files are opened; sizes that overflow int64 and, when num_classes > 0,
labels outside [0, num_classes) fail the op with InvalidArgument.
)doc");

}  // namespace keras_cnnpractice
