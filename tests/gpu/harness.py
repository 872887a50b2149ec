"""Builds the standalone CUDA harness with nvcc (no TensorFlow involved)."""

import pathlib
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
KERNELS = HERE.parent.parent / "keras_cnnpractice" / "custom_ops" / "cc" / "kernels"


def build(out_dir, archs=("80", "90")):
    """Compiles kernel + harness into OUT_DIR/libkcp_harness.so; returns it."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise FileNotFoundError("nvcc not found")
    out = pathlib.Path(out_dir) / "libkcp_harness.so"
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    subprocess.run([nvcc, "-shared", "-std=c++17", "-O3", "-DGOOGLE_CUDA=1",
                    "-Xcompiler", "-fPIC", *gencode, "-I", str(KERNELS),
                    "-x", "cu", str(KERNELS / "stochastic_round.cu.cc"),
                    "-x", "cu", str(HERE / "stochastic_round_harness.cu.cc"),
                    "-o", str(out)], check=True)
    return out
