"""Timing and reporting helpers shared by the benchmark scripts."""

import json
import os
import pathlib
import platform
import statistics
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent


def machine():
    """A short description of the machine the numbers come from: CPU,
    cores, its AVX-512 flags, the op library's instruction-set level (the
    code path the compiled kernels ran) and oneDNN's, where the environment
    caps it (ONEDNN_MAX_CPU_ISA=AVX2, say, makes TensorFlow's float
    baselines run as on an AVX2-only machine)."""
    from keras_cnnpractice._machine import cpu_model
    from keras_cnnpractice.custom_ops import _loader
    flags = sorted(f for f in _loader.cpu_flags() if f.startswith("avx512"))
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "avx512_flags": flags,
            "op_library_isa": _loader.chosen_level(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA",
                                                 "not capped")}


def call_seconds(fn, repeats=15, warmup=3):
    """Wall times of `repeats` calls of `fn()` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn, repeats=15, warmup=3):
    """Median wall time of `fn()` over `repeats` calls after `warmup` calls."""
    return statistics.median(call_seconds(fn, repeats, warmup))


def write_results(name, payload, columns, rows, title, device=None,
                  results=RESULTS):
    """Writes RESULTS/NAME.json and RESULTS/NAME.md (a markdown table).

    device: the machine the numbers come from, default this CPU's
    `machine()`; a GPU run passes its own dict, with a "summary" line for
    the table's header.
    """
    results = pathlib.Path(results)
    results.mkdir(parents=True, exist_ok=True)
    info = device or machine()
    payload = dict(payload, machine=info)
    (results / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    summary = info.get("summary") or (
        f"Machine: {info['cpu']}, {info['cores']} cores, AVX-512 flags: "
        f"{' '.join(info['avx512_flags']) or 'none'}; "
        f"op library level: {info['op_library_isa']}; oneDNN ISA cap: "
        f"{info['onednn_max_cpu_isa']}")
    lines = [f"# {title}", "", summary, "",
             "| " + " | ".join(columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    (results / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def run_train_jobs(jobs, work_dir):
    """Runs `train.py` once per job, each in its own process.

    Args:
        jobs: {name: [train.py flags]}; `--model_dir` is added.
        work_dir: parent of the jobs' model_dirs. A job whose result.json is
            already there is not run again, so a long benchmark that was
            stopped keeps what it finished.

    Returns:
        {name: `keras_cnnpractice.training.jobs.run_train_job`'s dict}:
        result.json plus `history` (history.csv's columns as lists, one
        value per epoch), or {"error": last log line, "returncode": ...}.
    """
    from keras_cnnpractice.training.jobs import run_train_job

    def log(line):
        print(line, flush=True)

    results = {}
    for name, job_flags in jobs.items():
        results[name] = run_train_job(job_flags, os.path.join(work_dir, name),
                                      log=log)
        if "error" in results[name]:
            print(f"  {name} failed: {results[name]['error']}")
    return results


def write_svg_plot(name, series, title, ylabel):
    """Writes results/NAME.svg: one line per {label: [y per epoch]}."""
    from keras_cnnpractice.plots import line_plot
    line_plot(RESULTS / f"{name}.svg", series, title, ylabel=ylabel)


def make_jpeg_folder(root, count, size, classes, quality=90):
    """`count` generated JPEG files of `size` x `size` (`synthetic`'s
    class patterns with noise) in `classes` folders under `root`; returns
    `(total bytes, seconds)`."""
    import tensorflow as tf

    from keras_cnnpractice.data import synthetic
    start, total, chunk = time.perf_counter(), 0, 100
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class{c:03d}"), exist_ok=True)
    for first in range(0, count, chunk):
        n = min(chunk, count - first)
        images, _ = synthetic(n, (size, size, 3), classes, seed=first,
                              noise=0.1)
        encoded = tf.map_fn(
            lambda x: tf.io.encode_jpeg(x, quality=quality),
            tf.constant(images), fn_output_signature=tf.string,
            parallel_iterations=4)
        for i, data in enumerate(encoded.numpy()):
            k = first + i
            path = os.path.join(root, f"class{k % classes:03d}",
                                f"{k:06d}.jpg")
            with open(path, "wb") as f:
                f.write(data)
            total += len(data)
    return total, time.perf_counter() - start
