"""keras_cnnpractice: CNNs in practice for TensorFlow / Keras 3.

Subpackages are imported on first use (`keras_cnnpractice.layers`, ...), so
`kcp-predict` needs nothing but TensorFlow, and a command's `--help`
starts without it.

Keras classes are registered for `keras.saving.load_model` after this one
import: the modules that register them are imported as soon as Keras is
(now, if it already is; else right after `import keras` completes, or once
the module of this package that imported Keras has finished), so a
`.keras` file holding this package's layers, quantizers, constraints,
ensembles or optimizers loads in a fresh process after
`import keras_cnnpractice`.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

_SUBPACKAGES = ("analysis", "custom_ops", "data", "layers", "models",
                "quantizers", "strategies", "training")
__all__ = list(_SUBPACKAGES)

# The modules whose import registers serializable Keras classes.
_REGISTERING = ("keras_cnnpractice.constraints", "keras_cnnpractice.layers",
                "keras_cnnpractice.quantizers",
                "keras_cnnpractice.training.ensembles",
                "keras_cnnpractice.transfer.optimizer")


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register():
    """Imports the registering modules; a failure warns, never breaks the
    import of Keras that triggered it."""
    try:
        for name in _REGISTERING:
            importlib.import_module(name)
    except Exception as err:  # noqa: BLE001 - reported, not swallowed
        warnings.warn(f"keras_cnnpractice could not register its Keras "
                      f"classes ({type(err).__name__}: {err}); import "
                      f"keras_cnnpractice.layers before loading models",
                      stacklevel=2)


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Runs `_register` once Keras is imported and no module of this
    package is still executing (Keras imported from inside one of them
    waits for the outermost to finish, so registration never meets a
    half-initialized module)."""

    def __init__(self):
        self.depth = 0  # modules of this package (and keras) executing
        self.pending = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith(__name__ + "."):
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            self.depth += 1
            try:
                exec_module(module)
            finally:
                self.depth -= 1
            self.pending |= fullname == "keras"
            if self.pending and self.depth == 0 and self in sys.meta_path:
                sys.meta_path.remove(self)
                _register()

        spec.loader.exec_module = exec_and_register
        return spec


if "keras" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterWithKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithKeras())
