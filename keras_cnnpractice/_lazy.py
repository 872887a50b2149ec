"""Package attributes imported on first use (PEP 562), so that a package's
TensorFlow-free modules (its flag vocabularies, its file formats) import
without TensorFlow, and a command's `--help` answers in a fraction of a
second."""

import importlib


def lazy_attributes(package, modules):
    """A module-level `__getattr__` for `package`.

    Args:
        package: the package's `__name__`.
        modules: `{submodule: names}`; accessing `package.NAME` imports
            `package.submodule` and returns its `NAME`.

    Returns:
        `(__getattr__, __all__)` for the package's `__init__`.

    Raises:
        ValueError: a name is also its module's name (importing the module
            would rebind the package's name to it: import such a name
            eagerly instead).
    """
    where = {name: module for module, names in modules.items()
             for name in names}
    clashes = sorted(name for name, module in where.items() if name == module)
    if clashes:
        raise ValueError(f"{package}: {', '.join(clashes)} share their "
                         "module's name; import them eagerly")

    def __getattr__(name):
        if name not in where:
            raise AttributeError(
                f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"),
                       name)

    return __getattr__, sorted(where)
