"""Data sources and `tf.data` pipelines."""

from keras_cnnpractice.data.augmentation import AUGMENTATION_POLICIES
from keras_cnnpractice.data.augmentation import augmentation_policy
from keras_cnnpractice.data.mnist5k import load_mnist5k
from keras_cnnpractice.data.pipeline import make_dataset
from keras_cnnpractice.data.sources import DATASET_NAMES
from keras_cnnpractice.data.sources import load_dataset
from keras_cnnpractice.data.subsets import parse_classes
from keras_cnnpractice.data.subsets import select_classes
from keras_cnnpractice.data.subsets import take_per_class

__all__ = ["AUGMENTATION_POLICIES", "DATASET_NAMES", "augmentation_policy",
           "load_dataset", "load_mnist5k", "make_dataset", "parse_classes",
           "select_classes", "take_per_class"]
