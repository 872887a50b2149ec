"""Input pipeline: how many images per second does each storage format
feed, and is the default `train.py` job input-bound?

In one run, on --count generated JPEG files (--size x --size, quality
--quality, in a folder per class under a temporary folder):

  * images/s of the training pipeline (`build_pipeline(..., training=True)`:
    shuffle, batch --batch_size, prefetch) over three sources of the
    same images: the JPEG folder (`image_folder`, decoded every epoch), the
    TFRecord pack and the raw pack (`kcp-pack
    --format tfrecord|raw`, read by `packed(shuffle=True)`; the pipeline
    reads the raw pack a whole batch at a time, `packed_batches`), each
    without augmentation and with the `natural` policy in the tf.data
    map (one fused resample and color pass to --crop x --crop float32,
    by the compiled CPU op: `implementation="op"`, as `train.py` does),
    plus the raw pack batched example by example (its
    `FixedLengthRecordDataset` stream through a shuffle buffer); the
    median of --repeats full epochs after one untimed epoch. Without
    augmentation the batches stay uint8 (`image_dtype=None`: the model
    casts them on its device, as a GPU job should); one more row gives the
    raw pack with the float32 cast in the tf.data map (`train.py`'s
    default), which on this CPU costs more than reading. All files were
    just written, so they are read from the page cache: this compares
    decoding and record parsing, not disks.
  * the packed reader's choice, measured: the raw shards read in order as
    batches by `FixedLengthRecordDataset` (what `packed()`'s examples
    come from), by numpy `memmap` slices fed through
    `Dataset.from_generator`, and by one `os.preadv` per record into the
    batch (`packed_batches`, what `build_pipeline` uses).
  * the input-bound fraction of the default `train.py` job (mnist5k,
    mnist_cnn, digits augmentation, batch 64, mirrored over the split CPU):
    step time with the real pipeline / step time on cached tensors, from
    `kcp-doctor --json` in a child process.

Goals: the raw pack >= 10x the JPEG folder (no augmentation); the raw pack
through the `natural` policy at --crop 224 >= 2,000 images/s; the default
job's input-bound fraction <= 1.05.

    python benchmarks/pipeline.py [--count 2000 --size 256 --quality 90
        --crop 224 --batch_size 32 --repeats 2 --doctor_steps 40 --work_dir DIR]

Writes benchmarks/results/pipeline.{json,md} (or NAME.* with --name),
with the command line and the machine's load average before and after.
"""

import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import _common as common  # noqa: E402

GOAL_PACKED_VS_JPEG = 10.0
GOAL_INPUT_BOUND = 1.05
GOAL_NATURAL_IMAGES_PER_S = 2000.0

flags.DEFINE_integer("count", 2000, "JPEG files to generate.", lower_bound=10)
flags.DEFINE_integer("size", 256, "Height and width of the images.",
                     lower_bound=16)
flags.DEFINE_integer("crop", 224, "Output side of the `natural` policy "
                     "(ScaleCrop of the --size images: ResNet's 224 crop of "
                     "a short side in [256, 480]).", lower_bound=1)
flags.DEFINE_integer("quality", 90, "JPEG quality.", lower_bound=1,
                     upper_bound=100)
flags.DEFINE_integer("classes", 10, "Class folders.", lower_bound=1)
flags.DEFINE_integer("batch_size", 32, "Batch size of the pipelines.",
                     lower_bound=1)
flags.DEFINE_integer("repeats", 2, "Timed epochs per pipeline (median "
                     "kept), after one untimed epoch.", lower_bound=1)
flags.DEFINE_float("shard_mb", 64, "MiB per packed shard.", lower_bound=0.01)
flags.DEFINE_integer("doctor_steps", 40, "Steps the doctor times for the "
                     "default train.py job (0: skip it).", lower_bound=0)
flags.DEFINE_string("work_dir", None, "Where the files go (default: a "
                    "temporary folder, removed at the end).")
flags.DEFINE_string("name", "pipeline", "Results file name.")
FLAGS = flags.FLAGS


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def make_jpegs(root):
    """--count JPEG files in --classes folders; returns (bytes, seconds)."""
    return common.make_jpeg_folder(root, FLAGS.count, FLAGS.size,
                                   FLAGS.classes, FLAGS.quality)


def epoch_images_per_second(make_ds):
    """Median images/s over --repeats full epochs after an untimed one."""
    ds = make_ds()
    rates = []
    for epoch in range(FLAGS.repeats + 1):
        start, images = time.perf_counter(), 0
        for x, _ in ds:
            images += int(x.shape[0])
        if epoch:
            rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def read_comparison(pack_dir, batch):
    """images/s reading the raw shards in order: FixedLengthRecordDataset
    (packed's examples), numpy memmap batches through from_generator, and
    positioned reads into each batch (packed_batches)."""
    import numpy as np
    import tensorflow as tf

    from keras_cnnpractice.data import packed
    from keras_cnnpractice.data.packs.format import LABEL_BYTES
    from keras_cnnpractice.data.packs import packed_batches
    info = packed(pack_dir, verify="none").info
    shape, record = info.shape, info.record_bytes

    def fixed_length():
        return packed(pack_dir, verify="none").dataset.batch(batch).prefetch(-1)

    def memmap_batches():
        for path, shard in zip(info.shard_paths(), info.shards):
            data = np.memmap(path, np.uint8, "r",
                             shape=(shard["count"], record))
            for i in range(0, shard["count"], batch):
                rows = np.array(data[i:i + batch])
                labels = rows[:, :LABEL_BYTES].copy().view("<i4")[:, 0]
                yield rows[:, LABEL_BYTES:].reshape(-1, *shape), labels

    def mmap():
        return tf.data.Dataset.from_generator(memmap_batches, output_signature=(
            tf.TensorSpec((None, *shape), tf.uint8),
            tf.TensorSpec((None,), tf.int32))).prefetch(-1)

    return {"FixedLengthRecordDataset": epoch_images_per_second(fixed_length),
            "numpy memmap + from_generator": epoch_images_per_second(mmap),
            "preadv per record, compiled op (packed_batches)": epoch_images_per_second(
                lambda: packed_batches(pack_dir, batch).prefetch(-1))}


def by_example(source):
    """`source` without its batch reader: `build_pipeline` then shuffles
    and batches its examples one by one."""
    return dataclasses.replace(source, read_batches=None)


def doctor_default_job():
    """The doctor's report on train.py's defaults, run in a child process."""
    import json
    command = [sys.executable, "-m", "keras_cnnpractice.cli.doctor", "--json",
               f"--steps={FLAGS.doctor_steps}",
               f"--model_dir={tempfile.mkdtemp(prefix='doctor-')}"]
    result = subprocess.run(command, capture_output=True, text=True,
                            cwd=common.ROOT, timeout=1800)
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    report = json.loads(result.stdout)
    report["command"] = " ".join(["python"] + command[1:-1])
    return report


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import keras
    import tensorflow as tf

    from keras_cnnpractice.data import PipelineOptions
    from keras_cnnpractice.data import augmentation_policy
    from keras_cnnpractice.data import build_pipeline
    from keras_cnnpractice.data import image_folder
    from keras_cnnpractice.data import pack_dataset
    from keras_cnnpractice.data import packed

    load_before = _load()
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="pipeline-bench-")
    remove = FLAGS.work_dir is None
    try:
        jpeg_dir = os.path.join(work, "jpeg")
        jpeg_bytes, make_seconds = make_jpegs(jpeg_dir)
        print(f"{FLAGS.count} JPEGs, {jpeg_bytes / FLAGS.count / 1024:.1f} "
              f"KiB each, written in {make_seconds:.1f} s", flush=True)
        pack_seconds, pack_bytes = {}, {}
        for fmt in ("raw", "tfrecord"):
            start = time.perf_counter()
            info, _ = pack_dataset(jpeg_dir, os.path.join(work, fmt),
                                   format=fmt, shard_mb=FLAGS.shard_mb,
                                   overwrite=True)
            pack_seconds[fmt] = time.perf_counter() - start
            pack_bytes[fmt] = sum(s["bytes"] for s in info.shards)
            print(f"packed {fmt}: {len(info.shards)} shards, "
                  f"{pack_bytes[fmt] / 2**20:.0f} MiB in "
                  f"{pack_seconds[fmt]:.1f} s", flush=True)

        shape = (FLAGS.size, FLAGS.size, 3)
        sources = {
            "JPEG folder": lambda: image_folder(jpeg_dir, validate="lazy"),
            "TFRecord pack": lambda: packed(os.path.join(work, "tfrecord"),
                                            shuffle=True, seed=0,
                                            verify="none"),
            "raw pack": lambda: packed(os.path.join(work, "raw"),
                                       shuffle=True, seed=0, verify="none"),
            "raw pack, example by example": lambda: by_example(packed(
                os.path.join(work, "raw"), shuffle=True, seed=0,
                verify="none")),
        }
        rates = {}
        for aug in ("none", "natural"):
            for name, make_source in sources.items():
                def make_ds(make_source=make_source, aug=aug):
                    augment = (augmentation_policy(aug, seed=0,
                                                   input_shape=shape,
                                                   crop=FLAGS.crop,
                                                   implementation="op")
                               if aug != "none" else None)
                    return build_pipeline(
                        make_source(), FLAGS.batch_size, augment=augment,
                        seed=0, options=PipelineOptions(image_dtype=None))
                rates[(name, aug)] = epoch_images_per_second(make_ds)
                print(f"{name}, augment={aug}: {rates[(name, aug)]:,.0f} "
                      f"images/s", flush=True)
        float_cast = epoch_images_per_second(lambda: build_pipeline(
            sources["raw pack"](), FLAGS.batch_size, seed=0))
        print(f"raw pack, float32 cast in tf.data: {float_cast:,.0f} "
              f"images/s", flush=True)
        reads = read_comparison(os.path.join(work, "raw"), FLAGS.batch_size)
        for name, rate in reads.items():
            print(f"raw shards in order via {name}: {rate:,.0f} images/s",
                  flush=True)
    finally:
        if remove:
            shutil.rmtree(work, ignore_errors=True)

    doctor = doctor_default_job() if FLAGS.doctor_steps else None
    load_after = _load()
    jpeg = rates[("JPEG folder", "none")]
    ratio = rates[("raw pack", "none")] / jpeg
    ratio_aug = rates[("raw pack", "natural")] / rates[("JPEG folder",
                                                         "natural")]
    natural = rates[("raw pack", "natural")]
    natural_met = natural >= GOAL_NATURAL_IMAGES_PER_S
    fraction = (doctor or {}).get("input_bound_fraction")
    rows, results = [], []
    for (name, aug), rate in rates.items():
        base = rates[("JPEG folder", aug)]
        results.append({"source": name, "augment": aug,
                        "images_per_s": rate, "vs_jpeg_folder": rate / base})
        rows.append([name, aug, f"{rate:,.0f}", f"{rate / base:.1f}x"])
    rows.append(["raw pack, float32 cast in tf.data", "none",
                 f"{float_cast:,.0f}", f"{float_cast / jpeg:.1f}x"])
    results.append({"source": "raw pack, float32 cast in tf.data",
                    "augment": "none", "images_per_s": float_cast,
                    "vs_jpeg_folder": float_cast / jpeg})
    for name, rate in reads.items():
        rows.append([f"raw shards in order, {name}", "none",
                     f"{rate:,.0f}", f"{rate / jpeg:.1f}x"])
    if fraction is not None:
        rows.append(["default train.py job: real / cached step", "digits",
                     f"{fraction:.3f}", f"goal <= {GOAL_INPUT_BOUND}"])
    print(f"\nraw pack vs JPEG folder: {ratio:.1f}x without augmentation "
          f"(goal >= {GOAL_PACKED_VS_JPEG:g}x: "
          f"{'met' if ratio >= GOAL_PACKED_VS_JPEG else 'NOT met'}), "
          f"{ratio_aug:.1f}x with natural")
    print(f"raw pack -> natural policy -> {FLAGS.crop}x{FLAGS.crop} float32 "
          f"batches: {natural:,.0f} images/s (goal >= "
          f"{GOAL_NATURAL_IMAGES_PER_S:,.0f}: "
          f"{'met' if natural_met else 'NOT met'})")
    if fraction is not None:
        print(f"default job input-bound fraction: {fraction:.3f} (goal <= "
              f"{GOAL_INPUT_BOUND}: "
              f"{'met' if fraction <= GOAL_INPUT_BOUND else 'NOT met'})")
    payload = {
        "benchmark": "pipeline",
        "command": " ".join(["python", "benchmarks/pipeline.py"]
                            + sys.argv[1:]),
        "load_average_before": load_before, "load_average_after": load_after,
        "count": FLAGS.count, "image_shape": list(shape),
        "natural_crop": FLAGS.crop,
        "raw_pack_natural_images_per_s": natural,
        "goal_natural_images_per_s": GOAL_NATURAL_IMAGES_PER_S,
        "goal_natural_met": natural_met,
        "quality": FLAGS.quality, "batch_size": FLAGS.batch_size,
        "repeats": FLAGS.repeats,
        "jpeg_kib_per_image": jpeg_bytes / FLAGS.count / 1024,
        "pack_seconds": pack_seconds, "pack_mib": {
            k: v / 2**20 for k, v in pack_bytes.items()},
        "results": results, "ordered_raw_read_images_per_s": reads,
        "faster_packed_reader": max(reads, key=reads.get),
        "packed_vs_jpeg": ratio, "packed_vs_jpeg_natural": ratio_aug,
        "goal_packed_vs_jpeg": GOAL_PACKED_VS_JPEG,
        "goal_packed_met": ratio >= GOAL_PACKED_VS_JPEG,
        "default_job": doctor, "input_bound_fraction": fraction,
        "goal_input_bound": GOAL_INPUT_BOUND,
        "goal_input_bound_met": (fraction <= GOAL_INPUT_BOUND
                                 if fraction is not None else None),
        "versions": {"tensorflow": tf.__version__,
                     "keras": keras.__version__},
    }
    common.write_results(
        FLAGS.name, payload, ["source", "augment", "images/s",
                              "vs JPEG folder"], rows,
        f"Input pipeline ({FLAGS.count} JPEGs of {FLAGS.size}x{FLAGS.size}, "
        f"q{FLAGS.quality}, batch {FLAGS.batch_size}; raw pack "
        f"{ratio:.1f}x the JPEG folder, goal >= {GOAL_PACKED_VS_JPEG:g}x; "
        f"raw pack + natural to {FLAGS.crop} px {natural:,.0f} images/s, "
        f"goal >= {GOAL_NATURAL_IMAGES_PER_S:,.0f}"
        + (f"; default job input-bound {fraction:.3f}, goal <= "
           f"{GOAL_INPUT_BOUND}" if fraction is not None else "") + ")")


if __name__ == "__main__":
    app.run(main)
