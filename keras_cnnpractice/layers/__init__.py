"""Keras 3 layers of keras_cnnpractice (one public layer per file)."""

from keras_cnnpractice.layers.asymmetric_conv2d import AsymmetricConv2D
from keras_cnnpractice.layers.binary_conv2d import BinaryConv2D
from keras_cnnpractice.layers.binary_dense import BinaryDense
from keras_cnnpractice.layers.bottleneck import Bottleneck
from keras_cnnpractice.layers.column_parallel_dense import ColumnParallelDense
from keras_cnnpractice.layers.drop_connect import DropConnect
from keras_cnnpractice.layers.fast_conv2d import FastConv2D
from keras_cnnpractice.layers.fused_augment import FusedAugment
from keras_cnnpractice.layers.inception_module import InceptionModule
from keras_cnnpractice.layers.lens_distortion import LensDistortion
from keras_cnnpractice.layers.local_response_normalization import (
    LocalResponseNormalization)
from keras_cnnpractice.layers.pca_lighting import PCALighting
from keras_cnnpractice.layers.per_device import PerDevice
from keras_cnnpractice.layers.position_bias import PositionBias
from keras_cnnpractice.layers.quant_conv2d import QuantConv2D
from keras_cnnpractice.layers.quant_dense import QuantDense
from keras_cnnpractice.layers.random_affine import RandomAffine
from keras_cnnpractice.layers.random_resized_crop import RandomResizedCrop
from keras_cnnpractice.layers.scale_augment import ScaleAugment
from keras_cnnpractice.layers.stacked_conv2d import StackedConv2D
from keras_cnnpractice.layers.stochastic_depth import StochasticDepth
from keras_cnnpractice.layers.xnor_conv2d import XnorConv2D
from keras_cnnpractice.layers.xnor_dense import XnorDense

__all__ = ["AsymmetricConv2D", "BinaryConv2D", "BinaryDense", "Bottleneck",
           "ColumnParallelDense", "DropConnect", "FastConv2D", "FusedAugment",
           "InceptionModule", "LensDistortion", "LocalResponseNormalization",
           "PCALighting", "PerDevice", "PositionBias", "QuantConv2D",
           "QuantDense", "RandomAffine", "RandomResizedCrop", "ScaleAugment",
           "StackedConv2D", "StochasticDepth", "XnorConv2D", "XnorDense"]
