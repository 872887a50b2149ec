"""The model registry."""

import pytest

from keras_cnnpractice.models import create_model
from keras_cnnpractice.models import register_model


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="valid names: .*mnist_cnn"):
        create_model("lenet-9000", (28, 28, 1), 10)
    with pytest.raises(ValueError, match="already registered"):
        register_model("mnist_cnn")(lambda **kw: None)
