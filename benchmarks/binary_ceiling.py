"""The CPU's ceiling for binary products against float32, per core: 1-bit
multiply-accumulates per second of XOR + popcount + add (the XNOR kernels'
instructions) against float32 multiply-accumulates per second of FMA, both
on data in registers (benchmarks/native/binary_ceiling.cc, compiled here for
this CPU). Their ratio bounds what `xnor_conv2d` / `xnor_matmul` can gain
over a float32 convolution that runs at the FMA peak (benchmarks/binary.py
measures how close the ops come).

Built twice where the CPU has AVX-512: for this CPU (-march=native: AVX-512
VPOPCNTQ and FMA), and for x86-64-v3 (AVX2 + FMA, the scalar 64-bit POPCNT
alone: one of the two popcount paths the op library's avx2 level combines;
its shuffle-table path is not in these loops, so an AVX2-only machine's
ceiling is higher than this row). Each figure is the best of 9 interleaved
rounds.

    python benchmarks/binary_ceiling.py [--cxx g++] [--name binary_ceiling]

Writes benchmarks/results/binary_ceiling.{json,md} (or NAME.* with --name).
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

SOURCE = pathlib.Path(__file__).resolve().parent / "native" / "binary_ceiling.cc"

flags.DEFINE_string("cxx", os.environ.get("CXX", "g++"), "C++ compiler.")
flags.DEFINE_string("name", "binary_ceiling", "Results file name (results/NAME.*).")
FLAGS = flags.FLAGS


def measure(march, work_dir):
    """The loops' JSON line, built with -march=MARCH."""
    binary = pathlib.Path(work_dir) / f"ceiling_{march}"
    subprocess.run([FLAGS.cxx, "-O2", "-std=c++17", f"-march={march}",
                    "-mtune=generic", str(SOURCE), "-o", str(binary)],
                   check=True)
    return json.loads(subprocess.run([str(binary)], check=True,
                                     capture_output=True,
                                     text=True).stdout)


def main(_):
    from keras_cnnpractice.custom_ops import _loader

    builds = ["native"]
    if "avx512f" in _loader.cpu_flags():
        builds.append("x86-64-v3")
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as work_dir:
        for march in builds:
            r = measure(march, work_dir)
            r.pop("sink")
            ratio = r["bit_macs_per_s"] / r["float32_macs_per_s"]
            results[march] = dict(r, ratio=ratio)
            rows.append([march, r["popcount_path"],
                         f"{r['bit_macs_per_s'] / 1e9:,.0f}", r["fma_path"],
                         f"{r['float32_macs_per_s'] / 1e9:.1f}",
                         f"{ratio:.1f}x"])
    common.write_results(
        FLAGS.name, {"builds": results},
        ["-march", "popcount path", "G bit MACs/s (1 core)", "FMA path",
         "G float32 MACs/s (1 core)", "ceiling ratio"],
        rows, "Binary-product ceiling vs float32 FMA, one core, data in "
        "registers (best of 9)")


if __name__ == "__main__":
    app.run(main)
