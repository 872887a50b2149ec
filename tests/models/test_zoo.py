"""Every registered model, and the published parameter counts."""

import keras
import numpy as np
import pytest

from keras_cnnpractice.analysis import summarize
from keras_cnnpractice.models import create_model
from keras_cnnpractice.models import list_models

# Small inputs that every architecture accepts (the smallest for AlexNet and
# ZFNet, whose valid-padded layers need 67 and 64 pixels).
SMALL = {"lenet5": (28, 28, 1), "alexnet": (67, 67, 3), "zfnet": (64, 64, 3),
         "alphago_policy": (9, 9, 48), "mnist_cnn": (28, 28, 1)}


@pytest.mark.parametrize("name", list_models())
def test_builds_runs_analyzes_and_round_trips(name, tmp_path):
    shape = SMALL.get(name, (32, 32, 3))
    classes = None if name == "alphago_policy" else 10
    model = create_model(name, shape, classes)
    x = np.random.default_rng(0).uniform(0, 1, size=(2, *shape)).astype("float32")
    probs = model.predict(x, verbose=0)
    width = shape[0] * shape[1] if classes is None else classes
    assert probs.shape == (2, width)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
    summary = summarize(model)
    assert sum(r.params for r in summary.rows) == model.count_params()
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), probs, atol=1e-5)


@pytest.mark.parametrize("name", list_models())
def test_builds_at_native_size(name):
    model = create_model(name)  # the network's own input and classes
    summary = summarize(model)
    assert sum(r.params for r in summary.rows) == model.count_params()
    assert summary.macs > 0


@pytest.mark.parametrize("name, application", [
    ("vgg16", "VGG16"), ("vgg19", "VGG19"), ("resnet50", "ResNet50")])
def test_parameter_counts_equal_keras_applications(name, application):
    ours = create_model(name, (224, 224, 3), 1000)
    reference = getattr(keras.applications, application)(weights=None)
    assert ours.count_params() == reference.count_params()
    assert ours.output_shape == reference.output_shape


@pytest.mark.parametrize("name, shape, classes, trainable", [
    ("lenet5", (32, 32, 1), 10, 61_706),          # LeCun et al. 1998 (full C3)
    ("alexnet", (227, 227, 3), 1000, 62_378_344),  # the usual "62.3M"
    ("resnet18", (224, 224, 3), 1000, 11_689_512),  # torchvision's counts
    ("resnet34", (224, 224, 3), 1000, 21_797_672),
])
def test_published_parameter_counts(name, shape, classes, trainable):
    model = create_model(name, shape, classes)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable


def test_native_feature_map_sizes():
    zf = summarize(create_model("zfnet", (224, 224, 3), 1000))
    sizes = [r.output_shape[0] for r in zf.rows if r.kind == "Conv2D"]
    assert sizes == [110, 26, 13, 13, 13]  # Zeiler & Fergus, figure 3
    resnet = create_model("resnet50", (224, 224, 3), 1000)
    assert resnet.get_layer("conv5_block3").output.shape[1:] == (7, 7, 2048)


def test_googlenet_aux_heads():
    model = create_model("googlenet", (224, 224, 3), 1000, aux_heads=True)
    assert len(model.outputs) == 3
    assert model.get_layer("aux_4a_pool").output.shape[1:3] == (4, 4)
    plain = create_model("googlenet", (224, 224, 3), 1000)
    assert len(plain.outputs) == 1


def test_alphago_policy_network():
    model = create_model("alphago_policy", (19, 19, 48), None, filters=128)
    assert model.output_shape == (None, 361)
    assert model.get_layer("position_bias").count_params() == 361
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.kernel_size for c in convs] == [(5, 5)] + [(3, 3)] * 11 + [(1, 1)]
    assert all(c.filters == 128 for c in convs[:-1])
    with pytest.raises(ValueError, match="board points"):
        create_model("alphago_policy", (19, 19, 48), 10)
