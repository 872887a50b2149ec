"""The package's import graph, read from the source with `ast`: no cycles
(function-level imports included), the command-line layer on top, no
private Keras or TensorFlow API outside the one isolated shim, and imports
inside functions only in modules that import no TensorFlow, each module
saying why."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_cnnpractice"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _owner(name):
    """The module of ours that `name` (a module or `module.attribute`)
    lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path):
    """The modules of this package that `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(_owner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 \
                and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else _owner(node.module))
    return {name for name in found if name}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _cycles():
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_package():
    assert len(MODULES) > 100
    assert "keras_cnnpractice.training.prepare" in GRAPH[
        "keras_cnnpractice.training.runner"]


def test_no_import_cycles():
    assert _cycles() == []


def test_only_commands_import_the_command_line_layer():
    importers = sorted(name for name, imported in GRAPH.items()
                       if not name.startswith("keras_cnnpractice.cli")
                       and any(m.startswith("keras_cnnpractice.cli")
                               for m in imported))
    assert importers == []


# The one module allowed TensorFlow's private Python API (with a test that
# fails when it moves: tests/strategies/test_coordination.py).
PRIVATE_API_SHIM = "keras_cnnpractice.strategies._coordination"


def _private_uses(path):
    """`keras.src` / `tensorflow.python` imports and `sys._getframe` calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([alias.name for alias in node.names]
                 if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [])
        found += [name for name in names
                  if name.split(".")[:2] in (["keras", "src"],
                                             ["tensorflow", "python"])]
        if isinstance(node, ast.Attribute) and node.attr == "_getframe":
            found.append("sys._getframe")
    return found


def test_no_private_apis_outside_the_shim():
    found = {name: uses for name, path in MODULES.items()
             if name != PRIVATE_API_SHIM and (uses := _private_uses(path))}
    assert found == {}
    assert _private_uses(MODULES[PRIVATE_API_SHIM])  # the shim is still one


def _imports_inside_functions(path):
    """Whether `path` has an import statement inside a function."""
    return any(isinstance(inner, (ast.Import, ast.ImportFrom))
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
               for inner in ast.walk(node))


DEFERRING = sorted(name for name, path in MODULES.items()
                   if _imports_inside_functions(path))


def test_imports_inside_functions_say_why():
    assert len(DEFERRING) > 5  # the check sees them
    silent = [name for name in DEFERRING
              if "Imports inside functions: " not in
              (ast.get_docstring(ast.parse(MODULES[name].read_text())) or "")]
    assert silent == []


@pytest.mark.parametrize("module", DEFERRING)
def test_imports_inside_functions_keep_tensorflow_out(module):
    # A module that imports TensorFlow anyway has no reason to defer.
    code = (f"import sys, {module}\n"
            "print([m for m in ('tensorflow', 'keras') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
