"""Model zoo behind a name -> builder registry."""

# Importing the builder modules registers their models.
from keras_cnnpractice.models import alphago  # noqa: F401
from keras_cnnpractice.models import binarynet  # noqa: F401
from keras_cnnpractice.models import classic  # noqa: F401
from keras_cnnpractice.models import googlenet  # noqa: F401
from keras_cnnpractice.models import mnist_cnn  # noqa: F401
from keras_cnnpractice.models import resnet  # noqa: F401
from keras_cnnpractice.models import vgg  # noqa: F401
from keras_cnnpractice.models.registry import create_model
from keras_cnnpractice.models.registry import list_models
from keras_cnnpractice.models.registry import register_model

__all__ = ["create_model", "list_models", "register_model"]
