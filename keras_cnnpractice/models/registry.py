"""A name -> builder registry, so tools and tests can iterate over models.

The zoo's builder modules (and TensorFlow) are imported when one of their
models is created, so `list_models()` answers without TensorFlow (the
training flags list the names).
"""

import importlib

# The zoo: model name -> the module of keras_cnnpractice.models that
# registers it.
ZOO = {
    "alexnet": "classic", "lenet5": "classic", "zfnet": "classic",
    "alphago_policy": "alphago",
    "binary_cnn": "binarynet", "binary_mlp": "binarynet",
    "float_cnn": "binarynet", "float_mlp": "binarynet",
    "googlenet": "googlenet", "inception_v3_style": "googlenet",
    "mnist_cnn": "mnist_cnn",
    **{f"resnet{depth}": "resnet" for depth in (18, 34, 50, 101, 152)},
    "resnet20_cifar": "resnet", "resnet56_cifar": "resnet",
    **{f"vgg{depth}": "vgg" for depth in (11, 13, 16, 19)},
}
_BUILDERS = {}


def register_model(name):
    """Decorator registering `builder(input_shape=..., num_classes=..., **kw)`,
    whose defaults are the network's native input and class count."""
    def wrap(builder):
        if name in _BUILDERS:
            raise ValueError(f"Model {name!r} is already registered.")
        _BUILDERS[name] = builder
        return builder
    return wrap


def list_models():
    """Sorted names of the zoo's models and of any registered since."""
    return sorted(set(ZOO) | set(_BUILDERS))


def create_model(name, input_shape=None, num_classes=None, **kwargs):
    """Builds the registered model `name`.

    Args:
        name: a name from `list_models()`.
        input_shape: `(height, width, channels)`; None for the network's
            native input (224x224x3 for VGG, 227x227x3 for AlexNet, ...).
        num_classes: None for the network's own (1000 for the ImageNet nets).
        **kwargs: builder options (e.g. `aux_heads=True` for GoogLeNet).

    Raises:
        ValueError: unknown name.
    """
    if name not in _BUILDERS and name in ZOO:
        importlib.import_module(f"{__package__}.{ZOO[name]}")
    if name not in _BUILDERS:
        raise ValueError(f"Unknown model {name!r}; valid names: "
                         f"{', '.join(list_models())}. Received: model={name!r}")
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _BUILDERS[name](**kwargs)
