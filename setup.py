"""Installs keras_cnnpractice and builds its TensorFlow op library.

`pip install --no-build-isolation -e .` (what `make` runs) compiles every
C++ source under keras_cnnpractice/custom_ops/cc/ with g++ and the flags of
the installed TensorFlow into keras_cnnpractice/custom_ops/_cnnpractice_ops.so.
When `nvcc` is on PATH the `*.cu.cc` kernels are compiled too (sm_80 and
sm_90, -DGOOGLE_CUDA=1) and linked in with the static CUDA runtime; without
it, or with KCP_NO_CUDA=1, the library is CPU-only and the build says so.
KCP_MARCH overrides the target CPU (default: native, the build machine).

Build isolation must stay off: the op library has to be compiled against the
very TensorFlow it will be loaded into.
"""

import os
import pathlib
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = pathlib.Path(__file__).resolve().parent
CC_DIR = ROOT / "keras_cnnpractice" / "custom_ops" / "cc"
LIB_NAME = "keras_cnnpractice.custom_ops._cnnpractice_ops"
CUDA_ARCHS = ("80", "90")


def _read_requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def _cudart_static_dir(nvcc):
    """The folder holding libcudart_static.a for this nvcc."""
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             pathlib.Path(os.path.realpath(nvcc)).parent.parent, "/usr/local/cuda"]
    for home in filter(None, homes):
        for sub in ("lib64", "lib", "targets/x86_64-linux/lib"):
            if (pathlib.Path(home) / sub / "libcudart_static.a").is_file():
                return pathlib.Path(home) / sub
    raise RuntimeError(f"nvcc found at {nvcc} but not libcudart_static.a; set "
                       "CUDA_HOME to the CUDA toolkit, or KCP_NO_CUDA=1 to "
                       "build CPU-only")


class BuildOpLibrary(build_ext):
    """Compiles the op library with g++ (and nvcc) instead of distutils."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extension(self, ext):
        import tensorflow as tf  # the runtime TensorFlow, hence no isolation

        out = pathlib.Path(self.get_ext_fullpath(ext.name))
        out.parent.mkdir(parents=True, exist_ok=True)
        obj_dir = pathlib.Path(self.build_temp) / "kcp_ops"
        obj_dir.mkdir(parents=True, exist_ok=True)

        march = os.environ.get("KCP_MARCH", "native")
        nvcc = None if os.environ.get("KCP_NO_CUDA") else shutil.which("nvcc")
        # TensorFlow headers as system headers: their deprecation warnings
        # are not ours to fix.
        tf_cflags = [("-isystem" + f[2:]) if f.startswith("-I") else f
                     for f in tf.sysconfig.get_compile_flags()]
        defines = [f'-DKCP_TF_VERSION="{tf.__version__}"']
        if nvcc:
            defines.append("-DGOOGLE_CUDA=1")
        cxx = os.environ.get("CXX", "g++")
        # -fno-trapping-math: nothing reads floating-point exception flags,
        # and without it g++ will not vectorize compare-and-select loops.
        cxx_flags = ["-O3", f"-march={march}", "-fno-trapping-math", "-fPIC",
                     "-Wall", "-Wno-sign-compare", "-I", str(CC_DIR / "kernels")]

        jobs = []
        for src in sorted(CC_DIR.rglob("*.cc")):
            if src.name.endswith(".cu.cc"):
                continue
            obj = obj_dir / (src.relative_to(CC_DIR).as_posix().replace("/", "_") + ".o")
            jobs.append([cxx, "-c", str(src), "-o", str(obj), *cxx_flags,
                         *tf_cflags, *defines])
        link_cuda = []
        if nvcc:
            gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in CUDA_ARCHS]
            for src in sorted(CC_DIR.rglob("*.cu.cc")):
                obj = obj_dir / (src.relative_to(CC_DIR).as_posix().replace("/", "_") + ".o")
                jobs.append([nvcc, "-c", "-x", "cu", str(src), "-o", str(obj),
                             "-std=c++17", "-O3", "-DGOOGLE_CUDA=1",
                             "-Xcompiler", "-fPIC", *gencode,
                             "-I", str(CC_DIR / "kernels")])
            cuda_lib = _cudart_static_dir(nvcc)
            link_cuda = [f"-L{cuda_lib}", "-l:libcudart_static.a", "-ldl",
                         "-lrt", "-lpthread"]
            print(f"[keras_cnnpractice] building with CUDA ({nvcc}, sm_"
                  + ", sm_".join(CUDA_ARCHS) + ")")
        else:
            print("[keras_cnnpractice] nvcc not found (or KCP_NO_CUDA set): "
                  "building the op library CPU-only")

        def run(cmd):
            print("[keras_cnnpractice] " + " ".join(cmd[:4]))
            subprocess.run(cmd, check=True)
            return cmd[cmd.index("-o") + 1]

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            objects = list(pool.map(run, jobs))

        tmp = out.with_suffix(".so.tmp")
        subprocess.run([cxx, "-shared", "-o", str(tmp), *objects,
                        *tf.sysconfig.get_link_flags(), *link_cuda], check=True)
        os.replace(tmp, out)
        print(f"[keras_cnnpractice] wrote {out}")


setup(
    name="keras_cnnpractice",
    version="0.1.0",
    description="CNNs in practice: augmentation, architectures, fast "
                "convolutions, low precision and distributed training for Keras 3",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_cnnpractice", "keras_cnnpractice.*"]),
    package_data={"keras_cnnpractice.custom_ops": ["cc/**/*", "*.so"]},
    install_requires=_read_requirements(),
    ext_modules=[Extension(LIB_NAME, sources=[
        str(p.relative_to(ROOT)) for p in sorted(CC_DIR.rglob("*.cc"))])],
    cmdclass={"build_ext": BuildOpLibrary},
    zip_safe=False,
)
