"""Builds a standalone CUDA harness with nvcc (no TensorFlow involved)."""

import ctypes
import pathlib
import shutil
import subprocess
import types

HERE = pathlib.Path(__file__).resolve().parent
KERNELS = HERE.parent.parent / "keras_cnnpractice" / "custom_ops" / "cc" / "kernels"


def build(out_dir, kernel="stochastic_round", archs=("80", "90")):
    """Compiles KERNELS/<kernel>.cu.cc + <kernel>_harness.cu.cc.

    The library is OUT_DIR/lib<kernel>_harness.so; returns its path.
    """
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise FileNotFoundError("nvcc not found")
    out = pathlib.Path(out_dir) / f"lib{kernel}_harness.so"
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    subprocess.run([nvcc, "-shared", "-std=c++17", "-O3", "-DGOOGLE_CUDA=1",
                    "-Xcompiler", "-fPIC", *gencode, "-I", str(KERNELS),
                    "-x", "cu", str(KERNELS / f"{kernel}.cu.cc"),
                    "-x", "cu", str(HERE / f"{kernel}_harness.cu.cc"),
                    "-o", str(out)], check=True)
    return out


def load(out_dir, kernel, prefix, signatures):
    """Builds the harness of `kernel` into out_dir (`build`) and returns its
    functions, typed for ctypes, as attributes named without `prefix`.

    signatures: {C name: (restype, [argtypes])}.
    """
    lib = ctypes.CDLL(str(build(out_dir, kernel=kernel)))
    fns = {}
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
        fns[name.removeprefix(prefix)] = fn
    return types.SimpleNamespace(**fns)


def cupy_or_skip():
    """CuPy, or a pytest skip where it or a CUDA device is missing."""
    import pytest
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except cupy.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    return cupy
