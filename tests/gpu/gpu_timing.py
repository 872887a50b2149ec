"""What the GPU timing scripts (time_winograd, time_xnor) share: CUDA-event
timing, the GPU's description and the report, on the lent GPU machine
(PyTorch, no TensorFlow).
"""

import argparse
import shutil
import subprocess

from benchmarks import _common


def arguments(description, batches=None):
    """The scripts' flags: --out (the results folder) and, given default
    `batches`, --batches."""
    parser = argparse.ArgumentParser(description=description)
    if batches is not None:
        parser.add_argument("--batches", type=int, nargs="+", default=batches)
    parser.add_argument("--out", default=str(_common.RESULTS),
                        help="folder for the .json and .md results")
    return parser.parse_args()


def seconds(fn, budget=0.25, most=200):
    """Mean seconds of fn() on the default stream, by CUDA events: a
    warm-up call, one timed call to size the run, then as many calls as
    fit in `budget` seconds (3 to `most`), timed together."""
    import torch
    fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    once = start.elapsed_time(end) / 1e3
    repeats = int(min(most, max(3, budget / max(once, 1e-6))))
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / repeats


def cudnn_seconds(torch, x, oihw):
    """cuDNN's 3x3 SAME convolution of NHWC `x` by OIHW `oihw`, in the
    faster of NCHW and channels-last layouts: `(seconds, layout, x as
    NCHW)`."""
    nchw = x.permute(0, 3, 1, 2)  # NHWC memory: channels-last already
    layouts = {"NCHW": (nchw.contiguous(), oihw),
               "NHWC": (nchw, oihw.contiguous(
                   memory_format=torch.channels_last))}
    times = {name: seconds(lambda a=a, k=k: torch.nn.functional.conv2d(
        a, k, padding=1)) for name, (a, k) in layouts.items()}
    best = min(times, key=times.get)
    return times[best], best, layouts["NCHW"][0]


def _command_line(args):
    """The last line `args` prints, or "" where it cannot run."""
    if shutil.which(args[0]) is None:
        return ""
    try:
        lines = subprocess.run(args, capture_output=True, text=True,
                               timeout=60).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return ""
    return lines[-1] if lines else ""


def device():
    """The GPU and its software, for the results' "machine" field."""
    import torch
    props = torch.cuda.get_device_properties(0)
    info = {
        "gpu": torch.cuda.get_device_name(),
        "multiprocessors": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "driver": _command_line(["nvidia-smi", "--query-gpu=driver_version",
                                 "--format=csv,noheader"]),
        "nvcc": _command_line(["nvcc", "--version"]),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }
    info["summary"] = (
        f"GPU: {info['gpu']} ({info['multiprocessors']} SMs, "
        f"{info['memory_gib']} GiB), driver {info['driver']}; kernels built "
        f"by {info['nvcc'] or 'nvcc'} (sm_80, sm_90); baselines: PyTorch "
        f"{info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}, "
        "float32 with TF32 off")
    return info


def write(name, payload, columns, rows, title, out):
    """OUT/NAME.json and .md with this GPU's description."""
    _common.write_results(name, payload, columns, rows, title,
                          device=device(), results=out)
