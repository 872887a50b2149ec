"""The model registry."""

import numpy as np
import pytest

from keras_cnnpractice.models import create_model
from keras_cnnpractice.models import list_models
from keras_cnnpractice.models import register_model


def test_every_registered_model_builds_and_outputs_probabilities():
    assert "mnist_cnn" in list_models()
    for name in list_models():
        model = create_model(name, (28, 28, 1), 10)
        probs = model(np.zeros((2, 28, 28, 1), np.float32)).numpy()
        assert probs.shape == (2, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="valid names: .*mnist_cnn"):
        create_model("lenet-9000", (28, 28, 1), 10)
    with pytest.raises(ValueError, match="already registered"):
        register_model("mnist_cnn")(lambda **kw: None)
