"""Keras 3 layers of keras_cnnpractice (one public layer per file)."""

from keras_cnnpractice.layers.stacked_conv2d import StackedConv2D

__all__ = ["StackedConv2D"]
