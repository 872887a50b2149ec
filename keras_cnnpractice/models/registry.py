"""A name -> builder registry, so tools and tests can iterate over models."""

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
    """Sorted names of the registered models."""
    return sorted(_BUILDERS)


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
    if name not in _BUILDERS:
        raise ValueError(f"Unknown model {name!r}; valid names: "
                         f"{', '.join(list_models())}. Received: model={name!r}")
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _BUILDERS[name](**kwargs)
