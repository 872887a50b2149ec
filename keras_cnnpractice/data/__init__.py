"""Data sources and `tf.data` pipelines.

Names are imported on first use, so the TensorFlow-free modules
(`sources`' dataset specs, `subsets`, the pack format, `options`) import
without TensorFlow.
"""

from keras_cnnpractice._lazy import lazy_attributes
# Functions named like their (TensorFlow-free) modules are imported now:
# importing the module later would otherwise rebind the package's name to
# the module.
from keras_cnnpractice.data.image_folder import image_folder
from keras_cnnpractice.data.synthetic import synthetic

__getattr__, _LAZY = lazy_attributes(__name__, {
    "augmentation": ["augmentation_policy"],
    "cifar": ["cifar100_binary", "cifar10_binary"],
    "image_folder": ["IMAGE_EXTENSIONS"],
    "keras_datasets": ["KERAS_DATASET_NAMES", "keras_dataset"],
    "mnist5k": ["load_mnist5k"],
    "examples": ["Examples"],
    "service": ["DataService"],
    "options": ["AUGMENTATION_POLICIES", "AUGMENT_PLACES", "PipelineOptions",
                "SHARD_POLICIES"],
    "packs": ["PackedInfo", "pack_dataset", "packed", "packed_batches",
              "packed_info"],
    "pipeline": ["build_pipeline", "make_dataset"],
    "sources": ["DATASET_NAMES", "DataSource", "load_dataset",
                "open_dataset", "parse_dataset_spec"],
    "subsets": ["parse_classes", "select_classes", "take_per_class"],
})
__all__ = sorted([*_LAZY, "image_folder", "synthetic"])
