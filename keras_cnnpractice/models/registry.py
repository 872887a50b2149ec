"""A name -> builder registry, so tools and tests can iterate over models."""

_BUILDERS = {}


def register_model(name):
    """Decorator registering `builder(input_shape, num_classes, **kw)`."""
    def wrap(builder):
        if name in _BUILDERS:
            raise ValueError(f"Model {name!r} is already registered.")
        _BUILDERS[name] = builder
        return builder
    return wrap


def list_models():
    """Sorted names of the registered models."""
    return sorted(_BUILDERS)


def create_model(name, input_shape, num_classes, **kwargs):
    """Builds the registered model `name`.

    Raises:
        ValueError: unknown name.
    """
    if name not in _BUILDERS:
        raise ValueError(f"Unknown model {name!r}; valid names: "
                         f"{', '.join(list_models())}. Received: model={name!r}")
    return _BUILDERS[name](input_shape=tuple(input_shape),
                           num_classes=num_classes, **kwargs)
