"""The model registry."""

import importlib
import subprocess
import sys

import pytest

from keras_cnnpractice.models import create_model
from keras_cnnpractice.models import list_models
from keras_cnnpractice.models import register_model
from keras_cnnpractice.models import registry


def _import_zoo():
    for module in set(registry.ZOO.values()):
        importlib.import_module(f"keras_cnnpractice.models.{module}")


def test_unknown_and_duplicate_names():
    _import_zoo()
    with pytest.raises(ValueError, match="valid names: .*mnist_cnn"):
        create_model("lenet-9000", (28, 28, 1), 10)
    with pytest.raises(ValueError, match="already registered"):
        register_model("mnist_cnn")(lambda **kw: None)


def test_every_zoo_name_is_registered_by_the_module_the_zoo_names():
    _import_zoo()
    assert list_models() == sorted(registry._BUILDERS)
    for name, module in registry.ZOO.items():
        builder = registry._BUILDERS[name]
        defined_in = getattr(builder, "func", builder).__module__
        assert defined_in == f"keras_cnnpractice.models.{module}", name


def test_names_without_tensorflow_and_a_model_on_first_use():
    code = ("import sys; from keras_cnnpractice.models import create_model, "
            "list_models; names = list_models(); "
            "assert 'tensorflow' not in sys.modules and 'vgg16' in names; "
            "model = create_model('mnist_cnn'); print(model.count_params())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 0
