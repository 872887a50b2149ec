"""Model zoo behind a name -> builder registry."""

from keras_cnnpractice.models import mnist_cnn  # noqa: F401  (registers)
from keras_cnnpractice.models.registry import create_model
from keras_cnnpractice.models.registry import list_models
from keras_cnnpractice.models.registry import register_model

__all__ = ["create_model", "list_models", "register_model"]
