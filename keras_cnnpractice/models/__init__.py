"""Model zoo behind a name -> builder registry.

`create_model(name)` imports the zoo module that builds `name` on first
use; the builders are also importable directly
(`keras_cnnpractice.models.vgg.vgg`, ...).
"""

from keras_cnnpractice.models.registry import create_model
from keras_cnnpractice.models.registry import list_models
from keras_cnnpractice.models.registry import register_model

__all__ = ["create_model", "list_models", "register_model"]
