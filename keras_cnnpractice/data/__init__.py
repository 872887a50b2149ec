"""Data sources and `tf.data` pipelines."""

from keras_cnnpractice.data.augmentation import AUGMENTATION_POLICIES
from keras_cnnpractice.data.augmentation import augmentation_policy
from keras_cnnpractice.data.mnist5k import load_mnist5k
from keras_cnnpractice.data.pipeline import build_pipeline
from keras_cnnpractice.data.pipeline import make_dataset
from keras_cnnpractice.data.sources import DATASET_NAMES
from keras_cnnpractice.data.sources import DataSource
from keras_cnnpractice.data.sources import load_dataset
from keras_cnnpractice.data.sources import open_dataset
from keras_cnnpractice.data.sources import parse_dataset_spec
from keras_cnnpractice.data.subsets import parse_classes
from keras_cnnpractice.data.subsets import select_classes
from keras_cnnpractice.data.subsets import take_per_class

__all__ = ["AUGMENTATION_POLICIES", "DATASET_NAMES", "DataSource",
           "augmentation_policy", "build_pipeline", "load_dataset",
           "load_mnist5k", "make_dataset", "open_dataset",
           "parse_classes", "parse_dataset_spec", "select_classes",
           "take_per_class"]

from keras_cnnpractice.data.cifar import cifar10_binary  # noqa: E402
from keras_cnnpractice.data.cifar import cifar100_binary  # noqa: E402
from keras_cnnpractice.data.image_folder import IMAGE_EXTENSIONS  # noqa: E402
from keras_cnnpractice.data.image_folder import image_folder  # noqa: E402
from keras_cnnpractice.data.keras_datasets import KERAS_DATASET_NAMES  # noqa: E402
from keras_cnnpractice.data.keras_datasets import keras_dataset  # noqa: E402
from keras_cnnpractice.data.packed import PackedInfo  # noqa: E402
from keras_cnnpractice.data.packed import packed  # noqa: E402
from keras_cnnpractice.data.packed import packed_info  # noqa: E402
from keras_cnnpractice.data.packing import pack_dataset  # noqa: E402
from keras_cnnpractice.data.synthetic import synthetic  # noqa: E402

__all__ += ["IMAGE_EXTENSIONS", "KERAS_DATASET_NAMES", "PackedInfo",
            "cifar100_binary", "cifar10_binary", "image_folder",
            "keras_dataset", "pack_dataset", "packed", "packed_info",
            "synthetic"]
