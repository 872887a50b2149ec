"""Installs keras_cnnpractice and builds its TensorFlow op library.

`pip install --no-build-isolation -e .` (what `make` runs) compiles every
C++ source under keras_cnnpractice/custom_ops/cc/ with g++ and the flags of
the installed TensorFlow into keras_cnnpractice/custom_ops/_cnnpractice_ops.so.
When `nvcc` is on PATH the `*.cu.cc` kernels are compiled too (sm_80 and
sm_90, -DGOOGLE_CUDA=1) and linked in with the static CUDA runtime; without
it, or with KCP_NO_CUDA=1, the library is CPU-only and the build says so.

The CPU kernels are compiled once per instruction-set level (`ISA_LEVELS`:
x86-64-v2 "generic", x86-64-v3 "avx2", x86-64-v4 + VPOPCNTDQ "avx512"),
never for the build machine: `_cnnpractice_ops.so` is the generic one,
`_cnnpractice_ops_avx2.so` and `_cnnpractice_ops_avx512.so` the others, and
the loader picks the best one the running CPU supports (`KCP_ISA` forces a
lower one). KCP_ISA_LEVELS=generic,avx512 (say) builds fewer levels, for a
quicker local build; generic is always built.

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
# g++ flags of each instruction-set level; custom_ops/_loader.py holds the
# CPU flags each needs and the file names.
ISA_LEVELS = {
    "generic": ["-march=x86-64-v2", "-mtune=generic"],
    "avx2": ["-march=x86-64-v3", "-mtune=generic"],
    "avx512": ["-march=x86-64-v4", "-mavx512vpopcntdq", "-mtune=generic"],
}


# Kernels without arithmetic worth vectorizing (file I/O): compiled once,
# with the generic flags, and linked into every level.
_ISA_FREE = {"read_packed_records_op.cc"}


def _library_path(out, level):
    """The library file of `level` beside the generic one, `out`."""
    return out if level == "generic" else out.with_name(
        f"{out.stem}_{level}{out.suffix}")


def _levels():
    wanted = os.environ.get("KCP_ISA_LEVELS")
    if not wanted:
        return list(ISA_LEVELS)
    levels = [w.strip() for w in wanted.split(",") if w.strip()]
    unknown = sorted(set(levels) - set(ISA_LEVELS))
    if unknown:
        raise RuntimeError(f"KCP_ISA_LEVELS: unknown levels {unknown}; "
                           f"known: {', '.join(ISA_LEVELS)}")
    return ["generic"] + [lv for lv in ISA_LEVELS if lv in levels
                          and lv != "generic"]


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

    def get_outputs(self):
        return [str(_library_path(pathlib.Path(path), level))
                for path in super().get_outputs() for level in _levels()]

    def get_output_mapping(self):
        """The build -> source-tree copies of `pip install -e`: every
        level's library beside the generic one."""
        return {str(_library_path(pathlib.Path(built), level)):
                str(_library_path(pathlib.Path(inplace), level))
                for built, inplace in super().get_output_mapping().items()
                for level in _levels()}

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        for built, inplace in self.get_output_mapping().items():
            if built != inplace and pathlib.Path(built).is_file():
                self.copy_file(built, inplace, level=self.verbose)

    def build_extension(self, ext):
        import tensorflow as tf  # the runtime TensorFlow, hence no isolation

        out = pathlib.Path(self.get_ext_fullpath(ext.name))
        out.parent.mkdir(parents=True, exist_ok=True)
        obj_dir = pathlib.Path(self.build_temp) / "kcp_ops"
        obj_dir.mkdir(parents=True, exist_ok=True)

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
        cxx_flags = ["-O3", "-fno-trapping-math", "-fPIC", "-Wall",
                     "-Wno-sign-compare", "-I", str(CC_DIR / "kernels")]

        def obj_name(src, level=""):
            stem = src.relative_to(CC_DIR).as_posix().replace("/", "_")
            return obj_dir / (f"{stem}{'.' + level if level else ''}.o")

        # Op registrations and I/O kernels once (generic flags); the other
        # kernels and the build report once per level.
        shared, per_level, jobs = [], {lv: [] for lv in _levels()}, []
        for src in sorted(CC_DIR.rglob("*.cc")):
            if src.name.endswith(".cu.cc"):
                continue
            if src.parent.name == "ops" or src.name in _ISA_FREE:
                shared.append(str(obj_name(src)))
                jobs.append([cxx, "-c", str(src), "-o", shared[-1],
                             *cxx_flags, *ISA_LEVELS["generic"], *tf_cflags,
                             *defines])
                continue
            for level in per_level:
                per_level[level].append(str(obj_name(src, level)))
                jobs.append([cxx, "-c", str(src), "-o", per_level[level][-1],
                             *cxx_flags, *ISA_LEVELS[level], *tf_cflags,
                             *defines, f'-DKCP_ISA="{level}"'])
        link_cuda = []
        if nvcc:
            gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in CUDA_ARCHS]
            for src in sorted(CC_DIR.rglob("*.cu.cc")):
                shared.append(str(obj_name(src)))
                jobs.append([nvcc, "-c", "-x", "cu", str(src), "-o", shared[-1],
                             "-std=c++17", "-O3", "-DGOOGLE_CUDA=1",
                             "-Xcompiler", "-fPIC", *gencode,
                             "-I", str(CC_DIR / "kernels")])
            cuda_lib = _cudart_static_dir(nvcc)
            link_cuda = [f"-L{cuda_lib}", "-l:libcudart_static.a", "-ldl",
                         "-lrt", "-lpthread"]
            gpus = len(tf.config.list_physical_devices("GPU"))
            print(f"[keras_cnnpractice] building with CUDA ({nvcc}, sm_"
                  + ", sm_".join(CUDA_ARCHS) + "); the CUDA kernels run only "
                  f"where a GPU is present: this machine has {gpus}")
        else:
            print("[keras_cnnpractice] nvcc not found (or KCP_NO_CUDA set): "
                  "building the op library CPU-only")
        print("[keras_cnnpractice] CPU kernels for the levels: "
              + ", ".join(per_level))

        def run(cmd):
            print("[keras_cnnpractice] " + " ".join(cmd[:4]))
            subprocess.run(cmd, check=True)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(run, jobs))

        for level, objects in per_level.items():
            path = _library_path(out, level)
            tmp = path.with_suffix(".so.tmp")
            subprocess.run([cxx, "-shared", "-o", str(tmp), *objects, *shared,
                            *tf.sysconfig.get_link_flags(), *link_cuda],
                           check=True)
            os.replace(tmp, path)
            print(f"[keras_cnnpractice] wrote {path}")


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
    # One module per command under keras_cnnpractice/cli/.
    entry_points={"console_scripts": [
        f"kcp-{name.replace('_', '-')}=keras_cnnpractice.cli.{name}:run"
        for name in ("train", "predict", "analyze", "doctor", "pack", "tune",
                     "launch", "augment_preview", "ops", "data_service")]},
    zip_safe=False,
)
